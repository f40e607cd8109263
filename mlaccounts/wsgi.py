"""WSGI entry point (gunicorn mlaccounts.wsgi)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mlaccounts.settings")

application = get_wsgi_application()
