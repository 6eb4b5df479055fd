"""URLs of configuration import/export pages (kept apart from the dashboard's)."""

from django.urls import path

from . import views_io

urlpatterns = [
    path("io/", views_io.index, name="io_index"),
    path("io/import/", views_io.import_upload, name="io_import"),
    path("io/import/confirm/", views_io.import_confirm, name="io_import_confirm"),
    path("io/import/done/<id:pk>/", views_io.import_done, name="io_done"),
    path("io/export/<id:pk>/<str:fmt>/", views_io.export, name="io_export"),
]
