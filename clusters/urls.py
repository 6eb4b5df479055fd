"""URLs of the dashboard."""

from django.urls import include, path

from . import views

urlpatterns = [
    path("", views.overview, name="overview"),
    path("directors/<int:pk>/", views.director_detail, name="director_detail"),
    path("services/<int:pk>/", views.service_detail, name="service_detail"),
]
urlpatterns += [path("", include("clusters.urls_io"))]
