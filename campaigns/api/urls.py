from rest_framework.routers import DefaultRouter

from .views import CampaignViewSet, ContactListViewSet, ContactViewSet, SegmentViewSet, TemplateViewSet

router = DefaultRouter(trailing_slash=True)
router.include_root_view = False  # deliveries' router has the API root
router.register("templates", TemplateViewSet, basename="template")
router.register("contacts", ContactViewSet, basename="contact")
router.register("lists", ContactListViewSet, basename="contactlist")
router.register("segments", SegmentViewSet, basename="segment")
router.register("campaigns", CampaignViewSet, basename="campaign")

urlpatterns = router.urls
