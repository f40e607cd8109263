"""The Celery app: reads CELERY_* settings and autodiscovers tasks."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mlaccounts.settings")

app = Celery("mlaccounts")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
