"""Keeps sent messages (SMS, WhatsApp, Messenger) in `outbox`, like django.core.mail.outbox. For tests."""

import uuid

from ..base import BaseBackend, OutgoingMessage, SendResult

outbox: list[OutgoingMessage] = []


class SmsBackend(BaseBackend):
    provider_name = "locmem"

    def post(self, request: OutgoingMessage) -> str:
        outbox.append(request)
        return f"locmem-{uuid.uuid4().hex}"

    def parse_response(self, message: OutgoingMessage, response: str) -> SendResult:
        return self.result(message, response)
