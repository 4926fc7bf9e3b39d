from django.apps import AppConfig


class DeliveriesConfig(AppConfig):
    name = "deliveries"
    verbose_name = "Deliveries"

    def ready(self) -> None:
        from . import checks  # noqa: F401  (registers the Redis system check)
        from .api import schema  # noqa: F401  (registers the OpenAPI auth extension)
        from .services import (
            api_keys,  # noqa: F401  (forgets a changed or deleted key in the shared cache)
            dependencies,  # noqa: F401  (settles dependents after every deciding transition)
            holds,  # noqa: F401  (re-admits held messages when a spend cap is raised)
            spend_caps,  # noqa: F401  (recounts a spend counter Redis lost, from messages)
        )
        from .webhooks import anymail  # noqa: F401  (connects the email tracking receiver)
