"""Pages poll every 2 s, so their query count must not grow with the number of rows."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from clusters.models import RealServer

pytestmark = pytest.mark.django_db
HX = {"HX-Request": "true"}


def _grow(demo, n):
    for vs in demo.services.all():
        for i in range(n):
            RealServer.objects.create(service=vs, address=f"192.168.2.{i + 1}", port=vs.port)


@pytest.mark.parametrize("name", ["overview", "director_detail", "service_detail"])
def test_it_keeps_the_query_count_flat(client, viewer, demo, django_assert_max_num_queries, name):
    client.force_login(viewer)
    args = {"overview": [], "director_detail": [demo.pk], "service_detail": [demo.services.first().pk]}[name]
    url = reverse(name, args=args)
    with CaptureQueriesContext(connection) as few:
        client.get(url, headers=HX)
    _grow(demo, 20)
    with django_assert_max_num_queries(len(few.captured_queries)):
        client.get(url, headers=HX)
