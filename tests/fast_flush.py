"""A transactional test's teardown that empties the database in milliseconds rather than a quarter of a second.

Django's TransactionTestCase empties every table after each test with the `flush` command: on PostgreSQL one TRUNCATE
of all 41 tables (about 155 ms on the CI machine: each truncated table gets new files), then the post_migrate signal,
which recreates the content types and permissions the TRUNCATE emptied (about 85 ms more). With about a thousand
transactional tests that was four of the PostgreSQL run's fifteen minutes. Here the rows of every table but those
two are deleted in one transaction (Django makes foreign keys deferrable, so the order does not matter), which
costs a few milliseconds for a test's handful of rows; a table grown big (the archive's 100,000 messages, whose dead
rows would slow every later test's scans) is truncated instead. The content types and permissions stay as
post_migrate would have made them again; when a test changed how many there are, Django's own flush runs.

Written for Django 5.2's TransactionTestCase._fixture_teardown: on another version, or for a test with
`available_apps` or `serialized_rollback`, Django's own teardown runs.
"""

from __future__ import annotations

from typing import Any

import django
from django.db import connections, transaction
from django.test import TransactionTestCase

WRITTEN_FOR = (5, 2)
# What post_migrate makes: kept, and checked by their counts.
KEPT = ("django_content_type", "auth_permission")
# A table bigger than this on disk is truncated: deleting its rows would leave them dead until autovacuum.
TRUNCATE_ABOVE_BYTES = 512 * 1024

_django_teardown = TransactionTestCase._fixture_teardown
_kept_counts: dict[str, tuple[int, ...]] = {}  # database alias -> rows of KEPT after Django's own flush
_tables: dict[str, list[str]] = {}  # database alias -> the tables to empty


def install() -> None:
    if django.VERSION[:2] == WRITTEN_FOR:
        TransactionTestCase._fixture_teardown = _fixture_teardown  # type: ignore[method-assign]


def _kept(connection: Any) -> tuple[int, ...]:
    counts = ", ".join(f"(SELECT COUNT(*) FROM {connection.ops.quote_name(table)})" for table in KEPT)  # noqa: S608
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {counts}")
        return tuple(cursor.fetchone())


def _fixture_teardown(self: TransactionTestCase) -> None:
    if self.available_apps is not None or self.serialized_rollback:
        _django_teardown(self)
        return
    for alias in self._databases_names(include_mirrors=False):
        connection = connections[alias]
        if alias not in _kept_counts or _kept(connection) != _kept_counts[alias]:
            # The first test of the session, or one that changed the content types or permissions: Django's flush.
            _django_teardown(self)
            _kept_counts[alias] = _kept(connection)
            continue
        _empty(connection, alias)


def _empty(connection: Any, alias: str) -> None:
    if alias not in _tables:
        tables = connection.introspection.django_table_names(only_existing=True, include_views=False)
        _tables[alias] = [table for table in tables if table not in KEPT]
    tables = _tables[alias]
    quote = connection.ops.quote_name
    with transaction.atomic(using=alias, savepoint=False), connection.cursor() as cursor:
        big: list[str] = []
        if connection.vendor == "postgresql":
            cursor.execute(
                "SELECT relname FROM pg_class WHERE relkind = 'r' AND relname = ANY(%s) AND pg_relation_size(oid) > %s",
                [tables, TRUNCATE_ABOVE_BYTES],
            )
            big = [name for (name,) in cursor.fetchall()]
            if big:
                # CASCADE: the tables referring to a big one are emptied with it (all are being emptied anyway).
                cursor.execute(f"TRUNCATE {', '.join(map(quote, big))} CASCADE")
        for table in tables:
            if table not in big:
                cursor.execute(f"DELETE FROM {quote(table)}")  # noqa: S608 (table names of our own)
