"""The Spend panel in a real browser: Chart.js stacks a bar per day from the panel's figures, one colour per
channel, and pointing at today's bar shows each channel's spend with its currency."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib.auth.models import Group, User
from django.utils import timezone

from deliveries.models import Status
from deliveries.staff_roles import VIEWERS, staff_roles_ensure
from tests.factories import MessageFactory
from tests.support import wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow, pytest.mark.browser]

PASSWORD = "a long browser-test password"


def test_a_viewer_sees_spend_stacked_per_day_and_channel(browser):
    now = timezone.now()
    # A month of sends: SMS every day (some reported by the provider), WhatsApp most days, some email.
    for days_ago in range(30):
        at = now - timedelta(days=days_ago, minutes=5)
        for n in range(3 + days_ago % 4):
            MessageFactory(
                status=Status.DELIVERED,
                sent_at=at,
                estimated_cost=Decimal("0.0400") if n % 2 else Decimal("0.0079"),
                cost_currency="USD",
                actual_cost=Decimal("0.0075") if n == 0 else None,
                actual_cost_currency="USD" if n == 0 else "",
            )
        if days_ago % 3:
            MessageFactory(
                channel="whatsapp",
                status=Status.DELIVERED,
                sent_at=at,
                estimated_cost=Decimal("0.0360"),
                cost_currency="USD",
            )
        if days_ago % 5 == 0:
            MessageFactory(
                channel="email",
                recipient="ada@example.com",
                status=Status.DELIVERED,
                sent_at=at,
                estimated_cost=Decimal("0.0010"),
                cost_currency="USD",
            )
    staff_roles_ensure()
    User.objects.create_user("vera", "vera@example.com", PASSWORD, is_staff=True).groups.add(
        Group.objects.get(name=VIEWERS)
    )
    browser.log_in("vera", PASSWORD)
    browser.get("/admin/")

    driver = browser.driver
    chart = "const c = document.querySelector('#tidings-spend canvas'); return c && Chart.getChart(c) ? true : false"
    wait_for(lambda: driver.execute_script(chart), timeout=10, message="the spend chart drawn")
    datasets = driver.execute_script(
        "const c = Chart.getChart(document.querySelector('#tidings-spend canvas'));"
        "return [c.config.type, c.options.scales.x.stacked, c.data.labels.length, c.data.datasets.map(d => d.label)]"
    )
    assert datasets == ["bar", True, 30, ["SMS", "Email", "WhatsApp"]]
    driver.execute_script("document.getElementById('tidings-spend').scrollIntoView()")
    browser.screenshot("spend")
