"""Plan -> rows, all or nothing.

Everything happens inside one transaction: each VirtualService and RealServer is built from the plan and
`full_clean()`ed (the same validation the forms use, unique constraints included) before it is saved, and any
error rolls the whole import back, so a broken file never leaves half a configuration behind. A dry run goes
through exactly the same steps and then rolls back: the preview reports the same errors the real import would.
After a real import the change is recorded as an Event and pushed to the director once, like any other edit.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.core.exceptions import ValidationError
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


class _Rollback(Exception):
    pass


def _messages(file: str, line: int, prefix: str, exc: ValidationError) -> list[Message]:
    out = []
    if hasattr(exc, "error_dict"):
        for name, errors in exc.message_dict.items():
            where = "" if name == "__all__" else f"{name}: "
            out.extend(Message(file, line, f"{prefix}{where}{text}") for text in errors)
    else:
        out.extend(Message(file, line, f"{prefix}{text}") for text in exc.messages)
    return out


def apply_plan(
    plan: Plan, director: Director, *, user=None, replace: bool = False, dry_run: bool = False
) -> ApplyResult:
    """Create the plan's services on `director` (after deleting its current ones if `replace`).

    Returns an ApplyResult; nothing is written when the plan or any row has an error, or on a dry run.
    """
    result = ApplyResult(plan=plan, dry_run=dry_run)
    if not plan.ok:
        result.errors = list(plan.errors)
        return result
    try:
        with transaction.atomic():
            if replace:
                result.replaced = director.services.count()
                director.services.all().delete()
            for sp in plan.services:
                vs = VirtualService(director=director, **sp.model_values())
                try:
                    vs.full_clean()
                except ValidationError as exc:
                    result.errors.extend(_messages(sp.file, sp.line, f"{sp.label}: ", exc))
                    continue
                vs.save()
                result.created_services.append(vs)
                for rp in sp.reals:
                    rs = RealServer(service=vs, **rp.model_values())
                    try:
                        rs.full_clean()
                    except ValidationError as exc:
                        prefix = f"{sp.label} real {rp.address}:{rp.port}: "
                        result.errors.extend(_messages(rp.file or sp.file, rp.line, prefix, exc))
                        continue
                    rs.save()
                    result.created_reals += 1
            if result.errors or dry_run:
                raise _Rollback
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
    except _Rollback:
        pass
    return result
