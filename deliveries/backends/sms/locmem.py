"""Keeps sent messages (SMS, WhatsApp, Messenger) in `outbox`, like django.core.mail.outbox. For tests."""

import uuid

from ..base import BaseBackend, OutgoingMessage, SendResult

outbox: list[OutgoingMessage] = []


class SmsBackend(BaseBackend):
    provider_name = "locmem"

    def send(self, message: OutgoingMessage) -> SendResult:
        outbox.append(message)
        return SendResult(
            message_id=message.id, provider=self.provider_name, provider_message_id=f"locmem-{uuid.uuid4().hex}"
        )
