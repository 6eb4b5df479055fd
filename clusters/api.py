"""JSON API (/api/v1/) and Prometheus metrics (/metrics), for scripts and monitoring rather than browsers.

Callers authenticate with ``Authorization: Bearer umw_…`` (tokens from `manage.py create_token`) and act as
the token's user, with that user's permissions; session cookies are deliberately ignored here, which is what
makes `csrf_exempt` safe: a browser cannot be tricked into sending a bearer header. Views are thin: writes go
through services.py, live numbers come from stats.py / live.py, exactly as for the pages.
"""

from __future__ import annotations

import json
from functools import wraps

from django import forms
from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.http import Http404, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404
from django.views.decorators.csrf import csrf_exempt

from . import choices as C
from . import live, metrics, services, stats
from .forms import HostActionForm, WeightForm
from .models import ApiToken, ApplyJob, Director, Event, RealServer, VirtualService

OPERATE = "clusters.operate_realserver"
EVENTS_DEFAULT = 100
EVENTS_MAX = 500


# -- auth and plumbing -------------------------------------------------------------------------------------
def error(status: int, message: str, **headers) -> JsonResponse:
    return JsonResponse({"error": message}, status=status, headers=headers)


def invalid(errors: dict) -> JsonResponse:
    """400 naming the fields at fault, in the shape Django forms use: {"errors": {"weight": ["..."]}}."""
    return JsonResponse({"errors": {k: [str(m) for m in v] for k, v in errors.items()}}, status=400)


def bearer(request) -> str | None:
    """The secret of an ``Authorization: Bearer`` header, "" for another scheme, None without a header."""
    header = request.headers.get("Authorization")
    if header is None:
        return None
    scheme, _, secret = header.partition(" ")
    return secret.strip() if scheme.lower() == "bearer" else ""


def unauthorized(message: str) -> JsonResponse:
    return error(401, message, **{"WWW-Authenticate": 'Bearer realm="api"'})


def authenticate(request) -> JsonResponse | None:
    """Set request.user from the bearer token; the 401 answer when there is none or it does not work."""
    secret = bearer(request)
    if secret is None:
        return unauthorized("Send Authorization: Bearer <token> (manage.py create_token).")
    token = ApiToken.authenticate(secret)
    if token is None:
        return unauthorized("Invalid or revoked token.")
    request.user = token.user
    return None


def api_view(perm: str, methods: tuple[str, ...] = ("GET",)):
    """Token auth, a permission, allowed methods and JSON errors (404 too) around a view returning JSON."""

    def wrap(view):
        @wraps(view)
        def inner(request, *args, **kwargs):
            if request.method not in methods:
                return error(405, f"Use {' or '.join(methods)}.", Allow=", ".join(methods))
            failed = authenticate(request)
            if failed is not None:
                return failed
            if not request.user.has_perm(perm):
                return error(403, f"{request.user} lacks the permission {perm}.")
            try:
                return view(request, *args, **kwargs)
            except Http404 as exc:
                return error(404, str(exc) or "Not found.")

        return login_not_required(csrf_exempt(inner))

    return wrap


def body(request) -> dict:
    """The POST body as a dict: JSON (what scripts send) or form-encoded (what `curl -d a=b` sends)."""
    raw = request.body.strip()
    if request.content_type == "application/json" or raw.startswith(b"{"):
        data = json.loads(raw or b"{}")
        if not isinstance(data, dict):
            raise ValueError("the body must be a JSON object")
        return data
    return request.POST.dict()


# -- shapes ------------------------------------------------------------------------------------------------
def job_json(job: ApplyJob) -> dict:
    return {
        "id": job.pk,
        "status": job.status,
        "error": job.error,
        "revision": job.revision,
        "director": job.director_id,
        "server": job.server_id,
        "created": job.created,
        "finished": job.finished,
    }


def director_json(director: Director) -> dict:
    live.refresh_last_seen(director)
    return {
        "id": director.pk,
        "name": director.name,
        "description": director.description,
        "agent_status": director.agent_status(),
        "desired_revision": director.desired_revision,
        "applied_revision": director.applied_revision,
        "in_sync": director.in_sync,
        "last_seen": director.last_seen,
    }


def service_json(vs: VirtualService) -> dict:
    return {
        "id": vs.pk,
        "director": vs.director_id,
        "label": vs.label,
        "name": vs.name,
        "protocol": vs.protocol,
        "address": vs.address,
        "port": vs.port,
        "fwmark": vs.fwmark,
        "family": vs.family,
        "scheduler": vs.scheduler,
        "sched_flags": vs.sched_flags,
        "persistence": vs.persistence,
        "netmask": vs.netmask,
        "enabled": vs.enabled,
        "checktype": vs.checktype,
        "check_service": vs.check_service,
    }


def live_json(row: live.RealRow) -> dict | None:
    """The kernel's view of one real server from the agent's snapshot; None when the agent has not reported."""
    if row.live is None:
        return None
    n = row.numbers
    return {
        **{k: n[k] for k in ("active", "inactive", "persistent", "cps", "inbps", "outbps")},
        "in_kernel": bool(row.live.get("in_kernel")),
        "kernel_weight": row.kernel_weight,
    }


def real_json(row: live.RealRow) -> dict:
    s = row.server
    return {
        "id": s.pk,
        "address": s.address,
        "port": s.port,
        "forwarding": s.forwarding,
        "weight": s.weight,
        "admin_state": s.admin_state,
        "after_drain": s.after_drain,
        "health": row.health,
        "health_reason": row.reason,
        "health_latency": row.latency,
        "live": live_json(row),
    }


def event_json(e: Event) -> dict:
    return {
        "id": e.pk,
        "time": e.time,
        "kind": e.kind,
        "level": e.level,
        "director": e.director.name if e.director else None,
        "service": e.service_id,
        "server": e.server_id,
        "user": e.user.get_username() if e.user else None,
        "message": e.message,
        "data": e.data,
    }


# -- reads -------------------------------------------------------------------------------------------------
@api_view("clusters.view_director")
def directors(request):
    rows = Director.objects.prefetch_related("services")
    return JsonResponse(
        [{**director_json(d), "services": [vs.pk for vs in d.services.all()]} for d in rows], safe=False
    )


@api_view("clusters.view_director")
def director(request, pk):
    d = get_object_or_404(Director.objects.prefetch_related("services__reals"), pk=pk)
    snap = stats.snapshot(d.name)
    summaries = [live.summarize_service(vs, snap) for vs in d.services.all()]
    return JsonResponse(
        {
            **director_json(d),
            "drift": (snap or {}).get("drift") or [],
            "services": [
                {**service_json(s.service), "healthy": s.healthy, "total": s.total, "live": s.live}
                for s in summaries
            ],
        }
    )


@api_view("clusters.view_virtualservice")
def service(request, pk):
    vs = get_object_or_404(VirtualService.objects.select_related("director"), pk=pk)
    rows = live.real_rows(vs, points=1)
    return JsonResponse({**service_json(vs), "reals": [real_json(r) for r in rows]})


@api_view("clusters.view_applyjob")
def job(request, pk):
    return JsonResponse(job_json(get_object_or_404(ApplyJob, pk=pk)))


class EventQuery(forms.Form):
    """The filters of /api/v1/events; unlike the logs page, a bad one is a 400, not silently ignored."""

    director = forms.CharField(required=False, help_text="id or name")
    kind = forms.ChoiceField(choices=[("", "")] + list(C.EventKind.choices), required=False)
    after_id = forms.IntegerField(required=False, min_value=0)
    limit = forms.IntegerField(required=False, min_value=1, max_value=EVENTS_MAX)

    def events(self):
        data = self.cleaned_data
        qs = Event.objects.select_related("director", "user")
        if data["director"]:
            key = "director_id" if data["director"].isdigit() else "director__name"
            qs = qs.filter(**{key: data["director"]})
        if data["kind"]:
            qs = qs.filter(kind=data["kind"])
        if data["after_id"] is not None:
            qs = qs.filter(id__gt=data["after_id"])
        return qs.order_by("-time", "-id")[: data["limit"] or EVENTS_DEFAULT]


@api_view("clusters.view_event")
def events(request):
    query = EventQuery(request.GET)
    if not query.is_valid():
        return invalid(query.errors)
    return JsonResponse([event_json(e) for e in query.events()], safe=False)


# -- operations --------------------------------------------------------------------------------------------
@api_view(OPERATE, methods=("POST",))
def server_action(request, pk, action):
    """drain / maintenance / enable / weight on one real server: 202 with the apply job to poll."""
    server = get_object_or_404(RealServer.objects.select_related("service__director"), pk=pk)
    try:
        data = body(request)
    except ValueError as exc:
        return invalid({"body": [f"Not valid JSON: {exc}."]})
    if action == "drain":
        then = data.get("then") or ""
        if then not in C.AfterDrain.values:
            return invalid({"then": [f"Choose one of: {', '.join(repr(v) for v in C.AfterDrain.values)}."]})
        job = services.drain(server, request.user, then=then)
    elif action == "maintenance":
        job = services.maintenance(server, request.user)
    elif action == "enable":
        job = services.enable(server, request.user)
    else:
        form = WeightForm(data)
        if not form.is_valid():
            return invalid(form.errors)
        job = services.set_weight(server, form.cleaned_data["weight"], request.user)
    server.refresh_from_db()
    return JsonResponse(
        {
            "job": job_json(job),
            "server": {"id": server.pk, "admin_state": server.admin_state, "weight": server.weight},
        },
        status=202,
    )


@api_view(OPERATE, methods=("POST",))
def host_action(request, pk, address, action):
    """One address in every virtual service of the director: 202 with one apply job per director."""
    director = get_object_or_404(Director, pk=pk)
    form = HostActionForm({"address": address, "action": action})
    if not form.is_valid():
        return invalid(form.errors)
    address = form.cleaned_data["address"]
    jobs = services.host_action(address, form.cleaned_data["action"], user=request.user, director=director)
    if not jobs:
        return error(404, f"{address} is not a real server of {director}.")
    return JsonResponse({"jobs": [job_json(j) for j in jobs]}, status=202)


# -- Prometheus --------------------------------------------------------------------------------------------
@login_not_required
def metrics_view(request):
    """Prometheus scrape: a token with view rights, or nothing when METRICS_ALLOW_ANONYMOUS is on.

    A token that is sent is always checked, even when anonymous scrapes are allowed: a revoked token should
    fail loudly rather than appear to work.
    """
    if request.method not in ("GET", "HEAD"):
        return error(405, "Use GET.", Allow="GET, HEAD")
    if bearer(request) is not None or not settings.METRICS_ALLOW_ANONYMOUS:
        failed = authenticate(request)
        if failed is not None:
            return failed
        if not request.user.has_perm("clusters.view_director"):
            return error(403, f"{request.user} lacks the permission clusters.view_director.")
    return HttpResponse(metrics.exposition(), content_type=metrics.CONTENT_TYPE)
