"""The twilio shims answer as the client does: the kept date parser, and the headers built once per method."""

from twilio.base import deserialize
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

from deliveries.shims.twilio import CachedHeadersClient


def test_twilios_answer_dates_are_parsed_as_the_client_parses_them_and_kept():
    parse = deserialize.rfc2822_datetime
    original = parse.__wrapped__
    for text in ["Thu, 03 Dec 2026 11:40:00 +0000", "Mon, 16 Aug 2010 03:45:01 +0000", "", None, "not a date"]:
        assert parse(text) == original(text), text
    hits = parse.cache_info().hits
    parse("Thu, 03 Dec 2026 11:40:00 +0000")
    assert parse.cache_info().hits == hits + 1


def test_the_kept_headers_are_the_clients_own_for_every_method():
    credentials = ("AC" + "0" * 32, "token")
    cached = CachedHeadersClient(*credentials, http_client=TwilioHttpClient())
    plain = Client(*credentials, http_client=TwilioHttpClient())
    for method in ["GET", "POST", "PUT", "DELETE", "POST"]:
        assert cached.get_headers(method, None) == plain.get_headers(method, None), method
        assert cached.get_headers(method, {}) == plain.get_headers(method, {}), method
    # Headers a call brings are merged as the client merges them; the kept ones are not changed by it.
    given = {"Content-Type": "application/json", "X-Extra": "1"}
    assert cached.get_headers("POST", dict(given)) == plain.get_headers("POST", dict(given))
    assert cached.get_headers("POST", None) == plain.get_headers("POST", None)
    assert cached.get_headers("POST", None) is not cached.get_headers("POST", None)  # a fresh dict each call
