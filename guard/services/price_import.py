"""Loading the price list from a CSV file: `manage.py import_prices FILE` (columns channel,country,price,currency).

All or nothing: a file with any bad row changes nothing (a half-loaded price list would make estimates and caps
wrong without anyone noticing), and every bad row is reported with its line number.
"""

import csv
import re
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

import phonenumbers
from django.db import IntegrityError, transaction

from content.models import Channel
from guard.models import ANY_COUNTRY, Price
from guard.services.pricing import COUNTRY_PRICED

COLUMNS = ("channel", "country", "price", "currency")
# Ten times the dearest premium SMS route we know of: a price above it is a typo (a misplaced decimal point).
MAX_PRICE = Decimal("100")
# Digits with an optional dot: what Decimal() would also take ("1_0", "1e3", "NaN", "-1") is a typo here.
PRICE_TEXT = re.compile(r"[0-9]+(\.[0-9]+)?")


class PriceFileError(Exception):
    """The file as a whole cannot be read as a price list (its header, its encoding)."""


class PricesChangedMeanwhile(Exception):
    """Someone saved a price for the same destination while the import ran."""


@dataclass
class PriceRow:
    line: int
    channel: str
    country: str
    price: Decimal
    currency: str


@dataclass
class PriceImportReport:
    created: int = 0
    updated: int = 0
    unchanged: int = 0

    def summary(self) -> str:
        return f"{self.created} created, {self.updated} updated, {self.unchanged} unchanged"


def prices_read_csv(lines: Iterable[str]) -> tuple[list[PriceRow], list[tuple[int, str]]]:
    """The file's rows checked one by one: (good rows, (line, reason) for each bad one)."""
    reader = csv.DictReader(lines)
    try:
        header = [name.strip().lower() for name in reader.fieldnames or []]
    except (csv.Error, UnicodeError) as error:
        raise PriceFileError(f"its first line cannot be read ({error}); is --encoding right?") from error
    missing = [column for column in COLUMNS if column not in header]
    if missing:
        raise PriceFileError(
            f"the first line must name the columns {','.join(COLUMNS)}; missing: {', '.join(missing)}."
        )
    reader.fieldnames = header
    rows: list[PriceRow] = []
    rejected: list[tuple[int, str]] = []
    seen: dict[tuple[str, str], int] = {}
    try:
        for values in reader:
            line = reader.line_num
            try:
                row = _checked_row(line, values)
            except ValueError as error:
                rejected.append((line, str(error)))
                continue
            key = (row.channel, row.country)
            if key in seen:
                where = row.country or "(any country)"
                rejected.append((line, f"{row.channel} {where} is already on line {seen[key]}."))
                continue
            seen[key] = line
            rows.append(row)
    except (csv.Error, UnicodeError) as error:
        raise PriceFileError(f"line {reader.line_num}: {error}; is --encoding right?") from error
    return rows, rejected


def _checked_row(line: int, values: dict) -> PriceRow:
    if None in values:  # csv.DictReader's key for fields beyond the header's
        extra = len(values[None])
        raise ValueError(
            f"{len(COLUMNS) + extra} fields where {len(COLUMNS)} were expected: write prices with a dot (0.04) and "
            "quote any field holding a comma."
        )
    channel = (values.get("channel") or "").strip().lower()
    if channel not in Channel.values:
        raise ValueError(f"channel '{channel}' is not one of {', '.join(Channel.values)}.")
    country = (values.get("country") or "").strip().upper()
    if country and channel not in COUNTRY_PRICED:
        raise ValueError(f"{channel} has no destination country: leave the country blank (its unit price).")
    if country and country not in phonenumbers.SUPPORTED_REGIONS:
        raise ValueError(f"country '{country}' is not an ISO 3166 alpha-2 code of a country with phone numbers.")
    text = (values.get("price") or "").strip()
    if not PRICE_TEXT.fullmatch(text):
        raise ValueError(f"price '{text}' is not a number (digits, and a dot for decimals: 0.0075).")
    price = Decimal(text)
    if price > MAX_PRICE:
        raise ValueError(f"price {text} is out of range (0 to {MAX_PRICE} per segment or message).")
    if price != price.quantize(Decimal("0.000001")):
        raise ValueError(f"price {text} has more than 6 decimal places.")
    currency = (values.get("currency") or "").strip().upper()
    if len(currency) != 3 or not currency.isascii() or not currency.isalpha():
        raise ValueError(f"currency '{currency}' is not an ISO 4217 code such as USD.")
    return PriceRow(line=line, channel=channel, country=country or ANY_COUNTRY, price=price, currency=currency)


def prices_import(rows: list[PriceRow], *, dry_run: bool = False) -> PriceImportReport:
    """Create or update a price per row, in one transaction (rolled back on a dry run)."""
    report = PriceImportReport()
    try:
        with transaction.atomic():
            _prices_write(rows, report)
            if dry_run:
                transaction.set_rollback(True)
    except IntegrityError as error:
        raise PricesChangedMeanwhile(str(error)) from error
    return report


def _prices_write(rows: list[PriceRow], report: PriceImportReport) -> None:
    existing = {(price.channel, price.country): price for price in Price.objects.select_for_update()}
    for row in rows:
        current = existing.get((row.channel, row.country))
        if current is None:
            Price.objects.create(channel=row.channel, country=row.country, price=row.price, currency=row.currency)
            report.created += 1
        elif (current.price, current.currency) != (row.price, row.currency):
            current.price, current.currency = row.price, row.currency
            current.save(update_fields=["price", "currency", "updated_at"])
            report.updated += 1
        else:
            report.unchanged += 1
