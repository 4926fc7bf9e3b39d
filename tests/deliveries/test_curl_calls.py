"""The call driver under the async Twilio client: libcurl's multi interface runs coroutines' HTTP calls together,
each coroutine gets its own answer, and a call that gets none fails with a reason instead of hanging."""

import asyncio
import base64
import json
import socket
import time
from urllib.parse import urlencode

from deliveries.backends import get_backend
from deliveries.backends.base import OutgoingMessage
from deliveries.backends.curl import CallDriver, HttpCallError, http_call
from deliveries.exceptions import TransientDeliveryError
from deliveries.sending.call_pool import CallPool


def messages_url(fake) -> str:
    return f"{fake.url}/2010-04-01/Accounts/{fake.account_sid}/Messages.json"


def auth_headers(fake) -> dict[str, str]:
    token = base64.b64encode(f"{fake.account_sid}:{fake.auth_token}".encode()).decode()
    return {"Authorization": f"Basic {token}", "Content-Type": "application/x-www-form-urlencoded"}


async def create_message(fake, to: str, timeout: float = 5) -> dict:
    form = urlencode({"To": to, "From": "+15005550006", "Body": f"Hello {to}"}).encode()
    call = await http_call("POST", messages_url(fake), body=form, headers=auth_headers(fake), timeout=timeout)
    return {**json.loads(call.text), "http_status": call.status}


def drain(driver: CallDriver, expected: int) -> dict:
    by_key = {}
    while len(by_key) < expected:
        finished = driver.finished(timeout=10)
        assert finished, "a call did not come back"
        by_key.update(finished)
    return by_key


def test_calls_are_in_flight_together_and_each_coroutine_gets_its_own_answer(fake_twilio):
    fake_twilio.latency = 0.2
    numbers = [f"+1415555{index:04d}" for index in range(30)]
    with CallDriver(concurrency=30) as driver:
        for number in numbers:
            driver.start(number, create_message(fake_twilio, number))
        driver.send()
        assert driver.in_flight == 30  # all started at once, none waiting for another
        by_key = drain(driver, 30)
    assert {key: answer["to"] for key, answer in by_key.items()} == {number: number for number in numbers}
    assert {answer["http_status"] for answer in by_key.values()} == {201}
    assert len({answer["sid"] for answer in by_key.values()}) == 30
    assert sorted(fake_twilio.count_by_to()) == numbers


def test_a_handle_used_for_a_post_then_serves_a_get(fake_twilio):
    async def post_then_get():
        created = await create_message(fake_twilio, "+14155550100")
        config = await http_call("GET", f"{fake_twilio.url}/_fake/config", timeout=5)
        return created["http_status"], config.status, json.loads(config.text)

    with CallDriver(concurrency=1) as driver:
        driver.start("one", post_then_get())
        [(_, (post_status, get_status, config))] = drain(driver, 1).items()
    assert (post_status, get_status) == (201, 200)
    assert "latency" in config
    assert fake_twilio.count_by_to() == {"+14155550100": 1}


def test_a_reused_handle_takes_each_calls_own_headers_and_method(fake_twilio):
    form = urlencode({"To": "+14155550100", "From": "+15005550006", "Body": "Hi"}).encode()
    unsigned = {"Content-Type": "application/x-www-form-urlencoded"}

    async def calls():
        statuses = []
        for method, headers in [
            ("POST", auth_headers(fake_twilio)),
            ("POST", unsigned),
            ("PUT", auth_headers(fake_twilio)),
            ("POST", auth_headers(fake_twilio)),
        ]:
            call = await http_call(method, messages_url(fake_twilio), body=form, headers=headers, timeout=5)
            statuses.append(call.status)
        return statuses

    with CallDriver(concurrency=1) as driver:  # one handle for the four calls
        driver.start("one", calls())
        [(_, statuses)] = drain(driver, 1).items()
    assert statuses[0] == statuses[3] == 201
    assert statuses[1] == 401  # sent without the Authorization header the first call had
    assert statuses[2] not in (200, 201)  # a PUT, not a POST
    assert fake_twilio.count_by_to() == {"+14155550100": 2}


def error_of(call) -> HttpCallError | None:
    """Drive one call; the HttpCallError it raised, if any."""

    async def catching():
        try:
            await call
        except HttpCallError as error:
            return error

    with CallDriver(concurrency=1) as driver:
        driver.start("one", catching())
        [(_, error)] = driver.finished(timeout=5)
    return error


def test_a_call_without_an_answer_in_time_fails_as_timed_out(fake_twilio):
    fake_twilio.latency = 2
    error = error_of(create_message(fake_twilio, "+14155550100", timeout=0.2))
    assert isinstance(error, HttpCallError)
    assert error.timed_out


def test_an_answer_that_came_while_the_thread_was_busy_elsewhere_is_not_a_timeout(fake_twilio):
    fake_twilio.latency = 0.1
    with CallDriver(concurrency=1) as driver:
        driver.start("warm-up", create_message(fake_twilio, "+14155550101"))
        drain(driver, 1)  # the connection is open now, as it is for most calls of a batch
        driver.start("busy", create_message(fake_twilio, "+14155550100", timeout=0.3))
        driver.send()
        time.sleep(0.8)  # a slow database write in the recording thread: the answer waits in its socket
        [(key, answer)] = driver.finished(timeout=5)
    assert (key, answer["http_status"]) == ("busy", 201)


def test_a_refused_connection_fails_with_libcurls_reason():
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    error = error_of(http_call("POST", f"http://127.0.0.1:{port}/", body=b"x=1", timeout=5))
    assert isinstance(error, HttpCallError)
    assert not error.timed_out
    assert str(error)


def test_a_coroutine_that_awaits_anything_else_gets_a_type_error():
    async def uses_asyncio():
        try:
            await asyncio.sleep(0)
        except TypeError as error:
            return str(error)
        return "not stopped"

    with CallDriver(concurrency=1) as driver:
        driver.start("asyncio", uses_asyncio())
        [(key, message)] = driver.finished(timeout=1)
    assert key == "asyncio"
    assert "only HttpCall" in message


def test_finished_gives_up_after_its_timeout_and_the_call_still_completes(fake_twilio):
    fake_twilio.latency = 0.5
    with CallDriver(concurrency=1) as driver:
        driver.start("late", create_message(fake_twilio, "+14155550100"))
        driver.send()
        assert driver.finished(timeout=0.05) == []
        [(key, answer)] = drain(driver, 1).items()
    assert (key, answer["http_status"]) == ("late", 201)


def test_a_twilio_call_that_times_out_is_a_transient_error_that_says_so(fake_twilio, settings):
    settings.TWILIO_TIMEOUT = 0.2
    fake_twilio.latency = 2
    message = OutgoingMessage(id=1, channel="sms", recipient="+14155550100", body="Hello")
    with CallPool(get_backend("sms"), size=1) as pool:
        pool.start([(1, message)])
        [(key, result)] = pool.results(timeout=5)
    assert key == 1
    assert isinstance(result.error, TransientDeliveryError)
    assert str(result.error) == "Could not reach Twilio: timed out"
