"""What of a request's path and query may be logged."""

import logging

from messaging_project.log_redaction import RedactPaths, loggable_query, loggable_url


def test_a_parameter_named_like_an_address_is_masked_whole():
    assert loggable_query("ada@example.com&page=1") == "***=***&page=1"
    assert loggable_query("%2B14155550100=1") == "***=***"


def test_a_full_url_keeps_its_host_and_loses_the_token_and_the_number():
    url = "https://tidings.example.com/unsubscribe/MTIz:abc/?to=%2B14155550100&channel=sms#top"
    assert loggable_url(url) == "https://tidings.example.com/unsubscribe/***/?to=***&channel=sms"


def test_djangos_request_log_loses_the_token_in_the_path():
    record = logging.LogRecord(
        "django.request", logging.WARNING, __file__, 1, "%s: %s", ("Bad Request", "/unsubscribe/MTIz:abc/"), None
    )
    assert RedactPaths().filter(record) is True
    assert record.getMessage() == "Bad Request: /unsubscribe/***/"
