"""JSON API (/api/v1/) and Prometheus metrics (/metrics), for scripts and monitoring rather than browsers.

Callers authenticate with ``Authorization: Bearer umw_…`` (tokens from `manage.py create_token`) and act as
the token's user, with that user's permissions; session cookies are deliberately ignored here, which is what
makes `csrf_exempt` safe: a browser cannot be tricked into sending a bearer header. Views are thin: creates and
edits are validated by the pages' ModelForms, and every change goes through services.py as the pages' do; live
numbers come from live.py, exactly as for the pages.
"""

from __future__ import annotations

import json
import math
from functools import wraps

from django import forms
from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.core.exceptions import PermissionDenied, RequestDataTooBig, ValidationError
from django.http import Http404, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404
from django.utils.datastructures import MultiValueDict
from django.views.decorators.csrf import csrf_exempt

from . import choices as C
from . import live, metrics, services
from .forms import DirectorForm, HostActionForm, RealServerForm, VirtualServiceForm
from .models import ApiToken, ApplyJob, Director, Event, RealServer, VirtualService

OPERATE = "clusters.operate_realserver"
EVENTS_DEFAULT = 100
EVENTS_MAX = 500


# -- auth and plumbing -------------------------------------------------------------------------------------
def error(status: int, message: str, **headers) -> JsonResponse:
    return JsonResponse({"error": message}, status=status, headers=headers)


def invalid(errors: dict, status: int = 400) -> JsonResponse:
    """400 naming the fields at fault, in the shape Django forms use: {"errors": {"weight": ["..."]}}."""
    return JsonResponse({"errors": {k: [str(m) for m in v] for k, v in errors.items()}}, status=status)


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


def api_view(perm: str | dict[str, str], methods: tuple[str, ...] = ("GET",)):
    """Token auth, a permission, allowed methods and JSON errors (404 too) around a view returning JSON.

    `perm` is one permission for every method, or {method: permission} (then its keys are the methods).
    """
    perms = perm if isinstance(perm, dict) else dict.fromkeys(methods, perm)
    methods = tuple(perms)

    def wrap(view):
        @wraps(view)
        def inner(request, *args, **kwargs):
            if request.method not in methods:
                return error(405, f"Use {' or '.join(methods)}.", Allow=", ".join(methods))
            failed = authenticate(request)
            if failed is not None:
                return failed
            perm = perms[request.method]
            if not request.user.has_perm(perm):
                return error(403, f"{request.user} lacks the permission {perm}.")
            try:
                return view(request, *args, **kwargs)
            except Http404 as exc:
                return error(404, str(exc) or "Not found.")
            except RequestDataTooBig:
                return error(413, f"The body is larger than {MAX_BODY // 1024} KiB.")
            except PermissionDenied as exc:  # a finer permission than the method's (an external check)
                return error(403, str(exc) or "Permission denied.")

        return login_not_required(csrf_exempt(inner))

    return wrap


ACTION_OF = {"GET": "view", "POST": "add", "PATCH": "change", "DELETE": "delete"}


def model_perms(model: str, *methods: str) -> dict[str, str]:
    """{method: the model's permission for it}: GET view, POST add, PATCH change, DELETE delete."""
    return {m: f"clusters.{ACTION_OF[m]}_{model}" for m in methods}


MAX_BODY = 64 * 1024  # the largest object (a virtual service with every check field) is ~2 KiB


class BadBody(ValueError):
    """A body that is not a flat JSON object of plain values; `errors` names the field (or "body")."""

    def __init__(self, errors: dict[str, list[str]], status: int = 400):
        super().__init__(errors)
        self.errors, self.status = errors, status


def _plain(name: str, value):
    """A JSON value a form field can take: null, bool, finite number, text, or a list of those (a
    multiple choice). Nesting, infinities and lone surrogates (not valid Unicode) are named errors."""
    if isinstance(value, list):
        return (
            [_plain(name, v) for v in value[:100] if not isinstance(v, list)]
            if all(not isinstance(v, list | dict) for v in value)
            else _bad(name, "Expected a value or a list of values, not nested lists or objects.")
        )
    if isinstance(value, dict):
        _bad(name, "Expected a value, not an object.")
    if isinstance(value, float) and not math.isfinite(value):
        _bad(name, "Expected a finite number.")
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            _bad(name, "Not valid Unicode (a lone surrogate).")
    return value


def _bad(name: str, message: str):
    raise BadBody({str(name)[:100]: [message]})


def body(request) -> dict:
    """The body as a dict of plain values: JSON (what scripts send) or form-encoded (`curl -d a=b`).

    Bounded before anything else runs: MAX_BODY bytes (413), valid UTF-8, JSON nesting only as deep as a
    form needs (a list of values) - a 50,000-deep array is a 400 like any other malformed body.
    """
    raw = request.body
    if len(raw) > MAX_BODY:
        raise BadBody({"body": [f"The body is larger than {MAX_BODY // 1024} KiB."]}, status=413)
    raw = raw.strip()
    if request.content_type == "application/json" or raw.startswith(b"{"):
        try:
            data = json.loads(raw.decode("utf-8") or "{}")
        except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
            raise BadBody({"body": [f"Not valid JSON: {str(exc)[:200]}."]}) from None
        if not isinstance(data, dict):
            raise BadBody({"body": ["The body must be a JSON object."]})
        return {str(k): _plain(k, v) for k, v in data.items()}
    return request.POST.dict()


def posted(data: dict) -> MultiValueDict:
    """What a browser would post for these values: text, a list for a multiple choice, "true"/"false" for a
    checkbox, nothing for null - so a form field sees the types it was written for (`{"address": 0}`)."""
    out = MultiValueDict()
    for name, value in data.items():
        values = value if isinstance(value, list | tuple) else [value]
        text = [_text(v) for v in values if v is not None]
        if text or isinstance(value, list | tuple):
            out.setlist(name, text)
    return out


def _text(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(getattr(value, "pk", value))


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


DIRECTOR_HA_FIELDS = ("ha_address", "ha_priority", "ha_preempt", "ha_interval", "ha_vrid")


def director_json(director: Director) -> dict:
    live.refresh_last_seen(director)
    return {
        "id": director.pk,
        "name": director.name,
        "peer": getattr(director.pair_peer(), "pk", None),
        "description": director.description,
        **{f: getattr(director, f) for f in DIRECTOR_HA_FIELDS},
        "agent_status": director.agent_status(),
        "desired_revision": director.desired_revision,
        "applied_revision": director.applied_revision,
        "in_sync": director.in_sync,
        "last_seen": director.last_seen,
        "report_problem": getattr(director, "report_problem", None),
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


# -- writes: the forms of the web pages, fed with JSON ---------------------------------------------------------
def bound_form(form_class, data: dict, instance=None, fixed=None, initial=None):
    """The page's ModelForm bound to what a browser would post: the current (or default) values, the body on top.

    Keys the form does not have, and those the URL decides (`fixed`), are refused rather than ignored, so a
    typo in a script is a 400, not a silent no-op. Returns (form, errors) with one of them None.
    """
    fixed = fixed or {}
    allowed = [f for f in form_class._meta.fields if f not in fixed]
    unknown = sorted(k for k in data if k not in allowed)
    if unknown:
        known = ", ".join(allowed)
        return None, {k: [f"Unknown field; this object takes: {known}."] for k in unknown}
    unbound = form_class(instance=instance, initial={**(initial or {}), **fixed})
    current = {name: unbound[name].value() for name in unbound.fields}
    merged = posted({**current, **data, **fixed})
    return form_class(merged, instance=instance, initial={**(initial or {}), **fixed}), None


def write(request, form_class, render, status: int, instance=None, fixed=None, initial=None):
    """Validate with the page's form, then services.save (Event + apply job), answering like the reads."""
    try:
        data = body(request)
    except BadBody as exc:
        return invalid(exc.errors, exc.status)
    form, errors = bound_form(form_class, data, instance, fixed, initial)
    if errors:
        return invalid(errors)
    if not form.is_valid():
        return invalid(form.errors)
    obj = services.save(form.instance, user=request.user, changed=form.changed_data)
    return JsonResponse(render(obj), status=status)


def create(request, form_class, render, fixed=None, initial=None):
    return write(request, form_class, render, 201, fixed=fixed, initial=initial)


def change(request, form_class, instance, render, fixed=None):
    return write(request, form_class, render, 200, instance=instance, fixed=fixed)


# -- reads -------------------------------------------------------------------------------------------------
def director_detail_json(d: Director) -> dict:
    summary = live.summarize(d)
    return {
        **director_json(d),
        "report_problem": summary.problem,
        "drift": summary.drift,
        "services": [
            {**service_json(s.service), "healthy": s.healthy, "total": s.total, "live": s.live}
            for s in summary.services
        ],
    }


def service_detail_json(vs: VirtualService) -> dict:
    rows = live.real_rows(vs, points=1)
    return {**service_json(vs), "reals": [real_json(r) for r in rows]}


def server_detail_json(server: RealServer) -> dict:
    return real_json(live.real_rows(server.service, [server], points=1)[0])


@api_view(model_perms("director", "GET", "POST"))
def directors(request):
    if request.method == "POST":
        return create(request, DirectorForm, lambda d: director_detail_json(_director(d.pk)))
    rows = Director.objects.prefetch_related("services")
    return JsonResponse(
        [{**director_json(d), "services": [vs.pk for vs in d.services.all()]} for d in rows], safe=False
    )


def _director(pk) -> Director:
    return get_object_or_404(Director.objects.prefetch_related("services__reals"), pk=pk)


@api_view(model_perms("director", "GET", "PATCH", "DELETE"))
def director(request, pk):
    d = _director(pk)
    if request.method == "PATCH":
        return change(request, DirectorForm, d, lambda d: director_detail_json(_director(d.pk)))
    if request.method == "DELETE":
        services.decommission(d, user=request.user)
        return HttpResponse(status=204)
    return JsonResponse(director_detail_json(d))


def _service(pk) -> VirtualService:
    return get_object_or_404(VirtualService.objects.select_related("director"), pk=pk)


@api_view(model_perms("virtualservice", "POST"))
def director_services(request, pk):
    d = get_object_or_404(Director, pk=pk)
    return create(
        request, VirtualServiceForm, lambda vs: service_detail_json(_service(vs.pk)), fixed={"director": d.pk}
    )


@api_view(model_perms("virtualservice", "GET", "PATCH", "DELETE"))
def service(request, pk):
    vs = _service(pk)
    if request.method == "PATCH":
        return change(
            request,
            VirtualServiceForm,
            vs,
            lambda vs: service_detail_json(_service(vs.pk)),
            fixed={"director": vs.director_id},
        )
    if request.method == "DELETE":
        services.delete(vs, vs.director, user=request.user)
        return HttpResponse(status=204)
    return JsonResponse(service_detail_json(vs))


def _server(pk) -> RealServer:
    return get_object_or_404(RealServer.objects.select_related("service__director"), pk=pk)


@api_view(model_perms("realserver", "POST"))
def service_reals(request, pk):
    vs = _service(pk)
    return create(
        request,
        RealServerForm,
        lambda s: server_detail_json(_server(s.pk)),
        fixed={"service": vs.pk},
        initial={"port": vs.port or 0},
    )


@api_view(model_perms("realserver", "PATCH", "DELETE"))
def server(request, pk):
    s = _server(pk)
    if request.method == "DELETE":
        services.delete(s, s.service.director, user=request.user)
        return HttpResponse(status=204)
    return change(
        request,
        RealServerForm,
        s,
        lambda s: server_detail_json(_server(s.pk)),
        fixed={"service": s.service_id},
    )


@api_view("clusters.view_applyjob")
def job(request, pk):
    return JsonResponse(job_json(get_object_or_404(ApplyJob, pk=pk)))


class EventQuery(forms.Form):
    """The filters of /api/v1/events; unlike the logs page, a bad one is a 400, not silently ignored."""

    director = forms.CharField(required=False, help_text="id or name")
    kind = forms.ChoiceField(choices=[("", "")] + list(C.EventKind.choices), required=False)
    after_id = forms.IntegerField(required=False, min_value=0, max_value=2**63 - 1)
    limit = forms.IntegerField(required=False, min_value=1, max_value=EVENTS_MAX)

    def events(self):
        data = self.cleaned_data
        qs = Event.objects.select_related("director", "user")
        if data["director"]:
            digits = data["director"].isascii() and data["director"].isdigit()
            if digits and len(data["director"]) > 18:  # no id is that long (and SQLite cannot compare it)
                return qs.none()
            key = "director_id" if digits else "director__name"
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
    except BadBody as exc:
        return invalid(exc.errors, exc.status)
    try:
        job = services.server_action(server, action, posted(data), request.user)
    except ValidationError as exc:
        return invalid(exc.message_dict)
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


@login_not_required
@csrf_exempt
def not_found(request, *args, **kwargs):
    """Any other URL under /api/v1/: a JSON 404 (scripts parse every answer), listing where to look."""
    return error(404, f"No such endpoint: {request.path}. See /api/v1/ in the README.")


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
    body, content_type = metrics.exposition(request.headers.get("Accept", ""))
    return HttpResponse(body, content_type=content_type)
