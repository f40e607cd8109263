"""The Celery app: reads CELERY_* settings and autodiscovers tasks.

Configuration (broker, pool, limits, serialisation) lives in the Celery section of
mlaccounts/settings.py; the periodic jobs in sync/schedule.py. Run it with the same
command everywhere (Procfile, compose.yaml):

    celery -A mlaccounts worker --loglevel INFO --without-gossip --without-mingle --without-heartbeat
    celery -A mlaccounts beat --loglevel INFO -S django_celery_beat.schedulers:DatabaseScheduler
"""

import logging
import os
import socket
import time
from pathlib import Path
from urllib.parse import urlsplit

from celery import Celery
from celery.signals import task_postrun, task_prerun, worker_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mlaccounts.settings")

logger = logging.getLogger(__name__)

# How long a worker in sandbox mode waits for the sandbox to listen before taking tasks
# anyway (their syncs then fail as "unavailable" and retry with back-off, as against ML).
SANDBOX_WAIT_SECONDS = 20.0
SANDBOX_POLL_SECONDS = 0.2

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


def _listens(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


@worker_init.connect
def _wait_for_the_sandbox(sender=None, **kwargs) -> None:
    """In sandbox mode, take no task before the sandbox listens (at most SANDBOX_WAIT_SECONDS).

    `make run` queues the demo sellers' first syncs before it starts anything (seed_demo),
    then starts the worker and the sandbox together. A worker that wins that race would
    fail those syncs on "connection refused" and retry them only SYNC_RETRY_BASE_SECONDS
    (10 s and more) later; waiting here, before the worker consumes, makes the first try
    succeed whichever process starts first. With a real ML application this does nothing.
    """
    from django.conf import settings

    if not settings.ML_SANDBOX or settings.ML_API_URL != settings.ML_SANDBOX_URL:
        return
    address = urlsplit(settings.ML_SANDBOX_URL)
    host, port = address.hostname or "127.0.0.1", address.port or 80
    if _listens(host, port):
        return
    logger.info(
        "waiting for the sandbox at %s before taking tasks",
        settings.ML_SANDBOX_URL,
        extra={"event": "sandbox_wait", "outcome": "waiting"},
    )
    started = time.monotonic()
    while time.monotonic() - started < SANDBOX_WAIT_SECONDS:
        time.sleep(SANDBOX_POLL_SECONDS)
        if _listens(host, port):
            logger.info(
                "the sandbox answers",
                extra={
                    "event": "sandbox_wait",
                    "outcome": "ok",
                    "waited_ms": round((time.monotonic() - started) * 1000),
                },
            )
            return
    logger.warning(
        "the sandbox at %s is not listening after %d s; taking tasks anyway (their syncs retry)",
        settings.ML_SANDBOX_URL,
        SANDBOX_WAIT_SECONDS,
        extra={"event": "sandbox_wait", "outcome": "timeout"},
    )
