from django.apps import AppConfig


class ConsoleConfig(AppConfig):
    """The operations console: the dashboard, the queue monitor, metrics for Prometheus and alerts. On top of every
    other app: it reads them all, none imports it."""

    name = "console"
    verbose_name = "Operations console"

    def ready(self) -> None:
        from . import metrics_checks  # noqa: F401 - registers the checks
