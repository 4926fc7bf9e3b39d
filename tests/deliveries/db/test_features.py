"""What the database allows, as the callers outside deliveries/db ask it."""

import pytest
from django.db import connection, transaction

from deliveries.db.features import parallel_writers_possible, row_with_event_insert_is_one_statement


@pytest.mark.django_db(transaction=True)
def test_other_connections_write_beside_this_one_only_on_postgresql_and_outside_a_transaction():
    assert parallel_writers_possible() is (connection.vendor == "postgresql")
    with transaction.atomic():
        assert not parallel_writers_possible()  # its rows would be invisible to the others


def test_a_row_and_its_event_are_one_statement_on_postgresql_only():
    assert row_with_event_insert_is_one_statement() is (connection.vendor == "postgresql")
