"""Dashboard views: thin; logic lives in services.py (writes) and live.py (live reads).

One view serves a page and its live fragment: with HX-Request the same view renders only the
`{% partialdef %}` the page polls. A poll for an object that was deleted gets HTTP 286, which tells htmx to
stop polling, with a short note to show in place of the stale numbers.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import permission_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.html import format_html
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import HttpResponseStopPolling

from . import choices as C
from . import live, services
from .forms import (
    ConnFilterForm,
    DirectorForm,
    HostActionForm,
    LogFilterForm,
    RealServerForm,
    VirtualServiceForm,
)
from .models import ApplyJob, Director, RealServer, VirtualService

OPERATE = "clusters.operate_realserver"
LOG_PAGE = 100
LOG_POLL_MAX = 200


def _template(request, template: str, partial: str) -> str:
    return f"{template}#{partial}" if request.htmx else template


def _gone(request, message: str):
    """Stop an htmx poll (286) with a note in place of the fragment; a plain request is a 404."""
    if request.htmx:
        return HttpResponseStopPolling(format_html('<p class="gone" role="status">{}</p>', message))
    raise Http404(message)


def _require_operate(request) -> None:
    if not request.user.has_perm(OPERATE):
        raise PermissionDenied("You may look, not operate.")


# -- live pages --------------------------------------------------------------------------------------------
@require_GET
def overview(request):
    summaries = live.overview_summaries()
    poll = live.poll_every(
        live=any(s.snapshot for s in summaries),
        pending=ApplyJob.objects.filter(status=C.JobStatus.PENDING).exists(),
    )
    context = {"summaries": summaries, "poll": poll}
    return render(request, _template(request, "clusters/overview.html", "directors"), context)


def _director_live(request, pk: int):
    """The director page, or its live fragment for htmx (polls and host-wide actions alike).

    The services table and the hosts table are paged and filtered by the query string (`page`, `q`;
    `hosts`, `host`), so the page, its poll and a host-wide action all render the same slice."""
    director = Director.objects.filter(pk=pk).first()
    if director is None:
        return _gone(request, "This director no longer exists.")
    summary = live.summarize(director, services=live.service_refs([director])[director.pk])
    query = request.GET  # a host-wide action posts to a URL that carries the page's query string
    text, prefix = query.get("q", "")[:100], query.get("host", "")[:45]
    jobs = list(director.jobs.select_related("user", "server")[:8])
    context = {
        "director": director,
        "summary": summary,
        "q": text,
        "host_prefix": prefix,
        "services_page": live.page_of(
            live.filter_services(summary.services, text), query.get("page"), live.SERVICES_PAGE
        ),
        "hosts": live.hosts(director, query.get("hosts"), prefix),
        "jobs": jobs,
        "poll": live.poll_every(
            live=summary.snapshot is not None, pending=any(j.status == C.JobStatus.PENDING for j in jobs)
        ),
    }
    return render(request, _template(request, "clusters/director_detail.html", "live"), context)


@require_GET
def director_detail(request, pk):
    return _director_live(request, pk)


@require_POST
def host_action(request, pk):
    """Drain / maintenance / enable one address in every virtual service of this director."""
    _require_operate(request)
    director = get_object_or_404(Director, pk=pk)
    form = HostActionForm(request.POST)
    if form.is_valid():
        address, action = form.cleaned_data["address"], form.cleaned_data["action"]
        jobs = services.host_action(address, action, user=request.user, director=director)
        if jobs:
            messages.success(request, f"{action} {address}: revision {jobs[0].revision} sent to {director}.")
        else:
            messages.warning(request, f"{address} is not a real server of {director}.")
    else:
        messages.error(request, "Choose a real-server address and an action.")
    if request.htmx:
        return _director_live(request, pk)
    return redirect(director)


@require_GET
def service_detail(request, pk):
    """The service page; its real servers are paged (`?page=`), the poll refreshes the page shown."""
    service = live.with_counts(VirtualService.objects.select_related("director")).filter(pk=pk).first()
    if service is None:
        return _gone(request, "This virtual service no longer exists.")
    director = live.refresh_last_seen(service.director)
    page = live.page_of(service.reals.all(), request.GET.get("page"), live.REALS_PAGE)
    summary, rows = live.service_live(service, page.object_list)
    context = {
        "service": service,
        "director": director,
        "status": director.agent_status(),
        "summary": summary,
        "rows": rows,
        "page": page,
        "poll": live.poll_every(
            live=summary.live, pending=any(r.job and r.job.status == C.JobStatus.PENDING for r in rows)
        ),
    }
    return render(request, _template(request, "clusters/service_detail.html", "reals"), context)


@require_POST
def server_action(request, pk, action):
    """One click on a real-server row: services.server_action does it, the row comes back."""
    _require_operate(request)
    if action not in services.SERVER_ACTIONS:
        raise Http404("no such action")
    server = get_object_or_404(RealServer.objects.select_related("service__director"), pk=pk)
    error = ""
    try:
        services.server_action(server, action, request.POST, request.user)
    except ValidationError as exc:
        error = " ".join(exc.messages)
    if not request.htmx:
        return redirect(server)
    server.refresh_from_db()
    row = live.real_rows(server.service, [server])[0]
    return render(
        request,
        "clusters/service_detail.html#real_row",
        {"row": row, "service": server.service, "row_error": error},
    )


@require_GET
def job_status(request, pk):
    """The badge of one apply job; polling stops once the agent has answered (or the job is gone)."""
    job = ApplyJob.objects.filter(pk=pk).first()
    if job is None:
        return HttpResponseStopPolling("")
    html = render_to_string("clusters/_job.html", {"job": job}, request)
    if job.status == C.JobStatus.PENDING:
        return HttpResponse(html)
    return HttpResponseStopPolling(html)


@require_GET
def connections(request, pk):
    """The live connection table: filters in the URL, the page polls its own URL every 2 s (app.js pauses
    that while the tab is hidden, while a filter is being typed, or when the user pressed Pause)."""
    director = get_object_or_404(Director, pk=pk)
    form = ConnFilterForm(director, request.GET or None)
    table = None
    if not form.is_bound or form.is_valid():
        filters = form.cleaned_data if form.is_bound else {}
        table = live.conntable(director, filters, limit=filters.get("limit") or live.CONNTABLE_PAGE)
    more_url = ""
    if table is not None and table.more:
        params = request.GET.copy()
        params["limit"] = table.limit + table.more
        more_url = f"{request.path}?{params.urlencode()}"
    context = {
        "director": director,
        "form": form,
        "table": table,
        "more_url": more_url,
        "base_query": _without(request.GET, "limit"),
        "poll_url": request.get_full_path(),
    }
    return render(request, _template(request, "clusters/connections.html", "table"), context)


def _without(query, *names) -> dict:
    """The current filters as a dict, minus `names` (for links that change one filter)."""
    return {k: v for k, v in query.items() if k not in names and v}


@require_GET
def logs(request):
    """Newest events first; a poll asks for ?after=<last id> and gets only the newer rows."""
    form = LogFilterForm(request.GET or None)
    events = form.filter(LogFilterForm.events())
    after = request.GET.get("after", "")
    if request.htmx and after.isascii() and after.isdigit() and len(after) <= 18:  # a 64-bit id at most
        rows = list(events.filter(id__gt=int(after))[:LOG_POLL_MAX])
        template = "clusters/logs.html#newer"
        last_id = rows[0].id if rows else int(after)
    else:
        rows = list(events[:LOG_PAGE])
        template = "clusters/logs.html"
        last_id = rows[0].id if rows else 0
    params = request.GET.copy()
    params["after"] = last_id
    context = {"form": form, "events": rows, "poll_url": f"{request.path}?{params.urlencode()}"}
    return render(request, template, context)


# -- create / edit / delete --------------------------------------------------------------------------------
def _edit(request, form_class, instance=None, initial=None, title="", cancel="/"):
    form = form_class(request.POST or None, instance=instance, initial=initial)
    if request.method == "POST" and form.is_valid():
        obj = services.save(form.instance, user=request.user, changed=form.changed_data)
        messages.success(request, f"Saved {obj._meta.verbose_name} {obj}; the director is being updated.")
        return redirect(obj)
    return render(request, "clusters/form.html", {"form": form, "title": title, "cancel": cancel})


def _delete(request, obj, director: Director | None, done: str, cancel: str, *, perform=None, note: str = ""):
    """Confirm on GET; on POST delete, record it and (unless the director itself went) push.

    `perform` replaces the default deletion (a director is decommissioned, not just deleted) and returns the
    message to show; `note` tells on the confirmation page what the deletion does to the kernel.
    """
    what = f"{obj._meta.verbose_name} {obj}"
    if request.method == "POST":
        if perform is None:
            services.delete(obj, director, user=request.user)
            done_message = f"Deleted {what}."
        else:
            done_message = perform()
        messages.success(request, done_message)
        return redirect(done)
    context = {"object": obj, "what": what, "cancel": cancel, "note": note}
    return render(request, "clusters/confirm_delete.html", context)


@permission_required("clusters.add_director", raise_exception=True)
def director_create(request):
    return _edit(request, DirectorForm, title="New director", cancel=reverse("overview"))


@permission_required("clusters.change_director", raise_exception=True)
def director_edit(request, pk):
    director = get_object_or_404(Director, pk=pk)
    return _edit(
        request, DirectorForm, director, title=f"Edit director {director}", cancel=director.get_absolute_url()
    )


@permission_required("clusters.change_director", raise_exception=True)
def director_credentials(request, pk):
    """Issue (or rotate) the agent's Redis credentials: confirm on GET; on POST show the password once.

    The answer is never cached (no-store) and the password is not kept: the database holds its hash."""
    director = get_object_or_404(Director, pk=pk)
    context = {"director": director, "rotate": bool(director.redis_password_sha256)}
    if request.method == "POST":
        try:
            context["password"] = services.issue_credentials(
                director, user=request.user, rotate=request.POST.get("rotate") == "1"
            )
        except services.CredentialsExist as exc:
            context["error"] = str(exc)
        except Exception as exc:  # Redis refused or is unreachable: nothing was stored
            context["error"] = f"cannot create the agent's Redis user: {exc}"
        context["username"] = f"director.{director.name}"
    response = render(request, "clusters/credentials.html", context)
    response["Cache-Control"] = "no-store"
    return response


@permission_required("clusters.delete_director", raise_exception=True)
def director_delete(request, pk):
    director = get_object_or_404(Director, pk=pk)

    def decommission() -> str:
        services.decommission(director, user=request.user)
        return f"Deleted director {director}; its agent clears what we put in its kernel."

    return _delete(
        request,
        director,
        None,
        reverse("overview"),
        director.get_absolute_url(),
        perform=decommission,
        note="Its agent removes every virtual service, VIP and masquerade rule we put in its kernel.",
    )


@permission_required("clusters.add_virtualservice", raise_exception=True)
def service_create(request, pk):
    director = get_object_or_404(Director, pk=pk)
    return _edit(
        request,
        VirtualServiceForm,
        initial={"director": director},
        title=f"New virtual service on {director}",
        cancel=director.get_absolute_url(),
    )


@permission_required("clusters.change_virtualservice", raise_exception=True)
def service_edit(request, pk):
    service = get_object_or_404(VirtualService.objects.select_related("director"), pk=pk)
    return _edit(
        request, VirtualServiceForm, service, title=f"Edit {service}", cancel=service.get_absolute_url()
    )


@permission_required("clusters.delete_virtualservice", raise_exception=True)
def service_delete(request, pk):
    service = get_object_or_404(VirtualService.objects.select_related("director"), pk=pk)
    director = service.director
    return _delete(request, service, director, director.get_absolute_url(), service.get_absolute_url())


@permission_required("clusters.add_realserver", raise_exception=True)
def server_create(request, pk):
    service = get_object_or_404(VirtualService.objects.select_related("director"), pk=pk)
    return _edit(
        request,
        RealServerForm,
        initial={"service": service, "port": service.port or 0},
        title=f"New real server in {service}",
        cancel=service.get_absolute_url(),
    )


@permission_required("clusters.change_realserver", raise_exception=True)
def server_edit(request, pk):
    server = get_object_or_404(RealServer.objects.select_related("service__director"), pk=pk)
    return _edit(
        request,
        RealServerForm,
        server,
        title=f"Edit real server {server} in {server.service}",
        cancel=server.get_absolute_url(),
    )


@permission_required("clusters.delete_realserver", raise_exception=True)
def server_delete(request, pk):
    server = get_object_or_404(RealServer.objects.select_related("service__director"), pk=pk)
    service = server.service
    return _delete(request, server, service.director, service.get_absolute_url(), server.get_absolute_url())
