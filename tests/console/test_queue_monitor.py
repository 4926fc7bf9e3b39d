"""The console's queue monitor (/admin/console/queues/): queues, throughput, failing sends grouped by reason, and
"retry these" / "cancel these" on the messages, confirmed, in steps, audited, for those allowed."""

from datetime import timedelta

import pytest
from django.contrib.auth.models import Group, Permission, User
from django.test import Client
from django.utils import timezone

from console.services.queues import failure_groups
from deliveries.models import AuditEntry, Message, Status
from deliveries.staff_roles import OPERATORS, VIEWERS, staff_roles_ensure
from tests.factories import MessageFactory

pytestmark = pytest.mark.django_db

MONITOR = "/admin/console/queues/"
ACT = "/admin/console/queues/act/"


def failed(code: str, *, channel: str = "sms", hours_ago: float = 1, reason: str = "The 'To' number is not valid."):
    return MessageFactory(
        status=Status.FAILED,
        channel=channel,
        recipient="a@example.com" if channel == "email" else "+14155550100",
        last_error_code=code,
        last_error_message=reason,
        attempts=1,
        failed_at=timezone.now() - timedelta(hours=hours_ago),
    )


def retrying(code: str, *, channel: str = "sms"):
    return MessageFactory(
        status=Status.SCHEDULED,
        channel=channel,
        last_error_code=code,
        last_error_message="The message queue overflowed at Twilio.",
        attempts=2,
        send_at=timezone.now() + timedelta(seconds=40),
    )


def member(client: Client, role: str) -> User:
    staff_roles_ensure()
    user = User.objects.create_user(role.lower(), password="pw", is_staff=True)
    user.groups.add(Group.objects.get(name=role))
    client.force_login(user)
    return user


def group_form(action: str, kind: str, code: str, *, channel: str = "sms", window: str = "24h", **extra):
    return {"action": action, "kind": kind, "channel": channel, "code": code, "window": window, **extra}


def test_failing_sends_are_grouped_by_channel_and_code_within_the_window():
    for _ in range(3):
        failed("21211")
    failed("21211", hours_ago=30)  # outside 24 h
    failed("bounce", channel="email", reason="Hard bounce")
    retrying("30001")
    retrying("30001")
    MessageFactory(status=Status.SCHEDULED, send_at=timezone.now() + timedelta(days=300))  # scheduled, no error
    groups = {(g["kind"], g["channel"], g["code"]): g for g in failure_groups(window="24h")}
    assert {key: g["count"] for key, g in groups.items()} == {
        ("failed", "sms", "21211"): 3,
        ("failed", "email", "bounce"): 1,
        ("retrying", "sms", "30001"): 2,
    }
    assert groups[("failed", "sms", "21211")]["reason"] == "The 'To' number is not valid."
    assert groups[("failed", "sms", "21211")]["action"] == "retry"
    assert groups[("retrying", "sms", "30001")]["action"] == "cancel"
    week = {(g["kind"], g["channel"], g["code"]): g["count"] for g in failure_groups(window="7d")}
    assert week[("failed", "sms", "21211")] == 4


def test_the_monitor_needs_staff_and_its_own_permission(client):
    assert client.get(MONITOR).status_code == 302  # to the admin's login
    user = User.objects.create_user("staff", password="pw", is_staff=True)
    client.force_login(user)
    assert client.get(MONITOR).status_code == 403
    user.user_permissions.add(Permission.objects.get(codename="view_queue_monitor"))
    assert client.get(MONITOR).status_code == 200


def test_a_viewer_sees_the_monitor_but_no_button_and_cannot_act(client):
    member(client, VIEWERS)
    message = failed("21211")
    page = client.get(MONITOR).content.decode()
    assert "The &#x27;To&#x27; number is not valid." in page
    assert "Retry these" not in page
    assert "needs a permission you lack" in page
    assert "Raw RQ jobs" not in page
    response = client.post(ACT, group_form("retry", "failed", "21211", confirmed="yes", total="1", done="0"))
    assert response.status_code == 403
    message.refresh_from_db()
    assert message.status == Status.FAILED


def test_an_operator_retries_a_group_after_confirming_in_steps_and_each_is_audited(client, settings):
    settings.QUEUE_MONITOR_ACTION_BATCH = 2
    operator = member(client, OPERATORS)
    group = [failed("21211") for _ in range(3)]
    other = failed("30006", reason="The number is a landline.")
    assert "Retry these" in client.get(MONITOR).content.decode()

    confirm = client.post(ACT, group_form("retry", "failed", "21211"))
    assert confirm.status_code == 200
    assert "Retry <strong>3</strong> failed sms message(s)" in confirm.content.decode()
    assert Message.objects.filter(status=Status.FAILED).count() == 4  # nothing done before confirming

    step = client.post(ACT, group_form("retry", "failed", "21211", confirmed="yes", total="3", done="0"))
    assert step.status_code == 200
    assert "<strong>2</strong> of 3" in step.content.decode()
    assert 'name="done" value="2"' in step.content.decode()

    last = client.post(ACT, group_form("retry", "failed", "21211", confirmed="yes", total="3", done="2"))
    assert last.status_code == 302 and last["Location"] == f"{MONITOR}?window=24h"
    page = client.get(last["Location"]).content.decode()
    assert "Retry: 3 message(s) of sms (21211) done." in page
    assert "<code>30006</code>" in page and "<code>21211</code>" not in page  # at once, not when the cache expires
    assert {m.status for m in Message.objects.filter(pk__in=[m.pk for m in group])} == {Status.QUEUED}
    assert Message.objects.get(pk=other.pk).status == Status.FAILED
    entries = AuditEntry.objects.filter(action=AuditEntry.Action.MESSAGE_RETRIED)
    assert sorted(int(e.target_id) for e in entries) == sorted(m.pk for m in group)
    assert {e.user_id for e in entries} == {operator.pk}


def test_a_message_that_fails_again_at_once_is_not_retried_twice_while_others_wait(client, settings):
    import re

    settings.QUEUE_MONITOR_ACTION_BATCH = 2
    member(client, OPERATORS)
    first, second, third = [failed("21211") for _ in range(3)]
    step = client.post(ACT, group_form("retry", "failed", "21211", confirmed="yes", total="3", done="0"))
    after = re.search(r'name="after" value="(\d+)"', step.content.decode()).group(1)
    assert int(after) == second.pk
    # The first one goes out and fails again at once, with the same code, before the next step.
    Message.objects.filter(pk=first.pk).update(status=Status.FAILED, failed_at=timezone.now())

    client.post(ACT, group_form("retry", "failed", "21211", confirmed="yes", total="3", done="2", after=after))

    assert Message.objects.get(pk=third.pk).status == Status.QUEUED
    assert Message.objects.get(pk=first.pk).status == Status.FAILED  # once per confirmation, not twice
    retried = AuditEntry.objects.filter(action=AuditEntry.Action.MESSAGE_RETRIED)
    assert sorted(int(e.target_id) for e in retried) == [first.pk, second.pk, third.pk]


def test_an_operator_cancels_messages_that_keep_failing(client):
    member(client, OPERATORS)
    group = [retrying("30001"), retrying("30001")]
    response = client.post(ACT, group_form("cancel", "retrying", "30001", confirmed="yes", total="2", done="0"))
    assert response.status_code == 302
    assert {m.status for m in Message.objects.filter(pk__in=[m.pk for m in group])} == {Status.CANCELLED}
    assert AuditEntry.objects.filter(action=AuditEntry.Action.MESSAGE_CANCELLED).count() == 2


def test_an_action_that_does_not_fit_its_group_or_a_bad_field_is_a_readable_400(client):
    member(client, OPERATORS)
    failed("21211")
    for form in (
        group_form("cancel", "failed", "21211"),  # failed messages cannot be cancelled
        group_form("retry", "failed", "21211", channel="pigeon"),
        group_form("explode", "failed", "21211"),
    ):
        response = client.post(ACT, form)
        assert response.status_code == 400
        assert "pick one from the monitor" in response.content.decode()
    assert client.get(ACT).status_code == 405


def test_acting_needs_the_csrf_token(client):
    user = member(client, OPERATORS)
    failed("21211")
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(user)
    assert strict.post(ACT, group_form("retry", "failed", "21211", confirmed="yes", total="1")).status_code == 403
    assert Message.objects.get().status == Status.FAILED


def test_reasons_and_codes_are_escaped(client):
    member(client, OPERATORS)
    failed("<b>x</b>", reason="<script>alert(1)</script>")
    page = client.get(MONITOR).content.decode()
    assert "<script>alert(1)</script>" not in page and "<b>x</b>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_superusers_get_the_link_to_django_rqs_raw_dashboard(client):
    client.force_login(User.objects.create_superuser("root", "root@example.com", "pw"))
    page = client.get(MONITOR).content.decode()
    assert 'href="/admin/queues/"' in page
    assert client.get("/admin/queues/").status_code == 200


def test_the_monitor_is_in_the_admins_app_list_and_sidebar_for_those_allowed(client):
    member(client, VIEWERS)
    index = client.get("/admin/").content.decode()
    assert 'href="/admin/console/queuemonitor/"' in index
    assert client.get("/admin/console/queuemonitor/")["Location"] == MONITOR
    client.force_login(User.objects.create_user("plain", password="pw", is_staff=True))
    assert "/admin/console/queuemonitor/" not in client.get("/admin/").content.decode()


def test_a_groups_count_links_to_its_messages_in_the_message_list(client):
    member(client, OPERATORS)
    mine = failed("21211")
    failed("30006")
    page = client.get(MONITOR).content.decode()
    link = "/admin/deliveries/message/?status__exact=failed&amp;channel__exact=sms&amp;last_error_code=21211"
    assert link in page
    listing = client.get(link.replace("&amp;", "&"))
    assert listing.status_code == 200
    assert list(listing.context["cl"].queryset) == [mine]


@pytest.mark.django_db(transaction=True)  # the worker commits each send
def test_each_queue_shows_what_its_messages_sent_in_the_last_minutes_and_the_hour(client, settings):
    from analytics.services.rollup import analytics_rollup
    from deliveries.services.messages import message_create, message_request_validate
    from tests.support import run_burst_worker

    settings.SMS_BACKEND = "locmem"
    for priority, count in (("high", 3), ("low", 1)):
        for i in range(count):
            request, content = message_request_validate(
                channel="sms", to=f"+1415555{priority == 'high':01d}{i:03d}", body="Hi", priority=priority
            )
            message_create(request=request, content=content)
    run_burst_worker("high", "default", "low")
    assert Message.objects.filter(status=Status.SENT).count() == 4
    analytics_rollup()
    member(client, VIEWERS)

    queues = {q["name"]: q for q in client.get(MONITOR).context["snapshot"]["queues"]}

    assert [(queues[name]["sent_5m"], queues[name]["sent_1h"]) for name in ("high", "default", "low")] == [
        (3, 3),
        (0, 0),
        (1, 1),
    ]
    assert queues["high"]["per_minute_1h"] == 0.1
