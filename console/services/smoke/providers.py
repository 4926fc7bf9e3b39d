"""The smoke test's checks of each configured provider's credentials, with a call that sends nothing: Twilio's
account (and Messaging Service), the Messenger page behind the token (Graph `GET /me`), Postmark's server
(`GET /server`), an SMTP server's greeting, EHLO and login. A console or locmem backend has nothing to check."""

from __future__ import annotations

import functools
import re
import smtplib
from typing import Any

import requests
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.mail import get_connection
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.rest import Client

from deliveries.backends import BACKEND_SETTINGS, email_provider_name, get_backend, provider_for
from deliveries.backends.messenger.graph import MessengerBackend, appsecret_proof
from deliveries.backends.sms.twilio import TWILIO_API_HOST, RebasedTwilioHttpClient, SmsBackend

from .results import CheckResult, guarded, http_problem, one_line

LOCAL_PROVIDERS = ("console", "locmem")  # backends that print or keep messages: no provider behind them
DJANGO_LOCAL_EMAIL = ("console", "locmem", "filebased", "dummy")
SMTP_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
HTTP_TIMEOUT = 10.0
TWILIO_HOST = re.compile(r"^https://[a-z0-9.-]+\.twilio\.com")


class AnyTwilioHostHttpClient(RebasedTwilioHttpClient):
    """Also rebases the Messaging API's host (messaging.twilio.com), which the send path never calls."""

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        if self.base_url != TWILIO_API_HOST:
            url = TWILIO_HOST.sub(self.base_url, url, count=1)
        return super().request(method, url, *args, **kwargs)


def provider_checks() -> dict[str, CheckResult]:
    """One result per channel, by channel."""
    results = {channel: guarded(channel, functools.partial(channel_check, channel)) for channel in BACKEND_SETTINGS}
    results["email"] = guarded("email", email_check)
    return results


def channel_check(channel: str) -> CheckResult:
    setting = BACKEND_SETTINGS[channel]
    label = channel
    try:
        provider = provider_for(channel)
        configured = getattr(settings, setting)
        label = f"{channel} ({configured if '.' not in configured else provider})"  # the short name, if one
        if provider in LOCAL_PROVIDERS:
            return CheckResult.skip(label, f"not checked ({provider} backend)")
        backend = get_backend(channel)
    except ImportError as error:
        return CheckResult.fail(
            label, f"{setting} cannot be loaded ({one_line(error)})", f"set {setting} to a backend (README)"
        )
    except ImproperlyConfigured as error:  # BackendConfigurationError: a setting the backend needs is missing
        return CheckResult.fail(label, one_line(error), "set it (README, Configuration)")
    if isinstance(backend, SmsBackend):
        return twilio_check(label, backend)
    if isinstance(backend, MessengerBackend):
        return messenger_check(label, backend)
    return CheckResult.skip(label, f"not checked (smoke_test knows no harmless call of {setting})")


def twilio_check(label: str, backend: SmsBackend) -> CheckResult:
    """The account (active? a trial?), then the Messaging Service that sends, if one is configured."""
    http_client = AnyTwilioHostHttpClient(backend.base_url, timeout=min(backend.timeout, HTTP_TIMEOUT))
    client = Client(backend.account_sid, backend.auth_token, http_client=http_client)
    service_sid = backend.messaging_service_sid
    try:
        account = client.api.v2010.accounts(backend.account_sid).fetch()
        service = client.messaging.v1.services(service_sid).fetch() if service_sid else None
    except TwilioRestException as error:
        if error.status == 401:
            return CheckResult.fail(
                label,
                f"Twilio refused the credentials of account {backend.account_sid} (HTTP 401, code {error.code})",
                "check TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN (Twilio console, Account info)",
            )
        if error.status == 404 and service_sid:
            return CheckResult.fail(
                label,
                f"account {backend.account_sid} has no Messaging Service {service_sid}",
                f"check {backend.service_setting}",
            )
        return CheckResult.fail(
            label,
            f"Twilio answered HTTP {error.status} (code {error.code}: {one_line(error)})",
            "try again in a minute; if it stays, see https://status.twilio.com",
        )
    except (TwilioException, requests.RequestException) as error:
        return CheckResult.fail(
            label,
            f"cannot reach Twilio at {backend.base_url} ({http_problem(error)})",
            "check that this host may make HTTPS calls out (proxy, firewall) and TWILIO_API_BASE_URL",
        )
    if account.status != "active":
        return CheckResult.fail(
            label, f"account {account.sid} is {account.status}", "reactivate it in Twilio's console"
        )
    sender = f"Messaging Service {service.sid} “{service.friendly_name}”" if service else backend.from_number
    detail = f"account {account.sid} “{account.friendly_name}” active, sending from {sender}"
    if account.type == "Trial":
        detail += " (a trial account: it sends only to verified numbers)"
    return CheckResult.ok(label, detail)


def messenger_check(label: str, backend: MessengerBackend) -> CheckResult:
    """The page the token belongs to: Graph's `GET /me` with the page token (and appsecret_proof, as sends)."""
    params = {"access_token": backend.access_token}
    if backend.app_secret:
        params["appsecret_proof"] = appsecret_proof(backend.access_token, backend.app_secret)
    url = f"{backend.base_url}/{backend.api_version}/me"
    try:
        response = requests.get(url, params=params, timeout=min(backend.timeout, HTTP_TIMEOUT))
    except requests.RequestException as error:
        return CheckResult.fail(
            label,
            f"cannot reach Meta's Graph API at {backend.base_url} ({http_problem(error, backend.access_token)})",
            "check that this host may make HTTPS calls out (proxy, firewall) and MESSENGER_GRAPH_API_URL",
        )
    body = json_or_empty(response)
    if response.status_code == 200 and body.get("id"):
        return CheckResult.ok(
            label, f"page “{body.get('name', '')}” ({body['id']}) through Graph {backend.api_version}"
        )
    refusal = body.get("error") or {}
    code, message = refusal.get("code"), refusal.get("message") or response.reason
    if code == 190:
        return CheckResult.fail(
            label,
            f"Meta refused the page access token (code 190: {message})",
            "check MESSENGER_PAGE_ACCESS_TOKEN: a page token (not a user token) that has not expired",
        )
    if "appsecret_proof" in str(message):
        return CheckResult.fail(
            label,
            f"Meta refused the appsecret_proof (code {code}: {message})",
            "check MESSENGER_APP_SECRET: the secret of the app the page token was made for",
        )
    return CheckResult.fail(
        label,
        f"Graph answered HTTP {response.status_code} (code {code}: {message})",
        "check the page token and the app's permissions in Meta's developer console",
    )


def email_check() -> CheckResult:
    path = settings.EMAIL_BACKEND
    provider = email_provider_name(path)
    label = f"email ({provider})"
    if path.startswith("django.core.mail.backends.") and provider in DJANGO_LOCAL_EMAIL:
        return CheckResult.skip(label, f"not checked ({provider} backend)")
    if path == SMTP_BACKEND:
        return smtp_check(label)
    if path.startswith("anymail.backends."):
        if provider == "postmark":
            return postmark_check(label, path)
        if provider == "test":
            return CheckResult.skip(label, "not checked (anymail's test backend)")
    return CheckResult.skip(
        label, f"not checked (smoke_test knows no harmless call of {path}; --to sends a real email)"
    )


def postmark_check(label: str, path: str) -> CheckResult:
    """Postmark's `GET /server`: the server the token belongs to."""
    try:
        connection = get_connection(path)
    except ImproperlyConfigured as error:  # anymail's AnymailConfigurationError: no server token
        return CheckResult.fail(label, one_line(error), "set POSTMARK_SERVER_TOKEN")
    url = f"{connection.api_url}server"
    headers = {"Accept": "application/json", "X-Postmark-Server-Token": connection.server_token}
    try:
        response = requests.get(url, headers=headers, timeout=HTTP_TIMEOUT)
    except requests.RequestException as error:
        return CheckResult.fail(
            label,
            f"cannot reach Postmark at {connection.api_url} ({http_problem(error)})",
            "check that this host may make HTTPS calls out (proxy, firewall) and POSTMARK_API_URL",
        )
    body = json_or_empty(response)
    if response.status_code == 200 and "ID" in body:
        return CheckResult.ok(label, f"server “{body.get('Name', '')}” (ID {body['ID']}) at {connection.api_url}")
    if response.status_code == 401:
        return CheckResult.fail(
            label,
            f"Postmark refused the server token (HTTP 401, ErrorCode {body.get('ErrorCode')}: {body.get('Message')})",
            "check POSTMARK_SERVER_TOKEN: the Server API token of the sending server, not an account token",
        )
    return CheckResult.fail(
        label,
        f"Postmark answered HTTP {response.status_code} (ErrorCode {body.get('ErrorCode')}: {body.get('Message')})",
        "try again in a minute; if it stays, see https://status.postmarkapp.com",
    )


def smtp_check(label: str) -> CheckResult:
    """Connect (with SSL or STARTTLS as configured), EHLO, and log in when a user is set; nothing is sent."""
    backend = get_connection(SMTP_BACKEND, fail_silently=False)
    security = " with SSL" if backend.use_ssl else " with STARTTLS" if backend.use_tls else ""
    where = f"{backend.host}:{backend.port}{security}"
    try:
        backend.open()
        try:
            code, _greeting = backend.connection.ehlo()
        finally:
            backend.close()
    except smtplib.SMTPAuthenticationError as error:
        return CheckResult.fail(
            label,
            f"{where} refused the login of {backend.username} ({error.smtp_code})",
            "check EMAIL_HOST_USER and EMAIL_HOST_PASSWORD",
        )
    except (smtplib.SMTPException, OSError) as error:
        return CheckResult.fail(
            label,
            f"cannot talk to {where} ({http_problem(error)})",
            "check EMAIL_HOST, EMAIL_PORT, EMAIL_USE_TLS / EMAIL_USE_SSL, and that this host may reach the server",
        )
    if code != 250:
        return CheckResult.fail(label, f"{where} answered EHLO with {code}", "check the SMTP server's log")
    login = f", logged in as {backend.username}" if backend.username else ", no login configured"
    return CheckResult.ok(label, f"{where} answered EHLO{login}")


def json_or_empty(response: requests.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}
