"""anymail's send on the call driver gives what anymail's own send gives, and requests' preparation of the ESP call
is kept only where nothing but the body changes."""

import requests

from deliveries.backends.email.django_mail import EmailBackend
from deliveries.shims.anymail import request_parts
from tests.deliveries.test_email_async import outgoing, send_all


def test_the_driver_and_anymails_own_send_give_the_same_result(fake_postmark):
    backend = EmailBackend()
    [(_, through_driver)] = send_all(backend, [outgoing(1)]).items()
    backend.open()
    try:
        through_requests = backend.send(outgoing(2))
    finally:
        backend.close()
    assert (through_driver.provider, through_driver.provider_status) == (
        through_requests.provider,
        through_requests.provider_status,
    )
    assert through_driver.provider_message_id and through_requests.provider_message_id


def test_requests_prepares_the_esp_call_once_and_only_the_body_changes_between_emails():
    session = requests.Session()
    session.headers["User-Agent"] = "django-anymail/test"
    params = {
        "method": "POST",
        "url": "https://api.example.com/email",
        "params": None,
        "data": '{"To": "a@example.com"}',
        "headers": {"Content-Type": "application/json", "X-Postmark-Server-Token": "token"},
        "files": None,
        "auth": None,
    }
    prepared = {}
    first = request_parts(session, params, prepared)
    second = request_parts(session, {**params, "data": '{"To": "b@example.com"}'}, prepared)
    assert len(prepared) == 1
    assert (first.body, second.body) == (b'{"To": "a@example.com"}', b'{"To": "b@example.com"}')
    expected = session.prepare_request(requests.Request(**{**params, "data": '{"To": "b@example.com"}'}))
    assert (second.method, second.url) == (expected.method, expected.url)
    left_to_libcurl = ("accept-encoding", "content-length")
    sent_by_requests = {name: value for name, value in expected.headers.items() if name.lower() not in left_to_libcurl}
    assert dict(second.headers) == sent_by_requests


def test_a_form_or_files_is_prepared_by_requests_each_time():
    session = requests.Session()
    prepared = {}
    params = {"method": "POST", "url": "https://api.example.com/messages", "auth": ("api", "key")}
    form = request_parts(session, {**params, "data": {"to": "a@example.com"}}, prepared)
    assert form.body == b"to=a%40example.com"
    assert form.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert form.headers["Authorization"] == "Basic YXBpOmtleQ=="
    with_file = request_parts(session, {**params, "data": {"to": "a"}, "files": {"a.txt": b"hello"}}, prepared)
    assert b"hello" in with_file.body
    assert with_file.headers["Content-Type"].startswith("multipart/form-data")
    assert prepared == {}
