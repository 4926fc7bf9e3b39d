from rest_framework.routers import APIRootView, DefaultRouter

from .views import MessageViewSet


class ApiRootView(APIRootView):
    """The list of endpoints: any valid key may read it, whatever its scopes."""

    key_scope = None


router = DefaultRouter(trailing_slash=True)
router.APIRootView = ApiRootView
router.register("messages", MessageViewSet, basename="message")

urlpatterns = router.urls
