"""django-anymail 15.2 (and requests 2.34): anymail's send, with the ESP's HTTP API called through the call driver
(deliveries.backends.curl) instead of requests: hundreds of emails in flight from one thread, where a thread per
email spent a third of each email's CPU in requests and urllib3 and more handing the GIL around. Switch: `anymail`
(off, EmailBackend sends through Django's `email.send()` on the call pool's threads, as anymail documents).

Everything that makes the email is still anymail's: the payload its backend builds for the ESP (headers,
metadata, tags, the ESP's JSON), its pre- and post-send signals, and its parsing of the ESP's answer, errors
included. Only the HTTP exchange moves: requests prepares the request as its session would (the session's
headers, auth, files), libcurl sends it, and the answer comes back to anymail as a `requests.Response` whose body
is set directly (`_content`, requests' own attribute). The copy of `AnymailBaseBackend._send` below follows 15.2's.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any, cast

import requests
from anymail.backends.base_requests import AnymailRequestsBackend
from anymail.message import AnymailStatus
from django.core.mail import EmailMessage

from ..backends.curl import http_call
from . import shim_enabled, version_check

version_check("anymail", "django-anymail", ">=15.2,<15.3")
version_check("anymail", "requests", ">=2.34,<2.35")


def sends_through_driver(email_backend: type) -> bool:
    """Whether emails through this Django email backend are sent by `send()` below: anymail's HTTP API backends,
    while the shim is on. SMTP, console and locmem always keep Django's own send."""
    return shim_enabled("anymail") and issubclass(email_backend, AnymailRequestsBackend)


async def send(connection: AnymailRequestsBackend, email: Any, prepared: dict | None = None) -> bool:
    """What anymail's `AnymailBaseBackend._send` does (django-anymail 15), the ESP call awaited. The connection
    must be open (its session gives the request its headers). Raises anymail's errors as `email.send()` would.
    `prepared` keeps requests' preparation of this connection's requests between calls (see request_parts). The
    email is an EmailMessage on which anymail sets its own attributes (`anymail_status`), hence `Any`."""
    email.anymail_status = AnymailStatus()
    if not connection.run_pre_send(email):  # a pre_send receiver cancelled it
        return False
    if not email.recipients():
        return False
    payload = connection.build_message_payload(email, connection.send_defaults)
    response = await post_to_esp(connection, payload, email, {} if prepared is None else prepared)
    email.anymail_status.esp_response = response
    recipient_status = connection.parse_recipient_status(response, payload, email)
    email.anymail_status.set_recipient_status(recipient_status)
    connection.run_post_send(email)
    connection.raise_for_recipient_status(email.anymail_status, response, payload, email)
    return True


async def post_to_esp(
    connection: AnymailRequestsBackend, payload, email: EmailMessage, prepared: dict
) -> requests.Response:
    """anymail's `post_to_esp`, through http_call; HTTP errors raise AnymailRequestsAPIError as there."""
    params = payload.get_request_params(connection.api_url)
    timeout = params.pop("timeout", connection.timeout)
    session = connection.session
    request = request_parts(session, params, prepared)
    url = str(request.url)  # always set once prepared
    call = await http_call(
        str(request.method),
        url,
        body=cast(bytes | None, request.body),  # request_parts leaves it bytes
        headers=dict(request.headers),
        timeout=_seconds(timeout),
        # The session's proxies and CA bundle, as requests would use them (settle_proxies read the environment's).
        proxy=requests.utils.select_proxy(url, session.proxies) or "",
        verify=session.verify,
    )
    response = requests.Response()
    response.status_code = call.status
    response._content = call.buffer.getvalue()
    response.encoding = "utf-8"
    response.url = url
    response.request = request
    response.reason = _reason(call.status)
    connection.raise_for_status(response, payload, email)
    return response


def request_parts(session: requests.Session, params: dict, prepared: dict) -> requests.PreparedRequest:
    """The request requests would send for these `Session.request()` params, ready for libcurl: no
    Accept-Encoding (requests decodes compressed answers itself, libcurl is not asked to) and no Content-Length
    (libcurl counts the body), the body as bytes.

    requests prepares it (the session's headers and cookies, auth, the URL, a form or files). Its preparation
    was a sixth of an email's CPU, and from one email to the next only the body differs: for a text body (the
    JSON anymail's ESPs send without attachments) the preparation of the same method, URL, query, headers and
    auth is kept in `prepared` and reused with the new body. Anything else is prepared afresh each time."""
    data = params.get("data")
    key = None
    if isinstance(data, str | bytes) and not params.get("files"):
        try:
            varying = (params.get("params"), params.get("headers"), params.get("auth"))
            key = (params["method"], params["url"], *map(_frozen, varying))
            hash(key)
        except TypeError:  # something requests can take but we cannot compare: no reuse
            key = None
    template = prepared.get(key) if key is not None else None
    if template is None:
        request = session.prepare_request(requests.Request(**params))
        skip = {"accept-encoding", "content-length"}
        request.headers = requests.structures.CaseInsensitiveDict(
            (name, value) for name, value in request.headers.items() if name.lower() not in skip
        )
        if key is not None:
            prepared[key] = request
        template = request
    request = requests.PreparedRequest()
    request.method, request.url, request.headers = template.method, template.url, template.headers
    body = data if key is not None else template.body
    request.body = body.encode() if isinstance(body, str) else body
    return request


def _frozen(value):
    if isinstance(value, dict):
        return tuple(sorted(value.items()))
    if isinstance(value, list):
        return tuple(value)
    return value


def _seconds(timeout) -> float:
    """requests' timeout may be (connect, read); the whole call gets the sum."""
    if isinstance(timeout, tuple):
        return float(sum(part or 0 for part in timeout)) or 30.0
    return float(timeout or 30.0)


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""
