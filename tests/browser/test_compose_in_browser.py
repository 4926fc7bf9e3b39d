"""The compose page's script in a real browser: only the chosen channel's fields show, the fields it hides are not
submitted, and the send time typed in UTC is echoed in the browser's zone."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group, User
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

from deliveries.models import Message
from deliveries.staff_roles import OPERATORS, staff_roles_ensure

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser]

PASSWORD = "a long browser-test password"
COMPOSE = "/admin/deliveries/message/compose/"


@pytest.fixture
def composing(browser):
    staff_roles_ensure()  # a transactional test starts without the groups the migration made
    user = User.objects.create_user("olga", "olga@example.com", PASSWORD, is_staff=True)
    user.groups.add(Group.objects.get(name=OPERATORS))
    browser.log_in("olga", PASSWORD)
    browser.get(COMPOSE)
    return browser


def test_only_the_chosen_channels_fields_show_and_those_hidden_are_not_sent(composing):
    driver = composing.driver

    def shown(name: str) -> bool:
        return driver.find_element(By.NAME, name).is_displayed()

    assert (shown("body"), shown("media_urls"), shown("subject"), shown("html_body")) == (True, True, False, False)
    Select(driver.find_element(By.NAME, "channel")).select_by_value("email")
    assert (shown("subject"), shown("html_body"), shown("media_urls")) == (True, True, False)
    driver.find_element(By.NAME, "subject").send_keys("Typed for the email")
    composing.screenshot("email-fields")
    # Back to SMS: the subject is hidden and disabled, so it is neither sent nor refused.
    Select(driver.find_element(By.NAME, "channel")).select_by_value("sms")
    assert not shown("subject")
    driver.find_element(By.NAME, "to").send_keys("+14155550100")
    driver.find_element(By.NAME, "body").send_keys("Hello")
    composing.submit(driver.find_element(By.NAME, "_send"))
    message = Message.objects.get()
    assert (message.channel, message.subject, message.body) == ("sms", "", "Hello")


def test_the_send_time_typed_in_utc_is_echoed_in_the_browsers_zone(composing):
    driver = composing.driver
    driver.execute_script(
        "const field = document.querySelector('[name=send_at]');"
        "field.value = '2030-01-02T03:04:05'; field.dispatchEvent(new Event('input'));"
    )
    echoed = driver.find_element(By.ID, "send-at-local").text
    assert echoed.startswith("2030-01-02 03:04:05 UTC is ")
    assert "in your time zone (" in echoed
