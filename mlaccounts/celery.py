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
from celery.signals import task_postrun, task_prerun

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


@task_prerun.connect
@task_postrun.connect
def _recycle_database_connections(sender=None, **kwargs) -> None:
    """Around each task, what Django does around each request: drop a connection that is
    older than CONN_MAX_AGE, broke, or was left mid-error; keep the others open.

    With CELERY_DB_REUSE_MAX set, Celery's fixup no longer closes connections per task
    (settings.py); this keeps them healthy. Signals run in the task's own thread, whose
    connections these are (each pool thread has its own).
    """
    if getattr(sender.request, "is_eager", False):
        return  # an eager task runs inside the caller's request or test: its connections
    from django.db import close_old_connections

    close_old_connections()
