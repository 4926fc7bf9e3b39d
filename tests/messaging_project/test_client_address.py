"""The client address login lockouts count against: REMOTE_ADDR unless proxies of ours are declared."""

from django.test import RequestFactory

from messaging_project.client_address import client_ip_address

requests = RequestFactory()


def test_without_trusted_proxies_a_forged_forwarded_for_is_ignored(settings):
    settings.TRUSTED_PROXY_COUNT = 0
    request = requests.get("/", REMOTE_ADDR="10.0.0.5", HTTP_X_FORWARDED_FOR="1.2.3.4")
    assert client_ip_address(request) == "10.0.0.5"


def test_behind_one_proxy_the_address_it_appended_is_the_client(settings):
    settings.TRUSTED_PROXY_COUNT = 1
    # The client wrote "1.2.3.4" itself; our proxy appended the address it really came from.
    request = requests.get("/", REMOTE_ADDR="10.0.0.5", HTTP_X_FORWARDED_FOR="1.2.3.4, 198.51.100.20")
    assert client_ip_address(request) == "198.51.100.20"


def test_behind_two_proxies_the_outer_ones_entry_is_the_client(settings):
    settings.TRUSTED_PROXY_COUNT = 2
    request = requests.get("/", REMOTE_ADDR="10.0.0.6", HTTP_X_FORWARDED_FOR="1.2.3.4, 198.51.100.20, 10.0.0.5")
    assert client_ip_address(request) == "198.51.100.20"


def test_a_request_that_skipped_the_proxies_counts_by_its_connection(settings):
    settings.TRUSTED_PROXY_COUNT = 2
    request = requests.get("/", REMOTE_ADDR="10.0.0.6", HTTP_X_FORWARDED_FOR="198.51.100.20")
    assert client_ip_address(request) == "10.0.0.6"
