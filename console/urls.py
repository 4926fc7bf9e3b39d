"""The console's pages, under /admin/console/ (messaging_project/urls.py): wrapped in the admin's own view, so
anyone not signed in as active staff goes to the admin's login page, and each view checks its permission."""

from django.contrib import admin
from django.urls import path

from . import views

app_name = "console"

urlpatterns = [
    path("queues/", admin.site.admin_view(views.queue_monitor), name="queue-monitor"),
    path("queues/act/", admin.site.admin_view(views.queue_monitor_act), name="queue-monitor-act"),
]
