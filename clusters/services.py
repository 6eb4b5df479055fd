"""What users and importers do to the model: every change goes through here.

Each operation changes the database, records who did it as an Event, bumps the director's desired revision
and pushes the whole desired state to the director's queue once the transaction commits, so the kernel and
the database never disagree about what was asked for. The pages, the API, the importer and the Django admin
all call these functions; forms only validate, models only describe and check themselves.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Iterable, Mapping

from django import forms
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import models, transaction
from django.db.models import F
from django.utils import timezone

from director.keys import dest_key_for

from . import agents
from . import choices as C
from .desired import desired_document
from .models import PAIR_SETTINGS, ApplyJob, Director, Event, RealServer, VirtualService

log = logging.getLogger(__name__)


def record(
    kind: str,
    message: str,
    *,
    user=None,
    director=None,
    service=None,
    server=None,
    level: str = C.Level.INFO,
    data: dict | None = None,
) -> Event:
    """Append one line to the audit/log stream."""
    if server is not None and service is None:
        service = server.service
    if service is not None and director is None:
        director = service.director
    return Event.objects.create(
        kind=kind,
        message=message,
        level=level,
        director=director,
        service=service,
        server=server,
        user=user if getattr(user, "is_authenticated", False) else None,
        data=data or {},
    )


def _give_pair_secrets(director: Director) -> None:
    """A pair's desired state carries a shared secret: a director saved before secrets existed (or written by
    a bulk update) gets its own now, before a desired state names it."""
    if not director.ha_address:
        return  # not one of a pair: its desired state has no failover part
    for d in (director, director.pair_peer()):
        if d is not None and not d.ha_secret:
            d.save(update_fields=["ha_secret"])  # Director.save() generates it


@transaction.atomic
def push(director: Director, *, user=None, reason: str = "", server: RealServer | None = None) -> ApplyJob:
    """Bump the desired revision and send the new desired state to the director after commit.

    The transaction starts with the write (see `save` for why that matters on SQLite)."""
    Director.objects.filter(pk=director.pk).update(desired_revision=F("desired_revision") + 1)
    _give_pair_secrets(director)
    director.refresh_from_db(fields=["desired_revision"])
    job = ApplyJob.objects.create(
        director=director,
        server=server,
        revision=director.desired_revision,
        user=user if getattr(user, "is_authenticated", False) else None,
        reason=reason,
    )
    desired = desired_document(director)

    def _send() -> None:
        try:
            agents.send_desired(director.queue, desired, job.pk)
        except Exception as exc:  # broker down: the job shows the error, the next push carries everything
            log.warning("could not queue apply for %s: %s", director, exc)
            ApplyJob.objects.filter(pk=job.pk).update(
                status=C.JobStatus.FAILED, error=f"broker unreachable: {exc}", finished=timezone.now()
            )

    transaction.on_commit(_send)
    return job


def director_of(obj: Director | VirtualService | RealServer) -> Director:
    """The director whose desired state `obj` is part of."""
    if isinstance(obj, Director):
        return obj
    if isinstance(obj, VirtualService):
        return obj.director
    return obj.service.director


PAIR_FIELDS = frozenset({"peer", "ha_address", "ha_priority", *PAIR_SETTINGS})


EXTERNAL_CHECK_PERM = "clusters.change_external_check"


def external_check_change(vs: VirtualService) -> str:
    """The external command `vs` would newly set or change ("" if none): what needs EXTERNAL_CHECK_PERM."""
    wanted = vs.external_program if vs.checktype == C.CheckType.EXTERNAL or vs.external_program else ""
    if not wanted:
        return ""
    old = (
        VirtualService.objects.filter(pk=vs.pk).values("checktype", "external_program").first()
        if vs.pk
        else None
    )
    if old and old["external_program"] == vs.external_program and old["checktype"] == vs.checktype:
        return ""
    return wanted


def check_external_permission(vs: VirtualService, user) -> None:
    """An external check runs a program as root on the director: creating or changing one needs its own
    permission (not every admin has it). `user` None is the system itself (a management command)."""
    command = external_check_change(vs)
    if command and user is not None and not user.has_perm(EXTERNAL_CHECK_PERM):
        raise PermissionDenied(
            f"{user} lacks the permission {EXTERNAL_CHECK_PERM} to set the external check command {command!r}."
        )


def save(obj: models.Model, *, user=None, changed: Iterable[str] | None = None):
    """Create or change a director, virtual service or real server: validated, recorded, pushed.

    `changed` names the fields the caller changed (a form's `changed_data`), for the Event and to tell whether
    a director's pair partner needs the change too; None counts every field as changed. The object is
    validated again here (`full_clean`), so no caller can store what the pages would refuse.

    Validation and the other reads happen before the transaction, which starts with the write: on SQLite a
    transaction that has read cannot wait for another writer (the ingest, every second) and fails at once
    with "database is locked", where one that writes first waits its turn.
    """
    created = obj.pk is None
    changed = sorted(changed) if changed is not None else None
    obj.full_clean()
    if isinstance(obj, VirtualService):
        check_external_permission(obj, user)
    pairing = isinstance(obj, Director) and (changed is None or bool(PAIR_FIELDS & set(changed)))
    old_partner = Director.objects.get(pk=obj.pk).pair_peer() if pairing and not created else None
    director = director_of(obj)
    with transaction.atomic():
        obj.save()
        if pairing:
            _carry_pair_settings(obj)
        verb = "created" if created else "changed"
        what = f"{obj._meta.verbose_name} {obj}"
        detail = "" if created or not changed else f" ({', '.join(changed)})"
        record(
            C.EventKind.USER,
            f"{verb} {what}{detail}",
            user=user,
            director=director,
            service=obj if isinstance(obj, VirtualService) else None,
            server=obj if isinstance(obj, RealServer) else None,
            data={"changed": changed or []},
        )
        push(director, user=user, reason=f"{verb} {what}")
        if pairing:  # the partner's desired state names us too, and so did a former partner's
            for other in {d for d in (obj.pair_peer(), old_partner) if d is not None and d.pk != obj.pk}:
                push(other, user=user, reason=f"failover partner {obj} changed")
    return obj


def _carry_pair_settings(director: Director) -> None:
    """The pair's protocol settings are one setting: what this side saved, its partner gets too (before
    either desired state is built: the lower-id side's values are the ones sent to both)."""
    partner = director.pair_peer()
    if partner is not None:
        ours = {f: getattr(director, f) for f in PAIR_SETTINGS}
        Director.objects.filter(pk=partner.pk).exclude(**ours).update(**ours)


def remove(obj: Director | VirtualService | RealServer, *, user=None) -> str:
    """Delete anything the pages can delete: a director is decommissioned, the rest deleted and pushed."""
    if isinstance(obj, Director):
        decommission(obj, user=user)
        return f"director {obj}"
    return delete(obj, director_of(obj), user=user)


@transaction.atomic
def delete(obj, director: Director | None, *, user=None) -> str:
    """Delete a virtual service or real server, record it and push the director's new state; returns what."""
    what = f"{obj._meta.verbose_name} {obj}"
    record(C.EventKind.USER, f"deleted {what}", user=user, director=director)
    obj.delete()
    if director is not None:
        push(director, user=user, reason=f"deleted {what}")
    return what


@transaction.atomic
def decommission(director: Director, *, user=None) -> None:
    """Delete a director and have its agent take out everything we put in its kernel.

    The agent gets a last desired state with no services, VIPs or masquerade (a newer revision, so it is not
    ignored as stale) and reconciles to it: services are deleted one by one, nothing else on the box is
    touched. Without this the agent would keep serving a configuration nobody can see any more.
    """
    from director.desired import DesiredState

    last = DesiredState(
        director=director.name,
        revision=director.desired_revision + 1,
        wan_interface=director.wan_interface,
        lan_interface=director.lan_interface,
        ip_forward=False,  # False = leave the sysctl as it is
    ).to_dict()
    record(
        C.EventKind.USER,
        f"deleted director {director}; its agent removes our services, VIPs and masquerade",
        user=user,
        data={"director": director.name, "revision": last["revision"]},
    )
    director.delete()  # the instance keeps its name and queue for the send below

    def _send() -> None:
        try:
            agents.send_desired(director.queue, last, None)
            agents.mark_decommissioned(last["director"], time.time())
        except Exception as exc:  # broker down: say so; the agent keeps its table until told again
            record(C.EventKind.APPLY, f"could not tell {last['director']} to clear its kernel: {exc}",
                   level=C.Level.ERROR)  # fmt: skip

    transaction.on_commit(_send)


class CredentialsExist(Exception):
    """The director already has agent credentials and the caller did not ask to rotate them."""


def issue_credentials(director: Director, *, user=None, rotate: bool = False) -> str:
    """Make `director`'s Redis user with a new random password and return the password - the only time it
    exists outside the director: the database keeps its SHA-256 (enough to re-create the user, never to log
    in). `rotate` replaces existing credentials, and the old password stops working at once."""
    from director import acl

    if director.redis_password_sha256 and not rotate:
        raise CredentialsExist(
            f"{director.name} already has agent credentials; rotating replaces them (the old ones stop working)"
        )
    password = acl.new_password()
    digest = acl.password_hash(password)
    agents.set_director_user(director.name, digest)  # raises: nothing is stored if Redis refused
    Director.objects.filter(pk=director.pk).update(redis_password_sha256=digest)
    director.redis_password_sha256 = digest
    record(
        C.EventKind.USER,
        f"{'rotated' if rotate else 'issued'} the agent's Redis credentials ({acl.username(director.name)})",
        user=user,
        director=director,
        level=C.Level.WARNING if rotate else C.Level.INFO,
    )
    return password


RESYNC_AFTER = 30  # seconds an apply may stay unanswered before the desired state is sent again


def resync(director: Director, heartbeat: dict | None, now=None) -> ApplyJob | None:
    """Send the desired state again to a live agent that is behind it; None when nothing needs doing.

    A push can be lost: the broker was down when it was made (its job shows "failed"), or a queue was purged.
    The agent then runs an older revision for ever, though it is up and reporting. When its heartbeat says it
    is behind and no apply younger than RESYNC_AFTER is still on its way, push again - once per period, and
    never to an agent that is not reporting (it gets everything when it comes back anyway).
    """
    now = now or timezone.now()
    if heartbeat is None or director.agent_status(now) != C.AgentState.UP:
        return None
    reported = int(heartbeat.get("revision") or 0)
    if reported >= director.desired_revision:
        return None
    recent = director.jobs.filter(created__gte=now - dt.timedelta(seconds=RESYNC_AFTER))
    if (
        recent.filter(status=C.JobStatus.PENDING).exists()
        or recent.filter(reason__startswith="resync").exists()
    ):
        return None
    record(
        C.EventKind.APPLY,
        f"{director} runs revision {reported}, desired is {director.desired_revision}: sending it again",
        director=director,
        level=C.Level.WARNING,
    )
    return push(director, reason=f"resync: agent at r{reported}")


def _server_action(server: RealServer, user, verb: str, **changes) -> ApplyJob:
    with transaction.atomic():
        RealServer.objects.filter(pk=server.pk).update(**changes)
        server.refresh_from_db()
        record(
            C.EventKind.USER,
            f"{verb} {server} on {server.service.label}",
            user=user,
            server=server,
            data={"action": verb, **{k: v for k, v in changes.items()}},
        )
        return push(server.service.director, user=user, reason=f"{verb} {server}", server=server)


def drain(server: RealServer, user=None, then: str = C.AfterDrain.NOTHING) -> ApplyJob:
    """Weight 0 in the kernel: established connections continue, new ones go elsewhere."""
    return _server_action(server, user, "drain", admin_state=C.AdminState.DRAINING, after_drain=then)


def maintenance(server: RealServer, user=None) -> ApplyJob:
    """Out of the kernel table entirely (existing connections are cut by the kernel's expiry)."""
    return _server_action(server, user, "maintenance", admin_state=C.AdminState.MAINTENANCE, after_drain="")


def enable(server: RealServer, user=None) -> ApplyJob:
    """Back in rotation at its configured weight (if its health check agrees)."""
    return _server_action(server, user, "enable", admin_state=C.AdminState.ACTIVE, after_drain="")


def set_weight(server: RealServer, weight: int, user=None) -> ApplyJob:
    if not 0 <= int(weight) <= 65535:
        raise ValueError("Weight must be between 0 and 65535.")
    return _server_action(server, user, "weight", weight=int(weight))


SERVER_ACTIONS = ("drain", "maintenance", "enable", "weight")
WEIGHT_ERROR = "Weight must be a whole number from 0 to 65535."
WEIGHT_FIELD = forms.IntegerField(min_value=0, max_value=65535, help_text="weight: the new weight")


def server_action(server: RealServer, action: str, params: Mapping, user=None) -> ApplyJob:
    """One operation on one real server, as a row's button or `POST /api/v1/servers/<id>/<action>` asks.

    `params` is what came with the request (`then` for drain, `weight` for weight). A bad value raises
    ValidationError naming the field before anything is written; an unknown action is a ValueError (the
    URLs only route the four).
    """
    if action == "drain":
        then = params.get("then") or ""
        if then not in C.AfterDrain.values:
            choices = ", ".join(repr(v) for v in C.AfterDrain.values)
            raise ValidationError({"then": f"Choose one of: {choices}."})
        return drain(server, user, then=then)
    if action == "maintenance":
        return maintenance(server, user)
    if action == "enable":
        return enable(server, user)
    if action == "weight":
        try:
            weight = WEIGHT_FIELD.clean(params.get("weight"))
        except ValidationError:
            raise ValidationError({"weight": WEIGHT_ERROR}) from None
        return set_weight(server, weight, user)
    raise ValueError(f"unknown real-server action {action!r}; known: {', '.join(SERVER_ACTIONS)}")


HOST_ACTIONS = {
    "drain": {"admin_state": C.AdminState.DRAINING},
    "maintenance": {"admin_state": C.AdminState.MAINTENANCE, "after_drain": ""},
    "enable": {"admin_state": C.AdminState.ACTIVE, "after_drain": ""},
}


def host_action(address: str, action: str, user=None, director: Director | None = None) -> list[ApplyJob]:
    """Drain / maintenance / enable one host in every virtual service it serves (one push per director)."""
    changes = HOST_ACTIONS[action]
    servers = RealServer.objects.filter(address=address).select_related("service__director")
    if director is not None:
        servers = servers.filter(service__director=director)
    jobs = []
    with transaction.atomic():
        directors = {s.service.director_id: s.service.director for s in servers}
        servers.update(**changes)
        for d in directors.values():
            record(
                C.EventKind.USER,
                f"{action} host {address} on every virtual service of {d}",
                user=user,
                director=d,
                data={"action": action, "host": address},
            )
            jobs.append(push(d, user=user, reason=f"{action} host {address}"))
    return jobs


def finish_drains(snapshot_by_key: dict, director: Director) -> int:
    """Move drained servers on once the kernel shows no connections left (called by the central worker).

    `snapshot_by_key` maps (service_key, real_key) -> dest stats dict with active/inactive/persistent.
    """
    moved = 0
    for server in (
        RealServer.objects.filter(service__director=director, admin_state=C.AdminState.DRAINING)
        .exclude(after_drain="")
        .select_related("service")
    ):
        stats = snapshot_by_key.get(dest_key_for(server))
        if stats is None:
            continue
        if stats.get("active", 0) or stats.get("inactive", 0) or stats.get("persistent", 0):
            continue
        if server.after_drain == C.AfterDrain.MAINTENANCE:
            # conditional update: a user who enabled it meanwhile wins
            n = RealServer.objects.filter(pk=server.pk, admin_state=C.AdminState.DRAINING).update(
                admin_state=C.AdminState.MAINTENANCE, after_drain=""
            )
            if n:
                record(C.EventKind.APPLY, f"{server} drained: now in maintenance", server=server)
                moved += 1
        elif server.after_drain == C.AfterDrain.REMOVE:
            record(C.EventKind.APPLY, f"{server} drained: removed from {server.service.label}", server=server)
            RealServer.objects.filter(pk=server.pk, admin_state=C.AdminState.DRAINING).delete()
            moved += 1
    if moved:
        push(director, reason="drain finished")
    return moved
