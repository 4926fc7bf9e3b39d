from django.urls import path

from . import messenger, twilio

app_name = "webhooks"

urlpatterns = [
    path("twilio/status/", twilio.status_callback, name="twilio-status"),
    path("twilio/inbound/", twilio.inbound, name="twilio-inbound"),
    path("messenger/", messenger.messenger_webhook, name="messenger"),
]
