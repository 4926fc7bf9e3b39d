"""Spend caps (issue #24, "Caps"): messages that would take a cap past its amount are held at send time with the
reason, an alert fires, a person releases them or raises the cap, and nothing is sent twice. Through the real worker
and the real Redis."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.contrib.auth.models import Group, User
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone
from freezegun import freeze_time
from rest_framework.test import APIClient

from campaigns.services.campaign_lifecycle import campaign_launch
from console.services.alert_rules import messages_held
from console.services.alerts import alerts_check
from deliveries.models import Message, MessageEvent, Status
from deliveries.sending.job import send_messages
from deliveries.services import holds
from deliveries.services import spend_caps as deliveries_caps
from deliveries.services.api_keys import api_key_create
from deliveries.services.dispatch import dispatch_due_messages
from deliveries.services.holds import held_messages_release
from deliveries.services.recovery import fail_expired_messages
from deliveries.staff_roles import OPERATORS, VIEWERS, staff_roles_ensure
from guard.models import Price, SpendCap
from guard.services.pricing import forget_prices
from guard.services.spend_caps import KEY_PREFIX, TOTAL, Cap, cap_spent, cap_window, spend_cap_save
from tests.campaigns.campaign_support import make_contacts, new_campaign
from tests.factories import ContactListFactory
from tests.support import at_once, run_burst_worker

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def sms_price():
    """Every SMS costs 0.01 USD a segment (a catch-all row)."""
    Price.objects.create(channel="sms", country="", price=Decimal("0.0100"), currency="USD")


def sms_cap(amount: str, **fields) -> SpendCap:
    return SpendCap.objects.create(
        **{"scope": "channel", "scope_value": "sms", "period": "day", "currency": "USD", **fields},
        amount=Decimal(amount),
    )


def post_sms(api, count: int, *, start: int = 0, body: str = "Your code is 1234") -> list[int]:
    ids = []
    for i in range(start, start + count):
        response = api.post("/api/v1/messages/", {"channel": "sms", "to": f"+1415{7100000 + i}", "body": body})
        assert response.status_code == 201, response.content
        ids.append(response.json()["id"])
    return ids


def alert(key: str):
    return {line.key: line for line in alerts_check()}[key]


def test_a_cap_reached_mid_campaign_holds_the_rest_with_the_reason_and_an_alert_raising_it_sends_them_once(
    sms_outbox, sms_price, settings
):
    settings.ALERT_CLEAR_AFTER_SECONDS = 0
    cap = sms_cap("0.10")
    audience = ContactListFactory()
    make_contacts(audience, 25)
    campaign = new_campaign(audience)
    campaign_launch(campaign=campaign, by="test")
    run_burst_worker()  # the fan-out, then the send jobs

    assert len(sms_outbox) == 10
    held = Message.objects.filter(campaign=campaign, status=Status.HELD)
    assert held.count() == 15
    reason = "Held: the daily sms cap of 0.10 USD is reached (0.10 USD spent today)."
    assert set(held.values_list("last_error_code", "last_error_message")) == {("held:cap", reason)}
    event = MessageEvent.objects.filter(message=held.first(), to_status=Status.HELD).get()
    assert (event.code, event.detail) == ("held:cap", reason)
    line = alert("messages_held")
    assert (line.changed, line.detail) == ("fired", "15 message(s) held: 15 held:cap")

    # Raising the cap re-admits the oldest held messages as far as the new amount goes; the rest stay held.
    cap.amount = Decimal("0.20")
    spend_cap_save(cap=cap)
    assert held.count() == 5
    run_burst_worker()
    assert len(sms_outbox) == 20
    first_held = Message.objects.filter(campaign=campaign).order_by("pk")[10]
    assert first_held.status == Status.SENT
    assert "Released: the daily sms cap was raised to 0.20 USD." in first_held.events.values_list("detail", flat=True)

    cap.amount = Decimal("5")
    spend_cap_save(cap=cap)
    run_burst_worker()
    recipients = [message.recipient for message in sms_outbox]
    assert len(recipients) == len(set(recipients)) == 25  # everyone once, nobody twice
    assert alert("messages_held").changed == "cleared"


def test_lowering_a_cap_releases_nothing(sms_outbox, sms_price, api):
    cap = sms_cap("0.01")
    post_sms(api, 3)
    run_burst_worker()
    assert Message.objects.filter(status=Status.HELD).count() == 2
    cap.amount = Decimal("0.005")
    spend_cap_save(cap=cap)
    assert Message.objects.filter(status=Status.HELD).count() == 2


def test_two_workers_racing_on_the_last_cent_do_not_both_pass(sms_outbox, sms_price, api):
    sms_cap("0.10")
    send_messages(post_sms(api, 9))  # 0.09 spent
    racing = iter(post_sms(api, 2, start=9))
    outcomes = at_once(lambda: send_messages([next(racing)]), times=2)
    assert sorted(status for outcome in outcomes for status in outcome) == ["held", "sent"]
    assert len(sms_outbox) == 10
    assert Message.objects.filter(status=Status.HELD).count() == 1


def test_a_counter_redis_lost_is_recounted_from_the_database(sms_outbox, sms_price, api, clean_redis):
    send_messages(post_sms(api, 5))  # sent before any cap: 0.05 in the database, nothing counted in Redis
    sms_cap("0.06")
    two_segments = "x" * 200
    [long] = post_sms(api, 1, start=5, body=two_segments)  # 0.02 would make 0.07
    assert send_messages([long]) == {"held": 1}
    message = Message.objects.get(pk=long)
    assert message.last_error_message == "Held: the daily sms cap of 0.06 USD is reached (0.05 USD spent today)."

    clean_redis.flushdb()  # Redis restarted empty: counted again from the sent messages
    [short] = post_sms(api, 1, start=6)
    assert send_messages([short]) == {"sent": 1}
    [another] = post_sms(api, 1, start=7)
    assert send_messages([another]) == {"held": 1}
    assert Message.objects.get(pk=another).last_error_message.endswith("(0.06 USD spent today).")


def test_estimates_in_another_currency_are_not_counted(sms_outbox, api):
    Price.objects.create(channel="sms", country="GB", price=Decimal("0.05"), currency="EUR")
    sms_cap("0.01")
    gb = api.post("/api/v1/messages/", {"channel": "sms", "to": "+447400123456", "body": "hi"}).json()["id"]
    assert send_messages([gb]) == {"sent": 1}


def test_a_cap_on_one_api_key_holds_only_that_keys_messages(sms_outbox, sms_price, api, api_key):
    SpendCap.objects.create(scope="api_key", scope_value=str(api_key.pk), period="month", amount=0, currency="USD")
    [from_key] = post_sms(api, 1)
    other = Message.objects.create(
        channel="sms", recipient="+14157000001", body="x", estimated_cost=Decimal("0.01"), cost_currency="USD"
    )
    assert send_messages([from_key, other.pk]) == {"held": 1, "sent": 1}
    assert Message.objects.get(pk=from_key).last_error_message == (
        f"Held: the monthly cap of API key {api_key.pk} of 0.00 USD is reached (0.00 USD spent this month)."
    )


def test_with_no_cap_the_worker_counts_nothing(sms_outbox, sms_price, api, clean_redis):
    assert not deliveries_caps.spend_caps_active()
    send_messages(post_sms(api, 3))
    assert len(sms_outbox) == 3
    assert not clean_redis.keys(f"{KEY_PREFIX}:*")


def test_the_api_shows_a_held_message_and_its_reason(sms_outbox, sms_price, api):
    sms_cap("0")
    [pk] = post_sms(api, 1)
    run_burst_worker()
    shown = api.get(f"/api/v1/messages/{pk}/").json()
    assert (shown["status"], shown["last_error_code"]) == ("held", "held:cap")
    assert shown["last_error_message"] == "Held: the daily sms cap of 0.00 USD is reached (0.00 USD spent today)."


def test_a_released_message_is_sent_and_not_held_again_by_the_cap(sms_outbox, sms_price, api):
    sms_cap("0.01")
    first, second = post_sms(api, 2)
    run_burst_worker()
    assert Message.objects.get(pk=second).status == Status.HELD
    assert len(held_messages_release(message_ids=[second], by="ops")) == 1
    run_burst_worker()
    released = Message.objects.get(pk=second)
    assert (released.status, released.guard_released, released.last_error_code) == (Status.SENT, True, "")
    assert "Released by ops." in released.events.values_list("detail", flat=True)
    assert len(sms_outbox) == 2
    # A third message still meets the cap, which counted the released one's spend.
    [third] = post_sms(api, 1, start=2)
    assert send_messages([third]) == {"held": 1}
    assert Message.objects.get(pk=third).last_error_message.endswith("(0.02 USD spent today).")


@pytest.fixture
def roles():
    staff_roles_ensure()  # a transactional test starts without what the migrations wrote


def staff(client, role: str) -> User:
    user = User.objects.create_user(role.lower(), password="pw", is_staff=True)
    user.groups.add(Group.objects.get(name=role))
    client.force_login(user)
    return user


def test_a_viewer_cannot_release_a_held_message_and_an_operator_can(client, roles, sms_price, api, sms_outbox):
    sms_cap("0")
    [pk] = post_sms(api, 1)
    run_burst_worker()
    staff(client, VIEWERS)
    page = client.get(f"/admin/deliveries/message/{pk}/change/").content.decode()
    assert "Release this message" not in page
    assert client.post(f"/admin/deliveries/message/{pk}/release/").status_code == 403
    refused = client.post("/admin/deliveries/message/", {"action": "release_selected", "_selected_action": [pk]})
    assert refused.status_code in (200, 302, 403)
    assert Message.objects.get(pk=pk).status == Status.HELD

    staff(client, OPERATORS)
    page = client.get(f"/admin/deliveries/message/{pk}/change/").content.decode()
    assert "Release this message" in page and "Held: the daily sms cap" in page
    assert client.post(f"/admin/deliveries/message/{pk}/release/").status_code == 302
    run_burst_worker()
    assert Message.objects.get(pk=pk).status == Status.SENT
    assert "Released by operators." in Message.objects.get(pk=pk).events.values_list("detail", flat=True)


def test_the_message_lists_release_action_releases_the_selected_held_ones(client, roles, sms_price, api):
    sms_cap("0")
    held = post_sms(api, 2)
    run_burst_worker()
    staff(client, OPERATORS)
    response = client.post(
        "/admin/deliveries/message/", {"action": "release_selected", "_selected_action": held}, follow=True
    )
    assert "Released 2 message(s)." in response.content.decode()
    assert set(Message.objects.values_list("status", "guard_released")) == {(Status.QUEUED, True)}


def test_an_operator_raises_a_cap_in_the_admin_and_its_held_messages_go(client, roles, sms_price, api, sms_outbox):
    cap = sms_cap("0")
    post_sms(api, 3)
    run_burst_worker()
    staff(client, OPERATORS)
    listing = client.get("/admin/guard/spendcap/").content.decode()
    # What it covers, its amount a day, what it does when reached, and its spend (0.03 USD held against 0.00: full).
    for text in ("sms messages", "0.00 USD a day", "hold", "Spent in this window", "(100%)"):
        assert text in listing, text
    response = client.post(f"/admin/guard/spendcap/{cap.pk}/change/", {"amount": "0.02"})
    assert response.status_code == 302, response.content.decode()[:2000]
    run_burst_worker()
    assert len(sms_outbox) == 2
    assert Message.objects.filter(status=Status.HELD).count() == 1
    assert client.get("/admin/guard/spendcap/add/").status_code == 403  # adding a cap is for superusers
    staff_viewer = User.objects.create_user("v", is_staff=True)
    staff_viewer.groups.add(Group.objects.get(name=VIEWERS))
    client.force_login(staff_viewer)
    assert client.post(f"/admin/guard/spendcap/{cap.pk}/change/", {"amount": "9"}).status_code == 403


def test_the_cap_list_shows_each_caps_spend_against_its_amount(admin_client, sms_price, api, sms_outbox):
    sms_cap("0.04")
    send_messages(post_sms(api, 3))
    page = admin_client.get("/admin/guard/spendcap/").content.decode()
    assert "0.03 USD (75%)" in page


def test_release_held_releases_by_code_or_all_and_says_what_is_wrong(sms_price, api, capsys):
    sms_cap("0")
    post_sms(api, 2)
    run_burst_worker()
    Message.objects.create(
        channel="sms", recipient="+14157000009", status=Status.HELD, last_error_code="held:velocity:x"
    )
    with pytest.raises(CommandError, match="--code CODE"):
        call_command("release_held")
    with pytest.raises(CommandError, match="start with 'held:'"):
        call_command("release_held", "--code", "21211")
    call_command("release_held", "--code", "held:cap")
    assert "Released 2 held message(s)." in capsys.readouterr().out
    call_command("release_held", "--all")
    assert "Released 1 held message(s)." in capsys.readouterr().out
    assert not Message.objects.filter(status=Status.HELD).exists()


def test_the_queue_monitor_lists_held_messages_by_code_with_a_link(admin_client, sms_price, api):
    sms_cap("0")
    post_sms(api, 2)
    run_burst_worker()
    page = admin_client.get("/admin/console/queues/").content.decode()
    assert "Held by the cost guard" in page
    assert "?status__exact=held&amp;channel__exact=sms&amp;last_error_code=held%3Acap" in page
    listing = admin_client.get("/admin/deliveries/message/?status__exact=held&last_error_code=held%3Acap")
    assert listing.status_code == 200


class CampaignCaps:
    """A cap source as campaigns would register one: each campaign's own cap, over its whole life."""

    def __init__(self, campaign_id: int, amount: str):
        self.cap = Cap(
            key=f"campaign:{campaign_id}",
            label=f"campaign {campaign_id}'s cap",
            period=TOTAL,
            amount=Decimal(amount),
            currency="USD",
            scope="campaign",
            scope_value=str(campaign_id),
        )

    def active(self) -> bool:
        return True

    def caps_for(self, rows):
        return {row.pk: [self.cap] for row in rows if str(row.campaign_id) == self.cap.scope_value}


def test_a_registered_cap_source_holds_its_messages_too(sms_outbox, sms_price):
    audience = ContactListFactory()
    make_contacts(audience, 5)
    campaign = new_campaign(audience)
    source = deliveries_caps.register_cap_source(CampaignCaps(campaign.pk, "0.03"))
    try:
        campaign_launch(campaign=campaign, by="test")
        run_burst_worker()
    finally:
        deliveries_caps._sources.remove(source)
    assert len(sms_outbox) == 3
    held = Message.objects.filter(status=Status.HELD)
    assert held.count() == 2
    assert held.first().last_error_message == (
        f"Held: campaign {campaign.pk}'s cap of 0.03 USD is reached (0.03 USD spent so far)."
    )


def test_a_campaign_that_reaches_its_own_cap_after_launch_holds_the_rest_and_a_release_sends_them_once(
    sms_outbox, sms_price
):
    audience = ContactListFactory()
    make_contacts(audience, 5)
    campaign = new_campaign(audience, spend_cap=Decimal("0.05"))
    campaign_launch(campaign=campaign, by="test")  # estimated 5 x 0.01 = 0.05: within its cap
    # The price list changes before the fan-out stores the messages: each now costs 0.02.
    Price.objects.update(price=Decimal("0.0200"))
    forget_prices()  # as saving it in the admin would
    run_burst_worker()
    assert len(sms_outbox) == 2
    held = Message.objects.filter(campaign=campaign, status=Status.HELD)
    assert held.count() == 3
    assert {m.last_error_message for m in held} == {
        "Held: the cap of campaign “Spring sale” of 0.05 USD is reached (0.04 USD spent so far)."
    }
    campaign.refresh_from_db()
    assert campaign.status == campaign.Status.RUNNING  # not completed while messages are held
    assert len(held_messages_release(message_ids=list(held.values_list("pk", flat=True)), by="ana")) == 3
    run_burst_worker()
    assert len(sms_outbox) == 5
    assert len({message.recipient for message in sms_outbox}) == 5  # each contact once


def test_a_caps_day_and_month_are_the_time_zones(settings):
    settings.TIME_ZONE = "America/New_York"
    late_evening = datetime(2026, 12, 1, 3, 30, tzinfo=UTC)  # 22:30 on 30 November in New York
    day, month = cap_window("day", late_evening), cap_window("month", late_evening)
    assert (day.label, month.label) == ("2026-11-30", "2026-11")
    assert day.start == datetime(2026, 11, 30, 5, 0, tzinfo=UTC) and day.end == datetime(2026, 12, 1, 5, 0, tzinfo=UTC)
    # A day with the clocks going back is 25 hours long.
    autumn = cap_window("day", datetime(2026, 11, 1, 12, 0, tzinfo=UTC))
    assert (autumn.end.astimezone(UTC) - autumn.start.astimezone(UTC)).total_seconds() == 25 * 3600


def test_messages_deferred_by_the_providers_rate_give_their_spend_back(fake_twilio, sms_price, api, settings):
    settings.SMS_RATE_LIMIT = "2/minute"
    cap = sms_cap("0.05")
    assert send_messages(post_sms(api, 5)) == {"sent": 2, "scheduled": 3}
    # Only the two sent count: the three deferred are checked and counted again when they come back.
    assert cap_spent(Cap.of(cap)) == Decimal("0.02")


def test_the_held_alert_counts_every_holds_code(settings):
    for code in ["held:cap", "held:velocity:recipient", "held:velocity:recipient"]:
        Message.objects.create(channel="sms", recipient="+14157000009", status=Status.HELD, last_error_code=code)
    [finding] = messages_held(timezone.now())
    assert (finding.firing, finding.detail) == (True, "3 message(s) held: 1 held:cap, 2 held:velocity:recipient")
    assert "release_held" in finding.next_step and "Spend caps" in finding.next_step


def test_an_admin_key_releases_a_held_message_through_the_api_and_a_narrower_key_cannot(sms_price, api, sms_outbox):
    sms_cap("0")
    [pk] = post_sms(api, 1)
    run_burst_worker()
    _, narrow_secret = api_key_create(name="sender", scopes=["messages:send", "messages:read", "messages:cancel"])
    narrow = APIClient()
    narrow.credentials(HTTP_AUTHORIZATION=f"Bearer {narrow_secret}")
    assert narrow.post(f"/api/v1/messages/{pk}/release/").status_code == 403
    released = api.post(f"/api/v1/messages/{pk}/release/")  # the fixture's key has every scope
    assert (released.status_code, released.json()["status"]) == (200, "queued")
    again = api.post(f"/api/v1/messages/{pk}/release/")
    assert (again.status_code, again.json()["detail"]) == (
        409,
        f"Message {pk} is queued; only held messages can be released.",
    )
    run_burst_worker()
    assert [m.recipient for m in sms_outbox] == [Message.objects.get(pk=pk).recipient]


def test_a_cap_that_defers_schedules_the_rest_for_its_next_window_and_they_go_then(sms_outbox, sms_price, api):
    sms_cap("0.02", on_reach="defer")
    ids = post_sms(api, 3)
    assert send_messages(ids) == {"sent": 2, "scheduled": 1}
    deferred = Message.objects.get(pk=ids[2])
    tomorrow = cap_window("day").end
    assert (deferred.status, deferred.send_at, deferred.last_error_code) == (Status.SCHEDULED, tomorrow, "deferred:cap")
    assert deferred.events.last().detail == (
        "Deferred: the daily sms cap of 0.02 USD is reached (0.02 USD spent today). "
        f"Sending from {tomorrow:%Y-%m-%d %H:%M %Z}, its next window."
    )
    assert alert("messages_held").state == "clear"  # deferred, not held
    with freeze_time(tomorrow + timedelta(seconds=1)):
        assert dispatch_due_messages() == 1
        run_burst_worker()
    assert Message.objects.get(pk=ids[2]).status == Status.SENT
    assert len(sms_outbox) == 3


def test_a_held_message_past_its_deadline_fails_as_expired(sms_price, api):
    sms_cap("0")
    [pk] = post_sms(api, 1)
    run_burst_worker()
    Message.objects.filter(pk=pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert fail_expired_messages() == 1
    message = Message.objects.get(pk=pk)
    assert (message.status, message.last_error_code) == (Status.FAILED, "expired")


def test_a_raise_re_admits_no_more_than_the_new_amount_across_chunks(sms_price, api, monkeypatch):
    monkeypatch.setattr(holds, "READMIT_CHUNK", 2)  # several chunks of held messages, each decided in one run
    cap = sms_cap("0")
    post_sms(api, 6)
    run_burst_worker()
    cap.amount = Decimal("0.03")
    spend_cap_save(cap=cap)
    assert Message.objects.filter(status=Status.QUEUED).count() == 3
    assert Message.objects.filter(status=Status.HELD).count() == 3


def test_releasing_a_message_a_velocity_limit_held_leaves_it_to_the_spend_caps(sms_price, sms_outbox):
    sms_cap("0")
    velocity = Message.objects.create(
        channel="sms",
        recipient="+14157000009",
        body="x",
        status=Status.HELD,
        last_error_code="held:velocity:recipient",
        estimated_cost=Decimal("0.01"),
        cost_currency="USD",
    )
    assert len(held_messages_release(message_ids=[velocity.pk], by="ops")) == 1
    run_burst_worker()
    velocity.refresh_from_db()
    assert (velocity.status, velocity.guard_released, velocity.last_error_code) == (Status.HELD, False, "held:cap")
    assert not sms_outbox


def test_a_released_message_whose_time_is_ahead_waits_for_it(sms_price):
    later = timezone.now() + timedelta(hours=2)
    message = Message.objects.create(
        channel="sms", recipient="+14157000009", body="x", status=Status.HELD, last_error_code="held:cap", send_at=later
    )
    assert len(held_messages_release(message_ids=[message.pk], by="ops")) == 1
    message.refresh_from_db()
    assert (message.status, message.send_at, message.guard_released) == (Status.SCHEDULED, later, True)
