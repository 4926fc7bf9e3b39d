"""The Trends panel in a real browser: Chart.js draws both charts from the panel's figures, and pointing at the
volumes chart shows every series' number for that bucket, as the table below does."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth.models import Group, User
from django.utils import timezone
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By

from analytics.services.rollup import analytics_rollup
from deliveries.models import MessageEvent, Status
from deliveries.staff_roles import VIEWERS, staff_roles_ensure
from tests.factories import MessageFactory
from tests.support import wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow, pytest.mark.browser]

PASSWORD = "a long browser-test password"


def test_a_viewer_sees_both_charts_drawn_and_the_numbers_on_hover(browser):
    now = timezone.now()
    for days_ago, count in ((1, 3), (3, 5)):
        for _ in range(count):
            message = MessageFactory(status=Status.DELIVERED)
            MessageEvent.objects.create(message=message, to_status="sent", created_at=now - timedelta(days=days_ago))
            MessageEvent.objects.create(
                message=message, to_status="delivered", created_at=now - timedelta(days=days_ago)
            )
    analytics_rollup()
    staff_roles_ensure()
    User.objects.create_user("vera", "vera@example.com", PASSWORD, is_staff=True).groups.add(
        Group.objects.get(name=VIEWERS)
    )
    browser.log_in("vera", PASSWORD)
    browser.get("/admin/?trends_range=7d")

    driver = browser.driver
    drawn = "return ['volumes', 'rates'].map(n => !!Chart.getChart('tidings-trends-' + n))"
    wait_for(lambda: driver.execute_script(drawn) == [True, True], timeout=10, message="both charts drawn")
    # Every chart of the dashboard (the Now panel's sends per minute too) is drawn: a Chart on a canvas with pixels.
    every_canvas = """return [...document.querySelectorAll('canvas')].map(c => {
        if (!Chart.getChart(c) || !c.width || !c.height) return c.id + ': not drawn';
        const pixels = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        for (let i = 3; i < pixels.length; i += 4) if (pixels[i]) return c.id + ': drawn';
        return c.id + ': blank'; })"""
    wait_for(
        lambda: all(s.endswith(": drawn") for s in driver.execute_script(every_canvas)),
        timeout=10,
        message="every chart drawn",
    )
    assert len(driver.execute_script(every_canvas)) == 3, driver.execute_script(every_canvas)
    sent = driver.execute_script("return Chart.getChart('tidings-trends-volumes').data.datasets[0].data")
    assert sum(sent) == 8 and sorted(sent)[-2:] == [3, 5]
    browser.screenshot("trends-7d")

    # Point at the bucket with five messages sent: the tooltip lists every series' number there.
    index = sent.index(5)
    x, y = driver.execute_script(
        "const c = Chart.getChart('tidings-trends-volumes'); const p = c.getDatasetMeta(0).data[arguments[0]];"
        "return [p.x - c.width / 2, p.y - c.height / 2];",
        index,
    )
    canvas = driver.find_element(By.ID, "tidings-trends-volumes")
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", canvas)
    ActionChains(driver).move_to_element_with_offset(canvas, int(x), int(y)).perform()
    lines = "return (Chart.getChart('tidings-trends-volumes').tooltip.body || []).map(b => b.lines.join(' '))"
    wait_for(lambda: driver.execute_script(lines), timeout=5, message="the tooltip")
    shown = driver.execute_script(lines)
    assert "Sent: 5" in shown and "Delivered: 5" in shown and "Failed: 0" in shown
    browser.screenshot("trends-hover")
    row = driver.find_elements(By.CSS_SELECTOR, "#tidings-trends-table tbody tr")[index].text.split()
    assert row[3:5] == ["5", "5"]  # after the day ("Fri Dec 4"): the table's sent and delivered
