"""The message list's date filter: a few presets and a custom from/to range, both on the indexed created_at."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import cast

from django.contrib import admin, messages
from django.db.models import Model
from django.urls import reverse
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

FROM_PARAM, TO_PARAM = "created_from", "created_to"


# The years a bound may name: far wider than any message's, far from datetime's limits.
YEARS = (1900, 2999)


def parse_bound(text: str, *, end_of_day: bool) -> datetime | None:
    """A date (YYYY-MM-DD) or date and time (YYYY-MM-DD HH:MM[:SS]) in the current time zone, or None if it is
    neither. A date alone as the upper bound means the end of that day."""
    text = text.strip()
    try:
        moment = parse_datetime(text)
        day = None if moment else parse_date(text)
    except ValueError:  # well formed but impossible, like 2026-02-30
        return None
    if day is not None:
        moment = datetime.combine(day + timedelta(days=1) if end_of_day else day, time.min)
    if moment is None or not YEARS[0] <= moment.year <= YEARS[1]:
        return None  # out of range: year 1 in a zone east of UTC overflows once made aware and compared
    return timezone.make_aware(moment) if timezone.is_naive(moment) else moment


class CreatedRangeFilter(admin.ListFilter):
    """Created today, in the past 7 or 30 days, or between two dates typed in the filter's own form."""

    title = "created"
    template = "admin/deliveries/message/date_range_filter.html"
    presets = [("Today", 0), ("Past 7 days", 7), ("Past 30 days", 30)]

    def __init__(self, request, params, model, model_admin) -> None:
        super().__init__(request, params, model, model_admin)
        self.values: dict[str, str] = {}
        for name in (FROM_PARAM, TO_PARAM):
            if name in params:
                value = params.pop(name)
                self.values[name] = (value[-1] if isinstance(value, list) else value).strip()
                self.used_parameters[name] = self.values[name]
        self.errors: list[str] = []
        self.start = self._bound(FROM_PARAM, end_of_day=False)
        self.end = self._bound(TO_PARAM, end_of_day=True)

    def _bound(self, name: str, *, end_of_day: bool) -> datetime | None:
        text = self.values.get(name, "")
        if not text:
            return None
        moment = parse_bound(text, end_of_day=end_of_day)
        if moment is None:
            self.errors.append(f"“{text}” is not a date: write it as YYYY-MM-DD or YYYY-MM-DD HH:MM.")
        return moment

    def has_output(self) -> bool:
        return True

    def expected_parameters(self) -> list[str | None]:
        return [FROM_PARAM, TO_PARAM]

    def queryset(self, request, queryset):
        for error in self.errors:
            messages.warning(request, f"Date filter ignored: {error}")
        if self.start is not None:
            queryset = queryset.filter(created_at__gte=self.start)
        if self.end is not None:
            queryset = queryset.filter(created_at__lt=self.end)
        return queryset

    def choices(self, changelist):
        # The filter template gets the filter, not the list: keep what the range form needs for it to read.
        self.form = self.form_context(changelist)
        yield {
            "selected": not self.values,
            "query_string": changelist.get_query_string(remove=[FROM_PARAM, TO_PARAM]),
            "display": "Any date",
        }
        today = timezone.localdate()
        for label, days in self.presets:
            start = (today - timedelta(days=days)).isoformat()
            yield {
                "selected": self.values == {FROM_PARAM: start},
                "query_string": changelist.get_query_string({FROM_PARAM: start}, remove=[TO_PARAM]),
                "display": label,
            }

    def form_context(self, changelist) -> dict:
        """What the custom range form needs: the typed values and the list's other parameters, kept."""
        kept = {k: v for k, v in changelist.params.items() if k not in (FROM_PARAM, TO_PARAM, "p")}
        return {"values": self.values, "kept": kept, "errors": self.errors, "from": FROM_PARAM, "to": TO_PARAM}


# Lists other pages link to (a campaign's or a batch's messages): the list says whose messages it shows.
SCOPE_PARAMS = {"campaign__id__exact": "campaign", "batch__id__exact": "batch"}


def list_scopes(changelist) -> list[dict]:
    """For each campaign or batch the list is narrowed to: what it is, a link to it and a link without it."""
    from ..models import Message

    scopes = []
    for param, field_name in SCOPE_PARAMS.items():
        value = changelist.params.get(param, "")
        if not value.isdigit():
            continue
        model = cast("type[Model]", Message._meta.get_field(field_name).related_model)
        found = model._default_manager.filter(pk=int(value)).first()
        opts = model._meta
        scopes.append(
            {
                "kind": opts.verbose_name,
                "name": str(found) if found else f"#{value} (no longer exists)",
                "url": reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[value]) if found else "",
                "clear_url": changelist.get_query_string(remove=[param]),
            }
        )
    return scopes
