"""`manage.py export_config --director NAME --format ldirectord|keepalived|ipvsadm [--output FILE]`."""

from django.core.management.base import BaseCommand, CommandError

from clusters.exporters import FORMATS
from clusters.exporters.fromdb import export_director
from clusters.models import Director


class Command(BaseCommand):
    help = "Write a director's virtual services as ldirectord.cf, keepalived.conf or `ipvsadm -S` text."

    def add_arguments(self, parser):
        parser.add_argument("--director", required=True)
        parser.add_argument("--format", required=True, choices=FORMATS)
        parser.add_argument("--output", help="file to write (default: standard output)")

    def handle(self, *args, director, format, output, **options):
        try:
            target = Director.objects.get(name=director)
        except Director.DoesNotExist:
            raise CommandError(f"unknown director {director!r}") from None
        _, text = export_director(target, format)
        if output:
            with open(output, "w") as handle:
                handle.write(text)
        else:
            self.stdout.write(text, ending="")
