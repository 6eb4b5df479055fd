"""URLs of the JSON API, mounted at /api/v1/ (see clusters/api.py for authentication)."""

from django.urls import path, re_path

from . import api

urlpatterns = [
    path("directors", api.directors, name="api_directors"),
    path("directors/<int:pk>", api.director, name="api_director"),
    re_path(
        r"^directors/(?P<pk>\d+)/hosts/(?P<address>[^/]+)/(?P<action>drain|maintenance|enable)$",
        api.host_action,
        name="api_host_action",
    ),
    path("directors/<int:pk>/services", api.director_services, name="api_director_services"),
    path("services/<int:pk>", api.service, name="api_service"),
    path("services/<int:pk>/reals", api.service_reals, name="api_service_reals"),
    path("servers/<int:pk>", api.server, name="api_server"),
    re_path(
        r"^servers/(?P<pk>\d+)/(?P<action>drain|maintenance|enable|weight)$",
        api.server_action,
        name="api_server_action",
    ),
    path("jobs/<int:pk>", api.job, name="api_job"),
    path("events", api.events, name="api_events"),
]
