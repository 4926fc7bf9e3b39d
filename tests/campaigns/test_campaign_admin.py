"""The campaign admin: permission-checked lifecycle actions and buttons, and the progress panel."""

import io

import pytest
from django.contrib.auth.models import Permission, User
from django.core.management import call_command

from campaigns.models import Batch, Campaign
from campaigns.services.campaign_lifecycle import campaign_launch
from tests.campaigns.campaign_support import make_contacts, new_campaign
from tests.factories import ContactListFactory
from tests.support import run_burst_worker

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
    return new_campaign(audience)


def test_lifecycle_buttons_and_actions_need_their_own_permission(client, staff, draft):
    page = client.get(f"{CHANGELIST}{draft.pk}/change/")
    assert b'data-lifecycle="launch"' not in page.content
    assert "launch_selected" not in page.content.decode() and client.get(CHANGELIST).status_code == 200
    assert client.post(f"{CHANGELIST}{draft.pk}/launch/").status_code == 403
    refused = client.post(CHANGELIST, {"action": "launch_selected", "_selected_action": [draft.pk]})
    assert refused.status_code == 200  # Django answers an unknown action with the list again
    draft.refresh_from_db()
    assert draft.status == Campaign.Status.DRAFT

    grant(staff, "launch_campaign", "pause_campaign")
    assert b'data-lifecycle="launch"' in client.get(f"{CHANGELIST}{draft.pk}/change/").content
    response = client.post(f"{CHANGELIST}{draft.pk}/launch/", follow=True)
    assert "Launched: Spring sale." in response.content.decode()
    draft.refresh_from_db()
    assert draft.status == Campaign.Status.RUNNING
    page = client.get(f"{CHANGELIST}{draft.pk}/change/").content.decode()
    assert 'data-lifecycle="pause"' in page and 'data-lifecycle="cancel"' not in page

    client.post(CHANGELIST, {"action": "pause_selected", "_selected_action": [draft.pk]})
    draft.refresh_from_db()
    assert draft.status == Campaign.Status.PAUSED
    assert client.post(f"{CHANGELIST}{draft.pk}/cancel/").status_code == 403


def test_an_action_that_does_not_apply_says_why(client, staff, draft):
    grant(staff, "pause_campaign")
    response = client.post(CHANGELIST, {"action": "pause_selected", "_selected_action": [draft.pk]}, follow=True)
    assert "Not paused: Spring sale: Campaign &#x27;Spring sale&#x27; is draft" in response.content.decode()


def test_a_launch_refused_lists_what_is_missing(client, staff):
    grant(staff, "launch_campaign")
    campaign = Campaign.objects.create(name="Half done")
    page = client.get(f"{CHANGELIST}{campaign.pk}/change/").content.decode()
    assert "Choose the template to send." in page
    response = client.post(f"{CHANGELIST}{campaign.pk}/launch/", follow=True).content.decode()
    assert "Not launched: Half done: Choose the template to send." in response


def test_the_campaign_page_shows_progress_and_serves_it_live(client, staff, draft):
    campaign_launch(campaign=draft)
    run_burst_worker()
    page = client.get(f"{CHANGELIST}{draft.pk}/change/").content.decode()
    assert 'data-count="targeted">4<' in page
    assert 'data-count="sent">4<' in page
    assert 'data-bar="sent_only"' in page
    progress = client.get(f"{CHANGELIST}{draft.pk}/progress/").json()
    assert (progress["status"], progress["targeted"], progress["sent"]) == ("running", 4, 4)
    assert 'data-part="sent_only"' in client.get(CHANGELIST).content.decode()
    # A launched campaign is read-only: what it says is what was sent.
    assert 'name="name"' not in page
    messages = client.get(f"/admin/deliveries/message/?campaign__id__exact={draft.pk}")
    assert messages.status_code == 200


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


def test_batches_are_listed_read_only_with_their_messages_by_status(client, staff, tmp_path):
    grant(staff, "view_batch")
    path = tmp_path / "people.csv"
    path.write_text("to\n+14155550101\n")
    call_command("send_bulk", csv=str(path), channel="sms", body="Hi", no_progress=True, stdout=io.StringIO())
    batch = Batch.objects.get()
    page = client.get(f"/admin/campaigns/batch/{batch.pk}/change/").content.decode()
    assert "queued 1" in page
    assert client.get(f"/admin/deliveries/message/?batch__id__exact={batch.pk}").status_code == 200
