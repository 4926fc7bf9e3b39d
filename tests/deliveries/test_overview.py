from datetime import timedelta

import pytest
from django.utils import timezone

from deliveries.models import Status
from deliveries.selectors import delivery_overview
from tests.factories import MessageFactory

pytestmark = pytest.mark.django_db


def test_overview_counts_statuses_and_buckets_sends_by_hour():
    now = timezone.now()
    for _ in range(3):
        MessageFactory(status=Status.SENT, sent_at=now)
    MessageFactory(status=Status.SENT, sent_at=now - timedelta(hours=2))
    MessageFactory(status=Status.FAILED, failed_at=now)
    MessageFactory(status=Status.QUEUED)
    overview = delivery_overview(hours=24)
    counts = {c["status"]: c["count"] for c in overview["counts"]}
    assert counts["sent"] == 4 and counts["failed"] == 1 and counts["queued"] == 1
    assert overview["pending"] == 1
    assert overview["failure_rate"] == 20.0
    assert len(overview["series"]) == 24
    assert overview["series"][-1]["sent"] == 3
    assert overview["series"][-3]["sent"] == 1
    assert overview["series"][-1]["failed"] == 1
    assert overview["series"][-1]["sent_pct"] == 100
