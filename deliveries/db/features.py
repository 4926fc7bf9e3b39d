"""What the database in use allows, for code that chooses how to go about its work by it.

Tidings runs on PostgreSQL in production and on SQLite in development and in part of the tests. The SQL that
differs between them lives in this package (each module writes both forms side by side); code elsewhere asks
these questions instead of looking at `connection.vendor`.
"""

from __future__ import annotations

from django.db import connection


def parallel_writers_possible() -> bool:
    """Whether other connections (a writer thread's, a forked process's) can store rows while this one works:
    PostgreSQL, outside a transaction. SQLite takes one writer at a time, and inside a transaction every row must
    be written on its connection (the others would not see the rows it holds)."""
    return connection.vendor == "postgresql" and not connection.in_atomic_block


def row_with_event_insert_is_one_statement() -> bool:
    """Whether a row and its first event are stored by one statement (PostgreSQL: an INSERT feeding another in a
    CTE), atomic on its own, so that no transaction is needed around it (see row_inserts.row_with_event_insert)."""
    return connection.vendor == "postgresql"


def rows_copied_in() -> bool:
    """Whether rows go in by COPY, every column given, primary keys included (row_inserts.rows_insert with ids):
    PostgreSQL. Elsewhere an INSERT of each row's values."""
    return connection.vendor == "postgresql"


def json_lines_built_by_database() -> bool:
    """Whether the database writes a row as a JSON line itself, and reads such lines back into a staged table
    (the archive's lines and restores): PostgreSQL. Elsewhere Python does, field by field."""
    return connection.vendor == "postgresql"
