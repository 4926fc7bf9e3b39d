"""WSGI entry point for gunicorn (`gunicorn messaging_project.wsgi`)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "messaging_project.settings.production")

application = get_wsgi_application()
