"""anymail's send, with the ESP's HTTP API called through the call driver (deliveries.backends.curl) instead of
requests: hundreds of emails in flight from one thread, where a thread per email spent a third of each email's
CPU in requests and urllib3 and more handing the GIL around (docs/performance.md).

Everything that makes the email is still anymail's: the payload its backend builds for the ESP (headers,
metadata, tags, the ESP's JSON), its pre- and post-send signals, and its parsing of the ESP's answer, errors
included. Only the HTTP exchange moves: requests prepares the request as its session would (the session's
headers, auth, files), libcurl sends it, and the answer comes back to anymail as a `requests.Response`.
"""

from __future__ import annotations

from http import HTTPStatus

import requests
from anymail.backends.base_requests import AnymailRequestsBackend
from anymail.message import AnymailStatus
from django.core.mail import EmailMessage

from ..curl import http_call


def supports(connection) -> bool:
    """Whether this Django email connection is one of anymail's HTTP API backends."""
    return isinstance(connection, AnymailRequestsBackend)


async def send(connection: AnymailRequestsBackend, email: EmailMessage) -> bool:
    """What anymail's `AnymailBaseBackend._send` does (django-anymail 15), the ESP call awaited. The connection
    must be open (its session gives the request its headers). Raises anymail's errors as `email.send()` would."""
    email.anymail_status = AnymailStatus()
    if not connection.run_pre_send(email):  # a pre_send receiver cancelled it
        return False
    if not email.recipients():
        return False
    payload = connection.build_message_payload(email, connection.send_defaults)
    response = await post_to_esp(connection, payload, email)
    email.anymail_status.esp_response = response
    recipient_status = connection.parse_recipient_status(response, payload, email)
    email.anymail_status.set_recipient_status(recipient_status)
    connection.run_post_send(email)
    connection.raise_for_recipient_status(email.anymail_status, response, payload, email)
    return True


async def post_to_esp(connection: AnymailRequestsBackend, payload, email: EmailMessage) -> requests.Response:
    """anymail's `post_to_esp`, through http_call; HTTP errors raise AnymailRequestsAPIError as there."""
    params = payload.get_request_params(connection.api_url)
    timeout = params.pop("timeout", connection.timeout)
    prepared = connection.session.prepare_request(requests.Request(**params))
    # requests asks for compressed answers and decodes them itself; libcurl is not asked to, so neither is the ESP.
    headers = {name: value for name, value in prepared.headers.items() if name.lower() != "accept-encoding"}
    body = prepared.body.encode() if isinstance(prepared.body, str) else prepared.body
    call = await http_call(prepared.method, prepared.url, body=body, headers=headers, timeout=_seconds(timeout))
    response = requests.Response()
    response.status_code = call.status
    response._content = call.buffer.getvalue()
    response.encoding = "utf-8"
    response.url = prepared.url
    response.request = prepared
    response.reason = _reason(call.status)
    connection.raise_for_status(response, payload, email)
    return response


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
