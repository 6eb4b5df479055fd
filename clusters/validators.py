"""Field validators shared by models, forms and importers so every entry point says the same thing."""

import re

from django.core.exceptions import ValidationError

IFNAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:@-]{0,14}$")


def validate_ifname(value: str) -> None:
    """Linux interface names: at most 15 bytes, no slashes or spaces (they reach nft and netlink)."""
    if value and not IFNAME_RE.match(value):
        raise ValidationError(
            "%(value)s is not a valid interface name (1-15 of A-Z a-z 0-9 _ . : @ -).",
            params={"value": value},
        )


def validate_port(value: int) -> None:
    if value is not None and not 1 <= value <= 65535:
        raise ValidationError("Port must be between 1 and 65535, not %(value)s.", params={"value": value})


validate_port.bounds = (1, 65535)  # the OpenAPI document's minimum/maximum (clusters/api_schema.py)


def validate_weight(value: int) -> None:
    if value is not None and not 0 <= value <= 65535:
        raise ValidationError("Weight must be between 0 and 65535, not %(value)s.", params={"value": value})


validate_weight.bounds = (0, 65535)


def validate_status_codes(value: str) -> None:
    """keepalived's status_code list, written as "200,204,301"."""
    for part in filter(None, (p.strip() for p in value.split(","))):
        if not (part.isascii() and part.isdigit()) or not 100 <= int(part) <= 599:
            raise ValidationError("%(part)s is not an HTTP status code (100-599).", params={"part": part})


def validate_regex(value: str) -> None:
    try:
        re.compile(value)
    except re.error as exc:
        raise ValidationError("Not a valid regular expression: %(err)s.", params={"err": exc}) from exc
