from django.urls import path
from rest_framework.routers import APIRootView, DefaultRouter, SimpleRouter

from .batches import BatchViewSet, MessageBatchView
from .views import MessageViewSet


class ApiRootView(APIRootView):
    """The list of endpoints: any valid key may read it, whatever its scopes."""

    key_scope = None


router = DefaultRouter(trailing_slash=True)
router.APIRootView = ApiRootView
router.register("messages", MessageViewSet, basename="message")
# Batches on a router of their own: the API root, built from `router`'s routes, lists the messages endpoint only.
batch_router = SimpleRouter(trailing_slash=True)
batch_router.register("batches", BatchViewSet, basename="batch")

urlpatterns = [
    # Before the message routes, which would read "batch" as a message id.
    path("messages/batch/", MessageBatchView.as_view(), name="message-batch"),
    *router.urls,
    *batch_router.urls,
]
