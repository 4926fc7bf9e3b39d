"""What stops a campaign from being saved or launched, field by field, and the spelling it is stored in.

Format problems (a value given wrongly: an unknown time zone, a cron expression that is not one) are refused even
in a draft; the rest (what is still missing: a template, an audience, a time to send at) only at launch.
"""

from __future__ import annotations

import contextlib
from collections import Counter
from datetime import timedelta

from django.core.exceptions import ValidationError

from content.locales import normalize_time_zone
from deliveries.services.dependencies import ENGAGEMENT_CHANNELS, ENGAGEMENT_CONDITIONS
from deliveries.services.messages import SUPPORTED_CHANNELS
from guard.services.destinations import ALLOWLIST_SETTINGS, destination_refused, destinations_restricted

from ..models import Campaign
from ..scheduling import cron_is_valid
from ..selectors import ADDRESS_FIELDS, campaign_recipients
from .campaign_cost import CampaignCostEstimate, campaign_cost_estimate, campaign_spend_cap_problem

# How many recipients' numbers the launch check looks at for countries their channel may not send to: the
# fan-out checks every one, this only warns, and reading a million numbers would hold up the launch page.
LAUNCH_CHECK_RECIPIENTS = 10_000


def campaign_problems(
    campaign: Campaign, *, with_cost: bool = True, estimate: CampaignCostEstimate | None = None
) -> dict[str, list[str]]:
    """What stops the campaign from being launched, by field (empty when it is ready).

    A campaign with a spend cap is estimated (campaign_cost_estimate, unless `estimate` is given) once the rest
    is in order; `with_cost=False` leaves that out where it would cost too much (a list of campaigns)."""
    problems = campaign_format_problems(campaign)

    def problem(field: str, text: str) -> None:
        problems.setdefault(field, []).append(text)

    template = campaign.template  # None, without a query, when none is chosen
    if template is None:
        problem("template", "Choose the template to send.")
    elif template.channel not in SUPPORTED_CHANNELS:
        problem("template", f"Tidings cannot send {template.get_channel_display()} messages yet.")
    if campaign.pk is not None:
        for text in campaign_step_problems(campaign):
            problem("steps", text)
    if bool(campaign.contact_list_id) == bool(campaign.segment_id):
        problem("contact_list", "Choose the audience: a contact list or a segment (one of them).")
    if campaign.schedule == Campaign.Schedule.AT and campaign.send_at is None:
        problem("send_at", "Give the time to send at.")
    if campaign.schedule == Campaign.Schedule.LOCAL_TIME and campaign.local_time is None:
        problem("local_time", "Give the local time of day to send at, like 09:00.")
    if with_cost and campaign.spend_cap is not None and not problems:
        estimate = estimate or campaign_cost_estimate(campaign=campaign)
        if cap_problem := campaign_spend_cap_problem(campaign=campaign, estimate=estimate):
            problem("spend_cap", cap_problem)
    return problems


def campaign_warnings(campaign: Campaign) -> list[str]:
    """What the campaign will leave out though it can be launched: recipients in countries its channel may not
    send to under the destination allowlists (the fan-out creates no message for them). Reads the numbers of at
    most LAUNCH_CHECK_RECIPIENTS recipients; nothing at all when the channel has no list."""
    template = campaign.template
    if template is None or not destinations_restricted(template.channel):
        return []
    channel = template.channel
    recipients = campaign_recipients(campaign=campaign, channel=channel).order_by()
    addresses = list(recipients.values_list(ADDRESS_FIELDS[channel], flat=True)[: LAUNCH_CHECK_RECIPIENTS + 1])
    refused: Counter[str] = Counter()
    for address in addresses[:LAUNCH_CHECK_RECIPIENTS]:
        refusal = destination_refused(channel=channel, recipient=address)
        if refusal is not None:
            refused[refusal.country] += 1
    if not refused:
        return []
    total = sum(refused.values())
    among = f" among the first {LAUNCH_CHECK_RECIPIENTS:,}" if len(addresses) > LAUNCH_CHECK_RECIPIENTS else ""
    countries = ", ".join(f"{country} {count}" for country, count in sorted(refused.items()))
    return [
        f"{total} recipient{'s' if total != 1 else ''}{among} {'are' if total != 1 else 'is'} in countries "
        f"{template.get_channel_display()} may not be sent to ({countries}; {ALLOWLIST_SETTINGS[channel]}): "
        "no message will be created for them."
    ]


def campaign_step_problems(campaign: Campaign) -> list[str]:
    """What is wrong with the campaign's follow-up steps (empty when they are fine, or when it has none)."""
    problems = []
    previous = campaign.template
    for step in campaign.steps.select_related("template"):
        name = f"Step {step.position}"
        template = step.template
        if template.channel not in SUPPORTED_CHANNELS:
            problems.append(f"{name}: Tidings cannot send {template.get_channel_display()} messages yet.")
        if step.condition in ENGAGEMENT_CONDITIONS and (
            previous is None or previous.channel not in ENGAGEMENT_CHANNELS
        ):
            before = f"step {step.position - 1}" if step.position > 1 else "the campaign's own message"
            channel = previous.get_channel_display() if previous else "not chosen"
            problems.append(
                f"{name}: opens and clicks are only reported for email, and {before} is {channel}; "
                "use the sent or delivered condition."
            )
        if step.window is not None and step.condition not in ENGAGEMENT_CONDITIONS:
            problems.append(f"{name}: a window applies to the not opened and not clicked conditions only.")
        elif step.window is not None and step.window <= timedelta(0):
            problems.append(f"{name}: the window must be longer than zero.")
        if step.delay < timedelta(0):
            problems.append(f"{name}: the delay cannot be negative.")
        previous = template
    positions = list(campaign.steps.values_list("position", flat=True))
    if positions != list(range(1, len(positions) + 1)):
        problems.append(f"Steps are numbered {', '.join(map(str, positions))}; number them 1, 2, 3… with no gaps.")
    return problems


def campaign_format_problems(campaign: Campaign) -> dict[str, list[str]]:
    """What is wrong with the values given (as opposed to missing): refused even in a draft."""
    problems: dict[str, list[str]] = {}

    def problem(field: str, text: str) -> None:
        problems.setdefault(field, []).append(text)

    if (campaign.quiet_hours_start is None) != (campaign.quiet_hours_end is None):
        problem("quiet_hours_end", "Give both ends of the quiet hours, or neither.")
    elif campaign.quiet_hours_start is not None and campaign.quiet_hours_start == campaign.quiet_hours_end:
        problem("quiet_hours_end", "The quiet hours start and end at the same time.")
    if campaign.time_zone:
        try:
            normalize_time_zone(campaign.time_zone)
        except ValidationError as error:
            problem("time_zone", error.messages[0])
    if campaign.rate_limit_per_minute == 0:
        problem("rate_limit_per_minute", "A rate limit of 0 would send nothing; leave it empty for no limit.")
    if campaign.recurrence:
        if not cron_is_valid(campaign.recurrence):
            problem(
                "recurrence",
                f"'{campaign.recurrence}' is not a cron expression (minute hour day month weekday, "
                "like '0 9 * * MON').",
            )
        if campaign.schedule != Campaign.Schedule.NOW:
            problem("schedule", "A recurring campaign sends at its cron times: set the schedule to 'now'.")
        if campaign.parent_id:
            problem("recurrence", "An occurrence of a recurring campaign cannot recur itself.")
    return problems


def campaign_normalize(campaign: Campaign) -> None:
    """Spell the time zone canonically and the cron expression with single spaces (in place)."""
    if campaign.time_zone:
        with contextlib.suppress(ValidationError):  # an unknown zone is reported by campaign_format_problems
            campaign.time_zone = normalize_time_zone(campaign.time_zone)
    campaign.recurrence = " ".join(campaign.recurrence.split())


def campaign_clean(campaign: Campaign, *, estimate: CampaignCostEstimate | None = None) -> None:
    """Normalise what can be normalised; raise ValidationError(field -> messages) for what stops a launch."""
    campaign_normalize(campaign)
    if problems := campaign_problems(campaign, estimate=estimate):
        raise ValidationError(problems)
