"""The smoke test's checks that providers can call us back: a request to our own webhook URLs at PUBLIC_BASE_URL,
from this host, through whatever DNS, load balancer and proxy providers go through.

Each request is one our webhooks answer without changing anything and without counting a forged call (the
signature-failure alert): a GET to Twilio's status callback (405: POST only), Meta's subscription handshake on
the Messenger webhook (the challenge echoed back when the verify token matches), a HEAD on the ESP's tracking
webhook (200). The answer must come from Tidings (its X-Request-ID header), not from a proxy's error page.
"""

from __future__ import annotations

import secrets

import requests
from django.conf import settings
from django.urls import NoReverseMatch, reverse

from deliveries.backends import provider_for
from deliveries.webhooks.anymail import configured_esp

from .results import CheckResult, guarded, http_problem

HTTP_TIMEOUT = 10.0


def webhook_checks() -> list[CheckResult]:
    checks = [guarded("webhooks (twilio status)", twilio_status_check)]
    if provider_for("messenger") == "messenger":
        checks.append(guarded("webhooks (messenger)", messenger_check))
    if configured_esp():
        checks.append(guarded("webhooks (email tracking)", email_tracking_check))
    return checks


def call(label: str, method: str, path: str, **options: object) -> requests.Response | CheckResult:
    """Our own URL at PUBLIC_BASE_URL, asked as a provider would, redirects not followed (providers do not follow
    them on POST, and Twilio signs the URL it calls). A CheckResult when it cannot be reached."""
    url = f"{settings.PUBLIC_BASE_URL}{path}"
    try:
        return requests.request(method, url, timeout=HTTP_TIMEOUT, allow_redirects=False, **options)  # type: ignore[arg-type]
    except requests.RequestException as error:
        return CheckResult.fail(
            label,
            f"{url} unreachable from here ({http_problem(error, settings.MESSENGER_VERIFY_TOKEN)})",
            "check PUBLIC_BASE_URL, its DNS, and that the load balancer sends it to the web processes",
        )


def judged(label: str, response: requests.Response, *, expected: int, meaning: str) -> CheckResult:
    url = response.url.split("?", 1)[0]
    if response.is_redirect:
        return CheckResult.fail(
            label,
            # Where, without its query: the Messenger handshake's would carry the verify token.
            f"{url} redirects to {response.headers.get('Location', '?').split('?', 1)[0]}",
            "set PUBLIC_BASE_URL to the address that answers without a redirect (https, host, no trailing path)",
        )
    from_tidings = "X-Request-ID" in response.headers
    if response.status_code == expected and from_tidings:
        return CheckResult.ok(label, f"{url} answers as Tidings ({meaning})")
    if not from_tidings:
        return CheckResult.fail(
            label,
            f"{url} answered {response.status_code} {response.reason}, not as Tidings (a proxy's page, another site)",
            "check PUBLIC_BASE_URL, and the proxy's route to the web processes",
        )
    if response.status_code == 400:
        return CheckResult.fail(
            label,
            f"{url} answered 400 (expected {expected})",
            "add the host of PUBLIC_BASE_URL to ALLOWED_HOSTS",
        )
    return CheckResult.fail(
        label,
        f"{url} answered {response.status_code} (expected {expected})",
        "is a release without this webhook serving PUBLIC_BASE_URL? Check the web processes' version",
    )


def twilio_status_check() -> CheckResult:
    label = "webhooks (twilio status)"
    answer = call(label, "GET", reverse("webhooks:twilio-status"))
    if isinstance(answer, CheckResult):
        return answer
    return judged(label, answer, expected=405, meaning="405 to a GET: POST only, signed by Twilio")


def messenger_check() -> CheckResult:
    label = "webhooks (messenger)"
    if not settings.MESSENGER_APP_SECRET:
        return CheckResult.fail(
            label,
            "MESSENGER_APP_SECRET is not set: every event Meta posts (receipts, replies) is refused",
            "set MESSENGER_APP_SECRET to the app's secret",
        )
    token = settings.MESSENGER_VERIFY_TOKEN
    if not token:
        return CheckResult.fail(
            label,
            "MESSENGER_VERIFY_TOKEN is not set: Meta cannot subscribe the webhook",
            "set MESSENGER_VERIFY_TOKEN, and the same token in the app's webhook settings",
        )
    challenge = secrets.token_hex(8)
    params = {"hub.mode": "subscribe", "hub.verify_token": token, "hub.challenge": challenge}
    answer = call(label, "GET", reverse("webhooks:messenger"), params=params)
    if isinstance(answer, CheckResult):
        return answer
    result = judged(label, answer, expected=200, meaning="Meta's subscription handshake, with our verify token")
    if not result.failed and answer.text != challenge:
        return CheckResult.fail(
            label, "the handshake did not echo the challenge", "check the proxy does not rewrite the answer"
        )
    return result


def email_tracking_check() -> CheckResult:
    esp = configured_esp()
    label = "webhooks (email tracking)"
    if not settings.ANYMAIL.get("WEBHOOK_SECRET"):
        return CheckResult.fail(
            label,
            "ANYMAIL_WEBHOOK_SECRET is not set: every tracking event is refused",
            "set ANYMAIL_WEBHOOK_SECRET to user:password, and the same credentials in the ESP's webhook URL",
        )
    try:
        path = reverse(f"anymail:{esp}_tracking_webhook")
    except NoReverseMatch:
        return CheckResult.skip(label, f"not checked (anymail has no tracking webhook for {esp})")
    answer = call(label, "HEAD", path)
    if isinstance(answer, CheckResult):
        return answer
    return judged(label, answer, expected=200, meaning="200 to a HEAD, as ESPs check it")
