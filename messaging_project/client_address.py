"""The address a request comes from, as far as this site can tell: for login lockouts (django-axes).

Behind a proxy every request's REMOTE_ADDR is the proxy's, so locking out an address would lock out everyone;
X-Forwarded-For names the client, but a client can send that header itself. Each proxy appends the address it
received the request from, so with TRUSTED_PROXY_COUNT proxies of ours in front, the entry that many places from
the right is the one our outermost proxy saw: anything left of it is whatever the client wrote.
"""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest


def client_ip_address(request: HttpRequest) -> str:
    proxies = settings.TRUSTED_PROXY_COUNT
    remote_addr = request.META.get("REMOTE_ADDR", "")
    if proxies <= 0:
        return remote_addr
    forwarded = [entry.strip() for entry in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if entry.strip()]
    # Fewer entries than proxies: the request did not come through all of them, so trust only the connection.
    return forwarded[-proxies] if len(forwarded) >= proxies else remote_addr
