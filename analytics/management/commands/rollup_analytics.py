import signal
import time

from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError, close_old_connections

from analytics.services.rollup import analytics_rollup

# A long --every still notices SIGTERM this often.
STOP_CHECK_SECONDS = 0.5


class Command(BaseCommand):
    help = (
        "Count the timeline events and STOP replies not counted yet into the analytics rollups, until caught up "
        "(every dispatcher does the same every ANALYTICS_ROLLUP_INTERVAL seconds). Safe beside running dispatchers. "
        "With --every, keep doing it: a process of its own for volumes the dispatcher's slices cannot keep up with."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--every", type=float, default=None, help="Run again this many seconds after each pass, until stopped."
        )

    def handle(self, *args, every=None, **options):
        if every is None:
            read = analytics_rollup()
            self.stdout.write(f"Rollups up to date: {read} new row(s) counted.")
            return
        if every <= 0:
            raise CommandError("--every must be a number of seconds above 0, as --every 2.")
        self.stopping = False
        signal.signal(signal.SIGTERM, self._stop)
        signal.signal(signal.SIGINT, self._stop)
        self.stdout.write(f"Counting into the rollups every {every:g}s.")
        while not self.stopping:
            try:
                close_old_connections()
                analytics_rollup()
            except DatabaseError as error:
                self.stderr.write(f"Database unavailable, retrying in a moment: {error}")
            wake_at = time.monotonic() + every
            while not self.stopping and time.monotonic() < wake_at:
                time.sleep(min(STOP_CHECK_SECONDS, max(wake_at - time.monotonic(), 0)))
        self.stdout.write("Rollups stopped.")

    def _stop(self, signum, frame):
        self.stopping = True
