from django.apps import AppConfig


class CampaignsConfig(AppConfig):
    name = "campaigns"
    verbose_name = "Campaigns"

    def ready(self) -> None:
        from .services import archive_hold  # noqa: F401  (keeps the messages of campaigns not over yet)
