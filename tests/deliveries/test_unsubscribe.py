"""One-click unsubscribe (RFC 8058) and the plain unsubscribe page."""

import pytest
from django.core import mail
from django.test import Client

from analytics import selectors as analytics
from analytics.services.rollup import analytics_rollup
from deliveries.models import Status, Suppression
from deliveries.services.messages import message_create, message_request_validate
from deliveries.services.suppression import unsubscribe_token_make, unsubscribe_url_for
from tests.factories import MessageFactory
from tests.support import run_burst_worker

pytestmark = pytest.mark.django_db(transaction=True)


def email(**fields):
    defaults = {"channel": "email", "to": "ada@example.com", "subject": "News", "body": "Hello"}
    request, content = message_request_validate(**{**defaults, **fields})
    return message_create(request=request, content=content)


def path_of(url: str) -> str:
    return url.removeprefix("http://testserver")


def test_marketing_email_carries_list_unsubscribe_headers_with_a_signed_url():
    message = email()
    run_burst_worker()
    [sent] = mail.outbox
    url = unsubscribe_url_for(message.pk)
    assert url.startswith("http://testserver/unsubscribe/")
    assert sent.extra_headers["List-Unsubscribe"] == f"<{url}>"
    assert sent.extra_headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert sent.tags == ["tidings-marketing"]


def test_transactional_email_has_no_unsubscribe_header():
    email(category="transactional")
    run_burst_worker()
    [sent] = mail.outbox
    assert "List-Unsubscribe" not in sent.extra_headers


def test_one_click_post_unsubscribes_without_login_or_csrf_token():
    message = MessageFactory(channel="email", recipient="ada@example.com", status=Status.SENT)
    client = Client(enforce_csrf_checks=True)
    response = client.post(path_of(unsubscribe_url_for(message.pk)), {"List-Unsubscribe": "One-Click"})
    assert response.status_code == 200
    entry = Suppression.objects.get(channel="email", address="ada@example.com")
    assert (entry.reason, entry.source, entry.message_id) == ("opt_out", "one-click unsubscribe", message.pk)


def test_the_next_marketing_email_to_an_unsubscribed_address_is_suppressed():
    first = email()
    Client().post(path_of(unsubscribe_url_for(first.pk)), {"List-Unsubscribe": "One-Click"})
    second = email()
    run_burst_worker()
    second.refresh_from_db()
    assert second.status == Status.SUPPRESSED


def test_get_shows_the_page_and_unsubscribes_nobody():
    message = MessageFactory(channel="email", recipient="ada@example.com", status=Status.SENT)
    response = Client().get(path_of(unsubscribe_url_for(message.pk)))
    assert response.status_code == 200
    content = response.content.decode()
    assert "a***@example.com" in content and "ada@example.com" not in content
    assert '<form method="post">' in content
    assert not Suppression.objects.exists()
    done = Client().post(path_of(unsubscribe_url_for(message.pk)), {"List-Unsubscribe": "Unsubscribe-Page"})
    assert "You are unsubscribed" in done.content.decode()
    assert Suppression.objects.get().source == "unsubscribe page"


@pytest.mark.parametrize(
    "token",
    [
        "forged",
        "MQ:1vBxyz:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
    ],
)
def test_a_forged_token_fails_and_suppresses_nothing(token):
    MessageFactory(pk=1, channel="email", recipient="ada@example.com")
    response = Client().post(f"/unsubscribe/{token}/", {"List-Unsubscribe": "One-Click"})
    assert response.status_code == 400
    assert not Suppression.objects.exists()


def test_a_token_for_another_message_cannot_be_made_by_editing_the_url():
    mine = MessageFactory(channel="email", recipient="ada@example.com")
    theirs = MessageFactory(channel="email", recipient="bob@example.com")
    token = unsubscribe_token_make(message_id=mine.pk)
    payload, _, signature = token.partition(":")
    other_payload = unsubscribe_token_make(message_id=theirs.pk).partition(":")[0]
    response = Client().post(f"/unsubscribe/{other_payload}:{signature}/", {"List-Unsubscribe": "One-Click"})
    assert response.status_code == 400
    assert not Suppression.objects.exists()


def test_a_link_signed_before_a_secret_key_rotation_still_unsubscribes(settings):
    message = MessageFactory(channel="email", recipient="ada@example.com", status=Status.SENT)
    old_key = settings.SECRET_KEY
    path = path_of(unsubscribe_url_for(message.pk))

    settings.SECRET_KEY = "a-new-secret-key-after-rotation-0123456789-abcdefghijklmnop"
    settings.SECRET_KEY_FALLBACKS = [old_key]
    response = Client().post(path, {"List-Unsubscribe": "One-Click"})
    assert response.status_code == 200
    assert Suppression.objects.filter(channel="email", address="ada@example.com").exists()
    # New links are signed with the new key.
    assert path_of(unsubscribe_url_for(message.pk)) != path


def test_a_link_signed_with_a_key_no_longer_listed_is_refused(settings):
    message = MessageFactory(channel="email", recipient="ada@example.com", status=Status.SENT)
    path = path_of(unsubscribe_url_for(message.pk))
    settings.SECRET_KEY = "a-new-secret-key-after-rotation-0123456789-abcdefghijklmnop"
    settings.SECRET_KEY_FALLBACKS = []
    assert Client().post(path, {"List-Unsubscribe": "One-Click"}).status_code == 400
    assert not Suppression.objects.exists()


def test_an_unsubscribe_is_on_the_messages_timeline_and_counted_as_one_opt_out_however_often_it_is_posted():
    message = MessageFactory(channel="email", recipient="ada@example.com", status=Status.SENT)
    path = path_of(unsubscribe_url_for(message.pk))
    Client().get(path)  # a link scanner: shows the page, changes nothing
    assert not message.events.filter(data__event="unsubscribed").exists()

    Client().post(path, {"List-Unsubscribe": "One-Click"})  # the mail client's one-click post
    Client().post(path)  # then the person, on the page
    analytics_rollup()

    [event] = message.events.filter(data__event="unsubscribed")
    assert (event.kind, event.detail) == ("note", "Unsubscribed by the recipient (one-click unsubscribe).")
    assert analytics.totals()[("email", "opted_out")] == 1
