"""gunicorn settings read by every `gunicorn` started from this directory (the Procfile's `web`, the benchmarks).

https://gunicorn.org/reference/settings/
"""

# The access log masks personal data and secrets in request lines (messaging_project/gunicorn_logging.py).
logger_class = "messaging_project.gunicorn_logging.RedactingLogger"


def child_exit(server, worker):
    """prometheus_client's multiprocess mode: forget an exited worker's live gauges (docs/metrics.md)."""
    import os

    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
