"""System checks of the guard's settings (`manage.py check`, and every start): a typo there is found at release,
not by the first message."""

from typing import Any

from django.conf import settings
from django.core import checks
from django.core.exceptions import ImproperlyConfigured

from guard.services.destinations import ALLOWLIST_SETTINGS, countries_problem
from guard.services.quiet_hours import default_zone, quiet_hours_setting


@checks.register("tidings")
def check_allowed_countries(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """An allowlist naming a country code `phonenumbers` does not know (UK for GB) would refuse every message to the
    country meant, or let through one that was not."""
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


@checks.register("tidings")
def quiet_hours_check(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """QUIET_HOURS, QUIET_HOURS_TRANSACTIONAL and QUIET_HOURS_DEFAULT_TIMEZONE are windows and a zone we can read."""
    errors: list[checks.CheckMessage] = []
    for read in (
        lambda: quiet_hours_setting(transactional=False),
        lambda: quiet_hours_setting(transactional=True),
        default_zone,
    ):
        try:
            read()
        except ImproperlyConfigured as error:
            errors.append(checks.Error(str(error), id="guard.E001"))
    return errors
