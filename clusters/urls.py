"""URLs of the dashboard."""

from django.urls import include, path

from . import views

urlpatterns = [
    path("", views.overview, name="overview"),
    path("logs/", views.logs, name="logs"),
    path("directors/new/", views.director_create, name="director_create"),
    path("directors/<id:pk>/", views.director_detail, name="director_detail"),
    path("directors/<id:pk>/edit/", views.director_edit, name="director_edit"),
    path("directors/<id:pk>/delete/", views.director_delete, name="director_delete"),
    path("directors/<id:pk>/credentials/", views.director_credentials, name="director_credentials"),
    path("directors/<id:pk>/hosts/", views.host_action, name="host_action"),
    path("directors/<id:pk>/connections/", views.connections, name="connections"),
    path("directors/<id:pk>/services/new/", views.service_create, name="service_create"),
    path("services/<id:pk>/", views.service_detail, name="service_detail"),
    path("services/<id:pk>/edit/", views.service_edit, name="service_edit"),
    path("services/<id:pk>/delete/", views.service_delete, name="service_delete"),
    path("services/<id:pk>/reals/new/", views.server_create, name="server_create"),
    path("servers/<id:pk>/edit/", views.server_edit, name="server_edit"),
    path("servers/<id:pk>/delete/", views.server_delete, name="server_delete"),
    path("servers/<id:pk>/<slug:action>/", views.server_action, name="server_action"),
    path("jobs/<id:pk>/", views.job_status, name="job_status"),
]
urlpatterns += [path("", include("clusters.urls_io"))]
