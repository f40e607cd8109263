"""The Celery app: reads CELERY_* settings and autodiscovers tasks.

Configuration (broker, pool, limits, serialisation) lives in the Celery section of
mlaccounts/settings.py; the periodic jobs in sync/schedule.py. Run it with the same
command everywhere (Procfile, compose.yaml):

    celery -A mlaccounts worker --loglevel INFO --without-gossip --without-mingle --without-heartbeat
    celery -A mlaccounts beat --loglevel INFO -S django_celery_beat.schedulers:DatabaseScheduler
"""

import os
from pathlib import Path

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mlaccounts.settings")

app = Celery("mlaccounts")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@app.on_after_configure.connect
def _create_filesystem_broker_folders(sender, source, **kwargs) -> None:
    """The filesystem transport expects its folders to exist: create them at start.

    Runs in every process the first time it reads the configuration (worker, beat, or a
    web process about to enqueue), after settings are loaded.
    """
    if not str(source.broker_url).startswith("filesystem:"):
        return
    options = source.broker_transport_options or {}
    for key in ("data_folder_in", "data_folder_out", "control_folder"):
        if options.get(key):
            Path(options[key]).mkdir(parents=True, exist_ok=True)
