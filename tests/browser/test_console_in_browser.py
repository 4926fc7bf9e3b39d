"""The console as staff use it, in a real browser: compose and watch a message go out, and a viewer who can't act.

A live server (the fakes call its webhooks), a real worker and dispatcher in their own processes, and headless
Chromium driving the admin's pages as a person would.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth.models import Group, User
from django.utils import timezone
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

from deliveries.models import Message, Status
from deliveries.services.messages import message_create, message_request_validate
from deliveries.staff_roles import OPERATORS, VIEWERS, staff_roles_ensure
from tests.support import process_env, provider_env, start_manage, stop, wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow, pytest.mark.browser]

PASSWORD = "a long browser-test password"


def staff_user(username: str, role: str) -> User:
    staff_roles_ensure()  # a transactional test starts without the groups the migration made
    user = User.objects.create_user(username, f"{username}@example.com", PASSWORD, is_staff=True)
    user.groups.add(Group.objects.get(name=role))
    return user


def status_shown(browser) -> str:
    """The status the message page shows (its summary's data-message-status)."""
    return browser.driver.find_element(By.CSS_SELECTOR, "[data-message-status]").get_attribute("data-message-status")


def test_an_operator_composes_a_scheduled_sms_and_watches_it_go_scheduled_sent_delivered(
    browser, live_callbacks, fake_twilio
):
    # Receipts a couple of seconds after the send, so "sent" is on screen long enough to be seen.
    fake_twilio.configure(callback_delay=2.0)
    env = process_env(**provider_env(fake_twilio), PUBLIC_BASE_URL=live_callbacks.url)
    processes = [
        start_manage("run_worker", env=env),
        start_manage("run_dispatcher", "--interval", "0.2", env=env),
    ]
    try:
        staff_user("olga", OPERATORS)
        browser.log_in("olga", PASSWORD)
        browser.get("/admin/deliveries/message/compose/")
        Select(browser.driver.find_element(By.NAME, "channel")).select_by_value("sms")
        browser.driver.find_element(By.NAME, "to").send_keys("+14155550123")
        browser.driver.find_element(By.NAME, "body").send_keys("Your table is ready.")
        send_at = (timezone.localtime() + timedelta(seconds=8)).replace(microsecond=0)
        browser.driver.execute_script(
            "arguments[0].value = arguments[1];",
            browser.driver.find_element(By.NAME, "send_at"),
            send_at.strftime("%Y-%m-%dT%H:%M:%S"),
        )
        browser.screenshot("compose-filled")
        browser.submit(browser.driver.find_element(By.CSS_SELECTOR, "[name=_send]"))

        message = Message.objects.get(recipient="+14155550123")
        assert f"/admin/deliveries/message/{message.pk}/change/" in browser.driver.current_url
        seen = [status_shown(browser)]
        browser.screenshot("scheduled")

        def delivered_on_page() -> bool:
            browser.driver.refresh()
            status = status_shown(browser)
            if status != seen[-1]:
                seen.append(status)
                browser.screenshot(status)
            return status == Status.DELIVERED

        wait_for(delivered_on_page, timeout=60, interval=0.3, message="the page to show the message delivered")
    finally:
        outputs = [stop(process) for process in processes]
    assert seen[0] == Status.SCHEDULED, seen
    assert Status.SENT in seen, seen  # shown between scheduled and delivered
    assert seen[-1] == Status.DELIVERED, seen
    assert seen.index(Status.SENT) < seen.index(Status.DELIVERED)
    timeline = browser.driver.find_element(By.CSS_SELECTOR, ".tidings-timeline").text
    assert "scheduled" in timeline and "delivered" in timeline
    assert [r["to"] for r in fake_twilio.received] == ["+14155550123"]
    assert min(r["received_at"] for r in fake_twilio.received) >= send_at.timestamp()
    assert "Traceback" not in "".join(outputs), outputs


def test_a_viewer_reads_a_message_but_is_offered_no_action_and_cannot_post_one(browser, settings):
    settings.SMS_BACKEND = "locmem"
    request, content = message_request_validate(
        channel="sms", to="+14155550124", body="Hello", send_at=timezone.now() + timedelta(days=1)
    )
    message = message_create(request=request, content=content)
    staff_user("vera", VIEWERS)
    browser.log_in("vera", PASSWORD)

    browser.get(f"/admin/deliveries/message/{message.pk}/change/")
    assert status_shown(browser) == Status.SCHEDULED
    browser.screenshot("viewer-message-page")
    page = browser.driver.page_source
    for action in ("cancel_selected", "retry_selected", 'name="_save"', "Compose"):
        assert action not in page, action
    browser.get("/admin/deliveries/message/compose/")
    assert "403" in browser.driver.title or "Forbidden" in browser.text()

    # The list's actions refuse a forged POST: the message stays scheduled.
    cookie = browser.driver.get_cookie("csrftoken")
    browser.driver.execute_script(
        """
        const form = document.createElement('form');
        form.method = 'post'; form.action = '/admin/deliveries/message/';
        for (const [k, v] of Object.entries(arguments[0])) {
          const input = document.createElement('input'); input.name = k; input.value = v; form.appendChild(input);
        }
        document.body.appendChild(form); form.submit();
        """,
        {"csrfmiddlewaretoken": cookie["value"], "action": "cancel_selected", "_selected_action": str(message.pk)},
    )
    wait_for(lambda: browser.driver.execute_script("return document.readyState") == "complete", timeout=10)
    message.refresh_from_db()
    assert message.status == Status.SCHEDULED


def funnel_counts(browser) -> dict[str, int]:
    rows = browser.driver.find_elements(By.CSS_SELECTOR, "[data-funnel]")
    return {
        row.get_attribute("data-funnel"): int(row.find_element(By.CSS_SELECTOR, "[data-funnel-count]").text)
        for row in rows
    }


def test_an_operator_launches_a_campaign_and_watches_its_funnel_fill_without_reloading(
    browser, live_callbacks, fake_twilio
):
    from tests.campaigns.campaign_support import make_contacts, new_campaign
    from tests.factories import ContactListFactory

    fake_twilio.configure(callback_delay=1.0)
    env = process_env(**provider_env(fake_twilio), PUBLIC_BASE_URL=live_callbacks.url, ANALYTICS_ROLLUP_INTERVAL="0.5")
    operator = staff_user("otto", OPERATORS)
    audience = ContactListFactory()
    make_contacts(audience, 6)
    campaign = new_campaign(audience, created_by=operator)
    processes = [
        start_manage("run_worker", env=env),
        start_manage("run_dispatcher", "--interval", "0.2", env=env),
    ]
    try:
        browser.log_in("otto", PASSWORD)
        browser.get(f"/admin/campaigns/campaign/{campaign.pk}/change/")
        assert "6" in browser.driver.find_element(By.CSS_SELECTOR, "[data-count=recipients]").text
        browser.driver.find_element(By.CSS_SELECTOR, "a[data-lifecycle=launch]").click()
        confirm = browser.driver.find_element(By.CSS_SELECTOR, ".campaign-confirm input[type=submit]")
        assert "6 recipients" in confirm.get_attribute("value")
        browser.screenshot("launch-confirmation")
        browser.submit(confirm)
        browser.get(f"/admin/campaigns/campaign/{campaign.pk}/change/")  # the page, once, then only its own polling
        seen = [funnel_counts(browser)]

        def funnel_filled() -> bool:
            counts = funnel_counts(browser)
            if counts != seen[-1]:
                seen.append(counts)
            return counts["delivered"] == 6

        try:
            filled = wait_for(funnel_filled, timeout=60, interval=0.3, message="the funnel to show six delivered")
        except AssertionError:
            filled = False  # said below, with what the processes printed
        if filled:
            browser.screenshot("funnel-filled")
            wait_for(
                lambda: browser.driver.find_element(By.CSS_SELECTOR, "[data-campaign-status]").text.startswith(
                    "Completed"
                ),
                timeout=30,
                message="the badge to say completed",
            )
            browser.screenshot("completed")
            assert not browser.driver.find_element(By.CSS_SELECTOR, "[data-lifecycle=pause]").is_displayed()
    finally:
        outputs = [stop(process) for process in processes]
    # Where it stopped, if it did: the funnel's steps seen, the messages' statuses, what the processes printed.
    statuses = sorted(Message.objects.filter(campaign=campaign).values_list("status", flat=True))
    assert filled, f"The funnel never showed six delivered: funnel {seen}, messages {statuses}, processes {outputs}"
    assert seen[0]["delivered"] == 0  # it filled while watched, not on a reload
    assert seen[-1]["targeted"] == 6 and seen[-1]["sent"] == 6 and seen[-1]["delivered"] == 6
    assert len(seen) >= 2
    assert Message.objects.filter(campaign=campaign, status=Status.DELIVERED).count() == 6
    assert "Traceback" not in "".join(outputs), outputs
