"""The campaign admin: permission-checked lifecycle buttons (a confirmation with the recipient count before a
launch, "Delete draft" rather than "Cancel" on a draft, nothing for a viewer) and the live panel's JSON, which
follows a campaign through completion until its receipts are in."""

from datetime import timedelta
from pathlib import Path

import pytest
from django.contrib.auth.models import Permission, User
from django.utils import timezone

from campaigns.models import Campaign
from campaigns.services.campaign_lifecycle import campaign_launch
from campaigns.services.completion import campaigns_complete_finished
from deliveries.models import Message, Status
from deliveries.state import transition
from tests.campaigns.campaign_support import make_contacts, new_campaign
from tests.factories import ContactFactory, ContactListFactory
from tests.support import HOSTILE, assert_shown_only_escaped, run_burst_worker

pytestmark = pytest.mark.django_db(transaction=True)

CHANGELIST = "/admin/campaigns/campaign/"


@pytest.fixture
def staff(client):
    """A staff member who may view and edit campaigns but not launch, pause or cancel them."""
    user = User.objects.create_user("marketer", password="pw", is_staff=True)
    user.user_permissions.add(
        *Permission.objects.filter(codename__in=["view_campaign", "change_campaign", "add_campaign", "view_message"])
    )
    client.force_login(user)
    return user


def grant(user, *codenames):
    user.user_permissions.add(*Permission.objects.filter(codename__in=codenames))


@pytest.fixture
def draft():
    audience = ContactListFactory()
    make_contacts(audience, 4)
    make_contacts(audience, 1, sms_consent=False)  # left out: no consent for SMS
    return new_campaign(audience)


def page_of(client, campaign) -> str:
    return client.get(f"{CHANGELIST}{campaign.pk}/change/").content.decode()


def test_lifecycle_buttons_and_actions_need_their_own_permission(client, staff, draft):
    page = page_of(client, draft)
    assert 'data-lifecycle="launch"' not in page
    assert "launch_selected" not in page and client.get(CHANGELIST).status_code == 200
    assert client.get(f"{CHANGELIST}{draft.pk}/launch/").status_code == 403
    assert client.post(f"{CHANGELIST}{draft.pk}/launch/").status_code == 403
    refused = client.post(CHANGELIST, {"action": "launch_selected", "_selected_action": [draft.pk]})
    assert refused.status_code == 200  # Django answers an unknown action with the list again
    draft.refresh_from_db()
    assert draft.status == Campaign.Status.DRAFT

    grant(staff, "launch_campaign", "pause_campaign")
    assert 'data-lifecycle="launch"' in page_of(client, draft)
    response = client.post(f"{CHANGELIST}{draft.pk}/launch/", follow=True)
    assert "Launched: Spring sale." in response.content.decode()
    draft.refresh_from_db()
    assert draft.status == Campaign.Status.RUNNING
    page = page_of(client, draft)
    assert f'action="{CHANGELIST}{draft.pk}/pause/" data-lifecycle="pause">' in page
    assert 'data-lifecycle="resume" hidden' in page  # shown by the live panel once paused
    assert 'data-lifecycle="cancel"' not in page

    client.post(CHANGELIST, {"action": "pause_selected", "_selected_action": [draft.pk]})
    draft.refresh_from_db()
    assert draft.status == Campaign.Status.PAUSED
    assert client.get(f"{CHANGELIST}{draft.pk}/progress/").json()["actions"] == ["resume"]
    assert client.post(f"{CHANGELIST}{draft.pk}/cancel/").status_code == 403


def test_a_viewer_sees_no_buttons_and_cannot_act(client, draft):
    viewer = User.objects.create_user("viewer", password="pw", is_staff=True)
    grant(viewer, "view_campaign")
    client.force_login(viewer)
    page = page_of(client, draft)
    assert page.count("data-lifecycle") == 0 and "Delete draft" not in page
    assert "4</strong> recipients if launched now" in page  # the figures are for everyone who may see it
    for action in ("launch", "pause", "resume", "cancel"):
        assert client.get(f"{CHANGELIST}{draft.pk}/{action}/").status_code == 403
        assert client.post(f"{CHANGELIST}{draft.pk}/{action}/").status_code == 403
    campaign_launch(campaign=draft)
    assert page_of(client, draft).count("data-lifecycle") == 0
    assert client.get(f"{CHANGELIST}{draft.pk}/progress/").json()["actions"] == []
    draft.refresh_from_db()
    assert draft.status == Campaign.Status.RUNNING
    # Staff without the campaign's view permission see none of its figures.
    client.force_login(User.objects.create_user("outsider", password="pw", is_staff=True))
    for part in ("progress/", "progress/details/", "change/"):
        assert client.get(f"{CHANGELIST}{draft.pk}/{part}").status_code == 403


def test_a_draft_shows_its_recipients_and_launches_after_a_confirmation_with_the_count(client, staff, draft):
    grant(staff, "launch_campaign", "cancel_campaign", "delete_campaign")
    page = page_of(client, draft)
    assert '<strong data-count="recipients">4</strong> recipients if launched now, by SMS' in page
    assert '<span data-count="excluded">1</span> is left out' in page
    # A draft is deleted, not "cancelled": the ambiguous button is gone.
    assert 'data-lifecycle="delete">Delete draft…</a>' in page
    assert 'data-lifecycle="cancel"' not in page
    assert f'href="{CHANGELIST}{draft.pk}/launch/" data-lifecycle="launch">Launch…</a>' in page

    confirmation = client.get(f"{CHANGELIST}{draft.pk}/launch/").content.decode()
    assert "will go to <strong>4</strong> recipients by SMS" in confirmation
    assert "Of the 5 in its audience, 1 is left out" in confirmation
    assert 'value="Yes, launch to 4 recipients"' in confirmation
    draft.refresh_from_db()
    assert draft.status == Campaign.Status.DRAFT  # looking is not launching

    client.post(f"{CHANGELIST}{draft.pk}/launch/")
    draft.refresh_from_db()
    assert draft.status == Campaign.Status.RUNNING
    cancel = client.get(f"{CHANGELIST}{draft.pk}/cancel/").content.decode()
    assert "its <strong>4</strong> messages not yet sent are cancelled" in cancel
    assert "cannot be launched now" in client.get(f"{CHANGELIST}{draft.pk}/launch/").content.decode()


def test_a_launch_refused_lists_what_is_missing(client, staff):
    grant(staff, "launch_campaign")
    campaign = Campaign.objects.create(name="Half done")
    page = page_of(client, campaign)
    assert "Choose the template to send." in page
    assert "Choose the template to send." in client.get(f"{CHANGELIST}{campaign.pk}/launch/").content.decode()
    response = client.post(f"{CHANGELIST}{campaign.pk}/launch/", follow=True).content.decode()
    assert "Not launched: Half done: Choose the template to send." in response


def test_the_campaign_page_shows_progress_and_serves_it_live(client, staff, draft):
    campaign_launch(campaign=draft)
    run_burst_worker()
    page = page_of(client, draft)
    assert 'data-count="recipients">4<' in page
    assert 'data-count="sent_only">4<' in page  # "Sent, no receipt yet" in the legend
    assert 'data-bar="sent_only"' in page and "Sent, no receipt yet" in page
    assert 'data-live="1"' in page
    progress = client.get(f"{CHANGELIST}{draft.pk}/progress/").json()
    assert (progress["status"], progress["targeted"], progress["sent"], progress["remaining"]) == ("running", 4, 4, 0)
    assert 'data-part="sent_only"' in client.get(CHANGELIST).content.decode()
    # A launched campaign is read-only: what it says is what was sent.
    assert 'name="name"' not in page
    messages = client.get(f"/admin/deliveries/message/?campaign__id__exact={draft.pk}")
    assert messages.status_code == 200


def test_the_live_panel_follows_completion_until_the_receipts_are_in(client, staff, draft, settings):
    """The defect: the page stopped polling at completion and kept 'Running', Pause/Cancel and 'Delivered 0'."""
    grant(staff, "pause_campaign", "cancel_campaign")
    campaign_launch(campaign=draft)
    run_burst_worker()
    running = client.get(f"{CHANGELIST}{draft.pk}/progress/").json()
    assert (running["status_label"], running["actions"], running["live"]) == ("Running", ["pause", "cancel"], True)

    campaigns_complete_finished()
    settling = client.get(f"{CHANGELIST}{draft.pk}/progress/").json()
    assert settling["status_label"] == "Completed · receipts arriving"
    assert settling["actions"] == [] and settling["live"] is True and settling["settle_until"]
    assert "data-settling>" in page_of(client, draft)  # the note is shown, not hidden

    ids = list(Message.objects.filter(campaign=draft).values_list("pk", flat=True))
    transition(ids[:3], to_status=Status.DELIVERED, from_statuses=[Status.SENT])
    transition(ids[3:], to_status=Status.UNDELIVERED, from_statuses=[Status.SENT], fields={"last_error_code": "30006"})
    campaigns_complete_finished()
    run_burst_worker()  # the owner's summary (no owner here: nothing to send, but it is done)
    done = client.get(f"{CHANGELIST}{draft.pk}/progress/").json()
    assert (done["status_label"], done["live"], done["delivered"]) == ("Completed", False, 3)
    funnel = {step["key"]: (step["count"], step["rate"]) for step in done["funnel"]}
    assert funnel["targeted"] == (4, None)
    assert funnel["sent"] == (4, 100.0)
    assert funnel["delivered"] == (3, 75.0)
    page = page_of(client, draft)
    assert 'data-live=""' in page
    assert "The number is a landline or cannot receive SMS." in page
    # The part the panel refreshes now and then (and once at the end): failures, cost and chart.
    details = client.get(f"{CHANGELIST}{draft.pk}/progress/details/").content.decode()
    assert "The number is a landline or cannot receive SMS." in details and "SMS segment" in details
    assert "<html" not in details
    assert 'href="https://www.twilio.com/docs/api/errors/30006"' in page


def test_a_settle_window_that_ended_stops_the_page_even_without_receipts(client, staff, draft, settings):
    settings.CAMPAIGN_SUMMARY_SETTLE = 60
    campaign_launch(campaign=draft)
    run_burst_worker()
    campaigns_complete_finished()
    assert client.get(f"{CHANGELIST}{draft.pk}/progress/").json()["live"] is True
    Campaign.objects.filter(pk=draft.pk).update(completed_at=timezone.now() - timedelta(seconds=61))
    assert client.get(f"{CHANGELIST}{draft.pk}/progress/").json()["live"] is False


def test_a_draft_with_an_unusable_value_is_refused_on_save(client, staff):
    response = client.post(
        f"{CHANGELIST}add/",
        {"name": "Weekly", "schedule": "now", "priority": "default", "time_zone": "Mars/Base", "recurrence": "often"},
    )
    assert response.status_code == 200
    page = response.content.decode()
    assert "&#x27;Mars/Base&#x27; is not an IANA time zone name" in page
    assert "&#x27;often&#x27; is not a cron expression" in page
    assert not Campaign.objects.exists()
    client.post(
        f"{CHANGELIST}add/",
        {"name": "Weekly", "schedule": "now", "priority": "default", "time_zone": "europe/paris"},
    )
    assert Campaign.objects.get().time_zone == "Europe/Paris"
    assert Campaign.objects.get().created_by == staff


def test_campaign_names_and_error_texts_are_shown_escaped(admin_client, draft):
    draft.name = HOSTILE
    draft.save()
    page = page_of(admin_client, draft)
    assert_shown_only_escaped(page)
    assert_shown_only_escaped(admin_client.get(f"{CHANGELIST}{draft.pk}/launch/").content.decode(), times=2)
    campaign_launch(campaign=draft)
    run_burst_worker()
    ids = list(Message.objects.filter(campaign=draft).values_list("pk", flat=True))
    transition(
        ids[:2],
        to_status=Status.UNDELIVERED,
        from_statuses=[Status.SENT],
        fields={"last_error_code": '"><b>', "last_error_message": HOSTILE},
    )
    page = page_of(admin_client, draft)
    assert_shown_only_escaped(page, times=2)  # the name and the failure's reason
    assert "&quot;&gt;&lt;b&gt;" in page  # the code, in the link's query and its text
    assert_shown_only_escaped(admin_client.get(f"{CHANGELIST}{draft.pk}/cancel/").content.decode(), times=2)
    assert_shown_only_escaped(admin_client.get(CHANGELIST).content.decode())
    # The live panel writes what it polls as text, never as markup.
    for script in ("campaign_progress.js", "campaign_chart.js"):
        source = (Path(__file__).parents[2] / "campaigns/static/campaigns" / script).read_text()
        assert "innerHTML" not in source and "insertAdjacentHTML" not in source and "outerHTML" not in source


def test_the_launch_confirmation_warns_of_recipients_in_countries_not_allowed_and_the_page_counts_them(
    client, staff, draft, settings
):
    settings.SMS_ALLOWED_COUNTRIES = ["US"]
    grant(staff, "launch_campaign")
    ContactFactory(lists=[draft.contact_list], phone="+5511987654321")
    ContactFactory(lists=[draft.contact_list], phone="+5511987654322")
    confirmation = client.get(f"{CHANGELIST}{draft.pk}/launch/").content.decode()
    assert (
        "2 recipients are in countries SMS may not be sent to (BR 2; SMS_ALLOWED_COUNTRIES): no message will be "
        "created for them." in confirmation
    )
    client.post(f"{CHANGELIST}{draft.pk}/launch/")
    run_burst_worker()
    assert Message.objects.filter(campaign=draft).count() == 4
    assert "2 not sent: destination country not allowed (BR 2)." in page_of(client, draft)
    settings.SMS_ALLOWED_COUNTRIES = []
    other = new_campaign(draft.contact_list)
    assert "may not be sent to" not in client.get(f"{CHANGELIST}{other.pk}/launch/").content.decode()
