"""URLs of the dashboard."""

from django.urls import include, path

from . import views

urlpatterns = [
    path("", views.overview, name="overview"),
    path("logs/", views.logs, name="logs"),
    path("directors/new/", views.director_create, name="director_create"),
    path("directors/<int:pk>/", views.director_detail, name="director_detail"),
    path("directors/<int:pk>/edit/", views.director_edit, name="director_edit"),
    path("directors/<int:pk>/delete/", views.director_delete, name="director_delete"),
    path("directors/<int:pk>/hosts/", views.host_action, name="host_action"),
    path("directors/<int:pk>/connections/", views.connections, name="connections"),
    path("directors/<int:pk>/services/new/", views.service_create, name="service_create"),
    path("services/<int:pk>/", views.service_detail, name="service_detail"),
    path("services/<int:pk>/edit/", views.service_edit, name="service_edit"),
    path("services/<int:pk>/delete/", views.service_delete, name="service_delete"),
    path("services/<int:pk>/reals/new/", views.server_create, name="server_create"),
    path("servers/<int:pk>/edit/", views.server_edit, name="server_edit"),
    path("servers/<int:pk>/delete/", views.server_delete, name="server_delete"),
    path("servers/<int:pk>/<slug:action>/", views.server_action, name="server_action"),
    path("jobs/<int:pk>/", views.job_status, name="job_status"),
]
urlpatterns += [path("", include("clusters.urls_io"))]
