"""URLs of configuration import/export pages (kept apart from the dashboard's)."""

urlpatterns: list = []
