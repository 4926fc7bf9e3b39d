"""A paginator that never counts a big table: exact up to a threshold, PostgreSQL's planner estimate past it."""

from __future__ import annotations

from functools import cached_property

from django.core.paginator import Paginator
from django.db.models import QuerySet

from ..db.estimates import planner_row_estimate

# Up to this many rows a list is counted exactly (a bounded count: it stops reading at threshold + 1 rows);
# past it the planner's estimate is shown as "about N", as COUNT(*) over a million rows takes most of a second.
EXACT_COUNT_THRESHOLD = 10_000
# Deep pages cost an OFFSET scan of every row before them; past this page the list asks for a filter instead
# (100 a page: the 20,000 newest rows of any list, enough to browse; older ones are a date range away).
MAX_PAGES = 200


def bounded_count(queryset: QuerySet, limit: int) -> int:
    """How many rows the query returns, reading at most `limit` + 1 of them."""
    return queryset.order_by().values("pk")[: limit + 1].count()


class EstimatedCountPaginator(Paginator):
    """`count` is exact for small lists and estimated for big ones; `estimated` says which. Pages stop at
    MAX_PAGES, and `truncated` says when the list had more."""

    threshold = EXACT_COUNT_THRESHOLD
    max_pages = MAX_PAGES
    estimated = False

    @cached_property
    def count(self) -> int:
        if not isinstance(self.object_list, QuerySet):
            return super().count
        exact = bounded_count(self.object_list, self.threshold)
        if exact <= self.threshold:
            self.estimated = False
            return exact
        estimate = planner_row_estimate(self.object_list)
        if estimate is None:  # SQLite (development): no estimate to show, and no million rows either
            return super().count
        self.estimated = True
        # The estimate can be low for a filter the statistics misjudge; the list has at least threshold + 1.
        return max(estimate, exact)

    @cached_property
    def num_pages(self) -> int:
        pages = super().num_pages
        return min(pages, self.max_pages)

    @property
    def truncated(self) -> bool:
        return self.count > self.max_pages * self.per_page

    @property
    def rounded_count(self) -> int:
        """The count as a person should read it: an estimate to two significant figures (about 1,000,000)."""
        if not self.estimated:
            return self.count
        digits = max(len(str(self.count)) - 2, 0)
        return round(self.count, -digits)
