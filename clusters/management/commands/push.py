"""`manage.py push [NAME ...]`: send the desired state to directors' agents now (all when none named)."""

from django.core.management.base import BaseCommand, CommandError

from clusters import services
from clusters.models import Director


class Command(BaseCommand):
    help = "Send the whole desired state to the named directors' agents (default: every director)."

    def add_arguments(self, parser):
        parser.add_argument("names", nargs="*")

    def handle(self, *args, names, **options):
        directors = Director.objects.all()
        if names:
            directors = directors.filter(name__in=names)
            missing = set(names) - set(directors.values_list("name", flat=True))
            if missing:
                raise CommandError(f"unknown director(s): {', '.join(sorted(missing))}")
        for director in directors:
            job = services.push(director, reason="manual push")
            self.stdout.write(f"{director.name}: revision {job.revision} queued on {director.queue}")
