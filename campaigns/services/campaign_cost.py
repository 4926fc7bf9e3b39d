"""A campaign's cost before launch: each recipient's billed units (SMS segments, else one message) times the price
to their country, by country (docs/guard.md, "A campaign's cost"), and the spend cap that refuses a launch.

It must stay cheap at 100,000 recipients, so nothing is done per recipient that can be done per group: a country
is worked out once per calling code (once per number range where several countries share a code), a text is
rendered once per distinct set of the values it reads (once per language when it reads none) and its segments
counted once per distinct rendered text, and each country is priced once. The database does the grouping, so
Python sees one row per group rather than per recipient.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import ROUND_UP, Decimal
from typing import Any

import phonenumbers
from django.db.models import Case, CharField, Count, Expression, F, Min, Q, Value, When
from django.db.models.functions import Substr
from django.template import TemplateSyntaxError

from content.models import Channel, MessageTemplate
from content.services.templates import (
    CONTACT_VARIABLES,
    TemplateRenderError,
    TemplateVersion,
    template_version,
    version_render,
)
from content.template_syntax import variables_used
from guard.models import ANY_COUNTRY
from guard.services.pricing import COUNTRY_PRICED, billed_units, destination_country, price_list

from ..models import Campaign, Contact
from ..selectors import ADDRESS_FIELDS, campaign_recipients, contact_context

MICROS = Decimal("0.000001")
# Where several countries share a calling code (+1, +7, +44 …) the number's first digits after the code decide
# which; the ranges phonenumbers tells them apart by are no longer than this.
RANGE_DIGITS = 6


@dataclass(frozen=True)
class CountryCost:
    country: str  # ISO alpha-2; "" on channels without a destination country (email, Messenger)
    recipients: int
    segments: int  # billed units: SMS segments, else messages
    unit_price: Decimal
    currency: str
    cost: Decimal


@dataclass(frozen=True)
class CampaignCostEstimate:
    """What the campaign would cost if launched now. `total` is None when its prices are in several currencies
    (they are not added up); recipients without a price are counted apart, never as costing nothing."""

    total: Decimal | None
    currency: str
    by_country: list[CountryCost]
    recipients: int  # everyone the fan-out would create a message for
    unpriced_recipients: int
    unpriced_countries: list[str] = field(default_factory=list)  # "" stands for a number no country was found for
    unrenderable_recipients: int = 0  # their message would fail (a required variable they lack): never billed

    @property
    def countries(self) -> int:
        return len({row.country for row in self.by_country} | set(self.unpriced_countries))

    def as_json(self) -> dict[str, Any]:
        """The API's `estimated_cost`: decimals as strings with 6 places."""
        return {
            "total": _money(self.total),
            "currency": self.currency,
            "by_country": [
                {
                    "country": row.country,
                    "recipients": row.recipients,
                    "segments": row.segments,
                    "unit_price": _money(row.unit_price),
                    "currency": row.currency,
                    "cost": _money(row.cost),
                }
                for row in self.by_country
            ],
            "recipients": self.recipients,
            "unpriced_recipients": self.unpriced_recipients,
            "unpriced_countries": self.unpriced_countries,
            "unrenderable_recipients": self.unrenderable_recipients,
        }


def _money(value: Decimal | None) -> str | None:
    return None if value is None else str(value.quantize(MICROS))


def campaign_cost_estimate(*, campaign: Campaign) -> CampaignCostEstimate:
    """The campaign's cost if launched now, by destination country, for its own message to each recipient (the
    follow-up steps are not counted: whether they go depends on what each recipient does).

    The database groups the recipients by what decides their cost (their number's place, see `_place`, and, when
    the text differs from one recipient to the next, the language and the values it reads): Python then works on
    groups, with one number of each to find its country by."""
    template = campaign.template
    if template is None or template.channel not in ADDRESS_FIELDS:
        return CampaignCostEstimate(total=None, currency="", by_country=[], recipients=0, unpriced_recipients=0)
    channel = template.channel
    address = ADDRESS_FIELDS[channel]
    units_of = _SegmentCounter(template) if channel == Channel.SMS else None
    columns = units_of.columns if units_of else ()
    rows = (
        campaign_recipients(campaign=campaign, channel=channel)
        .order_by()
        .annotate(place=_place(channel, address))
        .values("place", *columns)
        .annotate(count=Count("pk"), example=Min(address))
        .values_list("example", "count", *columns)
    )

    country_of = _country_finder(channel)
    groups: dict[str, list[int]] = {}  # country -> [recipients, units]
    recipients = unrenderable = 0
    for example, count, *values in rows.iterator(chunk_size=5000):
        recipients += count
        units = units_of(values) if units_of else 1
        if units is None:
            unrenderable += count
            continue
        group = groups.setdefault(country_of(example), [0, 0])
        group[0] += count
        group[1] += units * count
    return _priced(channel, groups, recipients=recipients, unrenderable=unrenderable)


def _place(channel: str, address: str) -> Expression:
    """What decides a recipient's country, in SQL: the calling code and its next digit where the code is one
    country's, the code and RANGE_DIGITS more where several countries share it (as _country_finder tells them
    apart), the whole number when it is not written +…; nothing on channels without a country."""
    if channel not in COUNTRY_PRICED:
        return Value("")
    shared = [
        When(**{f"{address}__startswith": f"+{code}"}, then=Substr(address, 1, 1 + len(str(code)) + RANGE_DIGITS))
        for code, regions in phonenumbers.COUNTRY_CODE_TO_REGION_CODE.items()
        if len(regions) > 1
    ]
    return Case(
        When(~Q(**{f"{address}__startswith": "+"}), then=F(address)),
        *shared,
        default=Substr(address, 1, 4),
        output_field=CharField(),
    )


def _priced(channel: str, groups: dict[str, list[int]], *, recipients: int, unrenderable: int) -> CampaignCostEstimate:
    prices = price_list().rows
    by_country, unpriced, unpriced_countries = [], 0, []
    for country, (count, units) in sorted(groups.items()):
        found = prices.get((channel, country)) or prices.get((channel, ANY_COUNTRY))
        if found is None:
            unpriced += count
            unpriced_countries.append(country)
            continue
        price, currency = found
        by_country.append(
            CountryCost(
                country=country,
                recipients=count,
                segments=units,
                unit_price=price,
                currency=currency,
                cost=price * units,
            )
        )
    currencies = {row.currency for row in by_country}
    single = len(currencies) <= 1
    return CampaignCostEstimate(
        total=sum((row.cost for row in by_country), Decimal(0)) if single else None,
        currency=next(iter(currencies), "") if single else "",
        by_country=by_country,
        recipients=recipients,
        unpriced_recipients=unpriced,
        unpriced_countries=unpriced_countries,
        unrenderable_recipients=unrenderable,
    )


def _country_finder(channel: str) -> Callable[[str], str]:
    """A memoised pricing.destination_country for the campaign's addresses: once per calling code that belongs to
    one country (what phonenumbers answers for any number with it), once per number range otherwise."""
    if channel not in COUNTRY_PRICED:
        return lambda address: ANY_COUNTRY
    known: dict[str, str] = {}
    regions_by_code = phonenumbers.COUNTRY_CODE_TO_REGION_CODE

    def country_of(address: str) -> str:
        key = address
        if address.startswith("+"):
            for length in (1, 2, 3):  # calling codes are prefix-free: at most one of these is one
                code = address[1 : 1 + length]
                regions = regions_by_code.get(int(code)) if code.isdigit() else None
                if regions:
                    key = address[: 1 + length] if len(regions) == 1 else address[: 1 + length + RANGE_DIGITS]
                    break
        found = known.get(key)
        if found is None:
            found = known[key] = destination_country(channel, address)
        return found

    return country_of


class _SegmentCounter:
    """An SMS's segments for a recipient row: rendered once per language version and distinct values of the
    variables it reads, counted once per distinct text. Returns None for a recipient whose message would fail."""

    def __init__(self, template: MessageTemplate):
        self.template = template
        versions = [template_version(template=template)]
        versions += [template_version(template=template, language=t.language) for t in template.translations.all()]
        self.names = sorted({name for version in versions for name in _names_read(version)})
        contact_fields = {"name", "phone", "email", "time_zone"}
        self.fields = ["name" if n == "first_name" else n for n in self.names if n in CONTACT_VARIABLES]
        self.fields = [n for n in dict.fromkeys(self.fields) if n in contact_fields]
        self.attributes = [n for n in self.names if n not in CONTACT_VARIABLES]
        # What the text depends on, as columns of the contact (grouped by in SQL).
        self.columns = ("language", *self.fields, *(("attributes",) if self.attributes else ()))
        self.versions: dict[str, TemplateVersion] = {}
        self.renders: dict[tuple[Any, ...], int | None] = {}
        self.texts: dict[str, int] = {}

    def __call__(self, row: list[Any]) -> int | None:
        """Segments for a row of `columns` values: (language, *contact fields, attributes if any are read)."""
        language = row[0]
        version = self.versions.get(language)
        if version is None:
            version = self.versions[language] = template_version(template=self.template, language=language)
        values = tuple(row[1 : 1 + len(self.fields)])
        attributes = (row[-1] or {}) if self.attributes else {}
        key = (version.language, language, values, *(_hashable(attributes.get(n)) for n in self.attributes))
        if key not in self.renders:
            fields = dict(zip(self.fields, values, strict=True))
            self.renders[key] = self._segments(version, fields, attributes, language)
        return self.renders[key]

    def _segments(
        self, version: TemplateVersion, fields: dict[str, str], attributes: dict[str, Any], language: str
    ) -> int | None:
        contact = Contact(language=language, attributes=attributes or {}, **fields)
        try:
            content = version_render(
                version=version,
                variables=self.template.variables,
                context=contact_context(contact=contact),
                channel=Channel.SMS,
            )
        except TemplateRenderError:
            return None
        units = self.texts.get(content.body)
        if units is None:
            units = self.texts[content.body] = billed_units(Channel.SMS, content.body)
        return units


def _names_read(version: TemplateVersion) -> Iterable[str]:
    try:
        return [use.name for use in variables_used(version.body)]
    except TemplateSyntaxError:
        return []  # the render fails, and says why, for every recipient


def _hashable(value: Any) -> Any:
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return json.dumps(value, sort_keys=True, default=str)


# --- The spend cap ------------------------------------------------------------------------------------------


def _amount(value: Decimal) -> str:
    """An amount for people: two places, rounded up, so that an estimate over a cap never reads as equal to it."""
    return f"{value.quantize(Decimal('0.01'), rounding=ROUND_UP):,.2f}"


def price_list_currency() -> str:
    """The currency of the price list (a cap is in it); "" when it has none, or several."""
    currencies = {currency for _price, currency in price_list().rows.values()}
    return currencies.pop() if len(currencies) == 1 else ""


def _recipients(count: int) -> str:
    return f"{count:,} recipient{'' if count == 1 else 's'}"


def campaign_spend_cap_problem(*, campaign: Campaign, estimate: CampaignCostEstimate) -> str | None:
    """Why the estimate stops the campaign from launching under its spend cap (None: no cap, or within it).

    The cap is in the price list's currency. A recipient without a price, or prices in several currencies, make
    the estimate unknown, and an unknown cost cannot be shown to be within a cap: that refuses the launch too.
    """
    cap = campaign.spend_cap
    if cap is None:
        return None
    currency = estimate.currency or price_list_currency()
    cap_text = f"{_amount(cap)}{f' {currency}' if currency else ''}"
    if estimate.unpriced_recipients:
        where = ", ".join(country or "unknown country" for country in estimate.unpriced_countries)
        return (
            f"{_recipients(estimate.unpriced_recipients)} ({where}) "
            f"{'has' if estimate.unpriced_recipients == 1 else 'have'} no price, so the cost cannot be checked "
            f"against this campaign's cap of {cap_text}: add their prices to the price list, or remove the cap."
        )
    if estimate.total is None:
        currencies = ", ".join(sorted({row.currency for row in estimate.by_country}))
        return (
            f"The recipients' prices are in several currencies ({currencies}), so the cost cannot be checked "
            f"against this campaign's cap of {cap_text}."
        )
    if estimate.total <= cap:
        return None
    priced = sum(row.recipients for row in estimate.by_country)
    countries = [row.country for row in estimate.by_country if row.country]
    where = f" in {len(countries)} countr{'ies' if len(countries) != 1 else 'y'}" if countries else ""
    return (
        f"The estimate {_amount(estimate.total)} {estimate.currency} passes this campaign's cap of {cap_text} "
        f"({_recipients(priced)}{where})."
    )
