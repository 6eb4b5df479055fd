"""URLs of the JSON API, mounted at /api/v1/ (see clusters/api.py for authentication)."""

from django.urls import path, re_path

from . import api

urlpatterns = [
    path("directors", api.directors, name="api_directors"),
    path("directors/<id:pk>", api.director, name="api_director"),
    re_path(
        r"^directors/(?P<pk>[0-9]{1,18})/hosts/(?P<address>[^/]+)/(?P<action>drain|maintenance|enable)$",
        api.host_action,
        name="api_host_action",
    ),
    path("directors/<id:pk>/services", api.director_services, name="api_director_services"),
    path("services/<id:pk>", api.service, name="api_service"),
    path("services/<id:pk>/reals", api.service_reals, name="api_service_reals"),
    path("servers/<id:pk>", api.server, name="api_server"),
    re_path(
        r"^servers/(?P<pk>[0-9]{1,18})/(?P<action>drain|maintenance|enable|weight)$",
        api.server_action,
        name="api_server_action",
    ),
    path("jobs/<id:pk>", api.job, name="api_job"),
    path("events", api.events, name="api_events"),
    re_path(r"", api.not_found),  # last: anything else under /api/v1/ is a JSON 404
]
