"""`manage.py check` (and every start) refuses an allowlist naming a country code it does not know: a typo there
(UK for GB) would refuse every message to the country meant, or let through one that was not."""

from typing import Any

from django.conf import settings
from django.core import checks

from guard.services.destinations import ALLOWLIST_SETTINGS, countries_problem


@checks.register("tidings")
def check_allowed_countries(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    errors: list[checks.CheckMessage] = []
    for name in ALLOWLIST_SETTINGS.values():
        problem = countries_problem(getattr(settings, name))
        if problem:
            errors.append(
                checks.Error(
                    f"{name}: {problem}",
                    hint=f"List ISO codes separated by commas, like {name}=GB,US; leave it empty to allow every "
                    "country (docs/guard.md, Destination allowlists).",
                    id="tidings.E070",
                )
            )
    return errors
