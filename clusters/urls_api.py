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
    path("services/<int:pk>", api.service, name="api_service"),
    re_path(
        r"^servers/(?P<pk>\d+)/(?P<action>drain|maintenance|enable|weight)$",
        api.server_action,
        name="api_server_action",
    ),
    path("jobs/<int:pk>", api.job, name="api_job"),
    path("events", api.events, name="api_events"),
]
