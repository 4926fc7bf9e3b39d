from django.urls import path
from rest_framework.routers import DefaultRouter

from .views import (
    BatchViewSet,
    CampaignViewSet,
    ContactListViewSet,
    ContactViewSet,
    MessageBatchView,
    SegmentViewSet,
    TemplateViewSet,
)

router = DefaultRouter(trailing_slash=True)
router.include_root_view = False  # deliveries' router has the API root
router.register("templates", TemplateViewSet, basename="template")
router.register("contacts", ContactViewSet, basename="contact")
router.register("lists", ContactListViewSet, basename="contactlist")
router.register("segments", SegmentViewSet, basename="segment")
router.register("campaigns", CampaignViewSet, basename="campaign")
router.register("batches", BatchViewSet, basename="batch")

# Included before deliveries' routes, which would read "batch" as a message id (messaging_project/urls.py).
message_batch_urlpatterns = [path("messages/batch/", MessageBatchView.as_view(), name="message-batch")]
urlpatterns = router.urls
