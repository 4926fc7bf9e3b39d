"""The smoke test's checks one by one, in this process: how each Redis connection is described (TLS, Sentinel,
a socket), what each provider's harmless call makes of a wrong credential, SMTP's greeting and login, and the
--to targets."""

from __future__ import annotations

import base64
import socket
import socketserver
import threading
from collections.abc import Iterator

import pytest
import redis
from django.db import connection
from django.db.migrations.recorder import MigrationRecorder
from redis.sentinel import Sentinel

from console.services.smoke import SmokeTargetError, smoke_target_parse
from console.services.smoke.infrastructure import database_check
from console.services.smoke.providers import email_check, provider_checks
from console.services.smoke.redis_connections import redis_client_describe, setup_problem
from fake_providers.twilio import DEFAULT_MESSAGING_SERVICE_SID


@pytest.mark.django_db
def test_the_database_line_names_the_engine_and_where_it_is():
    result = database_check()

    assert result.line().startswith(
        f"ok   database: {'PostgreSQL' if connection.vendor == 'postgresql' else 'SQLite'} "
    )
    assert result.line().endswith(", migrations applied")


@pytest.mark.django_db
def test_a_migration_of_this_release_not_applied_fails_the_database_line():
    MigrationRecorder(connection).record_unapplied("console", "0004_queue_monitor_roles")

    result = database_check()

    assert result.failed
    assert "1 migration(s) not applied (first: console.0004_queue_monitor_roles)" in result.detail
    assert result.next_step == "run manage.py migrate (the release step)"


@pytest.mark.django_db
def test_a_migration_this_release_does_not_know_fails_the_database_line():
    MigrationRecorder(connection).record_applied("deliveries", "9999_from_a_newer_release")

    result = database_check()

    assert result.failed
    assert "1 migration(s) this release does not know (first: deliveries.9999_from_a_newer_release)" in result.detail


def test_a_remote_tls_connection_is_described_with_what_verifies_its_certificate():
    client = redis.Redis.from_url("rediss://:secret@10.0.0.5:6380/2?ssl_ca_certs=/etc/tidings/redis-ca.pem")

    assert redis_client_describe(client) == "10.0.0.5:6380 db 2, remote, TLS verified against /etc/tidings/redis-ca.pem"


def test_tls_without_certificate_checks_is_said_plainly():
    client = redis.Redis.from_url("rediss://redis.internal:6380/0?ssl_cert_reqs=none")

    assert redis_client_describe(client) == "redis.internal:6380 db 0, remote, TLS, server certificate NOT verified"


def test_a_sentinel_connection_names_its_master_and_sentinels():
    sentinel = Sentinel([("10.0.0.1", 26379), ("10.0.0.2", 26379)])

    assert redis_client_describe(sentinel.master_for("tidings")) == (
        "Sentinel master 'tidings' db 0 via 10.0.0.1:26379, 10.0.0.2:26379, remote, no TLS"
    )


def test_a_unix_socket_is_local():
    client = redis.Redis.from_url("unix:///run/redis/redis.sock?db=3")

    assert redis_client_describe(client) == "unix socket /run/redis/redis.sock db 3, local, no TLS"


@pytest.mark.parametrize(
    ("sentinels", "problem"),
    [
        (["10.0.0.1:26379"], "does not go through Sentinel although REDIS_SENTINELS is set"),
        ("10.0.0.1:26379,10.0.0.2:26379", "does not go through Sentinel although REDIS_SENTINELS is set"),
        ([("10.0.0.1", 26379)], "does not go through Sentinel although REDIS_SENTINELS is set"),
        ([], ""),
    ],
)
def test_a_connection_that_ignores_the_sentinel_settings_is_a_problem(settings, sentinels, problem):
    settings.REDIS_SENTINELS = sentinels

    assert setup_problem(redis.Redis.from_url("redis://127.0.0.1:6379/0")).startswith(problem)
    assert setup_problem(Sentinel([("10.0.0.1", 26379)]).master_for("tidings")) == ""


def test_a_connection_without_tls_when_the_settings_ask_for_it_is_a_problem(settings):
    settings.REDIS_SSL_CA_CERTS = "/etc/tidings/redis-ca.pem"

    assert "has no TLS although" in setup_problem(redis.Redis.from_url("redis://10.0.0.5:6379/0"))
    assert setup_problem(redis.Redis.from_url("rediss://10.0.0.5:6380/0")) == ""


def test_console_and_locmem_backends_are_not_checked(settings):
    settings.SMS_BACKEND = "console"
    settings.EMAIL_BACKEND = "django.core.mail.backends.console.EmailBackend"

    results = provider_checks()

    assert results["sms"].line() == "skip sms (console): not checked (console backend)"
    assert results["whatsapp"].line() == "skip whatsapp (locmem): not checked (locmem backend)"
    assert results["email"].line() == "skip email (console): not checked (console backend)"


def test_a_twilio_backend_missing_its_sender_fails_with_what_to_set(fake_twilio, settings):
    settings.TWILIO_FROM_NUMBER = ""

    assert provider_checks()["sms"].line() == (
        "FAIL sms (twilio): SMS_BACKEND=twilio needs TWILIO_FROM_NUMBER or TWILIO_MESSAGING_SERVICE_SID. "
        "→ set it (README, Configuration)"
    )


def test_the_messaging_service_that_sends_is_fetched_and_an_unknown_one_fails(fake_twilio, settings):
    settings.TWILIO_MESSAGING_SERVICE_SID = DEFAULT_MESSAGING_SERVICE_SID
    assert provider_checks()["sms"].line() == (
        f"ok   sms (twilio): account {fake_twilio.account_sid} “Tidings fake account” active, sending from "
        f"Messaging Service {DEFAULT_MESSAGING_SERVICE_SID} “Tidings fake service”"
    )

    settings.TWILIO_MESSAGING_SERVICE_SID = "MG" + "9" * 32
    assert provider_checks()["sms"].line() == (
        f"FAIL sms (twilio): account {fake_twilio.account_sid} has no Messaging Service MG{'9' * 32} "
        "→ check TWILIO_MESSAGING_SERVICE_SID"
    )


def test_twilio_unreachable_is_told_apart_from_refused(fake_twilio, settings):
    settings.TWILIO_API_BASE_URL = f"http://127.0.0.1:{free_port()}"

    result = provider_checks()["sms"]

    assert result.failed
    assert "cannot reach Twilio at http://127.0.0.1:" in result.detail and "(Connection refused)" in result.detail


def test_a_wrong_page_token_fails_with_metas_code_and_the_token_is_never_printed(fake_messenger, settings):
    settings.MESSENGER_PAGE_ACCESS_TOKEN = "not-the-page-token"

    line = provider_checks()["messenger"].line()

    assert line.startswith("FAIL messenger (graph): Meta refused the page access token (code 190: ")
    assert line.endswith("→ check MESSENGER_PAGE_ACCESS_TOKEN: a page token (not a user token) that has not expired")
    assert "not-the-page-token" not in line


def test_a_wrong_app_secret_fails_the_messenger_check(fake_messenger, settings):
    settings.MESSENGER_APP_SECRET = "not-the-secret"

    assert "check MESSENGER_APP_SECRET" in provider_checks()["messenger"].line()


def test_a_wrong_postmark_token_fails_with_postmarks_error_code(fake_postmark, settings):
    settings.ANYMAIL = {**settings.ANYMAIL, "POSTMARK_SERVER_TOKEN": "wrong"}

    assert email_check().line() == (
        "FAIL email (postmark): Postmark refused the server token (HTTP 401, ErrorCode 10: No Account or Server API "
        "tokens were supplied in the HTTP headers.) → check POSTMARK_SERVER_TOKEN: the Server API token of the "
        "sending server, not an account token"
    )


class FakeSmtpHandler(socketserver.StreamRequestHandler):
    """Just enough SMTP for a client to connect, say EHLO and log in (AUTH PLAIN)."""

    credentials = b"\0smoke\0right-password"

    def handle(self) -> None:
        self.wfile.write(b"220 fake.smtp ESMTP\r\n")
        for line in self.rfile:
            command = line.strip()
            if command.upper().startswith(b"EHLO"):
                self.wfile.write(b"250-fake.smtp\r\n250 AUTH PLAIN\r\n")
            elif command.upper().startswith(b"AUTH PLAIN "):
                given = base64.b64decode(command.split()[2])
                self.wfile.write(b"235 2.7.0 OK\r\n" if given == self.credentials else b"535 5.7.8 No\r\n")
            elif command.upper() == b"QUIT":
                self.wfile.write(b"221 bye\r\n")
                return
            else:
                self.wfile.write(b"250 OK\r\n")


@pytest.fixture
def smtp_server(settings) -> Iterator[int]:
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), FakeSmtpHandler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", server.server_address[1]
    settings.EMAIL_HOST_USER, settings.EMAIL_HOST_PASSWORD = "smoke", "right-password"
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def test_smtp_is_checked_by_connecting_saying_ehlo_and_logging_in(smtp_server):
    assert email_check().line() == f"ok   email (smtp): 127.0.0.1:{smtp_server} answered EHLO, logged in as smoke"


def test_smtp_refusing_the_login_fails_with_its_code(smtp_server, settings):
    settings.EMAIL_HOST_PASSWORD = "wrong"

    assert email_check().line() == (
        f"FAIL email (smtp): 127.0.0.1:{smtp_server} refused the login of smoke (535) "
        "→ check EMAIL_HOST_USER and EMAIL_HOST_PASSWORD"
    )


def test_smtp_unreachable_fails_with_the_reason(settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", free_port()

    line = email_check().line()

    assert line.startswith(f"FAIL email (smtp): cannot talk to 127.0.0.1:{settings.EMAIL_PORT} (Connection refused)")


@pytest.mark.parametrize(
    ("value", "channel", "address"),
    [
        ("+14155550100", "sms", "+14155550100"),
        (" whatsapp:+14155550100 ", "whatsapp", "+14155550100"),
        ("messenger:1234567890123456", "messenger", "1234567890123456"),
        ("ada@example.com", "email", "ada@example.com"),
    ],
)
def test_each_kind_of_target_goes_to_its_channel(value, channel, address):
    target = smoke_target_parse(value)

    assert (target.channel, target.address) == (channel, address)


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("messenger:bob", "'bob' is not a Messenger PSID"),
        ("ada@", "'ada@' is not a valid email address."),
        ("whatsapp:12", "'12' is not a phone number."),
    ],
)
def test_a_target_that_is_no_address_is_refused_with_the_reason(value, reason):
    with pytest.raises(SmokeTargetError) as raised:
        smoke_target_parse(value)

    assert str(raised.value).startswith(f"--to {value!r}: {reason}")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_a_redirect_is_reported_without_the_verify_token_its_location_carries(settings):
    # SECURE_SSL_REDIRECT behind an http:// PUBLIC_BASE_URL sends the handshake, token and all, to https://.
    import http.server

    from console.services.smoke.webhooks import messenger_check

    class Redirect(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - http.server's name
            self.send_response(301)
            self.send_header("Location", f"https://tidings.example.com{self.path}")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Redirect)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        settings.PUBLIC_BASE_URL = f"http://127.0.0.1:{server.server_address[1]}"
        settings.MESSENGER_APP_SECRET = "app-secret"
        settings.MESSENGER_VERIFY_TOKEN = "verify-token-not-to-print"
        result = messenger_check()
    finally:
        server.shutdown()
    assert result.failed
    assert "redirects to https://tidings.example.com/webhooks/messenger/" in result.detail
    assert "verify-token-not-to-print" not in f"{result.detail} {result.next_step}"
