"""Content-Security-Policy for the pages a browser shows: the admin (its queue pages included) and the unsubscribe
page. Everything shown there is escaped; the policy is the second line, should an escape ever be missed: no
inline script runs, and nothing loads from another origin. The policy itself is settings.CONTENT_SECURITY_POLICY
(django-csp's format)."""

from __future__ import annotations

from csp.middleware import CSPMiddleware, PolicyParts

# Paths that get the policy. The API answers JSON and the webhooks answer providers: no policy is needed there, and
# skipping them keeps the API's hot path as it was.
BROWSER_PAGE_PREFIXES = ("/admin/", "/unsubscribe/")
# django-rq's dashboard (/admin/queues/) has one inline script of its own, the same in each of its pages (it wires
# up the job list's check boxes): allowed by its hash. tests/test_content_security.py recomputes it from the
# installed django-rq, so an upgrade that changes the script fails the test instead of the page.
QUEUES_PREFIX = "/admin/queues/"
DJANGO_RQ_SCRIPT_HASH = "'sha256-1kZe1KRxelr3ptMPsod17Z6BDvbtm4WcufgsZGvsErM='"


class BrowserPagesCSPMiddleware(CSPMiddleware):
    """django-csp's middleware, applied to BROWSER_PAGE_PREFIXES only."""

    def process_request(self, request):
        if request.path_info.startswith(BROWSER_PAGE_PREFIXES):
            super().process_request(request)

    def process_response(self, request, response):
        if request.path_info.startswith(BROWSER_PAGE_PREFIXES):
            return super().process_response(request, response)
        return response

    def get_policy_parts(self, request, response, report_only=False) -> PolicyParts:
        parts = super().get_policy_parts(request, response, report_only)
        if request.path_info.startswith(QUEUES_PREFIX) and parts.update is None:
            parts.update = {"script-src": [DJANGO_RQ_SCRIPT_HASH]}
        return parts
