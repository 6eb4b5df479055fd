"""`manage.py import_config FILE --director NAME`: import ldirectord.cf, keepalived.conf or ipvsadm -S.

Prints what will be created and every warning with file:line; refuses (exit status 1) with every error when
the file or any resulting row is invalid, in which case nothing is written. `--dry-run` stops after the
preview. Host names in the file are looked up in /etc/hosts (or `--hosts FILE`) only, never in DNS.
"""

import sys

from django.core.management.base import BaseCommand, CommandError

from clusters import services
from clusters.importers import FORMATS, FileSources, HostsMap, parse
from clusters.importers.apply import apply_plan
from clusters.importers.preview import plan_lines
from clusters.models import Director


class Command(BaseCommand):
    help = "Import an ldirectord.cf, keepalived.conf or `ipvsadm -S` file into a director (preview, then create)."

    def add_arguments(self, parser):
        parser.add_argument("file", help="the configuration file ('-' reads standard input)")
        parser.add_argument("--director", required=True, help="name of the director to import into")
        parser.add_argument("--format", default="auto", choices=("auto", *FORMATS))
        parser.add_argument(
            "--dry-run", action="store_true", help="show what would be created, write nothing"
        )
        parser.add_argument(
            "--replace", action="store_true", help="delete the director's current virtual services first"
        )
        parser.add_argument("--hosts", help="an /etc/hosts-style file for host names (default /etc/hosts)")
        parser.add_argument(
            "--create-director", action="store_true", help="create the director if it does not exist"
        )

    def handle(self, *args, file, director, format, dry_run, replace, hosts, create_director, **options):
        target = self._director(director, create_director, dry_run)
        try:
            text = sys.stdin.read() if file == "-" else open(file, "rb").read().decode("utf-8", "replace")
        except OSError as exc:
            raise CommandError(f"cannot read {file}: {exc}") from exc
        hosts_map = HostsMap.system()
        if hosts:
            try:
                hosts_map = HostsMap.from_text(open(hosts).read(), hosts)
            except OSError as exc:
                raise CommandError(f"cannot read {hosts}: {exc}") from exc
        plan = parse(
            text, format, filename=file if file != "-" else "stdin", hosts=hosts_map, sources=FileSources()
        )
        for line in plan_lines(plan):
            self.stdout.write(line)
        for message in plan.warnings:
            self.stdout.write(self.style.WARNING(f"warning: {message}"))
        if target is None:  # a director that --create-director would create, in a dry run
            self._refuse(plan.errors)
            self.stdout.write(f"dry run: director {director} and its services would be created")
            return
        result = apply_plan(plan, target, replace=replace, dry_run=True)
        self._refuse(result.errors)
        if dry_run:
            self.stdout.write("dry run: nothing written")
            return
        result = apply_plan(plan, target, replace=replace)
        self._refuse(result.errors)
        self.stdout.write(
            self.style.SUCCESS(
                f"created {len(result.created_services)} virtual services and {result.created_reals} real "
                f"servers on {target.name}" + (f" (replaced {result.replaced})" if replace else "")
            )
        )

    def _refuse(self, errors) -> None:
        if errors:
            lines = "\n".join(f"error: {m}" for m in errors)
            raise CommandError(f"nothing imported, the configuration has {len(errors)} error(s):\n{lines}")

    def _director(self, name: str, create: bool, dry_run: bool) -> Director | None:
        try:
            return Director.objects.get(name=name)
        except Director.DoesNotExist:
            if not create:
                raise CommandError(
                    f"unknown director {name!r} (use --create-director to create it)"
                ) from None
        if dry_run:
            return None
        director = services.save(Director(name=name, masquerade=False))
        self.stdout.write(f"created director {name}")
        return director
