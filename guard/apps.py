from django.apps import AppConfig


class GuardConfig(AppConfig):
    name = "guard"
    verbose_name = "Cost guard"

    def ready(self) -> None:
        # Registers the guard's system checks (allowlists: tidings.E070; quiet hours: guard.E001).
        from guard import checks  # noqa: F401

        # Connects the signal that makes a price saved here apply at once in this process.
        from guard.services import pricing  # noqa: F401
