"""Plan -> rows, all or nothing.

Every VirtualService and RealServer is built from the plan and validated first: the models' field validators
and clean() (what the forms run), and their unique constraints compared in memory, within the file and
against the director's current services (one query). Only when every row is valid is anything written, in
one transaction and in bulk, so a broken file never leaves half a configuration behind and a 20,000-server
file takes seconds, not minutes. A dry run (the preview) is the same validation without the write: it
reports exactly the errors the import would. After an import the change is recorded as an Event and pushed
to the director once, like any other edit. Limits: MAX_SERVICES and MAX_REALS per import (README)."""

from __future__ import annotations

from dataclasses import dataclass, field

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction

from clusters import choices as C
from clusters import services as ops
from clusters.models import Director, RealServer, VirtualService

from .plan import Message, Plan


@dataclass
class ApplyResult:
    plan: Plan
    created_services: list[VirtualService] = field(default_factory=list)
    created_reals: int = 0
    replaced: int = 0
    errors: list[Message] = field(default_factory=list)
    dry_run: bool = False

    @property
    def ok(self) -> bool:
        return not self.errors and self.plan.ok


def _messages(file: str, line: int, prefix: str, exc: ValidationError) -> list[Message]:
    out = []
    if hasattr(exc, "error_dict"):
        for name, errors in exc.message_dict.items():
            where = "" if name == "__all__" else f"{name}: "
            out.extend(Message(file, line, f"{prefix}{where}{text}") for text in errors)
    else:
        out.extend(Message(file, line, f"{prefix}{text}") for text in exc.messages)
    return out


# Documented limits of one import (README): beyond them the preview says so instead of tying up a worker.
MAX_SERVICES = 5_000
MAX_REALS = 25_000


def _too_big(plan: Plan) -> list[Message]:
    out = []
    if len(plan.services) > MAX_SERVICES:
        out.append(Message(plan.source, 0, f"{len(plan.services):,} virtual services: an import takes at most "
                           f"{MAX_SERVICES:,}; split the file"))  # fmt: skip
    if plan.real_count > MAX_REALS:
        out.append(Message(plan.source, 0, f"{plan.real_count:,} real servers: an import takes at most "
                           f"{MAX_REALS:,}; split the file"))  # fmt: skip
    return out


# RealServer fields an import never sets (their defaults are valid), and the service foreign key (its row is
# inserted in the same transaction): not validated per row, 20,000 times over.
REAL_UNSET = [
    "service", "admin_state", "after_drain", "health", "health_reason", "health_latency", "health_changed",
    "created", "updated", "id",
]  # fmt: skip


def _service_key(vs: VirtualService) -> tuple:
    """What the two unique constraints of VirtualService compare (address as the database stores it)."""
    if vs.fwmark is not None:
        return ("fwmark", vs.family, vs.fwmark)
    return (vs.protocol, vs.address, vs.port)


class _Cleaner:
    """full_clean() for many rows of one model, less what a bulk import checks once for all of them.

    Each field is cleaned with the model field's own to_python and validators, but once per distinct value
    (20,000 real servers have a few hundred weights and ports), then the model's clean() runs on every row.
    Left out: the fields in `exclude` (the parent foreign key, a query per row, and the fields an import
    never sets) and the unique constraints, which apply_plan compares in memory.
    """

    def __init__(self, model, exclude: list[str]):
        self.fields = [f for f in model._meta.concrete_fields if f.name not in exclude]
        self.memo: dict[tuple, tuple] = {}

    def field(self, f, raw):
        try:
            key = (f.attname, type(raw), raw)
            hit = self.memo.get(key)
        except TypeError:  # an unhashable value (a JSON list): cleaned every time
            key, hit = None, None
        if hit is None:
            try:
                hit = (True, f.clean(raw, None))
            except ValidationError as exc:
                hit = (False, exc)
            if key is not None:
                self.memo[key] = hit
        return hit

    def __call__(self, obj) -> ValidationError | None:
        errors: dict = {}
        for f in self.fields:
            raw = getattr(obj, f.attname)
            if f.blank and raw in f.empty_values:
                continue
            ok, value = self.field(f, raw)
            if ok:
                setattr(obj, f.attname, value)
            else:
                errors[f.name] = value.error_list
        try:
            obj.clean()
        except ValidationError as exc:
            errors = exc.update_error_dict(errors)
        return ValidationError(errors) if errors else None


def _taken(model, constraint: str) -> ValidationError:
    """The error full_clean() gives for that unique constraint, in its own words."""
    unique = next(c for c in model._meta.constraints if c.name == constraint)
    return ValidationError(unique.violation_error_message)


def apply_plan(
    plan: Plan, director: Director, *, user=None, replace: bool = False, dry_run: bool = False
) -> ApplyResult:
    """Create the plan's services on `director` (after deleting its current ones if `replace`).

    Returns an ApplyResult; nothing is written when the plan or any row has an error, or on a dry run.
    Rows are validated one by one with the models' own field validators and clean() and inserted in bulk,
    so a 20,000-real-server file previews and imports in seconds (bench/import_bench.py).
    """
    result = ApplyResult(plan=plan, dry_run=dry_run)
    if not plan.ok:
        result.errors = list(plan.errors)
        return result
    result.errors = _too_big(plan)
    if result.errors:
        return result
    result.replaced = director.services.count() if replace else 0
    taken = set() if replace else {_service_key(vs) for vs in director.services.all()}
    services = []
    clean_service, clean_real = _Cleaner(VirtualService, ["director", "id"]), _Cleaner(RealServer, REAL_UNSET)
    for sp in plan.services:
        vs = VirtualService(director=director, **sp.model_values())
        failed = clean_service(vs)
        if failed is None and _service_key(vs) in taken:
            unique = (
                "unique_fwmark_per_director"
                if vs.fwmark is not None
                else "unique_vip_port_proto_per_director"
            )
            failed = _taken(VirtualService, unique)
        if failed is not None:
            result.errors.extend(_messages(sp.file, sp.line, f"{sp.label}: ", failed))
            continue
        try:  # an external check runs a program as root on the director: its own permission
            ops.check_external_permission(vs, user)
        except PermissionDenied as exc:
            result.errors.append(Message(sp.file, sp.line, f"{sp.label}: {exc}"))
            continue
        taken.add(_service_key(vs))
        services.append((sp, vs))
    result.created_services = [vs for _, vs in services]
    reals = []
    for sp, vs in services:
        seen = set()
        for rp in sp.reals:
            rs = RealServer(service=vs, **rp.model_values())  # vs gets its id at the insert below
            failed = clean_real(rs)
            if failed is None and (rs.address, rs.port) in seen:
                failed = _taken(RealServer, "unique_real_per_service")
            if failed is not None:
                prefix = f"{sp.label} real {rp.address}:{rp.port}: "
                result.errors.extend(_messages(rp.file or sp.file, rp.line, prefix, failed))
                continue
            seen.add((rs.address, rs.port))
            reals.append(rs)
    result.created_reals = len(reals)
    # Every row is valid and no key is taken, so inserting cannot fail on a constraint: the preview (a dry
    # run) stops here, having written nothing, and the import writes everything in one transaction.
    if result.errors or dry_run:
        return result
    with transaction.atomic():
        if replace:
            director.services.all().delete()
        VirtualService.objects.bulk_create(result.created_services, batch_size=500)
        RealServer.objects.bulk_create(reals, batch_size=1000)
        summary = (
            f"imported {len(result.created_services)} virtual services and {result.created_reals} real "
            f"servers from {plan.source} ({plan.format})"
        )
        if replace:
            summary += f", replacing {result.replaced}"
        ops.record(
            C.EventKind.IMPORT,
            summary,
            user=user,
            director=director,
            level=C.Level.WARNING if plan.warnings else C.Level.INFO,
            data={
                "format": plan.format,
                "files": plan.files,
                "services": len(result.created_services),
                "reals": result.created_reals,
                "warnings": [str(m) for m in plan.warnings[:200]],
            },
        )
        ops.push(director, user=user, reason=f"import {plan.source}")
    return result
