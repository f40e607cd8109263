"""sync/ondemand.py: syncs a user asks for are queued, never run in the request."""

from datetime import timedelta

import pytest
from django.utils import timezone

from accounts import services
from accounts.models import MLAccount
from sync import ondemand, tasks
from tests.factories import MLAccountFactory

pytestmark = pytest.mark.django_db


def test_sync_phase_reads_the_claim_and_the_request(ml_account, settings):
    now = timezone.now()
    assert ondemand.sync_phase(ml_account, now=now) == ""
    ml_account.sync_requested_at = now
    assert ondemand.sync_phase(ml_account, now=now) == "queued"
    ml_account.sync_started_at = now - timedelta(seconds=settings.SYNC_LEASE_SECONDS)
    assert ondemand.sync_phase(ml_account, now=now) == "syncing"
    ml_account.sync_started_at = now - timedelta(seconds=settings.SYNC_LEASE_SECONDS + 1)
    assert ondemand.sync_phase(ml_account, now=now) == "interrupted"


def test_a_request_whose_message_was_lost_stops_reading_queued(ml_account):
    # The broker was down when "sync all" sent it: the row must not say "queued" for ever.
    now = timezone.now()
    ml_account.sync_requested_at = now - ondemand.QUEUED_FOR_AT_MOST
    assert ondemand.sync_phase(ml_account, now=now) == "queued"
    ml_account.sync_requested_at = now - ondemand.QUEUED_FOR_AT_MOST - timedelta(seconds=1)
    assert ondemand.sync_phase(ml_account, now=now) == ""


def test_a_request_made_while_a_sync_runs_survives_that_sync(ml_account):
    began = timezone.now()
    services.mlaccount_mark_sync_requested(account_ids=[ml_account.pk], now=began + timedelta(seconds=1))

    services.mlaccount_clear_sync_request(account_id=ml_account.pk, started_at=began)

    assert MLAccount.objects.get(pk=ml_account.pk).sync_requested_at is not None
    services.mlaccount_clear_sync_request(account_id=ml_account.pk, started_at=began + timedelta(seconds=2))
    assert MLAccount.objects.get(pk=ml_account.pk).sync_requested_at is None


def test_sync_all_queues_after_commit_with_the_same_rules_as_the_api(
    user, monkeypatch, django_capture_on_commit_callbacks
):
    active = MLAccountFactory(owner=user, is_primary=True)
    errored = MLAccountFactory(owner=user, status="error")
    paused = MLAccountFactory(owner=user, status="paused", sync_enabled=False)
    expired = MLAccountFactory(owner=user, status="expired")
    sent = []
    monkeypatch.setattr(
        tasks.sync_account, "apply_async", lambda args=(), kwargs=None, **o: sent.append(args)
    )

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        plan = ondemand.sync_all(user=user)
        assert sent == []  # nothing reaches the broker before the writes commit
    for callback in callbacks:
        callback()

    assert [a.pk for a in plan.queued] == [active.pk, errored.pk]
    assert ([a.pk for a in plan.paused], [a.pk for a in plan.expired]) == ([paused.pk], [expired.pk])
    assert plan.job is None
    assert sorted(sent) == sorted([(str(active.pk),), (str(errored.pk),)])


def test_sync_connected_queues_one_sync_after_commit(
    ml_account, enqueued, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        assert ondemand.sync_connected(account=ml_account) is True
        assert enqueued.calls == []  # nothing reaches the broker before the mark commits
    for callback in callbacks:
        callback()

    assert enqueued.args_of("sync.tasks.sync_account") == [str(ml_account.pk)]
    account = MLAccount.objects.get(pk=ml_account.pk)
    assert ondemand.sync_phase(account) == "queued" and account.cached_at is None  # "first sync…"


@pytest.mark.parametrize("status", ["paused", "expired"])
def test_sync_connected_leaves_paused_and_expired_accounts_alone(
    user, status, enqueued, django_capture_on_commit_callbacks
):
    account = MLAccountFactory(owner=user, status=status, sync_enabled=status != "paused")
    with django_capture_on_commit_callbacks(execute=True):
        assert ondemand.sync_connected(account=account) is False
    assert enqueued.calls == []
    assert MLAccount.objects.get(pk=account.pk).sync_requested_at is None
