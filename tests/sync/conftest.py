"""Fixtures for the background engine: Celery in eager mode, a recorder of enqueued tasks.

ML is the root conftest's `ml` mock.
"""

from dataclasses import dataclass, field

import pytest

from mlaccounts.celery import app as celery_app
from sync import schedule, tasks


@pytest.fixture
def eager():
    """Run tasks in this process as they are enqueued (retries included, without waiting)."""
    previous = celery_app.conf.task_always_eager, celery_app.conf.task_eager_propagates
    celery_app.conf.task_always_eager = True
    celery_app.conf.task_eager_propagates = True
    yield celery_app
    celery_app.conf.task_always_eager, celery_app.conf.task_eager_propagates = previous


class Retried(Exception):
    def __init__(self, countdown):
        super().__init__(countdown)
        self.countdown = countdown


@pytest.fixture
def run_with_retries(monkeypatch):
    """Run a task in this process attempt after attempt, as the worker would, at once.

    Returns (result, countdowns asked for). Celery's own retry machinery is exercised by
    the real-worker tests (test_worker.py); this checks what each attempt does.
    """

    def run(task, *args, **kwargs):
        def fake_retry(exc=None, countdown=None, **options):
            raise Retried(countdown)

        monkeypatch.setattr(task, "retry", fake_retry)
        countdowns = []
        for attempt in range(task.max_retries + 1):
            try:
                return task.apply(args, kwargs, retries=attempt, throw=True).get(), countdowns
            except Retried as retried:
                countdowns.append(retried.countdown)
        raise AssertionError(f"{task.name} asked for more than {task.max_retries} retries")

    return run


@dataclass
class Enqueued:
    """What was sent to the broker: (task name, args, kwargs, options), in order.

    Nothing is really sent, so the broker's queue holds `waiting` messages as far as
    dispatch can tell (schedule.queued_syncs): none unless a test says so.
    """

    calls: list = field(default_factory=list)
    waiting: int = 0

    def args_of(self, task_name: str) -> list:
        return [args[0] for name, args, _, _ in self.calls if name == task_name]

    def options_of(self, task_name: str) -> list:
        return [options for name, _, _, options in self.calls if name == task_name]


@pytest.fixture
def enqueued(monkeypatch):
    """Record apply_async/delay of the sync tasks instead of sending anything."""
    recorder = Enqueued()
    for task in (
        tasks.sync_account,
        tasks.refresh_account_token,
        tasks.dispatch_due_syncs,
        tasks.refresh_expiring_tokens,
        tasks.health_check,
        tasks.cleanup_events,
    ):

        def fake_apply_async(args=None, kwargs=None, _name=task.name, **options):
            recorder.calls.append((_name, tuple(args or ()), dict(kwargs or {}), options))

        monkeypatch.setattr(task, "apply_async", fake_apply_async)
    monkeypatch.setattr(schedule, "queued_syncs", lambda: recorder.waiting)
    return recorder
