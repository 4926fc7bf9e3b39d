"""WhatsApp through Twilio: the same Messages API and status callbacks as SMS, with `whatsapp:` addresses.

Outside WhatsApp's 24-hour customer service window, a business may only send approved templates: give the
message a Content SID (`content_sid`, HX…) and its `content_variables`.
"""

from ..sms.twilio import SmsBackend


class WhatsAppBackend(SmsBackend):
    address_prefix = "whatsapp:"
    backend_setting = "WHATSAPP_BACKEND=twilio"
    from_setting = "TWILIO_WHATSAPP_FROM"
    service_setting = "TWILIO_WHATSAPP_MESSAGING_SERVICE_SID"
