"""Endpoints providers call: Twilio (status callbacks, inbound), Meta (Messenger), anymail's ESP webhooks.

Each verifies the provider's signature, parses the provider's format, and hands over to a service
(deliveries/services/feedback.py, inbound.py). Business logic lives there, not here.
"""
