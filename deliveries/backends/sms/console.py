"""Prints each message to standard output instead of sending it. The development default for text channels."""

import sys
import threading
import uuid

from ..base import BaseBackend, OutgoingMessage, SendResult

_print_lock = threading.Lock()


class SmsBackend(BaseBackend):
    provider_name = "console"

    def post(self, request: OutgoingMessage) -> str:
        media = "".join(f"[media] {url}\n" for url in request.media_urls)
        with _print_lock:
            sys.stdout.write(
                f"--- {request.channel.upper()} #{request.id} to {request.recipient} "
                f"from {request.sender or '(default)'} ---\n{request.body}\n{media}"
            )
            sys.stdout.flush()
        return f"console-{uuid.uuid4().hex}"

    def parse_response(self, message: OutgoingMessage, response: str) -> SendResult:
        return self.result(message, response)
