"""The health-check contract as the central side names it: `CheckSpec`'s fields plus one rename map.

`director.desired.CheckSpec` declares every check setting once (name, type, default). The virtual service
model, the import plan (`importers/plan.py` derives its check fields from here) and the ORM -> agent
translation (`desired.py`) follow from it, so a new check setting is a new CheckSpec field plus a model
field, and `tests/django/test_check_contract.py` fails until both exist with the same default.

The central side keeps two names of its own (`service` would be ambiguous next to the virtual service,
`external` does not say it is a program) and stores the status codes as text ("200,204"), which is what the
form and both config formats show. A `check_every` of N (ldirectord's checktype=N: connect checks, negotiate
every Nth) is how the model spells CheckSpec's checktype "N".

No Django here: the parsers, which import this through the plan, run on a box that only has Python.
"""

from __future__ import annotations

from dataclasses import fields

from director.desired import CheckSpec

# CheckSpec field -> VirtualService / ServicePlan field, where the central side names it differently.
RENAMED = {"service": "check_service", "external": "external_program"}

SPEC_FIELDS = tuple(f.name for f in fields(CheckSpec))


def model_name(spec_field: str) -> str:
    """The model (and plan) field that holds CheckSpec's `spec_field`."""
    return RENAMED.get(spec_field, spec_field)


MODEL_FIELDS = tuple(model_name(name) for name in SPEC_FIELDS)
_NAMES = tuple(zip(SPEC_FIELDS, MODEL_FIELDS, strict=True))  # (CheckSpec field, model field)


def status_text(codes) -> str:
    """CheckSpec's status codes as the model stores them: "200,204"."""
    return ",".join(str(int(code)) for code in codes)


def status_codes(text: str) -> tuple[int, ...]:
    """The model's "200,204" as CheckSpec's tuple (validated by the model field before it gets here)."""
    return tuple(int(x) for x in text.split(",") if x.strip())


def plan_fields() -> list[tuple[str, str, object]]:
    """(model name, annotation, default) of every check field, defaults as the model stores them."""
    out = []
    for f in fields(CheckSpec):
        if f.name == "expected_status":
            out.append((model_name(f.name), "str", status_text(f.default)))
        else:
            out.append((model_name(f.name), str(f.type), f.default))
    return out


def check_spec(obj) -> CheckSpec:
    """The agent's CheckSpec from anything with the model's field names (a VirtualService, a ServicePlan)."""
    values = {name: getattr(obj, model) for name, model in _NAMES}
    values["expected_status"] = status_codes(values["expected_status"])
    if obj.check_every:
        values["checktype"] = str(obj.check_every)
    return CheckSpec(**values)
