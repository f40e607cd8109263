"""The Celery tasks, run in this process (eager mode or called directly), ML mocked at HTTP."""

import json
import logging
import re
from datetime import timedelta
from urllib.parse import parse_qs

import pytest
import responses
from celery.exceptions import SoftTimeLimitExceeded
from django.core.cache import cache
from django.utils import timezone

from accounts import services
from accounts.mercadolivre.errors import MLRateLimited, MLUnavailable
from accounts.models import AccountEvent, MLAccount
from sync import engine, schedule, tasks
from tests.factories import AccountEventFactory, MLAccountFactory
from tests.mlmock import API, add_counts, token_body
from tests.threads import run_together

pytestmark = pytest.mark.django_db

ITEMS = re.compile(API + r"/users/\d+/items/search")


def _error(status, error="error"):
    return {"json": {"message": error, "error": error, "status": status, "cause": []}, "status": status}


# --- sync_account ------------------------------------------------------------------------------


def test_sync_task_saves_counts(ml_account, ml, eager):
    add_counts(ml, products=120, orders=33, questions=4, claims=2)

    outcome = tasks.sync_account.delay(str(ml_account.pk)).get()

    assert outcome == "success"
    ml_account.refresh_from_db()
    assert (ml_account.cached_products, ml_account.cached_orders) == (120, 33)
    assert ml_account.last_sync_status == "success"
    assert ml_account.sync_started_at is None
    assert len(ml.calls) == 5  # listings, orders (their mirror counts them), questions, claims, reputation


def test_transient_failures_are_retried_then_succeed_without_recording_a_failure(
    ml_account, ml, run_with_retries, settings
):
    settings.SYNC_RETRY_BASE_SECONDS = 10
    # The HTTP layer already retries a 5xx GET twice: three 503s fail one attempt.
    for _ in range(3):
        ml.add(responses.GET, ITEMS, **_error(503, "service_unavailable"))
    ml.add(responses.GET, ITEMS, **_error(429, "too_many_requests"))
    add_counts(ml, products=7)

    outcome, countdowns = run_with_retries(tasks.sync_account, str(ml_account.pk))

    assert outcome == "success"
    assert 10 <= countdowns[0] <= 15 and 20 <= countdowns[1] <= 30
    ml_account.refresh_from_db()
    assert ml_account.cached_products == 7
    assert (ml_account.status, ml_account.error_count, ml_account.last_sync_status) == (
        "active",
        0,
        "success",
    )
    assert not AccountEvent.objects.filter(account=ml_account).exists()
    assert len(ml.calls) == 3 + 1 + 5


def test_rate_limited_sync_gives_up_after_max_retries_and_records_one_failure(
    ml_account, ml, run_with_retries
):
    ml.add(responses.GET, ITEMS, **_error(429, "too_many_requests"))

    outcome, countdowns = run_with_retries(tasks.sync_account, str(ml_account.pk))

    assert outcome == engine.Outcome.FAILED
    assert len(countdowns) == tasks.sync_account.max_retries
    assert len(ml.calls) == tasks.sync_account.max_retries + 1
    ml_account.refresh_from_db()
    assert (ml_account.status, ml_account.error_count, ml_account.last_sync_status) == ("active", 1, "failed")
    assert ml_account.sync_started_at is None
    assert ml_account.next_sync > timezone.now() + timedelta(seconds=ml_account.sync_interval - 10)
    event = AccountEvent.objects.get(account=ml_account)
    assert (event.kind, event.http_status) == ("rate_limited", 429)


def test_unauthorized_sync_renews_the_token_once_then_marks_the_account_expired(ml_account, ml, eager):
    ml.add(responses.GET, ITEMS, **_error(401, "not_found"))
    ml.add(
        responses.POST,
        API + "/oauth/token",
        json={"error": "invalid_grant", "error_description": "used", "status": 400, "cause": []},
        status=400,
    )

    outcome = tasks.sync_account.delay(str(ml_account.pk)).get()

    assert outcome == engine.Outcome.FAILED
    token_calls = [c for c in ml.calls if c.request.url.endswith("/oauth/token")]
    assert len(token_calls) == 1  # one refresh attempt, no task retry
    ml_account.refresh_from_db()
    assert ml_account.status == "expired"
    assert AccountEvent.objects.filter(account=ml_account, kind="auth").count() == 1


def test_account_in_error_returns_to_active_on_its_first_success(user, ml, eager):
    account = MLAccountFactory(owner=user, status="error", error_count=7)
    add_counts(ml)

    assert tasks.sync_account.delay(str(account.pk)).get() == "success"

    account.refresh_from_db()
    assert (account.status, account.error_count) == ("active", 0)


def test_sync_task_for_a_removed_account_is_a_no_op(db, ml, eager):
    outcome = tasks.sync_account.delay("6f1c7c1e-0000-4000-8000-000000000000").get()

    assert outcome == engine.Outcome.MISSING
    assert len(ml.calls) == 0


def test_sync_stopped_by_the_soft_time_limit_is_recorded_as_a_failure(ml_account, monkeypatch, eager):
    def too_slow(account_id, final_attempt):
        raise SoftTimeLimitExceeded()

    monkeypatch.setattr(engine, "sync_account", too_slow)

    assert tasks.sync_account.delay(str(ml_account.pk)).get() == "timeout"

    ml_account.refresh_from_db()
    assert (ml_account.error_count, ml_account.last_sync_status) == (1, "failed")
    assert "longer than" in AccountEvent.objects.get(account=ml_account).message


def test_sync_tasks_have_time_limits_and_finite_retries():
    for task in (
        tasks.sync_account,
        tasks.refresh_account_token,
        tasks.dispatch_due_syncs,
        tasks.refresh_expiring_tokens,
        tasks.health_check,
        tasks.cleanup_events,
    ):
        assert 0 < task.soft_time_limit < task.time_limit, task.name
        assert task.max_retries is not None and task.max_retries <= 5, task.name
    assert tasks.sync_account.acks_late and tasks.refresh_account_token.acks_late
    assert not tasks.dispatch_due_syncs.acks_late


@pytest.mark.parametrize("attempt", [0, 1, 2])
def test_retry_countdown_doubles_with_jitter(settings, attempt):
    settings.SYNC_RETRY_BASE_SECONDS = 10
    base = 10 * 2**attempt
    waits = [tasks.retry_countdown(MLUnavailable("down"), attempt) for _ in range(50)]
    assert all(base <= wait <= base * 1.5 for wait in waits)
    assert len(set(waits)) > 1


def test_retry_countdown_honours_retry_after_and_is_capped():
    assert 30 <= tasks.retry_countdown(MLRateLimited("slow down", retry_after=30), 0) <= 45
    assert (
        tasks.retry_countdown(MLRateLimited("slow down", retry_after=86400), 0)
        <= tasks.MAX_RETRY_COUNTDOWN * 1.5
    )


# --- dispatch_due_syncs ------------------------------------------------------------------------


def _due(user, **fields):
    fields.setdefault("next_sync", timezone.now() - timedelta(seconds=5))
    return MLAccountFactory(owner=user, **fields)


def test_dispatch_enqueues_each_due_account_once(
    user, settings, enqueued, django_capture_on_commit_callbacks
):
    settings.ML_REQUESTS_PER_SECOND = 0
    now = timezone.now()
    stale = now - timedelta(seconds=settings.SYNC_LEASE_SECONDS + 5)
    expected = {
        _due(user).pk,
        _due(user, status="error", error_count=6).pk,
        _due(user, sync_started_at=stale, last_sync_status="in_progress").pk,
    }
    _due(user, next_sync=now + timedelta(minutes=3))  # not yet
    _due(user, status="paused")
    _due(user, status="expired")
    _due(user, sync_enabled=False)
    _due(user, sync_started_at=now, last_sync_status="in_progress")  # a sync holds it

    with django_capture_on_commit_callbacks(execute=True):
        assert tasks.dispatch_due_syncs() == 3
    with django_capture_on_commit_callbacks(execute=True):
        assert tasks.dispatch_due_syncs() == 0  # the first run holds them for the lease

    sent = enqueued.args_of("sync.tasks.sync_account")
    assert sorted(sent) == sorted(str(pk) for pk in expected)
    lease_end = now + timedelta(seconds=settings.SYNC_LEASE_SECONDS)
    for account in MLAccount.objects.filter(pk__in=expected):
        assert lease_end - timedelta(seconds=5) <= account.next_sync <= lease_end + timedelta(seconds=5)
    # A message not started within the lease is dropped: the account is due again by then.
    for options in enqueued.options_of("sync.tasks.sync_account"):
        assert options["expires"] == pytest.approx(lease_end, abs=timedelta(seconds=5))


def test_dispatch_under_a_budget_spreads_its_syncs_over_the_minute(
    user, settings, enqueued, django_capture_on_commit_callbacks
):
    # All at once, the syncs would hold the budget until done and the notifications processed
    # meanwhile would wait behind them.
    settings.ML_REQUESTS_PER_SECOND = 5
    for _ in range(4):
        _due(user)

    with django_capture_on_commit_callbacks(execute=True):
        assert tasks.dispatch_due_syncs() == 4

    countdowns = [options.get("countdown") for options in enqueued.options_of("sync.tasks.sync_account")]
    assert countdowns == [None, 15.0, 30.0, 45.0]


def test_dispatch_without_a_budget_sends_everything_at_once(
    user, settings, enqueued, django_capture_on_commit_callbacks
):
    settings.ML_REQUESTS_PER_SECOND = 0
    for _ in range(3):
        _due(user)

    with django_capture_on_commit_callbacks(execute=True):
        tasks.dispatch_due_syncs()

    assert [options.get("countdown") for options in enqueued.options_of("sync.tasks.sync_account")] == [
        None
    ] * 3


def test_dispatch_takes_accounts_due_within_half_a_period_so_intervals_stay_on_time(
    user, settings, enqueued, django_capture_on_commit_callbacks
):
    settings.ML_REQUESTS_PER_SECOND = 0
    now = timezone.now()
    almost = _due(user, next_sync=now + timedelta(seconds=20))
    _due(user, next_sync=now + timedelta(seconds=45))

    with django_capture_on_commit_callbacks(execute=True):
        assert tasks.dispatch_due_syncs() == 1

    assert enqueued.args_of("sync.tasks.sync_account") == [str(almost.pk)]


def test_dispatch_enqueues_only_after_commit(user, settings, enqueued, django_capture_on_commit_callbacks):
    settings.ML_REQUESTS_PER_SECOND = 0
    account = _due(user)

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        tasks.dispatch_due_syncs()
        assert enqueued.calls == []
    for callback in callbacks:
        callback()

    assert enqueued.args_of("sync.tasks.sync_account") == [str(account.pk)]


def test_dispatch_sends_what_the_budget_serves_least_recently_synced_first(
    user, settings, enqueued, django_capture_on_commit_callbacks
):
    settings.ML_REQUESTS_PER_SECOND = 1  # 60 requests a minute: 14 syncs at 95%
    settings.SYNC_BUDGET_SHARE = 0.95
    now = timezone.now()
    never = [_due(user, last_sync=None) for _ in range(3)]
    by_age = [_due(user, last_sync=now - timedelta(minutes=100 - i)) for i in range(17)]

    with django_capture_on_commit_callbacks(execute=True):
        first = tasks.dispatch_due_syncs()
    with django_capture_on_commit_callbacks(execute=True):
        second = tasks.dispatch_due_syncs()

    assert (first, second) == (14, 6)
    sent = enqueued.args_of("sync.tasks.sync_account")
    assert set(sent[:3]) == {str(a.pk) for a in never}
    assert sent[3:14] == [str(a.pk) for a in by_age[:11]]
    assert set(sent[14:]) == {str(a.pk) for a in by_age[11:]}


@pytest.mark.parametrize(("waiting", "sent"), [(200, 0), (10, 4), (0, 14)])
def test_dispatch_counts_the_syncs_already_waiting_in_the_queue(
    user, settings, enqueued, django_capture_on_commit_callbacks, waiting, sent
):
    settings.ML_REQUESTS_PER_SECOND = 1  # 14 syncs a minute at 95%
    settings.SYNC_BUDGET_SHARE = 0.95
    for _ in range(20):
        _due(user)
    enqueued.waiting = waiting  # e.g. a user's "sync all" queued just before

    with django_capture_on_commit_callbacks(execute=True):
        assert tasks.dispatch_due_syncs() == sent

    assert len(enqueued.args_of("sync.tasks.sync_account")) == sent


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_dispatches_pick_each_account_exactly_once(user):
    accounts = {str(_due(user).pk) for _ in range(40)}
    results, errors = run_together(
        [lambda: services.mlaccount_dispatch_due(lease_seconds=300, limit=15)] * 4, timeout=30
    )
    picked = [account_id for result in results if result for account_id in result]

    assert errors == []
    assert sorted(picked) == sorted(accounts)


def test_dispatch_logs_one_line_per_run(user, settings, enqueued, caplog, django_capture_on_commit_callbacks):
    settings.ML_REQUESTS_PER_SECOND = 5
    _due(user)

    with caplog.at_level(logging.INFO, logger="sync.tasks"), django_capture_on_commit_callbacks(execute=True):
        tasks.dispatch_due_syncs()

    [record] = [r for r in caplog.records if getattr(r, "event", None) == "job"]
    assert (record.job, record.outcome, record.enqueued, record.capacity) == (
        "dispatch_due_syncs",
        "ok",
        1,
        71,
    )
    assert record.still_due == 0 and record.duration_ms >= 0


# --- token refresh ------------------------------------------------------------------------------


class TokenEndpoint:
    """ML's token endpoint answering per refresh token: a status, or a fresh pair."""

    def __init__(self, answers):
        self.answers = answers  # refresh token -> HTTP status (200: new pair)
        self.seen = []

    def __call__(self, request):
        form = {k: v[0] for k, v in parse_qs(request.body).items()}
        self.seen.append(form["refresh_token"])
        status = self.answers[form["refresh_token"]]
        if status == 200:
            return 200, {}, json.dumps(token_body(1, len(self.seen)))
        if status == 400:
            return 400, {}, json.dumps({"error": "invalid_grant", "error_description": "x", "status": 400})
        return status, {}, json.dumps({"message": "down", "error": "down", "status": status, "cause": []})


def test_refresh_job_renews_only_tokens_expiring_within_the_hour(
    user, enqueued, django_capture_on_commit_callbacks
):
    now = timezone.now()
    soon = [
        MLAccountFactory(owner=user, token_expires_at=now + timedelta(minutes=50)),
        MLAccountFactory(owner=user, token_expires_at=now - timedelta(minutes=5), status="error"),
    ]
    MLAccountFactory(owner=user, token_expires_at=now + timedelta(minutes=70))
    MLAccountFactory(owner=user, token_expires_at=now + timedelta(minutes=10), status="paused")
    MLAccountFactory(owner=user, token_expires_at=now + timedelta(minutes=10), status="expired")

    with django_capture_on_commit_callbacks(execute=True):
        assert tasks.refresh_expiring_tokens() == 2

    assert sorted(enqueued.args_of("sync.tasks.refresh_account_token")) == sorted(str(a.pk) for a in soon)


def test_one_failing_account_does_not_stop_the_other_refreshes(
    user, ml, enqueued, run_with_retries, django_capture_on_commit_callbacks
):
    soon = timezone.now() + timedelta(minutes=20)
    dead = MLAccountFactory(owner=user, token_expires_at=soon, refresh_token="TG-dead-1")
    down = MLAccountFactory(
        owner=user, token_expires_at=soon + timedelta(minutes=1), refresh_token="TG-down-2"
    )
    fine = MLAccountFactory(
        owner=user, token_expires_at=soon + timedelta(minutes=2), refresh_token="TG-fine-3"
    )
    endpoint = TokenEndpoint({"TG-dead-1": 400, "TG-down-2": 503, "TG-fine-3": 200})
    ml.add_callback(responses.POST, API + "/oauth/token", callback=endpoint)

    with django_capture_on_commit_callbacks(execute=True):
        tasks.refresh_expiring_tokens()
    outcomes = [
        run_with_retries(tasks.refresh_account_token, account_id)[0]
        for account_id in enqueued.args_of("sync.tasks.refresh_account_token")
    ]

    assert outcomes == ["invalid_grant", "failed", "ok"]
    assert endpoint.seen.count("TG-fine-3") == 1
    assert endpoint.seen.count("TG-down-2") == tasks.refresh_account_token.max_retries + 1
    dead.refresh_from_db()
    down.refresh_from_db()
    fine.refresh_from_db()
    assert dead.status == "expired"
    assert (down.status, down.refresh_token, down.token_expires_at) == (
        "active",
        "TG-down-2",
        soon + timedelta(minutes=1),
    )
    assert fine.refresh_token.startswith("TG-") and fine.refresh_token != "TG-fine-3"
    assert fine.token_expires_at > timezone.now() + timedelta(hours=5)


def test_refresh_task_for_a_removed_account_is_a_no_op(db, ml, eager):
    assert tasks.refresh_account_token.delay("6f1c7c1e-0000-4000-8000-000000000000").get() == "missing"
    assert len(ml.calls) == 0


# --- health_check and cleanup_events ----------------------------------------------------------------


def test_health_check_frees_abandoned_claims_and_records_a_heartbeat(user, settings, caplog):
    cache.delete(schedule.HEARTBEAT_CACHE_KEY)
    now = timezone.now()
    abandoned = MLAccountFactory(
        owner=user,
        sync_started_at=now - timedelta(seconds=settings.SYNC_LEASE_SECONDS + 1),
        last_sync_status="in_progress",
    )
    running = MLAccountFactory(owner=user, sync_started_at=now, last_sync_status="in_progress")
    MLAccountFactory(owner=user, status="error")
    MLAccountFactory(owner=user, status="paused", next_sync=None)

    with caplog.at_level(logging.INFO, logger="sync.tasks"):
        heartbeat = tasks.health_check()

    abandoned.refresh_from_db()
    running.refresh_from_db()
    assert (abandoned.sync_started_at, abandoned.last_sync_status) == (None, "failed")
    assert (running.sync_started_at, running.last_sync_status) == (now, "in_progress")
    assert heartbeat["status_counts"] == {"active": 2, "paused": 1, "error": 1, "expired": 0}
    assert heartbeat["stale_claims_freed"] == 1
    assert schedule.heartbeat_read() == heartbeat
    [record] = [r for r in caplog.records if getattr(r, "job", None) == "health_check"]
    assert record.stale_claims_freed == 1 and record.outcome == "ok"


def test_cleanup_drops_old_events_and_keeps_the_newest_twenty_per_account(user):
    busy, quiet = MLAccountFactory(owner=user), MLAccountFactory(owner=user)
    AccountEventFactory.create_batch(25, account=busy)
    recent = AccountEventFactory(account=quiet)
    old = AccountEventFactory(account=quiet)
    AccountEvent.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=31))
    newest_busy = list(AccountEvent.objects.filter(account=busy).order_by("-created_at", "-id")[:20])

    assert tasks.cleanup_events() == 5 + 1

    assert list(AccountEvent.objects.filter(account=busy).order_by("-created_at", "-id")) == newest_busy
    assert list(AccountEvent.objects.filter(account=quiet)) == [recent]


def test_failing_job_logs_its_failure_and_raises(db, monkeypatch, caplog):
    def broken(**kwargs):
        raise RuntimeError("database on fire")

    monkeypatch.setattr(tasks.services, "event_cleanup", broken)

    with caplog.at_level(logging.INFO, logger="sync.tasks"), pytest.raises(RuntimeError):
        tasks.cleanup_events()

    [record] = [r for r in caplog.records if getattr(r, "job", None) == "cleanup_events"]
    assert (record.levelname, record.outcome, record.error) == ("ERROR", "error", "RuntimeError")
