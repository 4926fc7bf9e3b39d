from django.contrib import admin
from django.contrib.auth.decorators import user_passes_test
from django.templatetags.static import static
from django.urls import URLPattern, URLResolver, include, path, re_path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from console import metrics_views
from deliveries import views as delivery_views
from deliveries.webhooks import anymail as anymail_webhooks
from messaging_project.api_docs import API_DOCS_AUTHENTICATION, API_DOCS_PERMISSIONS

admin.site.site_header = "Tidings"
admin.site.site_title = "Tidings operations"
admin.site.index_title = "Operations console"

# A URL no route matches: JSON under /api/, Django's page elsewhere.
handler404 = "deliveries.api.not_found.not_found"

superuser_required = user_passes_test(lambda user: user.is_active and user.is_superuser, login_url="admin:login")


def superusers_only(patterns):
    """django-rq's dashboard admits any staff user; queues and jobs are for superusers only here."""
    gated = []
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            gated.append(
                URLResolver(
                    pattern.pattern,
                    superusers_only(pattern.url_patterns),
                    namespace=pattern.namespace,
                    app_name=pattern.app_name,
                )
            )
        elif isinstance(pattern, URLPattern):
            gated.append(
                URLPattern(pattern.pattern, superuser_required(pattern.callback), pattern.default_args, pattern.name)
            )
    return gated


def django_rq_urls():
    import django_rq.urls

    return superusers_only(django_rq.urls.urlpatterns), "django_rq"


urlpatterns = [
    # django-rq's raw dashboard of RQ jobs, for superusers; staff use the console's queue monitor below.
    path("admin/queues/", include(django_rq_urls())),
    path("admin/console/", include("console.urls")),
    # Templates are content's models and batches deliveries': links to their admin pages under campaigns' label
    # (bookmarks, links in emails) lead to the same page.
    re_path(
        r"^admin/campaigns/(?P<model>messagetemplate)/(?P<rest>.*)$",
        RedirectView.as_view(url="/admin/content/%(model)s/%(rest)s", permanent=True, query_string=True),
    ),
    re_path(
        r"^admin/campaigns/(?P<model>batch)/(?P<rest>.*)$",
        RedirectView.as_view(url="/admin/deliveries/%(model)s/%(rest)s", permanent=True, query_string=True),
    ),
    path("admin/", admin.site.urls),
    # Messages first: POST /api/v1/messages/ is the busiest route, and every pattern before it is tried in turn.
    path("api/v1/", include("deliveries.api.urls")),
    path("api/v1/", include("campaigns.api.urls")),
    path(
        "api/schema/",
        SpectacularAPIView.as_view(
            authentication_classes=API_DOCS_AUTHENTICATION, permission_classes=API_DOCS_PERMISSIONS
        ),
        name="api-schema",
    ),
    path(
        "api/docs/",
        SpectacularSwaggerView.as_view(
            url_name="api-schema",
            authentication_classes=API_DOCS_AUTHENTICATION,
            permission_classes=API_DOCS_PERMISSIONS,
        ),
        name="api-docs",
    ),
    # Browsers ask for /favicon.ico on every page that names no icon: a 404 logged each time otherwise.
    path("favicon.ico", RedirectView.as_view(url=static("console/favicon.svg"), permanent=True)),
    path("health/live", delivery_views.health_live, name="health-live"),
    path("health/ready", delivery_views.health_ready, name="health-ready"),
    # Prometheus (docs/metrics.md): a bearer token, METRICS_TOKEN.
    path("metrics", metrics_views.metrics, name="metrics"),
    # Provider callbacks: see README "Webhooks" for the URLs to give Twilio, Postmark and Meta.
    path("webhooks/anymail/", include(anymail_webhooks.anymail_urls())),
    path("webhooks/", include("deliveries.webhooks.urls")),
    path("unsubscribe/<str:token>/", delivery_views.unsubscribe, name="unsubscribe"),
]
