"""The ORM side of exporting: a director's rows as the neutral ServicePlans the renderers read."""

from __future__ import annotations

from clusters.importers.plan import RealPlan, ServicePlan
from clusters.models import Director

from . import FILENAMES, export


def services_of(director: Director) -> list[ServicePlan]:
    plans = []
    for vs in director.services.prefetch_related("reals"):
        plan = ServicePlan(**{name: getattr(vs, name) for name in ServicePlan.model_field_names()})
        plan.sched_flags = list(vs.sched_flags or [])
        plan.reals = [
            RealPlan(**{name: getattr(rs, name) for name in RealPlan.MODEL_FIELDS}) for rs in vs.reals.all()
        ]
        plans.append(plan)
    return plans


SECRET_FIELDS = ("passwd", "secret")  # check passwords and RADIUS secrets
REDACTED = "REDACTED"


def export_director(director: Director, fmt: str, *, redact: bool = False) -> tuple[str, str]:
    """(file name, text) of `director` in format `fmt`; `redact` replaces check passwords and RADIUS
    secrets, for users who may read the configuration but not change it."""
    plans = services_of(director)
    if redact:
        for plan in plans:
            for name in SECRET_FIELDS:
                if getattr(plan, name):
                    setattr(plan, name, REDACTED)
    text = export(plans, fmt, title=f"{FILENAMES[fmt]} of director {director.name}")
    return f"{director.name}-{FILENAMES[fmt]}", text
