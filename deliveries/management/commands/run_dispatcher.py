import contextlib
import logging
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import DatabaseError, close_old_connections
from django.utils.module_loading import import_string
from redis.exceptions import RedisError

from deliveries.services.dispatch import (
    JOB_SPAN_SECONDS,
    HeldJobs,
    dispatch_due_messages,
    next_send_at,
    requeue_orphaned_messages,
)
from deliveries.services.heartbeat import Heartbeat

logger = logging.getLogger("deliveries.dispatcher")

# A long sleep (a long --interval) still notices SIGTERM this often.
STOP_CHECK_SECONDS = 0.5
# Messages claimed in one pass at most; a full pass means more may be due, so the next starts at once.
PASS_LIMIT = 5000


def next_pass_after_claims(dispatched: int, *, lookahead: float, wake_at: float, now: float | None = None) -> float:
    """When to look again after a pass that claimed `dispatched` messages (`wake_at`: the regular next pass).

    A full pass may have left more due now: at once. So without a lookahead, where what is claimed is due. With
    one, what comes into the lookahead next is claimed a moment later, still long before it is due, so a burst is
    cut into held jobs of JOB_SPAN_SECONDS of due times rather than of one pass's few milliseconds (5,000 due in
    a second were cut into jobs of about 100 messages, each one more take-over for a worker; now 150-200).
    """
    now = time.time() if now is None else now
    if dispatched >= PASS_LIMIT or lookahead <= 0:
        return now
    return min(wake_at, now + JOB_SPAN_SECONDS)


@dataclass
class PeriodicTask:
    """One entry of DISPATCHER_PERIODIC_TASKS: a function of no arguments, run every `every` seconds."""

    name: str
    run: Callable[[], object]
    every: float
    due_at: float = 0.0  # monotonic; 0 runs it on the first pass

    @classmethod
    def from_setting(cls, path: str, every: float) -> "PeriodicTask":
        return cls(name=path.rsplit(".", 1)[-1], run=import_string(path), every=float(every))


class Command(BaseCommand):
    help = (
        "Hand due scheduled messages to the queues, and run the periodic tasks of DISPATCHER_PERIODIC_TASKS "
        "(the reconciler, the campaign scheduler). Safe to run in several places at once."
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
        lookahead = max(settings.DISPATCH_LOOKAHEAD, 0.0)
        held = HeldJobs(lead=settings.DISPATCH_PUSH_LEAD)
        tasks = [PeriodicTask.from_setting(path, every) for path, every in settings.DISPATCHER_PERIODIC_TASKS]
        schedule = ", ".join(f"{task.name} every {task.every:g}s" for task in tasks)
        self.heartbeat = Heartbeat()
        self.stdout.write(
            f"Dispatcher running: due messages every {interval}s (claimed up to {lookahead}s ahead); {schedule}."
        )
        while not self.stopping:
            started = time.monotonic()
            dispatched = 0
            wake_at = time.time() + interval
            self._beat()
            try:
                close_old_connections()
                if self.heartbeat.redis_replaced():
                    self._requeue_what_redis_lost()
                held.push_due()
                dispatched = dispatch_due_messages(limit=PASS_LIMIT, lookahead=lookahead, held=held)
                if dispatched:
                    logger.info("Queued %s due message(s)", dispatched)
                    wake_at = next_pass_after_claims(dispatched, lookahead=lookahead, wake_at=wake_at)
                elif lookahead < interval:
                    # Polling alone would see a message due before the next pass too late: wake for it.
                    wake_at = min(wake_at, self._claim_time_of_next_due(lookahead, fallback=wake_at))
                # A task that hits a DatabaseError ends the pass (below) and stays due: it runs again on the next.
                for task in tasks:
                    if started >= task.due_at:
                        held.push_due()  # a task may take a while: what falls due meanwhile goes first
                        task.run()
                        task.due_at = started + task.every
                held.push_due()
            except DatabaseError as error:
                logger.error("Database unavailable, retrying in a moment: %s", error)
            except RedisError as error:
                # What touches Redis handles its loss itself; this is the net under it (a failover's READONLY too).
                logger.error("Redis unavailable, retrying in a moment: %s", error)
            if once:
                break
            self._sleep_until(wake_at, held)
        # Jobs held for their time go to Redis now rather than wait for the reconciler; each still waits for it.
        held.push_all()
        with contextlib.suppress(RedisError, OSError):  # its beat then just ages out
            self.heartbeat.stop()
        self.stdout.write("Dispatcher stopped.")

    @staticmethod
    def _claim_time_of_next_due(lookahead: float, *, fallback: float) -> float:
        at = next_send_at()
        if at is None:
            return fallback
        claim_at = at.timestamp() - lookahead
        # Due already but left behind (a rate limit, a paused provider): that is for the next regular pass.
        return claim_at if claim_at > time.time() else fallback

    def _sleep_until(self, wake_at: float, held: HeldJobs) -> None:
        """Sleep until the next pass, waking on time for every held job that falls due before it."""
        while not self.stopping:
            self._beat()
            now = time.time()
            push_at = held.next_push_at()
            if push_at is not None and push_at <= now:
                held.push_due(now)
                continue
            until = min(wake_at, push_at) if push_at is not None else wake_at
            if until <= now:
                return
            time.sleep(min(until - now, STOP_CHECK_SECONDS))

    @staticmethod
    def _requeue_what_redis_lost() -> None:
        """Another Redis server answers (restarted empty, or a replica promoted without the last writes): every
        queued message whose job it lacks is queued again now, not RECONCILE_AFTER seconds after it was queued. A
        message whose job was only late to arrive gets a second job, and one of the two finds nothing to claim."""
        count = requeue_orphaned_messages(older_than=0)
        logger.warning("Redis was replaced (a restart or a failover); re-queued %s message(s) it had lost", count)

    def _beat(self) -> None:
        try:
            self.heartbeat.beat()
        except (RedisError, OSError) as error:
            logger.error("Could not record the dispatcher's heartbeat in Redis: %s", error)

    def _stop(self, signum, frame):
        self.stopping = True
