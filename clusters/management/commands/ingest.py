"""`manage.py ingest [--follow]`: read agent events from Redis into the database.

The central worker does this on beat's schedule; `--follow` runs it as a blocking loop instead (XREAD BLOCK),
which reports check flips and applies within milliseconds rather than on the next beat tick.
"""

import time

from django.core.management.base import BaseCommand

from clusters import ingest


class Command(BaseCommand):
    help = "Ingest director events from Redis (once, or --follow for a low-latency loop)."

    def add_arguments(self, parser):
        parser.add_argument("--follow", action="store_true")
        parser.add_argument("--max-seconds", type=float, default=None, help="stop following after this long")

    def handle(self, *args, follow, max_seconds, **options):
        if not follow:
            self.stdout.write(f"ingested {ingest.ingest()} event(s)")
            return
        end = time.monotonic() + max_seconds if max_seconds else None
        last_hb = 0.0
        while end is None or time.monotonic() < end:
            t0 = time.monotonic()
            if not ingest.ingest(block_ms=1000) and time.monotonic() - t0 < 0.5:
                time.sleep(0.5)  # Redis down (or answering instantly with nothing): do not spin
            if time.monotonic() - last_hb > 2:
                ingest.refresh_heartbeats()
                last_hb = time.monotonic()
