"""Prints each SMS to standard output instead of sending it. The development default."""

import sys
import threading
import uuid

from ..base import BaseBackend, OutgoingMessage, SendResult

_print_lock = threading.Lock()


class SmsBackend(BaseBackend):
    provider_name = "console"

    def send(self, message: OutgoingMessage) -> SendResult:
        with _print_lock:
            sys.stdout.write(
                f"--- SMS #{message.id} to {message.recipient} from {message.sender or '(default)'} ---\n"
                f"{message.body}\n"
            )
            sys.stdout.flush()
        return SendResult(
            message_id=message.id, provider=self.provider_name, provider_message_id=f"console-{uuid.uuid4().hex}"
        )
