"""URLs of the JSON API, mounted at /api/v1/: django-ninja's operations (clusters/api.py), its OpenAPI
document and docs page, and a JSON 404 for anything else."""

from . import api

urlpatterns = api.api.urlpatterns()
