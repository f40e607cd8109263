"""Notifications end to end: the sandbox posts over real HTTP to the live server's webhook,
a real Celery worker (a subprocess on Redis and the test PostgreSQL) processes them.

The account's numbers move through notifications alone (no poll), a dropped notification
comes back through `manage.py recover_notifications`, five notifications of one change cost
one ML call, and what is not a notification of ours changes nothing. They run where
DATABASE_URL and REDIS_URL are set (CI); elsewhere they are skipped.
"""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
import requests
from django.conf import settings
from django.core.management import call_command
from django.utils import timezone

from accounts.mercadolivre.sandbox import SANDBOX_APP, start_sandbox
from accounts.models import MLAccount, Notification
from sync import engine, harness, tasks
from sync.harness import wait_for
from tests.factories import MLAccountFactory
from tests.sync.test_worker import Worker

pytestmark = [
    pytest.mark.worker,
    pytest.mark.redis,
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True),
    pytest.mark.timeout(180),
]

SELLER = 241500733  # CASA_DA_ANA, a demo seller: 4 unanswered questions to begin with


@pytest.fixture
def webhook_url(live_server):
    return f"{live_server.url}/webhooks/mercadolivre/{settings.ML_WEBHOOK_SECRET}/"


@pytest.fixture
def sandbox(webhook_url):
    server = start_sandbox(port=0, notifications_url=webhook_url, notification_retry_seconds=0.2)
    yield server
    server.stop()


@pytest.fixture
def app_settings(settings, sandbox):
    """This process is the web server (live_server) and runs the recovery command: both at the sandbox."""
    settings.ML_API_URL = settings.ML_AUTH_URL = sandbox.url
    settings.ML_REQUESTS_PER_SECOND = 0
    settings.ML_APPLICATION_ID = SANDBOX_APP.app_id
    return settings


@pytest.fixture
def worker(app_settings, sandbox, tmp_path, monkeypatch):
    """A real worker on a queue of this test's own; the webhook's processing tasks go there."""
    queue = f"test-notifications-{tmp_path.name[-12:]}"
    started = Worker(
        queue=queue, redis_url=settings.REDIS_URL, sandbox_url=sandbox.url, log_path=tmp_path / "w.log"
    )
    send = tasks.process_account_notifications.apply_async
    monkeypatch.setattr(
        tasks.process_account_notifications,
        "apply_async",
        lambda args=None, kwargs=None, **options: send(args, kwargs, **{**options, "queue": queue}),
    )
    yield started
    started.stop()
    print(f"--- worker log\n{started.log()[-5000:]}")
    harness.forget_queue(settings.REDIS_URL, queue)


@pytest.fixture
def account(user, sandbox, app_settings):
    """The demo seller, connected with real sandbox tokens and synced once (its numbers known)."""
    pair = sandbox.state.mint(SELLER)
    account = MLAccountFactory(
        owner=user,
        ml_user_id=SELLER,
        access_token=pair["access_token"],
        refresh_token=pair["refresh_token"],
        token_expires_at=timezone.now() + timedelta(seconds=pair["expires_in"]),
    )
    assert engine.sync_account(account.pk).ok
    account.refresh_from_db()
    assert account.cached_questions == 4
    sandbox.state.reset_stats()
    return account


def _activity(sandbox, **body) -> dict:
    response = requests.post(f"{sandbox.url}/_sandbox/activity", json=body, timeout=10)
    assert response.status_code == 200, response.text
    return response.json()


def _questions(account) -> int:
    return MLAccount.objects.values_list("cached_questions", flat=True).get(pk=account.pk)


def test_a_new_question_updates_the_count_through_the_notification_without_a_poll(worker, account, sandbox):
    last_sync = account.last_sync

    activity = _activity(sandbox, user_id=SELLER, topic="questions")

    assert activity["seller"]["questions"] == 5
    wait_for(lambda: _questions(account) == 5, timeout=60, what="the count to follow the notification")
    note = Notification.objects.get(account=account)
    assert (note.topic, note.resource, note.status, note.source) == (
        "questions",
        activity["resource"],
        "done",
        "webhook",
    )
    assert note.lag_ms is not None and note.processed_at is not None
    account.refresh_from_db()
    assert account.last_sync == last_sync  # no poll: the notification alone moved the number
    assert account.last_notification_at is not None
    calls = sandbox.state.stats()["by_kind"]
    # One call, the count of the notified topic; none of the other three counts.
    assert (calls["questions"], calls["items"], calls["orders"], calls["claims"]) == (1, 0, 0, 0)


def test_a_dropped_notification_comes_back_through_recover_notifications(worker, account, sandbox, capsys):
    sandbox.state.configure(drop_notifications=1)

    _activity(sandbox, user_id=SELLER, topic="questions")

    wait_for(lambda: sandbox.state.stats()["notifications_missed"] == 1, timeout=30, what="the drop")
    assert not Notification.objects.exists()
    assert _questions(account) == 4

    call_command("recover_notifications")

    assert "1 new" in capsys.readouterr().out
    wait_for(lambda: _questions(account) == 5, timeout=60, what="the recovered notification's count")
    note = Notification.objects.get()
    assert (note.source, note.status) == ("missed_feeds", "done")
    # Recovering again finds the same message and stores nothing twice.
    call_command("recover_notifications")
    assert "1 already here" in capsys.readouterr().out
    assert Notification.objects.count() == 1


def test_duplicates_of_one_change_cost_one_ml_call(worker, account, sandbox, app_settings):
    # Five notifications for one change arrive within the merge window (generous here, so a
    # busy machine still delivers all five inside it); processing re-reads the count once.
    app_settings.ML_NOTIFICATION_MERGE_SECONDS = 5

    _activity(sandbox, user_id=SELLER, topic="questions", duplicates=5)

    wait_for(
        lambda: Notification.objects.filter(status="done").count() == 5,
        timeout=60,
        what="the five notifications to be processed",
    )
    assert _questions(account) == 5
    assert sandbox.state.stats()["by_kind"]["questions"] == 1
    assert set(Notification.objects.values_list("status", flat=True)) == {"done"}


def test_a_wrong_secret_a_foreign_application_and_garbage_change_nothing(
    live_server, webhook_url, account, sandbox
):
    body = {
        "_id": "f0f0f0",
        "resource": "/questions/13000000001",
        "user_id": SELLER,
        "topic": "questions",
        "application_id": SANDBOX_APP.app_id,
        "attempts": 1,
    }
    wrong = f"{live_server.url}/webhooks/mercadolivre/{'x' * 32}/"
    answers = [
        requests.post(wrong, json=body, timeout=10),
        requests.post(webhook_url, json={**body, "application_id": 1234567}, timeout=10),
        requests.post(
            webhook_url, data=b"{not json", headers={"Content-Type": "application/json"}, timeout=10
        ),
        requests.post(webhook_url, data=json.dumps([body]), timeout=10),
        requests.post(webhook_url, json={"topic": "questions", "user_id": SELLER}, timeout=10),
    ]

    assert [answer.status_code for answer in answers] == [404, 200, 400, 400, 400]
    assert answers[1].json() == {"status": "foreign"}
    assert not Notification.objects.exists()
    account.refresh_from_db()
    assert (account.cached_questions, account.last_notification_at) == (4, None)
    assert sandbox.state.stats()["total_requests"] == 0
