"""The fake Twilio must look like Twilio to the real `twilio` client, or tests against it prove nothing."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from twilio.base.exceptions import TwilioRestException
from twilio.rest import Client

from deliveries.backends.sms.twilio import RebasedTwilioHttpClient
from fake_providers.twilio import FakeTwilio

SENDER = "+15005550006"
RECIPIENT = "+14155550100"
MESSAGING_SERVICE_SID = "MG" + "1" * 32


@pytest.fixture
def fake() -> Iterator[FakeTwilio]:
    twilio = FakeTwilio(seed=1)
    with twilio.start():
        yield twilio


def client_for(fake: FakeTwilio, account_sid: str | None = None, auth_token: str | None = None) -> Client:
    http_client = RebasedTwilioHttpClient(fake.url, timeout=5)
    return Client(account_sid or fake.account_sid, auth_token or fake.auth_token, http_client=http_client)


@pytest.fixture
def client(fake: FakeTwilio) -> Client:
    return client_for(fake)


def rest_error(client: Client, **params) -> TwilioRestException:
    with pytest.raises(TwilioRestException) as raised:
        client.messages.create(**params)
    return raised.value


def test_a_sent_message_gets_a_message_sid_and_is_recorded(fake, client):
    created = client.messages.create(
        to=RECIPIENT,
        from_=SENDER,
        body="Hello",
        media_url=["https://example.com/a.png", "https://example.com/b.png"],
        status_callback="https://example.com/status",
    )

    assert created.sid.startswith("SM") and len(created.sid) == 34
    assert created.status == "queued"
    assert (created.to, created.from_, created.body) == (RECIPIENT, SENDER, "Hello")
    assert created.account_sid == fake.account_sid
    assert created.num_media == "2"
    assert created.direction == "outbound-api"
    assert created.date_created is not None and created.date_sent is None
    [recorded] = fake.received
    assert recorded["sid"] == created.sid
    assert recorded["media_urls"] == ["https://example.com/a.png", "https://example.com/b.png"]
    assert recorded["status_callback"] == "https://example.com/status"
    assert recorded["received_at"] <= time.time()


def test_a_message_through_a_messaging_service_is_accepted_without_a_from_number(fake, client):
    created = client.messages.create(to=RECIPIENT, messaging_service_sid=MESSAGING_SERVICE_SID, body="Hello")

    assert created.status == "accepted"
    assert created.from_ is None
    assert created.messaging_service_sid == MESSAGING_SERVICE_SID
    assert fake.received[0]["messaging_service_sid"] == MESSAGING_SERVICE_SID


def test_a_whatsapp_address_is_validated_by_its_phone_number(fake, client):
    created = client.messages.create(to=f"whatsapp:{RECIPIENT}", from_=f"whatsapp:{SENDER}", body="Hello")

    assert created.to == f"whatsapp:{RECIPIENT}"
    assert rest_error(client, to="whatsapp:+1234", from_=f"whatsapp:{SENDER}", body="Hello").code == 21211


@pytest.mark.parametrize("to", ["+15005550001", "12345", "+1234", "not a number"])
def test_an_invalid_to_number_is_refused_with_code_21211(fake, client, to):
    error = rest_error(client, to=to, from_=SENDER, body="Hello")

    assert (error.status, error.code) == (400, 21211)
    assert f"The 'To' number {to} is not a valid phone number." in error.msg
    assert fake.received == []
    assert fake.request_count == 1


@pytest.mark.parametrize(
    ("to", "code"),
    [("+15005550009", 21614), ("+15005550004", 21610), ("+15005550002", 21612), ("+15005550003", 21408)],
)
def test_twilio_magic_test_numbers_fail_with_their_documented_codes(fake, client, to, code):
    error = rest_error(client, to=to, from_=SENDER, body="Hello")

    assert (error.status, error.code) == (400, code)


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"to": "", "from_": SENDER, "body": "Hello"}, 21604),
        ({"to": RECIPIENT, "body": "Hello"}, 21603),
        ({"to": RECIPIENT, "from_": SENDER}, 21602),
        ({"to": RECIPIENT, "from_": SENDER, "body": "x" * 1601}, 21617),
    ],
    ids=["no To", "no From or MessagingServiceSid", "no Body or MediaUrl", "Body too long"],
)
def test_an_incomplete_message_is_refused_with_twilios_code(fake, client, params, code):
    error = rest_error(client, **params)

    assert (error.status, error.code) == (400, code)


def test_a_message_with_media_and_no_body_is_accepted(fake, client):
    created = client.messages.create(to=RECIPIENT, from_=SENDER, media_url=["https://example.com/a.png"])

    assert created.num_media == "1"


@pytest.mark.parametrize(
    "credentials",
    [{"auth_token": "wrong-token"}, {"account_sid": "AC" + "f" * 32}],
    ids=["wrong auth token", "another account"],
)
def test_wrong_credentials_are_refused_with_401_and_code_20003(fake, credentials):
    error = rest_error(client_for(fake, **credentials), to=RECIPIENT, from_=SENDER, body="Hello")

    assert (error.status, error.code) == (401, 20003)
    assert fake.received == []


def test_an_account_sid_in_the_path_that_is_not_the_authenticated_one_is_refused(fake):
    response = requests.post(
        f"{fake.url}/2010-04-01/Accounts/AC{'f' * 32}/Messages.json",
        data={"To": RECIPIENT, "From": SENDER, "Body": "Hello"},
        auth=(fake.account_sid, fake.auth_token),
        timeout=5,
    )

    assert response.status_code == 401
    assert response.json() == {
        "code": 20003,
        "message": "Authenticate",
        "more_info": "https://www.twilio.com/docs/errors/20003",
        "status": 401,
    }


@pytest.mark.parametrize(
    ("setting", "status", "code"),
    [("fail_500_rate", 500, 20500), ("fail_429_rate", 429, 20429)],
)
def test_injected_failures_reach_the_client_with_their_status_and_code(fake, client, setting, status, code):
    fake.configure(**{setting: 1.0})

    error = rest_error(client, to=RECIPIENT, from_=SENDER, body="Hello")

    assert (error.status, error.code) == (status, code)
    assert fake.received == []
    assert fake.request_count == 1


def test_a_down_provider_answers_503(fake, client):
    fake.down = True

    error = rest_error(client, to=RECIPIENT, from_=SENDER, body="Hello")

    assert (error.status, error.code) == (503, 20503)


def test_a_failure_rate_fails_about_that_share_of_requests_repeatably_for_a_seed(fake, client):
    def outcomes() -> list[int]:
        fake.configure(fail_500_rate=0.3, seed=42)
        results = []
        for _ in range(40):
            try:
                client.messages.create(to=RECIPIENT, from_=SENDER, body="Hello")
                results.append(201)
            except TwilioRestException as error:
                results.append(error.status)
        return results

    first_run = outcomes()

    assert first_run == outcomes()
    assert 4 <= first_run.count(500) <= 20


def test_faults_can_be_set_over_http(fake, client):
    response = requests.post(f"{fake.url}/_fake/config", json={"fail_429_rate": 1.0, "latency": 0.01}, timeout=5)

    assert response.json()["fail_429_rate"] == 1.0
    assert fake.latency == 0.01
    assert rest_error(client, to=RECIPIENT, from_=SENDER, body="Hello").status == 429


def test_unknown_or_out_of_range_settings_are_refused_over_http(fake):
    unknown = requests.post(f"{fake.url}/_fake/config", json={"fail_rate": 1.0}, timeout=5)
    out_of_range = requests.post(f"{fake.url}/_fake/config", json={"fail_500_rate": 2}, timeout=5)

    assert (unknown.status_code, out_of_range.status_code) == (400, 400)
    assert fake.fail_500_rate == 0.0


def test_latency_delays_each_answer(fake, client):
    fake.latency = 0.1
    started = time.monotonic()

    client.messages.create(to=RECIPIENT, from_=SENDER, body="Hello")

    assert time.monotonic() - started >= 0.1


def test_a_message_is_received_when_its_request_arrives_not_when_the_slow_answer_leaves(fake, client):
    # What the schedule benchmark and the "never early" tests read: the latency is the provider answering slowly.
    fake.latency = 0.3
    sent = time.time()
    client.messages.create(to=RECIPIENT, from_=SENDER, body="Hello")
    answered = time.time()

    [recorded] = fake.received
    assert sent <= recorded["received_at"] <= answered - 0.3


def test_slow_answers_are_served_concurrently(fake):
    fake.latency = 0.3
    url = f"{fake.url}/2010-04-01/Accounts/{fake.account_sid}/Messages.json"

    def send(index: int) -> int:
        form = {"To": RECIPIENT, "From": SENDER, "Body": f"Hello {index}"}
        return requests.post(url, data=form, auth=(fake.account_sid, fake.auth_token), timeout=5).status_code

    with ThreadPoolExecutor(max_workers=50) as pool:
        statuses = list(pool.map(send, range(50)))

    assert statuses == [201] * 50
    # Served one after another, no two requests would wait out the latency together (and 50 would take 15 s).
    assert fake.peak_answers_waiting > 1
    assert fake.count_by_to() == {RECIPIENT: 50}


def test_recorded_messages_and_request_count_are_listed_and_reset_over_http(fake, client):
    client.messages.create(to=RECIPIENT, from_=SENDER, body="Hello")
    rest_error(client, to="+15005550001", from_=SENDER, body="Hello")

    listed = requests.get(f"{fake.url}/_fake/messages", timeout=5).json()
    requests.post(f"{fake.url}/_fake/reset", timeout=5)

    assert listed["request_count"] == 2
    assert [message["to"] for message in listed["messages"]] == [RECIPIENT]
    assert (fake.received, fake.request_count) == ([], 0)


def test_reset_restores_the_faults_the_fake_was_built_with(fake):
    fake.configure(down=True, fail_500_rate=0.5, latency=1.0)

    fake.reset()

    assert (fake.down, fake.fail_500_rate, fake.latency, fake.seed) == (False, 0.0, 0.0, 1)


def test_count_by_to_counts_accepted_messages_per_recipient(fake, client):
    for to in [RECIPIENT, RECIPIENT, "+14155550101"]:
        client.messages.create(to=to, from_=SENDER, body="Hello")

    assert fake.count_by_to() == {RECIPIENT: 2, "+14155550101": 1}


# --- Status callbacks ---------------------------------------------------------------------------------------


def wait_for_callbacks(fake: FakeTwilio, count: int) -> list[dict]:
    from tests.support import wait_for

    wait_for(lambda: len(fake.callbacks) >= count and fake.callbacks_in_flight == 0, timeout=5, message="callbacks")
    return fake.callbacks


def test_an_accepted_message_gets_sent_then_delivered_callbacks_signed_as_twilio_signs(fake, client):
    from twilio.request_validator import RequestValidator

    from tests.support import CallbackReceiver

    fake.callback_delay = 0
    with CallbackReceiver(status=204) as app:
        callback_url = f"{app.url}/webhooks/twilio/status/?message=7&attempt=1"
        created = client.messages.create(to=RECIPIENT, from_=SENDER, body="Hello", status_callback=callback_url)
        callbacks = wait_for_callbacks(fake, 2)

    assert [(c["message_status"], c["status"]) for c in callbacks] == [("sent", 204), ("delivered", 204)]
    validator = RequestValidator(fake.auth_token)
    for request in app.requests:
        assert request["path"] == "/webhooks/twilio/status/?message=7&attempt=1"
        assert validator.validate(callback_url, request["form"], request["headers"]["X-Twilio-Signature"])
        assert not RequestValidator("another-token").validate(
            callback_url, request["form"], request["headers"]["X-Twilio-Signature"]
        )
    sent, delivered = (request["form"] for request in app.requests)
    assert sent == {
        "AccountSid": fake.account_sid,
        "ApiVersion": "2010-04-01",
        "From": SENDER,
        "To": RECIPIENT,
        "MessageSid": created.sid,
        "SmsSid": created.sid,
        "MessageStatus": "sent",
        "SmsStatus": "sent",
    }
    assert delivered["MessageStatus"] == "delivered" and "RawDlrDoneDate" in delivered


@pytest.mark.parametrize(
    ("outcome", "statuses"),
    [
        ("undelivered", ["sent", "undelivered"]),
        ("failed", ["failed"]),
        ("sent", ["sent"]),
        ("none", []),
    ],
)
def test_the_outcome_decides_the_callbacks_and_failures_carry_the_error_code(fake, client, outcome, statuses):
    from tests.support import CallbackReceiver

    fake.configure(outcome=outcome, error_code=30003, callback_delay=0)
    with CallbackReceiver() as app:
        client.messages.create(to=RECIPIENT, from_=SENDER, body="Hello", status_callback=f"{app.url}/status")
        if statuses:
            wait_for_callbacks(fake, len(statuses))
        else:
            time.sleep(0.1)
    assert [request["form"]["MessageStatus"] for request in app.requests] == statuses
    for request in app.requests:
        expected = "30003" if request["form"]["MessageStatus"] in ("undelivered", "failed") else None
        assert request["form"].get("ErrorCode") == expected


def test_whatsapp_callbacks_carry_the_channel_and_can_report_read(fake, client):
    from tests.support import CallbackReceiver

    fake.configure(outcome="read", callback_delay=0)
    with CallbackReceiver() as app:
        client.messages.create(
            to=f"whatsapp:{RECIPIENT}", from_=f"whatsapp:{SENDER}", body="Hi", status_callback=f"{app.url}/status"
        )
        wait_for_callbacks(fake, 3)
    forms = [request["form"] for request in app.requests]
    assert [form["MessageStatus"] for form in forms] == ["sent", "delivered", "read"]
    assert {form["ChannelPrefix"] for form in forms} == {"whatsapp"}
    assert forms[0]["From"] == f"whatsapp:{SENDER}"


def test_callbacks_never_leave_this_machine(fake, client):
    fake.callback_delay = 0
    client.messages.create(to=RECIPIENT, from_=SENDER, body="Hello", status_callback="https://example.com/status")
    [first, second] = wait_for_callbacks(fake, 2)
    assert first["status"] is None
    assert first["error"] == "not posted: https://example.com/status is not on this machine"


def test_a_test_can_post_a_status_out_of_order_and_an_inbound_message(fake, client):
    from tests.support import CallbackReceiver

    fake.outcome = "none"
    with CallbackReceiver() as app:
        created = client.messages.create(to=RECIPIENT, from_=SENDER, body="Hi", status_callback=f"{app.url}/status")
        delivered = fake.post_status(created.sid, "delivered")
        inbound = fake.send_inbound(f"{app.url}/inbound", from_=RECIPIENT, to=SENDER, body="STOP")
    assert (delivered["status"], inbound["status"]) == (200, 200)
    assert app.requests[0]["form"]["MessageStatus"] == "delivered"
    assert app.requests[1]["form"]["Body"] == "STOP"
    assert app.requests[1]["form"]["From"] == RECIPIENT


def test_callback_settings_are_set_over_http_and_checked(fake):
    ok = requests.post(f"{fake.url}/_fake/config", json={"outcome": "undelivered", "error_code": 30007}, timeout=5)
    bad = requests.post(f"{fake.url}/_fake/config", json={"outcome": "lost"}, timeout=5)
    assert ok.json()["outcome"] == "undelivered" and ok.json()["error_code"] == 30007
    assert bad.status_code == 400
    assert (fake.outcome, fake.error_code) == ("undelivered", 30007)
    fake.reset()
    assert fake.outcome == "delivered"


def test_the_account_is_fetched_by_the_real_client_with_its_status_and_type(fake, client):
    account = client.api.v2010.accounts(fake.account_sid).fetch()

    assert (account.sid, account.status, account.type) == (fake.account_sid, "active", "Full")
    assert account.friendly_name == "Tidings fake account"


@pytest.mark.parametrize(
    "credentials",
    [{"auth_token": "wrong-token"}, {"account_sid": "AC" + "f" * 32}],
    ids=["wrong auth token", "another account"],
)
def test_fetching_the_account_with_wrong_credentials_is_refused_with_401_and_code_20003(fake, credentials):
    client = client_for(fake, **credentials)
    with pytest.raises(TwilioRestException) as raised:
        client.api.v2010.accounts(credentials.get("account_sid", fake.account_sid)).fetch()

    assert (raised.value.status, raised.value.code) == (401, 20003)


def test_a_messaging_service_of_the_account_is_fetched_and_another_is_not_found():
    fake = FakeTwilio(messaging_service_sids=[MESSAGING_SERVICE_SID])
    with fake.start():
        # The client asks messaging.twilio.com; the fake serves that API's paths too.
        response = requests.get(
            f"{fake.url}/v1/Services/{MESSAGING_SERVICE_SID}", auth=(fake.account_sid, fake.auth_token), timeout=5
        )
        missing = requests.get(
            f"{fake.url}/v1/Services/MG{'2' * 32}", auth=(fake.account_sid, fake.auth_token), timeout=5
        )
        refused = requests.get(
            f"{fake.url}/v1/Services/{MESSAGING_SERVICE_SID}", auth=(fake.account_sid, "x"), timeout=5
        )

    assert response.status_code == 200
    assert (response.json()["sid"], response.json()["account_sid"]) == (MESSAGING_SERVICE_SID, fake.account_sid)
    assert missing.status_code == 404 and missing.json()["code"] == 20404
    assert refused.status_code == 401 and refused.json()["code"] == 20003


def test_a_fetched_message_shows_its_price_per_segment_once_the_carrier_has_reported_it(fake, client):
    fake.configure(prices={"+44": "0.0400", "": "0.0500"}, price_after_fetches=1)
    created = client.messages.create(to="+447400123456", from_=SENDER, body="ж" * 71)  # 2 UCS-2 segments
    assert created.num_segments == "2"
    first = client.messages(created.sid).fetch()
    assert (first.price, first.status) == (None, "delivered")
    second = client.messages(created.sid).fetch()
    assert (second.price, second.price_unit) == ("-0.08000", "USD")
    assert rest_error_fetch(client, "SM" + "0" * 32) == (404, 20404)


def rest_error_fetch(client: Client, sid: str) -> tuple[int, int]:
    with pytest.raises(TwilioRestException) as raised:
        client.messages(sid).fetch()
    return raised.value.status, raised.value.code


def test_a_price_table_that_is_not_prefixes_to_decimal_strings_is_refused(fake):
    response = requests.post(f"{fake.url}/_fake/config", json={"prices": {"+44": 0.04}}, timeout=5)
    assert response.status_code == 400 and "prices must map number prefixes to decimal strings" in response.text
    response = requests.post(f"{fake.url}/_fake/config", json={"price_after_fetches": -2}, timeout=5)
    assert response.status_code == 400 and "price_after_fetches" in response.text
