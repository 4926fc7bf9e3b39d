import gc
import logging
import signal
import socket
import sys
import threading
import time

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand
from django.utils.module_loading import import_string
from redis.exceptions import RedisError

from deliveries.health import redis_location, redis_status, redis_write_status
from deliveries.instruments import share_files_across_work_horses
from messaging_project.redis_connections import RedisConfig

logger = logging.getLogger("deliveries.worker")


class Command(BaseCommand):
    help = (
        "Run an RQ worker on the high, default and low queues (in that order). "
        "Wraps `rqworker`: says in one line when Redis is unreachable at start, and when Redis goes away later "
        "(a restart, a failover) waits for it to come back and works on instead of exiting."
    )
    requires_system_checks: list[str] = []

    def add_arguments(self, parser):
        parser.add_argument("queues", nargs="*", default=["high", "default", "low"])
        parser.add_argument("--burst", action="store_true", help="Exit once the queues are empty.")
        parser.add_argument("--worker-class", default=None, help="Dotted path of an RQ worker class.")
        parser.add_argument("--name", default=None)
        parser.add_argument("--max-jobs", type=int, default=None)

    def handle(self, *args, queues, burst, worker_class, name, max_jobs, **options):
        # The worker skips the system checks (they would ping everything): a half Redis configuration is still
        # refused here, in one line, rather than run against the wrong Redis.
        for problem, hint in RedisConfig.from_settings(settings).problems():
            self.stderr.write(f"{problem} {hint}")
            sys.exit(1)
        status = redis_status()
        if not status["ok"]:
            self.stderr.write(
                f"Redis is unreachable at {redis_location()} ({status['error']}); "
                "start Redis or set REDIS_URL (or REDIS_SENTINELS), then start the worker again."
            )
            sys.exit(1)
        share_files_across_work_horses()
        serve_metrics_if_asked()
        preload_send_path()
        while True:
            started = time.monotonic()
            with StopSignals() as stop_signals:
                try:
                    call_command(
                        "rqworker",
                        *queues,
                        burst=burst,
                        worker_class=worker_class,
                        name=name,
                        max_jobs=max_jobs,
                        worker_ttl=settings.WORKER_TTL,
                        skip_checks=True,
                        verbosity=options["verbosity"],
                    )
                    # RQ's loop also ends, without raising, when a Redis error it does not expect (READONLY from a
                    # demoted master, UNBLOCKED, a timeout) reaches it: only a stop we were sent ends the worker.
                    if burst or max_jobs or stop_signals.received():
                        return
                    logger.warning("RQ's worker loop ended by itself (see its error above).")
                except SystemExit as exit_:
                    # rqworker exits 1 when it loses its connection to Redis; anything else ends here as it would.
                    if burst or exit_.code in (0, None) or stop_signals.received():
                        raise
                except RedisError as error:
                    # Raised before RQ's loop, e.g. READONLY: the address answers, as a replica (a failover).
                    logger.warning("Redis refused the worker: %s", error)
            # A Redis that answers pings but refuses the worker would have it start again and again at once.
            if not self.wait_for_redis(at_least=max(0.0, 1.0 - (time.monotonic() - started))):
                return

    def wait_for_redis(self, at_least: float = 0.0) -> bool:
        """After losing Redis: wait until it answers again (True) or until we are told to stop (False); `at_least`
        seconds in any case.

        The jobs Redis lost are rebuilt from the database by the dispatcher's reconciler, so there is nothing to
        recover here: only to be there to work when it comes back. With Sentinel each check asks the sentinels
        where the master is, so this finds the new master after a failover.
        """
        stop = {"requested": False}
        previous = {
            sig: signal.signal(sig, lambda *_: stop.update(requested=True)) for sig in (signal.SIGTERM, signal.SIGINT)
        }
        logger.warning("Lost Redis at %s; waiting for it to come back, then working again.", redis_location())
        not_before = time.monotonic() + at_least
        try:
            while not stop["requested"]:
                if time.monotonic() >= not_before and redis_write_status()["ok"]:
                    logger.warning("Redis is back; the worker starts again.")
                    return True
                time.sleep(min(1.0, max(not_before - time.monotonic(), 0.0)) or 1.0)
            return False
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


class StopSignals:
    """Whether SIGTERM or SIGINT arrived while RQ's worker ran. RQ installs its own handlers for them (its warm
    shutdown), so one of ours would never run; but Python also writes the number of every signal it handles to the
    wakeup file descriptor, whoever's handler that is. A thread reads them as they come, so that the others (RQ's
    SIGALRM while it watches a long job) can never fill the socket and crowd out a stop."""

    STOPS = {signal.SIGTERM, signal.SIGINT}

    def __enter__(self) -> "StopSignals":
        self._read, self._write = socket.socketpair()
        self._write.setblocking(False)
        self._read.settimeout(0.2)
        self._previous = signal.set_wakeup_fd(self._write.fileno(), warn_on_full_buffer=False)
        self._seen: set[int] = set()
        self._watching = True
        self._reader = threading.Thread(target=self._note, name="stop-signals", daemon=True)
        self._reader.start()
        return self

    def _note(self) -> None:
        # Not until the end of the stream: work horses forked meanwhile hold the writing end too.
        while self._watching:
            try:
                self._seen.update(self._read.recv(64))
            except TimeoutError:
                continue
            except OSError:
                return

    def received(self) -> bool:
        """Whether a stop came; once asked, the signals are no longer watched."""
        if self._watching:
            signal.set_wakeup_fd(self._previous)
            self._watching = False
            self._reader.join()
            self._read.setblocking(False)
            try:
                while data := self._read.recv(64):  # what came after the reader's last look
                    self._seen.update(data)
            except BlockingIOError:
                pass
            self._read.close()
            self._write.close()
        return bool(self._seen & self.STOPS)

    def __exit__(self, *exc_info) -> None:
        self.received()


def serve_metrics_if_asked() -> None:
    """With METRICS_PORT, serve what this host's processes observed (PROMETHEUS_MULTIPROC_DIR) for Prometheus: for
    a worker host without a web process, whose /metrics would show them (docs/metrics.md)."""
    if not settings.METRICS_PORT:
        return
    from prometheus_client import CollectorRegistry, start_http_server
    from prometheus_client.multiprocess import MultiProcessCollector

    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=settings.PROMETHEUS_MULTIPROC_DIR)
    address = f"http://{settings.METRICS_ADDR}:{settings.METRICS_PORT}/metrics"
    try:
        start_http_server(settings.METRICS_PORT, addr=settings.METRICS_ADDR, registry=registry)
    except OSError as error:
        # Another worker of this host serves them (the same files), or the port is someone else's: work on.
        logger.warning("Not serving metrics at %s (%s); another process of this host may be.", address, error)
        return
    logger.info("Serving this host's metrics at %s", address)


def preload_send_path() -> None:
    """Import the send path and the providers' clients here, once: RQ forks a process per job, and a fork that has
    to import them itself spends longer on that than on sending a batch."""
    from django.db import connections

    import deliveries.jobs  # noqa: F401
    import deliveries.services.dependencies  # noqa: F401
    import deliveries.services.feedback  # noqa: F401
    from deliveries.backends import backend_path_for
    from deliveries.backends.sms.twilio import status_callback_path

    for channel in ("sms", "email"):
        import_string(backend_path_for(channel))
    import_string(settings.EMAIL_BACKEND)
    status_callback_path()  # loads the URLconf
    connections["default"]  # loads the database backend, without connecting
    # What is loaded now lives as long as the worker: the garbage collector leaves it alone from here on. Each
    # work horse would otherwise walk (and, by touching every object's header, copy) the whole inherited heap at
    # its first full collection.
    gc.freeze()
