"""mlaccounts/celery.py: a worker keeps its database connections across tasks."""

import time
from types import SimpleNamespace

import pytest
from celery.fixups.django import DjangoWorkerFixup
from django.db import connection, connections

from mlaccounts.celery import _recycle_database_connections
from mlaccounts.celery import app as celery_app

pytestmark = pytest.mark.django_db(transaction=True)


def _task(*, eager: bool = False):
    return SimpleNamespace(request=SimpleNamespace(is_eager=eager))


def _run_task(fixup, task) -> None:
    """What a worker does around one task: Celery's fixup and our handler, before and after."""
    for hook in (fixup.on_task_prerun, _recycle_database_connections):
        hook(sender=task)
    for hook in (fixup.on_task_postrun, _recycle_database_connections):
        hook(sender=task)


def test_the_worker_keeps_its_connection_across_tasks(monkeypatch):
    """Celery's fixup closed every connection before and after each task (one database
    session per sync); with CELERY_DB_REUSE_MAX it leaves them to CONN_MAX_AGE."""
    closes = []
    monkeypatch.setattr(type(connections["default"]), "close", lambda self: closes.append(self.alias))
    fixup = DjangoWorkerFixup(celery_app)
    connection.ensure_connection()
    # As if opened just now (the suite's connection may be older than CONN_MAX_AGE).
    connections["default"].close_at = time.monotonic() + connection.settings_dict["CONN_MAX_AGE"]

    for _ in range(10):
        _run_task(fixup, _task())

    assert fixup.db_reuse_max >= 10
    assert closes == []
    assert connection.settings_dict["CONN_MAX_AGE"] > 0 and connection.settings_dict["CONN_HEALTH_CHECKS"]


def test_a_connection_past_its_age_or_broken_is_dropped_after_a_task(monkeypatch):
    closes = []
    monkeypatch.setattr(type(connections["default"]), "close", lambda self: closes.append(self.alias))
    connection.ensure_connection()
    connection.close_at = 0  # older than CONN_MAX_AGE

    _recycle_database_connections(sender=_task())

    assert closes == ["default"]


def test_an_eager_task_leaves_the_callers_connections_alone(monkeypatch):
    calls = []
    monkeypatch.setattr("django.db.close_old_connections", lambda: calls.append(1))

    _recycle_database_connections(sender=_task(eager=True))
    _recycle_database_connections(sender=_task())

    assert calls == [1]
