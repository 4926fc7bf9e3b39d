from django.apps import AppConfig


class GuardConfig(AppConfig):
    name = "guard"
    verbose_name = "Cost guard"

    def ready(self) -> None:
        # Connects the signal that makes a price saved here apply at once in this process.
        from guard import checks  # noqa: F401  (registers the allowlists' check, tidings.E070)
        from guard.services import pricing  # noqa: F401
