"""Top-level URLs: auth, admin, the JSON API, Prometheus metrics, and the clusters app at the root."""

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from clusters import api

urlpatterns = [
    path("login/", auth_views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
    path("api/v1/", include("clusters.urls_api")),
    path("metrics", api.metrics_view, name="metrics"),
    path("", include("clusters.urls")),
]
