"""Finding and blanking the places a text or a JSON value quotes a person: their addresses, their name.

`PersonQuotes` knows the strings that identify one person and gives the database filter of the rows that may
quote them (broad, case-insensitive) and the texts and JSON values with each quote replaced by ERASED (exact, at
word boundaries, so "Al" does not take a bite out of "Also").
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any

from django.db.models import Q, TextField
from django.db.models.functions import Cast
from django.db.models.lookups import IContains

from ..models import ERASED


class PersonQuotes:
    def __init__(self, quotes: Iterable[str]):
        # Longest first, so an address is replaced whole before a shorter quote inside it (its digits alone).
        self.quotes = sorted({quote.strip() for quote in quotes if quote and quote.strip()}, key=len, reverse=True)
        alternatives = "|".join(re.escape(quote) for quote in self.quotes)
        self._pattern = re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)", re.IGNORECASE) if self.quotes else None

    def __bool__(self) -> bool:
        return bool(self.quotes)

    def text(self, value: str) -> str:
        """`value` with every quote replaced by ERASED."""
        if not value or self._pattern is None:
            return value
        return self._pattern.sub(ERASED, value)

    def json(self, value: Any) -> Any:
        """A JSON value with every quote in its strings (keys included) replaced."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, list):
            return [self.json(item) for item in value]
        if isinstance(value, dict):
            return {self.text(key): self.json(item) for key, item in value.items()}
        return value

    def mentioned_in(self, *fields: str, json_fields: Iterable[str] = ()) -> Q:
        """Rows where one of these columns may quote the person (case-insensitive; a superset of what `text`
        replaces). JSON columns are compared as their text, with non-ASCII quotes also in JSON's \\u escapes
        (SQLite stores them so). Nothing matches when there is no quote."""
        condition = Q(pk__in=[])
        for quote in self.quotes:
            for field in fields:
                condition |= Q(**{f"{field}__icontains": quote})
            escaped = json.dumps(quote)[1:-1]
            for field in json_fields:
                for form in {quote, escaped}:
                    condition |= _json_text(field, form)
        return condition


def _json_text(field: str, quote: str) -> Q:
    # An expression lookup, so the JSON column is compared as its text on every database.
    return Q(IContains(Cast(field, output_field=TextField()), quote))
