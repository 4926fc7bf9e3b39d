"""Django's 404 page for URLs no route matches, answered as JSON under /api/ (a client parses JSON, not HTML)."""

from django.http import JsonResponse
from django.views import defaults


def not_found(request, exception):
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": "Not found."}, status=404)
    return defaults.page_not_found(request, exception)
