"""The issue's "it must show" for the campaign page: after a real run of one campaign (a real RQ worker, the
dispatcher's pass, anymail's Postmark client against the fake Postmark calling back a live server) with retries,
delivery receipts, bounces, opens, clicks and opt-outs, every figure the page shows equals a count made here
independently over the messages and the suppression list."""

import json
from collections import Counter
from datetime import timedelta

import django_rq
import pytest
from django.utils import timezone
from rq import SimpleWorker

from analytics.services.rollup import analytics_rollup
from campaigns.models import Campaign
from campaigns.services.campaign_lifecycle import campaign_launch
from campaigns.services.completion import campaigns_complete_finished
from deliveries.models import Message, Status, Suppression
from deliveries.services.dispatch import dispatch_due_messages
from tests.campaigns.campaign_support import make_contacts
from tests.factories import ContactListFactory, TemplateFactory
from tests.support import run_burst_worker, wait_for

pytestmark = pytest.mark.django_db(transaction=True)


def send_one_job() -> None:
    django_rq.get_worker("default", worker_class=SimpleWorker).work(burst=True, max_jobs=1)


def settled(fake, count: int) -> None:
    wait_for(
        lambda: len(fake.callbacks) >= count and fake.callbacks_in_flight == 0,
        timeout=20,
        message=f"{count} callbacks from the fake Postmark",
    )


@pytest.fixture
def email_campaign():
    audience = ContactListFactory()
    make_contacts(audience, 8, sms_consent=False, email_consent=True)
    for number, contact in enumerate(audience.contacts.order_by("pk")):
        contact.email = f"person{number}@example.com"
        contact.save()
    template = TemplateFactory(channel="email", subject="Spring <sale>", body="Hi {{ first_name }}")
    template.variables = {"first_name": None}
    template.save()
    return Campaign.objects.create(name="Spring sale", template=template, contact_list=audience)


def test_the_campaign_page_figures_equal_independent_counts_after_a_real_run(
    admin_client, live_callbacks, fake_postmark, email_campaign, settings
):
    settings.SEND_BATCH_SIZE = 2  # four send jobs of two messages, each sent with its own outcome
    settings.SEND_JOB_TAKE_OVER_SECONDS = 0
    campaign = email_campaign
    campaign_launch(campaign=campaign)
    run_burst_worker("high")  # the fan-out: eight messages, four jobs

    fake_postmark.configure(outcome="delivered", opens=2, clicks=1)
    send_one_job()
    settled(fake_postmark, 2 * 4)  # delivery, two opens, a click each
    # Retries: Postmark answers 500, the messages wait their backoff, then go out when the dispatcher finds them due.
    fake_postmark.configure(fail_500_rate=1.0)
    send_one_job()
    retried = Message.objects.filter(campaign=campaign, status=Status.SCHEDULED)
    assert retried.count() == 2
    fake_postmark.configure(fail_500_rate=0.0, outcome="delivered", opens=1, clicks=0)
    retried.update(send_at=timezone.now() - timedelta(seconds=1))
    assert dispatch_due_messages() == 2
    send_one_job()
    settled(fake_postmark, 8 + 2 * 2)
    fake_postmark.configure(outcome="bounce", opens=0)
    send_one_job()
    settled(fake_postmark, 12 + 2)
    fake_postmark.configure(outcome="unsubscribe")
    send_one_job()
    settled(fake_postmark, 14 + 2 * 2)
    run_burst_worker()  # anything left (nothing, if the jobs were as planned)
    campaigns_complete_finished()
    analytics_rollup()

    # Counted here, independently: over the campaign's rows and the suppression list.
    messages = Message.objects.filter(campaign=campaign)
    assert sum(messages.values_list("attempts", flat=True)) > messages.count()  # the run had retries
    addresses = list(messages.values_list("recipient", flat=True))
    expected = {
        "targeted": messages.count(),
        "sent": messages.exclude(sent_at=None).count(),
        "delivered": messages.filter(status=Status.DELIVERED).count(),
        "opened": messages.filter(opens_count__gt=0).count(),
        "clicked": messages.filter(clicks_count__gt=0).count(),
        "opted_out": Suppression.objects.filter(
            reason=Suppression.Reason.OPT_OUT, channel="email", address__in=addresses
        ).count(),
    }
    failures = Counter(
        messages.filter(status__in=[Status.FAILED, Status.UNDELIVERED]).values_list("last_error_code", flat=True)
    )
    assert expected == {"targeted": 8, "sent": 8, "delivered": 6, "opened": 4, "clicked": 2, "opted_out": 2}

    live = admin_client.get(f"/admin/campaigns/campaign/{campaign.pk}/progress/").json()
    assert {step["key"]: step["count"] for step in live["funnel"]} == expected
    rates = {step["key"]: step["rate"] for step in live["funnel"]}
    assert rates == {
        "targeted": None,
        "sent": 100.0,
        "delivered": 75.0,
        "opened": 66.7,
        "clicked": 33.3,
        "opted_out": 33.3,
    }
    page = admin_client.get(f"/admin/campaigns/campaign/{campaign.pk}/change/").content.decode()
    for key, count in expected.items():
        assert f'<tr data-funnel="{key}">' in page
        assert f"<td data-funnel-count>{count}</td>" in page.split(f'<tr data-funnel="{key}">')[1]
    assert failures and sum(failures.values()) == 2
    for code, count in failures.items():
        assert f'last_error_code={code}">{count}</a>' in page
    assert "Not billed by the segment (email)" in page
    # Progress over time: the chart's hourly figures add up to the same counts.
    chart = json.loads(page.split('id="campaign-series" type="application/json">')[1].split("</script>")[0])
    for key in ("sent", "delivered", "opened", "clicked"):
        assert sum(point[key] for point in chart) == expected[key]
    assert sum(point["failed"] for point in chart) == sum(failures.values())
