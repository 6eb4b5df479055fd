"""JSON API (/api/v1/, on django-ninja) and Prometheus metrics (/metrics), for scripts and monitoring.

Callers authenticate with ``Authorization: Bearer umw_…`` (tokens from `manage.py create_token`) and act as
the token's user, with that user's permissions; session cookies are deliberately ignored here, which is what
makes the API's CSRF exemption safe: a browser cannot be tricked into sending a bearer header. Each operation
declares its permission on its `BearerToken`, checked before the body is even parsed.

Views are thin: a body is parsed by its typed schema (api_schema.py) before any model code runs, then
validated by the pages' ModelForm, and every change goes through services.py as the pages' do; live numbers
come from live.py, exactly as for the pages. `/api/v1/openapi.json` is the OpenAPI document django-ninja
builds from these declarations, `/api/v1/docs` its Swagger UI (bundled static files, no CDN).
"""

from __future__ import annotations

from functools import wraps
from typing import Literal

from django import forms
from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.core.exceptions import PermissionDenied, RequestDataTooBig, ValidationError
from django.http import Http404, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404
from django.urls import URLPattern, re_path, reverse
from django.utils.datastructures import MultiValueDict
from django.views.decorators.csrf import csrf_exempt
from ninja import NinjaAPI, Query, Swagger
from ninja import errors as ninja_errors
from ninja.security.base import AuthBase

from . import api_schema as out
from . import choices as C
from . import live, metrics, services
from .api_schema import TOO_BIG, BadBody, BodyParser, form_schema, plain_schema
from .forms import DirectorForm, HostActionForm, RealServerForm, VirtualServiceForm
from .models import ApiToken, ApplyJob, Director, Event, RealServer, VirtualService

OPERATE = "clusters.operate_realserver"
EVENTS_DEFAULT = 100
EVENTS_MAX = 500


# -- errors ------------------------------------------------------------------------------------------------
def error(status: int, message: str, **headers) -> JsonResponse:
    return JsonResponse({"error": message}, status=status, headers=headers)


def invalid(errors: dict, status: int = 400) -> JsonResponse:
    """400 naming the fields at fault, in the shape Django forms use: {"errors": {"weight": ["..."]}}."""
    return JsonResponse({"errors": {k: [str(m) for m in v] for k, v in errors.items()}}, status=status)


class ApiError(Exception):
    """An answer other than the operation's own: {"error": message} with this status (and headers)."""

    def __init__(self, status: int, message: str, **headers):
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers


def unauthorized(message: str) -> ApiError:
    return ApiError(401, message, **{"WWW-Authenticate": 'Bearer realm="api"'})


# -- auth --------------------------------------------------------------------------------------------------
def bearer(request) -> str | None:
    """The secret of an ``Authorization: Bearer`` header, "" for another scheme, None without a header."""
    header = request.headers.get("Authorization")
    if header is None:
        return None
    scheme, _, secret = header.partition(" ")
    return secret.strip() if scheme.lower() == "bearer" else ""


def authenticate(request) -> ApiToken:
    """Set request.user from the bearer token; ApiError 401 when there is none or it does not work."""
    secret = bearer(request)
    if secret is None:
        raise unauthorized("Send Authorization: Bearer <token> (manage.py create_token).")
    token = ApiToken.authenticate(secret)
    if token is None:
        raise unauthorized("Invalid or revoked token.")
    request.user = token.user
    return token


class BearerToken(AuthBase):
    """django-ninja auth of one operation: a live token whose user holds `perm` (401 / 403 otherwise).

    One class for every operation, so the OpenAPI document has one security scheme, "BearerToken".
    """

    openapi_type = "http"
    openapi_scheme = "bearer"
    openapi_description = "A token from `manage.py create_token <user>`; it acts with that user's role."

    def __init__(self, perm: str):
        self.perm = perm
        super().__init__()

    def __call__(self, request) -> ApiToken:
        token = authenticate(request)
        if not request.user.has_perm(self.perm):
            raise ApiError(403, f"{request.user} lacks the permission {self.perm}.")
        return token


ACTION_OF = {"GET": "view", "POST": "add", "PATCH": "change", "DELETE": "delete"}


def may(model: str, method: str) -> BearerToken:
    """The model's permission for a method: GET view, POST add, PATCH change, DELETE delete."""
    return BearerToken(f"clusters.{ACTION_OF[method]}_{model}")


# -- the API object, its error answers and its URLs --------------------------------------------------------
class Docs(Swagger):
    """Swagger UI from django-ninja's bundled static files (its ninja/swagger.html keeps the settings in a JSON
    script element read by swagger-ui-init.js: no inline script for the CSP to refuse, no CDN)."""

    def get_openapi_url(self, api, path_params) -> str:
        return reverse("api_openapi")


class Api(NinjaAPI):
    """The URLs are mounted flat (no namespace), so `reverse("api_directors")` works as it always did."""

    def get_root_path(self, path_params) -> str:
        return reverse("api_root")

    def urlpatterns(self) -> list[URLPattern]:
        """Every operation's URL (JSON 405, no login redirect), then a JSON 404 for anything else."""
        names = {"openapi-json": "api_openapi", "openapi-view": "api_docs"}
        patterns = [p for p in self.urls[0] if p.name != "api-root"]
        for p in patterns:
            p.name = names.get(p.name, p.name)
            p.callback = json_405(p.callback)
        return [*patterns, re_path(r"", not_found, name="api_root")]


api = Api(
    title="Ultra Monkey Web API",
    version="1",
    description="Directors, virtual services, real servers, one-click operations and events of an LVS "
    'control plane. Errors are JSON: `{"error": …}`, or `{"errors": {field: [messages]}}` for a refused '
    "body or filter (the web forms' messages).",
    urls_namespace="api",
    docs=Docs(),
    parser=BodyParser(),
)


@api.exception_handler(ApiError)
def _api_error(request, exc: ApiError):
    return error(exc.status, exc.message, **exc.headers)


@api.exception_handler(Http404)
def _not_found(request, exc):
    return error(404, str(exc) or "Not found.")


@api.exception_handler(PermissionDenied)
def _denied(request, exc):  # a finer permission than the operation's (an external check)
    return error(403, str(exc) or "Permission denied.")


@api.exception_handler(RequestDataTooBig)
def _too_big(request, exc):
    return invalid({"body": [TOO_BIG]}, 413)


@api.exception_handler(ninja_errors.HttpError)
def _http_error(request, exc):
    """django-ninja wraps what the body parser raised; unwrap our BadBody to name the body."""
    cause = exc.__cause__
    if isinstance(cause, BadBody):
        return invalid(cause.errors, cause.status)
    if isinstance(cause, RequestDataTooBig):
        return invalid({"body": [TOO_BIG]}, 413)
    return error(exc.status_code, str(exc))


@api.exception_handler(ninja_errors.ValidationError)
def _schema_error(request, exc):
    """A body or query refused by its schema: 400 {"errors": {field: [message]}}, like a form's."""
    errors: dict[str, list[str]] = {}
    for e in exc.errors:
        source, *rest = [str(x) for x in e.get("loc", ())] or ["body"]
        # ("body", "payload", "port", ...) or ("query", "limit"): "payload" is our parameter, not a field
        rest = rest[1:] if source == "body" else rest
        field = rest[0] if rest else "body"
        errors.setdefault(field[:100], []).append(e.get("msg", "Invalid."))
    return invalid(errors)


def json_405(view):
    """django-ninja answers a wrong method with an empty text/html 405; scripts parse every answer."""

    @wraps(view)
    def inner(request, *args, **kwargs):
        response = view(request, *args, **kwargs)
        if response.status_code == 405 and not response.get("Content-Type", "").startswith(
            "application/json"
        ):
            allowed = sorted(m.strip() for m in response.get("Allow", "").split(",") if m.strip())
            return error(405, f"Use {' or '.join(allowed)}.", Allow=", ".join(allowed))
        return response

    return login_not_required(csrf_exempt(inner))


@login_not_required
@csrf_exempt
def not_found(request, *args, **kwargs):
    """Any other URL under /api/v1/: a JSON 404 (scripts parse every answer), listing where to look."""
    return error(404, f"No such endpoint: {request.path}. See /api/v1/docs or /api/v1/openapi.json.")


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


# -- writes: the typed body, then the form of the web page -----------------------------------------------------
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


def bound_form(form_class, data: dict, instance=None, fixed=None, initial=None):
    """The page's ModelForm bound to what a browser would post: the current (or default) values, the body on top.

    The schema already refused keys the form does not have and those the URL decides (`fixed`).
    """
    fixed = fixed or {}
    unbound = form_class(instance=instance, initial={**(initial or {}), **fixed})
    current = {name: unbound[name].value() for name in unbound.fields}
    merged = posted({**current, **data, **fixed})
    return form_class(merged, instance=instance, initial={**(initial or {}), **fixed})


def write(request, body, form_class, render, status: int, instance=None, fixed=None, initial=None):
    """Validate with the page's form, then services.save (Event + apply job), answering like the reads."""
    form = bound_form(form_class, body.given() if body is not None else {}, instance, fixed, initial)
    if not form.is_valid():
        return invalid(form.errors)
    obj = services.save(form.instance, user=request.user, changed=form.changed_data)
    return JsonResponse(render(obj), status=status)


DirectorIn = form_schema("DirectorIn", DirectorForm, doc="A director; on PATCH only the fields named change.")
ServiceIn = form_schema(
    "VirtualServiceIn",
    VirtualServiceForm,
    exclude=("director",),
    doc="A virtual service; its director is the one in the URL. On PATCH only the fields named change.",
)
RealServerIn = form_schema(
    "RealServerIn",
    RealServerForm,
    exclude=("service",),
    doc="A real server; its service is the one in the URL (port: the service's when left out).",
)
ActionIn = plain_schema(
    "ServerActionIn",
    {
        "then": forms.ChoiceField(
            choices=C.AfterDrain.choices, required=False, help_text="drain: what to do once drained"
        ),
        "weight": services.WEIGHT_FIELD,
    },
    doc="drain takes `then`, weight takes `weight`; maintenance and enable take nothing.",
)


# -- directors ---------------------------------------------------------------------------------------------
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


def _reread_director(d: Director) -> dict:
    """A changed object answered as its GET shows it (read again: live numbers, prefetched children)."""
    return director_detail_json(_director(d.pk))


def _reread_service(vs: VirtualService) -> dict:
    return service_detail_json(_service(vs.pk))


def _reread_server(s: RealServer) -> dict:
    return server_detail_json(_server(s.pk))


def _director(pk) -> Director:
    return get_object_or_404(Director.objects.prefetch_related("services__reals"), pk=pk)


def _service(pk) -> VirtualService:
    return get_object_or_404(VirtualService.objects.select_related("director"), pk=pk)


def _server(pk) -> RealServer:
    return get_object_or_404(RealServer.objects.select_related("service__director"), pk=pk)


DIRECTORS, SERVICES, SERVERS, OPERATIONS = (
    ["directors"],
    ["virtual services"],
    ["real servers"],
    ["operations"],
)


@api.get(
    "/directors",
    auth=may("director", "GET"),
    url_name="api_directors",
    response={200: list[out.DirectorInList], **out.REFUSALS},
    tags=DIRECTORS,
)
def directors(request):
    """Every director with its agent's state and the ids of its virtual services."""
    rows = Director.objects.prefetch_related("services")
    return JsonResponse(
        [{**director_json(d), "services": [vs.pk for vs in d.services.all()]} for d in rows], safe=False
    )


@api.post(
    "/directors",
    auth=may("director", "POST"),
    url_name="api_director_create",
    response={201: out.DirectorDetail, **out.BODY_REFUSALS},
    tags=DIRECTORS,
)
def create_director(request, payload: DirectorIn = None):
    """Create a director (201, read back as GET /directors/{pk} shows it)."""
    return write(request, payload, DirectorForm, _reread_director, 201)


@api.get(
    "/directors/{id:pk}",
    auth=may("director", "GET"),
    url_name="api_director",
    response={200: out.DirectorDetail, **out.REFUSALS},
    tags=DIRECTORS,
)
def director(request, pk: int):
    """One director with its services' health counts and the drift its agent reports."""
    return JsonResponse(director_detail_json(_director(pk)))


@api.patch(
    "/directors/{id:pk}",
    auth=may("director", "PATCH"),
    url_name="api_director_change",
    response={200: out.DirectorDetail, **out.BODY_REFUSALS},
    tags=DIRECTORS,
)
def change_director(request, pk: int, payload: DirectorIn = None):
    """Change the fields named; the rest stay."""
    d = _director(pk)
    return write(request, payload, DirectorForm, _reread_director, 200, d)


@api.delete(
    "/directors/{id:pk}",
    auth=may("director", "DELETE"),
    url_name="api_director_delete",
    response={204: None, **out.REFUSALS},
    tags=DIRECTORS,
)
def delete_director(request, pk: int):
    """Decommission: the agent is told to remove everything it built, then the director is deleted (204)."""
    services.decommission(_director(pk), user=request.user)
    return HttpResponse(status=204)


# -- virtual services --------------------------------------------------------------------------------------
@api.post(
    "/directors/{id:pk}/services",
    auth=may("virtualservice", "POST"),
    url_name="api_director_services",
    response={201: out.ServiceDetail, **out.BODY_REFUSALS},
    tags=SERVICES,
)
def create_service(request, pk: int, payload: ServiceIn = None):
    """Create a virtual service on this director (201, with its real servers: none yet)."""
    d = get_object_or_404(Director, pk=pk)
    return write(request, payload, VirtualServiceForm, _reread_service, 201, fixed={"director": d.pk})


@api.get(
    "/services/{id:pk}",
    auth=may("virtualservice", "GET"),
    url_name="api_service",
    response={200: out.ServiceDetail, **out.REFUSALS},
    tags=SERVICES,
)
def service(request, pk: int):
    """One virtual service with each real server's health and the kernel's live numbers."""
    return JsonResponse(service_detail_json(_service(pk)))


@api.patch(
    "/services/{id:pk}",
    auth=may("virtualservice", "PATCH"),
    url_name="api_service_change",
    response={200: out.ServiceDetail, **out.BODY_REFUSALS},
    tags=SERVICES,
)
def change_service(request, pk: int, payload: ServiceIn = None):
    """Change the fields named; the rest stay."""
    vs = _service(pk)
    fixed = {"director": vs.director_id}
    return write(request, payload, VirtualServiceForm, _reread_service, 200, vs, fixed=fixed)


@api.delete(
    "/services/{id:pk}",
    auth=may("virtualservice", "DELETE"),
    url_name="api_service_delete",
    response={204: None, **out.REFUSALS},
    tags=SERVICES,
)
def delete_service(request, pk: int):
    vs = _service(pk)
    services.delete(vs, vs.director, user=request.user)
    return HttpResponse(status=204)


# -- real servers ------------------------------------------------------------------------------------------
@api.post(
    "/services/{id:pk}/reals",
    auth=may("realserver", "POST"),
    url_name="api_service_reals",
    response={201: out.Real, **out.BODY_REFUSALS},
    tags=SERVERS,
)
def create_server(request, pk: int, payload: RealServerIn = None):
    """Add a real server to this virtual service (201)."""
    vs = _service(pk)
    fixed, initial = {"service": vs.pk}, {"port": vs.port or 0}
    return write(request, payload, RealServerForm, _reread_server, 201, fixed=fixed, initial=initial)


@api.patch(
    "/servers/{id:pk}",
    auth=may("realserver", "PATCH"),
    url_name="api_server",
    response={200: out.Real, **out.BODY_REFUSALS},
    tags=SERVERS,
)
def change_server(request, pk: int, payload: RealServerIn = None):
    """Change the fields named; the rest stay."""
    s = _server(pk)
    return write(request, payload, RealServerForm, _reread_server, 200, s, fixed={"service": s.service_id})


@api.delete(
    "/servers/{id:pk}",
    auth=may("realserver", "DELETE"),
    url_name="api_server_delete",
    response={204: None, **out.REFUSALS},
    tags=SERVERS,
)
def delete_server(request, pk: int):
    s = _server(pk)
    services.delete(s, s.service.director, user=request.user)
    return HttpResponse(status=204)


# -- jobs and events ---------------------------------------------------------------------------------------
@api.get(
    "/jobs/{id:pk}",
    auth=BearerToken("clusters.view_applyjob"),
    url_name="api_job",
    response={200: out.Job, **out.REFUSALS},
    tags=OPERATIONS,
)
def job(request, pk: int):
    """An apply job: pending until the director's agent reports the desired state applied (or failed)."""
    return JsonResponse(job_json(get_object_or_404(ApplyJob, pk=pk)))


class EventQuery(forms.Form):
    """The filters of /api/v1/events; unlike the logs page, a bad one is a 400, not silently ignored."""

    director = forms.CharField(required=False, help_text="id or name")
    kind = forms.ChoiceField(choices=[("", "")] + list(C.EventKind.choices), required=False)
    after_id = forms.IntegerField(
        required=False, min_value=0, max_value=2**63 - 1, help_text="only events with a larger id"
    )
    limit = forms.IntegerField(
        required=False, min_value=1, max_value=EVENTS_MAX, help_text=f"at most this many ({EVENTS_DEFAULT})"
    )

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


EventFilters = form_schema("EventFilters", EventQuery)


@api.get(
    "/events",
    auth=BearerToken("clusters.view_event"),
    url_name="api_events",
    response={200: list[out.EventOut], 400: out.Errors, 401: out.Error, 403: out.Error},
    tags=OPERATIONS,
)
def events(request, filters: Query[EventFilters]):
    """The event log, newest first: every change (with its user), agent reports, health changes."""
    query = EventQuery(posted(filters.given()))
    if not query.is_valid():
        return invalid(query.errors)
    return JsonResponse([event_json(e) for e in query.events()], safe=False)


# -- operations --------------------------------------------------------------------------------------------
@api.post(
    "/servers/{id:pk}/{server_action:action}",
    auth=BearerToken(OPERATE),
    url_name="api_server_action",
    response={202: out.ActionDone, **out.BODY_REFUSALS},
    tags=OPERATIONS,
)
def server_action(
    request, pk: int, action: Literal["drain", "maintenance", "enable", "weight"], payload: ActionIn = None
):
    """drain / maintenance / enable / weight on one real server: 202 with the apply job to poll."""
    server = _server(pk)
    try:
        job = services.server_action(server, action, posted(payload.given() if payload else {}), request.user)
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


@api.post(
    "/directors/{id:pk}/hosts/{address}/{host_action:action}",
    auth=BearerToken(OPERATE),
    url_name="api_host_action",
    response={202: out.HostActionDone, 400: out.Errors, **out.REFUSALS},
    tags=OPERATIONS,
)
def host_action(request, pk: int, address: str, action: Literal["drain", "maintenance", "enable"]):
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
        try:
            BearerToken("clusters.view_director")(request)
        except ApiError as exc:
            return _api_error(request, exc)
    body, content_type = metrics.exposition(request.headers.get("Accept", ""))
    return HttpResponse(body, content_type=content_type)
