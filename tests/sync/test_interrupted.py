"""A killed worker's accounts: freed by the next dispatch, marked interrupted, retried at once
(issue 10, finding 10), and a lease sized from the longest sync."""

import math
import re
from datetime import timedelta

import pytest
import responses
from django.conf import settings as django_settings
from django.utils import timezone

from accounts.mercadolivre import deadline
from accounts.models import AccountEvent, MLAccount
from sync import engine, tasks
from tests.factories import MLAccountFactory
from tests.mlmock import API, add_counts

pytestmark = pytest.mark.django_db


def abandoned(user, settings, **fields):
    """An account whose worker was killed mid-sync: an old claim, and the next_sync the
    dispatch that sent it moved to the end of the lease."""
    now = timezone.now()
    return MLAccountFactory(
        owner=user,
        sync_started_at=now - timedelta(seconds=settings.SYNC_LEASE_SECONDS + 1),
        last_sync_status="in_progress",
        next_sync=now + timedelta(seconds=settings.SYNC_LEASE_SECONDS - 60),
        **fields,
    )


def test_the_next_dispatch_frees_an_abandoned_claim_and_resends_the_sync(
    user, settings, enqueued, django_capture_on_commit_callbacks
):
    settings.ML_REQUESTS_PER_SECOND = 0
    killed = abandoned(user, settings, error_count=2)
    running = MLAccountFactory(owner=user, sync_started_at=timezone.now(), last_sync_status="in_progress")

    with django_capture_on_commit_callbacks(execute=True):
        assert tasks.dispatch_due_syncs() == 1

    assert enqueued.args_of("sync.tasks.sync_account") == [str(killed.pk)]
    killed.refresh_from_db()
    assert (killed.sync_started_at, killed.last_sync_status) == (None, "failed")
    assert killed.last_sync_error == "The sync was interrupted (its worker stopped); retrying."
    assert killed.error_count == 2  # an interruption is not an error of the account
    [event] = AccountEvent.objects.filter(account=killed)
    assert (event.kind, event.message) == ("interrupted", killed.last_sync_error)
    running.refresh_from_db()
    assert running.last_sync_status == "in_progress" and running.sync_started_at is not None
    assert not AccountEvent.objects.filter(account=running).exists()


def test_a_paused_account_is_freed_but_not_scheduled(user, settings, enqueued):
    paused = abandoned(user, settings, status="paused", sync_enabled=False)
    MLAccount.objects.filter(pk=paused.pk).update(next_sync=None)
    tasks.dispatch_due_syncs()
    paused.refresh_from_db()
    assert (paused.sync_started_at, paused.next_sync, paused.last_sync_status) == (None, None, "failed")
    assert enqueued.args_of("sync.tasks.sync_account") == []


def test_the_health_check_frees_them_too(user, settings):
    killed = abandoned(user, settings)
    assert tasks.health_check()["stale_claims_freed"] == 1
    killed.refresh_from_db()
    assert killed.sync_started_at is None and killed.next_sync <= timezone.now()
    assert AccountEvent.objects.get(account=killed).kind == "interrupted"


def test_the_lease_is_sized_from_the_longest_sync_and_the_time_limits_fit_between():
    s = django_settings
    longest = s.ML_RATE_LIMIT_MAX_WAIT + 5 * (s.ML_CONNECT_TIMEOUT + s.ML_READ_TIMEOUT)
    assert s.SYNC_DEADLINE_SECONDS == longest == 155
    assert math.ceil(longest) + 45 == s.SYNC_LEASE_SECONDS == 200
    assert longest < s.SYNC_LEASE_SECONDS <= 2 * longest
    assert longest < tasks.SYNC_SOFT_TIME_LIMIT < tasks.SYNC_TIME_LIMIT < s.SYNC_LEASE_SECONDS


@pytest.mark.usefixtures("ml_settings")
def test_a_sync_runs_under_its_overall_deadline(ml_account, ml, settings):
    settings.SYNC_DEADLINE_SECONDS = 40
    left = []

    def items(request):
        left.append(deadline.time_left())
        return (200, {}, '{"paging": {"total": 3}}')

    ml.add_callback(responses.GET, re.compile(API + r"/users/\d+/items/search"), callback=items)
    add_counts(ml, products=None)
    assert engine.sync_account(ml_account.pk).ok
    assert left and 0 < left[0] <= 40
