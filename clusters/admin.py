"""Django admin: the escape hatch for anything the pages do not cover yet, on the same write path as they are.

Directors, virtual services and real servers saved or deleted here go through services.py exactly like a
page's form: validated, recorded as an Event naming the admin user, pushed to the director (a deleted
director is decommissioned). The audit trail, apply jobs and API tokens are read-only here: an Event edited
by hand would no longer be a record, and tokens are issued and revoked by `manage.py create_token` /
`revoke_token`, which record who did it.
"""

from django.contrib import admin

from . import services
from .models import ApiToken, ApplyJob, Director, Event, RealServer, VirtualService


class ThroughServices(admin.ModelAdmin):
    """Saves and deletes (one object, or "delete selected") go through services.save / services.remove.

    `parent` (the foreign key to the director or service) is fixed once the object exists, as on the pages:
    moving it would leave the old director running what it no longer owns.
    """

    parent = ""

    def get_readonly_fields(self, request, obj=None):
        fixed = (self.parent,) if obj is not None and self.parent else ()
        return (*super().get_readonly_fields(request, obj), *fixed)

    def save_model(self, request, obj, form, change):
        services.save(obj, user=request.user, changed=form.changed_data)

    def delete_model(self, request, obj):
        services.remove(obj, user=request.user)

    def delete_queryset(self, request, queryset):
        for obj in queryset:
            services.remove(obj, user=request.user)


class ViewOnly:
    """Look, never touch (mixed into a ModelAdmin or an inline)."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class RealServerInline(ViewOnly, admin.TabularInline):
    """The service's real servers, to look at: a change goes through the real server's own admin page, so it is
    validated, recorded and pushed like every other (an inline formset would save behind the services' back)."""

    model = RealServer
    extra = 0
    fields = (
        "address",
        "port",
        "forwarding",
        "weight",
        "u_threshold",
        "l_threshold",
        "admin_state",
        "health",
    )
    readonly_fields = fields
    show_change_link = True


@admin.register(Director)
class DirectorAdmin(ThroughServices):
    list_display = (
        "name",
        "wan_interface",
        "lan_interface",
        "lan_subnet",
        "state",
        "last_seen",
        "desired_revision",
        "applied_revision",
    )
    search_fields = ("name", "description")
    readonly_fields = ("state", "last_seen", "desired_revision", "applied_revision")


@admin.register(VirtualService)
class VirtualServiceAdmin(ThroughServices):
    list_display = (
        "__str__",
        "director",
        "scheduler",
        "persistence",
        "checktype",
        "check_service",
        "enabled",
    )
    list_filter = ("director", "protocol", "scheduler", "checktype")
    search_fields = ("name", "address")
    inlines = [RealServerInline]
    parent = "director"


@admin.register(RealServer)
class RealServerAdmin(ThroughServices):
    list_display = ("__str__", "service", "forwarding", "weight", "admin_state", "health", "health_reason")
    list_filter = ("admin_state", "health", "forwarding", "service__director")
    search_fields = ("address",)
    parent = "service"
    # what the director observed, not something to type in
    readonly_fields = ("health", "health_reason", "health_latency", "health_changed")


@admin.register(Event)
class EventAdmin(ViewOnly, admin.ModelAdmin):
    list_display = ("time", "kind", "level", "director", "service", "server", "user", "message")
    list_filter = ("kind", "level", "director")
    search_fields = ("message",)
    date_hierarchy = "time"


@admin.register(ApplyJob)
class ApplyJobAdmin(ViewOnly, admin.ModelAdmin):
    list_display = ("created", "director", "revision", "status", "user", "reason", "finished")
    list_filter = ("status", "director")


@admin.register(ApiToken)
class ApiTokenAdmin(ViewOnly, admin.ModelAdmin):
    """List tokens; `manage.py create_token` issues them (the only place a secret is shown) and
    `manage.py revoke_token` revokes them, both recording who did it."""

    list_display = ("prefix", "name", "user", "created", "last_used", "revoked")
    list_filter = ("revoked",)
    search_fields = ("prefix", "name", "user__username")
    fields = ("user", "name", "prefix", "created", "last_used", "revoked")
