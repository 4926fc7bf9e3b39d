"""The dashboard's alerts panel and the alerts' read-only history in the admin."""

from datetime import timedelta

import pytest
from django.utils import timezone

from console.models import Alert, AlertEvent
from console.services.alerts import alert_apply, alerts_check
from tests.console.alert_support import finding
from tests.support import HOSTILE, assert_shown_only_escaped

pytestmark = pytest.mark.django_db


def test_a_firing_alert_is_a_red_banner_with_since_when_and_what_to_do(admin_client):
    alerts_check()  # no worker runs here: that fires
    page = admin_client.get("/admin/").content.decode()
    assert 'class="tidings-alert" role="alert"' in page
    assert "<strong>No live worker</strong>" in page
    assert "No worker is alive: nothing is being sent" in page
    assert "<b>What to do:</b> Start a worker (manage.py run_worker)" in page
    assert "firing since " in page
    assert "No alerts" not in page


def test_with_nothing_firing_one_quiet_line_says_so_and_when_it_was_checked(admin_client):
    alert_apply(finding(firing=False), now=timezone.now())
    page = admin_client.get("/admin/").content.decode()
    assert "No alerts (checked " in page
    assert 'role="alert"' not in page


def test_the_panel_says_when_nobody_checks_the_alerts(admin_client, settings):
    page = admin_client.get("/admin/").content.decode()
    assert "Alerts are not being checked" in page and "No alerts" not in page
    settings.ALERT_CHECK_INTERVAL = 30
    alert_apply(finding(firing=False), now=timezone.now() - timedelta(minutes=5))
    page = admin_client.get("/admin/").content.decode()
    assert "Alerts are not being checked</b> (last check 5" in page


def test_what_an_alert_shows_is_escaped(admin_client):
    alert_apply(finding(firing=True, detail=HOSTILE), now=timezone.now())
    Alert.objects.update(title=HOSTILE)
    assert_shown_only_escaped(admin_client.get("/admin/").content.decode(), times=2)
    assert_shown_only_escaped(admin_client.get("/admin/console/alertevent/").content.decode())


def test_the_history_lists_fired_and_cleared_and_nobody_edits_it(admin_client, settings):
    settings.ALERT_CLEAR_AFTER_SECONDS = 0
    now = timezone.now()
    alert_apply(finding(firing=True), now=now)
    alert_apply(finding(firing=False), now=now + timedelta(seconds=5))
    page = admin_client.get("/admin/console/alertevent/").content.decode()
    assert "FIRING: Test alert (test_alert)" in page and "CLEARED: Test alert (test_alert)" in page
    event = AlertEvent.objects.first()
    assert admin_client.get("/admin/console/alertevent/add/").status_code == 403
    assert admin_client.post(f"/admin/console/alertevent/{event.pk}/delete/", {"post": "yes"}).status_code == 403
    assert admin_client.post(f"/admin/console/alert/{event.alert_id}/change/", {"state": "clear"}).status_code == 403
    assert AlertEvent.objects.count() == 2


def test_viewers_see_the_banner_and_the_history_and_change_nothing(client, settings):
    from django.contrib.auth.models import Group, User

    alert_apply(finding(firing=True), now=timezone.now())
    viewer = User.objects.create_user("viewer", password="x", is_staff=True)
    viewer.groups.add(Group.objects.get(name="Viewers"))  # the groups' alert permissions come from a migration
    client.force_login(viewer)
    assert "<strong>Test alert</strong>" in client.get("/admin/").content.decode()
    assert client.get("/admin/console/alertevent/").status_code == 200
    event = AlertEvent.objects.get()
    assert client.post(f"/admin/console/alertevent/{event.pk}/delete/", {"post": "yes"}).status_code == 403
