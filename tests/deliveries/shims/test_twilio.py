"""The twilio shim answers as the client does: the kept date parser."""

from twilio.base import deserialize

import deliveries.shims.twilio  # noqa: F401 - installs the kept parser


def test_twilios_answer_dates_are_parsed_as_the_client_parses_them_and_kept():
    parse = deserialize.rfc2822_datetime
    original = parse.__wrapped__
    for text in ["Thu, 03 Dec 2026 11:40:00 +0000", "Mon, 16 Aug 2010 03:45:01 +0000", "", None, "not a date"]:
        assert parse(text) == original(text), text
    hits = parse.cache_info().hits
    parse("Thu, 03 Dec 2026 11:40:00 +0000")
    assert parse.cache_info().hits == hits + 1
