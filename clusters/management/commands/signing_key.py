"""`manage.py signing_key show|rotate|retire`: the central key that signs every desired state.

    show                       the public key(s), one trust-file line each (put them in the directors'
                               /etc/ultramonkey/central.pub); `--current` prints only the signing key
    rotate [--overlap SECONDS] a new key signs from now on; the old one co-signs for the window (default
                               24 h) so agents learn the new key from the next push, which goes out now
    retire                     end the window now: from the next push only the new key is trusted

See director/signing.py for how agents follow a rotation.
"""

import datetime as dt

from django.core.management.base import BaseCommand, CommandError

from clusters import choices as C
from clusters import services, signing
from clusters.models import Director
from director import signing as wire


class Command(BaseCommand):
    help = "Show, rotate or retire the central key that signs desired states."

    def add_arguments(self, parser):
        parser.add_argument("action", choices=["show", "rotate", "retire"])
        parser.add_argument("--overlap", type=float, default=86400.0, help="rotate: seconds both keys sign")
        parser.add_argument("--current", action="store_true", help="show: only the current key")
        parser.add_argument("--no-push", action="store_true", help="rotate/retire: do not push directors now")

    def handle(self, *args, action, overlap, current, no_push, **options):
        ring = signing.keyring()
        if action == "show":
            keys = ring.signing_keys()
            for key in keys[:1] if current else keys:
                self.stdout.write(wire.public_line(key.public_key()))
            return
        if action == "rotate":
            if overlap < 0:
                raise CommandError("--overlap must be >= 0 seconds")
            new = ring.rotate(overlap)
            until = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=overlap)
            message = f"signing key rotated to {wire.key_id(new.public_key())}; old key co-signs until {until:%Y-%m-%d %H:%M} UTC"
        else:
            ring.retire()
            message = f"signing key window closed: only {wire.key_id(ring.ensure().public_key())} signs"
        services.record(C.EventKind.USER, message, level=C.Level.WARNING)
        self.stdout.write(message)
        if not no_push:
            for director in Director.objects.all():
                job = services.push(director, reason="signing key " + action)
                self.stdout.write(f"{director.name}: revision {job.revision} queued")
