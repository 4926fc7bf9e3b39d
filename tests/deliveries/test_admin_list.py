"""The message list as a person uses it at scale: exact search, the date range, counts that never scan the table,
a list that says whose messages it shows, and the CSV export (a permission of its own, audited)."""

import csv
import io
from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission, User
from django.db import connection
from django.utils import timezone

from campaigns.models import Campaign
from deliveries.admin_support.paginator import EstimatedCountPaginator
from deliveries.models import AuditEntry, Batch, Message, Status
from tests.factories import MessageFactory

pytestmark = pytest.mark.django_db

LIST = "/admin/deliveries/message/"


@pytest.fixture
def staff(client):
    user = User.objects.create_user("operator", password="pw", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_message"))
    client.force_login(user)
    return user


def listed_ids(response) -> set[int]:
    assert response.status_code == 200
    return {message.pk for message in response.context["cl"].result_list}


def test_a_recipient_is_found_as_a_person_types_it_normalised_like_the_api(client, staff):
    # One settled and one in flight: the recipient index holds only the first, the status indexes the second.
    phone = MessageFactory(recipient="+14155550123", status=Status.DELIVERED)
    email = MessageFactory(channel="email", recipient="Ada@example.com", status=Status.QUEUED)
    MessageFactory(recipient="+14155550999", body="mentions +14155550123 in its text")

    assert listed_ids(client.get(LIST, {"q": "+1 (415) 555-0123"})) == {phone.pk}
    assert listed_ids(client.get(LIST, {"q": "whatsapp:+14155550123"})) == {phone.pk}
    assert listed_ids(client.get(LIST, {"q": "Ada@EXAMPLE.com"})) == {email.pk}
    assert listed_ids(client.get(LIST, {"q": "ada@example.com"})) == set()  # the stored local part is Ada


def test_search_finds_a_provider_id_a_message_id_and_a_campaign_by_name_or_id(client, staff):
    campaign = Campaign.objects.create(name="Spring sale")
    sent = MessageFactory(status=Status.SENT, provider_message_id="SM0123456789abcdef")
    in_campaign = MessageFactory(campaign=campaign)

    assert listed_ids(client.get(LIST, {"q": "SM0123456789abcdef"})) == {sent.pk}
    assert listed_ids(client.get(LIST, {"q": f"#{sent.pk}"})) == {sent.pk}
    assert listed_ids(client.get(LIST, {"q": "spring SALE"})) == {in_campaign.pk}
    assert listed_ids(client.get(LIST, {"q": f"campaign:{campaign.pk}"})) == {in_campaign.pk}


def test_odd_search_terms_find_nothing_rather_than_fail(client, staff):
    MessageFactory(recipient="+14155550100")
    for term in (
        "campaign:",
        "#",
        "x" * 400,
        "@",
        "campaign:abc",
        "+1 (415",
        "²",
        "campaign:²",
        "9" * 30,
        "campaign:" + "9" * 30,
    ):
        assert listed_ids(client.get(LIST, {"q": term})) == set(), term
    # A NUL, which PostgreSQL refuses in a string: the admin's search form turns it away with a message.
    response = client.get(LIST, {"q": "\x00+14155550100"})
    assert response.status_code == 200 and "Null characters are not allowed" in response.content.decode()


def test_search_does_not_scan_message_texts(client, staff):
    MessageFactory(body="Your parcel is on its way")
    assert listed_ids(client.get(LIST, {"q": "parcel"})) == set()
    assert listed_ids(client.get(LIST, {"q": "   "})) == set(Message.objects.values_list("pk", flat=True))


def test_the_date_filter_takes_a_custom_range_and_says_when_a_date_is_not_one(client, staff):
    now = timezone.now()
    old, recent = MessageFactory(), MessageFactory()
    Message.objects.filter(pk=old.pk).update(created_at=now - timedelta(days=40))
    Message.objects.filter(pk=recent.pk).update(created_at=now - timedelta(days=2))
    day = timezone.localdate()

    in_range = {"created_from": str(day - timedelta(days=45)), "created_to": str(day - timedelta(days=30))}
    assert listed_ids(client.get(LIST, in_range)) == {old.pk}
    assert listed_ids(client.get(LIST, {"created_from": str(day - timedelta(days=7))})) == {recent.pk}

    response = client.get(LIST, {"created_from": "2026-02-30", "status__exact": "queued"})
    page = response.content.decode()
    assert listed_ids(response) == {old.pk, recent.pk}
    assert "“2026-02-30” is not a date: write it as YYYY-MM-DD" in page
    assert 'name="status__exact" value="queued"' in page  # the range form keeps the list's other filters
    for far in ("0001-01-01", "9999-12-31"):  # dates datetime can hold, but a zone's offset or a day's step cannot
        response = client.get(LIST, {"created_from": far})
        assert response.status_code == 200 and f"“{far}” is not a date" in response.content.decode(), far


def test_a_list_narrowed_to_a_campaign_or_a_batch_says_so(client, staff):
    campaign = Campaign.objects.create(name="Autumn <b>news</b>")
    batch = Batch.objects.create(kind="api")
    MessageFactory(campaign=campaign)

    page = client.get(LIST, {"campaign__id__exact": campaign.pk}).content.decode()
    assert "Showing the messages of campaign" in page and "Autumn &lt;b&gt;news&lt;/b&gt;" in page
    assert "Show all messages" in page
    page = client.get(LIST, {"batch__id__exact": batch.pk}).content.decode()
    assert "Showing the messages of batch" in page and f"API batch #{batch.pk}" in page
    assert "Showing the messages of" not in client.get(LIST).content.decode()


def test_a_small_list_is_counted_exactly_and_summarised(client, staff):
    MessageFactory.create_batch(3, status=Status.DELIVERED)
    response = client.get(LIST)
    assert response.context["cl"].paginator.estimated is False
    assert "Of these 3:" in response.content.decode()


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the estimate is PostgreSQL's planner's")
def test_past_the_threshold_the_count_is_the_planners_estimate_and_never_below_what_was_read():
    MessageFactory.create_batch(12)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE deliveries_message")
    paginator = EstimatedCountPaginator(Message.objects.all(), 5)
    paginator.threshold = 10
    assert paginator.count >= 11
    assert paginator.estimated is True
    small = EstimatedCountPaginator(Message.objects.filter(status=Status.FAILED), 5)
    assert (small.count, small.estimated) == (0, False)


def test_pages_stop_at_the_cap_and_the_list_says_how_to_reach_older_ones(client, staff):
    MessageFactory.create_batch(5)
    paginator = EstimatedCountPaginator(Message.objects.all(), 1)
    paginator.max_pages = 3
    assert paginator.num_pages == 3 and paginator.truncated


def test_the_export_needs_its_own_permission(client, staff):
    MessageFactory()
    assert client.get(f"{LIST}export/").status_code == 403
    assert "Export CSV" not in client.get(LIST).content.decode()


def test_the_export_streams_the_filtered_list_defuses_formulas_and_is_audited(client, staff):
    staff.user_permissions.add(Permission.objects.get(codename="export_message"))
    failed = MessageFactory(status=Status.FAILED, last_error_message="=HYPERLINK(evil)", provider="twilio")
    hostile = MessageFactory(status=Status.FAILED, channel="email", recipient="=cmd|'/c calc'!a@example.com")
    MessageFactory(status=Status.DELIVERED)
    assert "Export CSV" in client.get(LIST).content.decode()

    response = client.get(f"{LIST}export/", {"status__exact": "failed"})
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    by_id = {int(row["id"]): row for row in rows}
    assert set(by_id) == {failed.pk, hostile.pk}
    assert by_id[failed.pk]["last_error_message"] == "'=HYPERLINK(evil)"
    assert by_id[failed.pk]["recipient"] == failed.recipient  # an E.164 number is left as it is
    assert by_id[hostile.pk]["recipient"] == "'" + hostile.recipient  # an address's local part may be a formula
    entry = AuditEntry.objects.get(action=AuditEntry.Action.MESSAGES_EXPORTED)
    assert entry.actor == "operator" and entry.details["query"] == "status__exact=failed"


def test_an_export_with_a_bad_filter_says_so_instead_of_failing(client, staff):
    staff.user_permissions.add(Permission.objects.get(codename="export_message"))
    response = client.get(f"{LIST}export/", {"nonsense__field": "1"})
    assert response.status_code == 302
    assert not AuditEntry.objects.filter(action=AuditEntry.Action.MESSAGES_EXPORTED).exists()


def test_the_list_keeps_to_one_line_a_message_and_links_error_codes_to_the_providers_docs(client, staff):
    MessageFactory(status=Status.UNDELIVERED, provider="twilio", last_error_code="30006", body="A long text " * 30)
    page = client.get(LIST).content.decode()
    assert 'href="https://www.twilio.com/docs/api/errors/30006"' in page
    assert 'class="message-summary"' in page
    assert "Opens / clicks" in page


def test_a_read_only_batch_page_offers_no_delete(client, staff):
    staff.user_permissions.add(*Permission.objects.filter(codename__in=["view_batch", "delete_batch"]))
    batch = Batch.objects.create(kind="api")
    page = client.get(f"/admin/deliveries/batch/{batch.pk}/change/").content.decode()
    assert "deletelink" not in page
    assert client.get(f"/admin/deliveries/batch/{batch.pk}/delete/").status_code == 403
