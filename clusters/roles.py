"""The three roles and what each may do, created idempotently by `manage.py setup`."""

from django.contrib.auth.models import Group, Permission

MODELS = ("director", "virtualservice", "realserver", "event", "applyjob")


def _perms(*codenames: str) -> list[Permission]:
    return list(Permission.objects.filter(content_type__app_label="clusters", codename__in=codenames))


def ensure_groups() -> dict[str, Group]:
    """viewer: look only; operator: + drain/maintenance/enable/weight; admin: + create/edit/delete/import."""
    view = [f"view_{m}" for m in MODELS]
    operate = view + ["operate_realserver"]
    admin = operate + [f"{a}_{m}" for m in MODELS for a in ("add", "change", "delete")]
    groups = {}
    for name, codenames in (("viewer", view), ("operator", operate), ("admin", admin)):
        group, _ = Group.objects.get_or_create(name=name)
        group.permissions.set(_perms(*codenames))
        groups[name] = group
    return groups
