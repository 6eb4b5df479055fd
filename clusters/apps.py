from django.apps import AppConfig


class IdConverter:
    """<id:pk> in URLs: 1-18 digits, so an id no database column can hold (`/directors/999…9/`, 40 digits)
    is a 404 like any unknown id instead of an overflow in the database driver."""

    regex = "[0-9]{1,18}"

    def to_python(self, value: str) -> int:
        return int(value)

    def to_url(self, value) -> str:
        return str(value)


class ClustersConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "clusters"
    verbose_name = "LVS clusters"

    def ready(self):
        from django.urls import register_converter

        register_converter(IdConverter, "id")
