from django.apps import AppConfig
from django.core import checks


class GuardConfig(AppConfig):
    name = "guard"
    verbose_name = "Cost guard"

    def ready(self) -> None:
        from guard.checks import quiet_hours_check

        # Connects the signal that makes a price saved here apply at once in this process.
        from guard.services import pricing  # noqa: F401

        # A mistyped QUIET_HOURS is found by `manage.py check` (and migrate) at release, not by the first message.
        checks.register(quiet_hours_check)
