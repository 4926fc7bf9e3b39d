from django.apps import AppConfig


class CampaignsConfig(AppConfig):
    name = "campaigns"
    verbose_name = "Campaigns"

    def ready(self) -> None:
        from deliveries.services.holds import register_release_pause
        from deliveries.services.spend_caps import register_cap_source

        from .services import archive_hold  # noqa: F401  (keeps the messages of campaigns not over yet)
        from .services.campaign_spend_caps import campaign_cap_source, paused_campaign_messages

        # A running campaign's messages are held once it has spent its own cap (Campaign.spend_cap).
        register_cap_source(campaign_cap_source)
        # A paused campaign's held messages, released or re-admitted, wait for the campaign to resume.
        register_release_pause(paused_campaign_messages)
