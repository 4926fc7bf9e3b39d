from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission, User
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


def test_admin_index_shows_the_overview_only_to_those_who_may_see_messages(client):
    user = User.objects.create_user("op", password="pw", is_staff=True)
    client.force_login(user)
    assert "tidings-overview" not in client.get("/admin/").content.decode()
    user.user_permissions.add(Permission.objects.get(codename="view_message"))
    MessageFactory(status=Status.SENT, sent_at=timezone.now())
    content = client.get("/admin/").content.decode()
    assert "tidings-overview" in content
    assert "Deliveries, last 24 hours" in content
