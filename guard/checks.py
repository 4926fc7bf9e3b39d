"""System checks of the guard's settings (`manage.py check`)."""

from typing import Any

from django.core import checks
from django.core.exceptions import ImproperlyConfigured

from guard.services.quiet_hours import default_zone, quiet_hours_setting


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
