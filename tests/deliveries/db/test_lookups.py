"""Conditions on many values: the same rows as `__in`, as one parameter on PostgreSQL."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from deliveries.db.lookups import among, array_param, pk_among
from deliveries.models import Message, Status
from tests.factories import MessageFactory

pytestmark = pytest.mark.django_db

# Text that needs quoting in an array's text form, and some that only looks as if it did.
ODD_TEXTS = ["plain", "", 'a "quoted", {braced} one', 'back\\slash \\" both', "NULL", " spaced ", "café — 😀"]


def test_among_matches_like_in_with_one_array_parameter_on_postgresql():
    messages = [MessageFactory(status=Status.QUEUED) for _ in range(3)]
    wanted = [messages[0].pk, messages[2].pk, 10**9]
    with CaptureQueriesContext(connection) as queries:
        found = sorted(Message.objects.filter(pk_among(wanted)).values_list("pk", flat=True))
    assert found == [messages[0].pk, messages[2].pk]
    if connection.vendor == "postgresql":
        assert "= ANY(" in queries[0]["sql"]
    assert not Message.objects.filter(pk_among([])).exists()
    assert Message.objects.filter(among("recipient", [messages[1].recipient])).get() == messages[1]


def test_among_with_a_status_finds_only_the_rows_in_that_status_and_compares_it_unplanned():
    queued, sent = MessageFactory(status=Status.QUEUED), MessageFactory(status=Status.SENT)
    with CaptureQueriesContext(connection) as queries:
        found = list(Message.objects.filter(pk_among([queued.pk, sent.pk], status=Status.QUEUED)))
    assert found == [queued]
    assert "= (SELECT " in queries[0]["sql"]


@pytest.mark.skipif(connection.vendor != "postgresql", reason="arrays are PostgreSQL's")
@pytest.mark.parametrize(
    ("values", "db_type"),
    [([1, 2, 10**12], "bigint"), ([], "integer"), (ODD_TEXTS, "text"), (ODD_TEXTS, "varchar(200)"), ([], "text")],
)
def test_an_array_given_as_its_text_is_the_array_psycopg_would_send(values, db_type):
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT %s::{db_type}[], %s::{db_type}[]", [array_param(values, db_type), values])
        ours, psycopgs = cursor.fetchone()
    assert ours == psycopgs == values


def test_values_of_other_types_are_left_to_the_driver():
    values = [1.5, None]
    assert array_param(values, "double precision") is values
    assert array_param(["a", None], "text") == ["a", None]
