"""The typed edge of /api/v1/: request bodies parsed into Pydantic schemas made from the pages' forms.

A body goes through three gates, in order, before any model code runs:

1. `BodyParser` (django-ninja's parser hook): at most MAX_BODY bytes (413), valid UTF-8 JSON (a body nested
   50,000 deep is a 400 like any other malformed one), a JSON object at the top - or a form-encoded body,
   for `curl -d a=b`.
2. The schema of the endpoint (`form_schema`): one optional field per form field and no other (an unknown
   or URL-fixed key is a 400 naming it), each value a form value - null, a boolean, a finite number, valid
   Unicode text, or for a multiple choice a list of those. The field *types* the OpenAPI document shows
   (integer 0-65535, an enum of schedulers, ...) are read from the same form fields, so they cannot drift.
3. The page's Django form (clusters/forms.py), the one place for field rules, with the values posted as a
   browser would: its messages are the API's messages.

There is no second serializer layer: what a value may be is decided by the form alone, the schema only makes
sure a form can be fed with what arrived.
"""

from __future__ import annotations

import json
import math
from datetime import datetime
from typing import Annotated, Any

from django import forms
from django.core import validators
from django.core.exceptions import FieldDoesNotExist, RequestDataTooBig
from ninja.parser import Parser
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainValidator,
    ValidationError,
    WithJsonSchema,
    create_model,
)
from pydantic import model_validator as pyd_model_validator
from pydantic_core import PydanticCustomError

MAX_BODY = 64 * 1024  # the largest object (a virtual service with every check field) is ~2 KiB
LIST_MAX = 100  # values of one multiple choice (sched_flags has 3)


class BadBody(ValueError):
    """A body refused before any schema saw it; `errors` names "body"."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.errors, self.status = {"body": [message]}, status


TOO_BIG = f"The body is larger than {MAX_BODY // 1024} KiB."


class BodyParser(Parser):
    """django-ninja's body parser, bounded: size, encoding, nesting and top-level type are checked here."""

    def parse_body(self, request) -> dict:
        try:
            raw = request.body
        except RequestDataTooBig:  # beyond DATA_UPLOAD_MAX_MEMORY_SIZE: Django refuses to read it
            raise BadBody(TOO_BIG, 413) from None
        if len(raw) > MAX_BODY:
            raise BadBody(TOO_BIG, 413)
        raw = raw.strip()
        if request.content_type == "application/json" or raw.startswith(b"{"):
            try:
                data = json.loads(raw.decode("utf-8") or "{}")
            except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
                raise BadBody(f"Not valid JSON: {str(exc)[:200]}.") from None
            if not isinstance(data, dict):
                raise BadBody("The body must be a JSON object.")
            return data
        return request.POST.dict()  # form-encoded: every value is already text


# -- one form value -------------------------------------------------------------------------------------------
def _error(kind: str, message: str):
    return PydanticCustomError(kind, message)


def _scalar(value):
    if isinstance(value, dict):
        raise _error("object", "Expected a value, not an object.")
    if isinstance(value, float) and not math.isfinite(value):
        raise _error("finite_number", "Expected a finite number.")
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise _error("unicode", "Not valid Unicode (a lone surrogate).") from None
    return value


def _nested(value) -> bool:
    return isinstance(value, list) and any(isinstance(v, list | dict) for v in value)


NESTED = "Expected a value or a list of values, not nested lists or objects."


def single_value(value):
    """null, a boolean, a finite number or text: what one form input holds."""
    if _nested(value):
        raise _error("nested", NESTED)
    if isinstance(value, list):
        raise _error("list", "Expected a single value, not a list.")
    return _scalar(value)


def list_value(value):
    """A multiple choice: a list of single values (a lone value counts as a list of one)."""
    if _nested(value):
        raise _error("nested", NESTED)
    values = value if isinstance(value, list) else [value]
    return [_scalar(v) for v in values[:LIST_MAX]]


# -- the documented type of a form field ---------------------------------------------------------------------
def _choices(field) -> list[str]:
    return [str(value) for value, _ in field.choices if value not in ("", None)]


def _limits(field, model_field=None) -> dict:
    """minimum / maximum / maxLength from the form field's validators and, for a ModelForm, the bounds the
    model field's own validators declare (`validate_port.bounds`): the tighter of each wins."""
    keys = {
        validators.MinValueValidator: "minimum",
        validators.MaxValueValidator: "maximum",
        validators.MaxLengthValidator: "maxLength",
    }
    out = {keys[type(v)]: v.limit_value for v in field.validators if type(v) in keys}
    for v in getattr(model_field, "validators", ()):
        low, high = getattr(v, "bounds", (None, None))
        if low is not None:
            out["minimum"] = max(out.get("minimum", low), low)
        if high is not None:
            out["maximum"] = min(out.get("maximum", high), high)
    return out


def json_schema_of(field: forms.Field, model_field=None) -> dict:
    """What the form field accepts, as JSON Schema (for the OpenAPI document; the form still decides)."""
    if isinstance(field, forms.ModelChoiceField):
        schema = {"type": "integer", "description": "id"}
    elif isinstance(field, forms.MultipleChoiceField):
        schema = {"type": "array", "items": {"type": "string", "enum": _choices(field)}}
    elif isinstance(field, forms.NullBooleanField | forms.BooleanField):
        schema = {"type": "boolean"}
    elif isinstance(field, forms.IntegerField):
        schema = {"type": "integer", **_limits(field, model_field)}
    elif isinstance(field, forms.FloatField | forms.DecimalField):
        schema = {"type": "number", **_limits(field)}
    elif isinstance(field, forms.ChoiceField):
        schema = {"type": "string", "enum": _choices(field)}
    elif isinstance(field, forms.GenericIPAddressField):
        schema = {"type": "string", "description": "IPv4 or IPv6 address"}
    else:
        schema = {"type": "string", **_limits(field)}
    described = " - ".join(str(t) for t in (field.label, field.help_text) if t)
    if described:
        schema["description"] = described + (f" ({schema['description']})" if "description" in schema else "")
    nullable = not field.required or isinstance(field, forms.NullBooleanField)
    return {"anyOf": [schema, {"type": "null"}]} if nullable else schema


# -- schemas -------------------------------------------------------------------------------------------------
UNKNOWN = "unknown_field"


class FormBody(BaseModel):
    """Base of every body schema: only the form's fields, and an unknown key named with what is accepted."""

    model_config = ConfigDict(extra="forbid")

    @pyd_model_validator(mode="wrap")
    @classmethod
    def _name_unknown_fields(cls, data, handler):
        try:
            return handler(data)
        except ValidationError as exc:
            known = ", ".join(cls.model_fields)
            errors = [
                {
                    "type": _error(UNKNOWN, f"Unknown field; this object takes: {known}.")
                    if e["type"] == "extra_forbidden"
                    else _error(e["type"], e["msg"]),
                    "loc": e["loc"],
                    "input": e.get("input"),
                }
                for e in exc.errors()
            ]
            raise ValidationError.from_exception_data(cls.__name__, errors) from None

    def given(self) -> dict[str, Any]:
        """The fields the body named (a PATCH changes only those; a create leaves the rest to defaults)."""
        return self.model_dump(exclude_unset=True)


def form_schema(name: str, form_class, exclude: tuple[str, ...] = (), doc: str = "") -> type[FormBody]:
    """A body schema with one optional field per field of `form_class` (minus the URL's `exclude`)."""
    form = form_class()
    model = getattr(getattr(form_class, "_meta", None), "model", None)
    fields = {}
    for field_name, field in form.fields.items():
        if field_name in exclude:
            continue
        many = isinstance(field, forms.MultipleChoiceField)
        kind = Annotated[
            Any,
            PlainValidator(list_value if many else single_value),
            WithJsonSchema(json_schema_of(field, _model_field(model, field_name))),
        ]
        fields[field_name] = (kind, Field(default=None))
    return create_model(name, __base__=FormBody, __doc__=doc or None, **fields)


def _model_field(model, name: str):
    try:
        return model._meta.get_field(name) if model else None
    except FieldDoesNotExist:  # a form-only field
        return None


def plain_schema(name: str, names: dict[str, forms.Field], doc: str = "") -> type[FormBody]:
    """A body schema for a plain django Form's fields ({name: field}), like form_schema."""

    class _Form(forms.Form):
        pass

    _Form.base_fields = dict(names)
    return form_schema(name, _Form, doc=doc)


# -- answers (documentation: the views build them in api.py; tests/django/test_api_schema.py validates real
# answers against these, so the document cannot drift from what is sent) -------------------------------------
class Error(BaseModel):
    error: str


class Errors(BaseModel):
    """A refused body or filter: the fields at fault ("body" for the body as a whole), the forms' messages."""

    errors: dict[str, list[str]]


class Job(BaseModel):
    """An apply job: pending until the agent reports the pushed revision applied (done) or failed."""

    id: int
    status: str
    error: str
    revision: int
    director: int | None
    server: int | None
    created: datetime
    finished: datetime | None


class Director(BaseModel):
    id: int
    name: str
    peer: int | None
    description: str
    ha_address: str | None
    ha_priority: int
    ha_preempt: bool
    ha_interval: float
    ha_vrid: int
    agent_status: str
    desired_revision: int
    applied_revision: int
    in_sync: bool
    last_seen: datetime | None
    report_problem: str | None


class DirectorInList(Director):
    services: list[int]


class Service(BaseModel):
    id: int
    director: int
    label: str
    name: str
    protocol: str
    address: str | None
    port: int | None
    fwmark: int | None
    family: int
    scheduler: str
    sched_flags: list[str]
    persistence: int | None
    netmask: str | None
    enabled: bool
    checktype: str
    check_service: str


class ServiceHealth(Service):
    healthy: int
    total: int
    live: bool


class DirectorDetail(Director):
    drift: list[Any]
    services: list[ServiceHealth]


class RealLive(BaseModel):
    """The kernel's view from the agent's last snapshot."""

    active: int
    inactive: int
    persistent: int
    cps: float
    inbps: float
    outbps: float
    in_kernel: bool
    kernel_weight: int | None


class Real(BaseModel):
    id: int
    address: str
    port: int
    forwarding: str
    weight: int
    admin_state: str
    after_drain: str
    health: str
    health_reason: str
    health_latency: float | None
    live: RealLive | None


class ServiceDetail(Service):
    reals: list[Real]


class ServerState(BaseModel):
    id: int
    admin_state: str
    weight: int


class ActionDone(BaseModel):
    job: Job
    server: ServerState


class HostActionDone(BaseModel):
    jobs: list[Job]


class EventOut(BaseModel):
    id: int
    time: datetime
    kind: str
    level: str
    director: str | None
    service: int | None
    server: int | None
    user: str | None
    message: str
    data: dict[str, Any]


REFUSALS = {401: Error, 403: Error, 404: Error}
BODY_REFUSALS = {**REFUSALS, 400: Errors, 413: Errors}
