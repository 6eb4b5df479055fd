"""Dashboard views: thin; logic lives in services.py (writes) and stats.py (live reads)."""

from django.shortcuts import get_object_or_404, render

from .models import Director, VirtualService


def overview(request):
    directors = Director.objects.prefetch_related("services__reals")
    return render(request, "clusters/overview.html", {"directors": directors})


def director_detail(request, pk):
    director = get_object_or_404(Director, pk=pk)
    return render(request, "clusters/director_detail.html", {"director": director})


def service_detail(request, pk):
    service = get_object_or_404(VirtualService.objects.select_related("director"), pk=pk)
    return render(request, "clusters/service_detail.html", {"service": service, "reals": service.reals.all()})
