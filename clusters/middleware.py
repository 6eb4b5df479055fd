"""Response headers every page gets: the Content-Security-Policy of settings.CONTENT_SECURITY_POLICY.

Django 5.2 has no CSP support of its own and the policy is one fixed string (no nonces: the pages have no
inline script or style), so a few lines here do what a dependency would.
"""

from __future__ import annotations

from django.conf import settings


class ContentSecurityPolicy:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        policy = getattr(settings, "CONTENT_SECURITY_POLICY", "")
        if policy:
            response.headers.setdefault("Content-Security-Policy", policy)
        return response
