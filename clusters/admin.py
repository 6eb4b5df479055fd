"""Django admin for every model: the escape hatch for anything the pages do not cover yet."""

from django.contrib import admin

from .models import ApiToken, ApplyJob, Director, Event, RealServer, VirtualService


class RealServerInline(admin.TabularInline):
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
    readonly_fields = ("health",)


@admin.register(Director)
class DirectorAdmin(admin.ModelAdmin):
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
class VirtualServiceAdmin(admin.ModelAdmin):
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


@admin.register(RealServer)
class RealServerAdmin(admin.ModelAdmin):
    list_display = ("__str__", "service", "forwarding", "weight", "admin_state", "health", "health_reason")
    list_filter = ("admin_state", "health", "forwarding", "service__director")
    search_fields = ("address",)


@admin.register(Event)
class EventAdmin(admin.ModelAdmin):
    list_display = ("time", "kind", "level", "director", "service", "server", "user", "message")
    list_filter = ("kind", "level", "director")
    search_fields = ("message",)
    date_hierarchy = "time"


@admin.register(ApplyJob)
class ApplyJobAdmin(admin.ModelAdmin):
    list_display = ("created", "director", "revision", "status", "user", "reason", "finished")
    list_filter = ("status", "director")


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    """List and revoke tokens; new ones come from `manage.py create_token`, the only place a secret is shown."""

    list_display = ("prefix", "name", "user", "created", "last_used", "revoked")
    list_filter = ("revoked",)
    search_fields = ("prefix", "name", "user__username")
    fields = ("user", "name", "prefix", "created", "last_used", "revoked")
    readonly_fields = ("user", "prefix", "created", "last_used")

    def has_add_permission(self, request):
        return False
