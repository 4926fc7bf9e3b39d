import logging
import signal
import time

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import DatabaseError, close_old_connections

from campaigns.services.campaign_scheduler import campaigns_tick
from deliveries.services.dependencies import dependencies_sweep
from deliveries.services.dispatch import dispatch_due_messages, requeue_orphaned_messages
from deliveries.services.feedback import receipts_prune
from deliveries.services.recovery import fail_expired_messages, recover_expired_leases

logger = logging.getLogger("deliveries.dispatcher")


class Command(BaseCommand):
    help = (
        "Hand due scheduled messages to the queues, re-queue what Redis forgot, release dependent messages. "
        "Safe to run in several places at once."
    )

    def add_arguments(self, parser):
        parser.add_argument("--once", action="store_true", help="Run one pass and exit.")
        parser.add_argument(
            "--interval",
            type=float,
            default=settings.DISPATCH_INTERVAL,
            help="Seconds between passes for due messages.",
        )

    def handle(self, *args, once=False, interval=None, **options):
        self.stopping = False
        signal.signal(signal.SIGTERM, self._stop)
        signal.signal(signal.SIGINT, self._stop)
        reconcile_every = max(settings.RECONCILE_AFTER / 3, 1.0)
        next_reconcile = 0.0
        next_campaign_tick = 0.0
        self.stdout.write(
            f"Dispatcher running: due messages every {interval}s, reconciling every {reconcile_every:.0f}s."
        )
        while not self.stopping:
            started = time.monotonic()
            dispatched = 0
            try:
                close_old_connections()
                dispatched = dispatch_due_messages()
                if dispatched:
                    logger.info("Queued %s due message(s)", dispatched)
                if started >= next_campaign_tick:
                    # Campaigns: fire recurring occurrences, start, complete (with the owner's summary), restart stalled
                    # fan-outs.
                    campaigns_tick()
                    next_campaign_tick = started + settings.CAMPAIGN_TICK_INTERVAL
                if started >= next_reconcile:
                    requeue_orphaned_messages()
                    fail_expired_messages()
                    recovered = recover_expired_leases()
                    if recovered["review"]:
                        logger.warning("%s message(s) interrupted mid-call need review", recovered["review"])
                    if recovered["resent"]:
                        logger.warning("%s message(s) interrupted mid-call will be sent again", recovered["resent"])
                    receipts_prune()
                    dependencies_sweep()
                    next_reconcile = started + reconcile_every
            except DatabaseError as error:
                logger.error("Database unavailable, retrying in a moment: %s", error)
            if once:
                break
            time.sleep(max(interval - (time.monotonic() - started), 0.0) if dispatched == 0 else 0)
        self.stdout.write("Dispatcher stopped.")

    def _stop(self, signum, frame):
        self.stopping = True
