from django.apps import AppConfig


class AnalyticsConfig(AppConfig):
    """Rollups of what happened to messages (per hour, channel, campaign and outcome) and the figures read from them.

    Between deliveries (whose events it counts) and campaigns (whose pages show its figures).
    """

    name = "analytics"
    verbose_name = "Analytics"

    def ready(self) -> None:
        from .services import archive_hold  # noqa: F401  (keeps messages whose events are not counted yet)
