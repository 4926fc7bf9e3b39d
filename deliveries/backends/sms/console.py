"""Prints each message to standard output instead of sending it. The development default for text channels."""

import sys
import threading
import uuid

from ..base import BaseBackend, OutgoingMessage, SendResult

_print_lock = threading.Lock()


class SmsBackend(BaseBackend):
    provider_name = "console"

    def send(self, message: OutgoingMessage) -> SendResult:
        media = "".join(f"[media] {url}\n" for url in message.media_urls)
        with _print_lock:
            sys.stdout.write(
                f"--- {message.channel.upper()} #{message.id} to {message.recipient} "
                f"from {message.sender or '(default)'} ---\n{message.body}\n{media}"
            )
            sys.stdout.flush()
        return SendResult(
            message_id=message.id, provider=self.provider_name, provider_message_id=f"console-{uuid.uuid4().hex}"
        )
