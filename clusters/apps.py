from django.apps import AppConfig


class IdConverter:
    """<id:pk> in URLs: 1-18 digits, so an id no database column can hold (`/directors/999…9/`, 40 digits)
    is a 404 like any unknown id instead of an overflow in the database driver."""

    regex = "[0-9]{1,18}"

    def to_python(self, value: str) -> int:
        return int(value)

    def to_url(self, value) -> str:
        return str(value)


class ChoiceConverter:
    """A path segment that is one of a few words (the API's one-click actions): any other is a 404."""

    words: tuple[str, ...] = ()

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        cls.regex = "|".join(cls.words)

    def to_python(self, value: str) -> str:
        return value

    def to_url(self, value) -> str:
        return str(value)


class ClustersConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "clusters"
    verbose_name = "LVS clusters"

    def ready(self):
        from django.urls import register_converter

        from .services import HOST_ACTIONS, SERVER_ACTIONS

        register_converter(IdConverter, "id")
        register_converter(
            type("ServerAction", (ChoiceConverter,), {"words": SERVER_ACTIONS}), "server_action"
        )
        register_converter(
            type("HostAction", (ChoiceConverter,), {"words": tuple(HOST_ACTIONS)}), "host_action"
        )
