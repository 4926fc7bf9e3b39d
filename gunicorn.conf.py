"""gunicorn settings read by every `gunicorn` started from this directory (the Procfile's `web`, the benchmarks).

https://gunicorn.org/reference/settings/
"""

# The access log masks personal data and secrets in request lines (messaging_project/gunicorn_logging.py).
logger_class = "messaging_project.gunicorn_logging.RedactingLogger"
