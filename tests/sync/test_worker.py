"""Fault tolerance with a real Celery worker: a subprocess on Redis and the test PostgreSQL.

Each test starts `celery -A mlaccounts worker` (the Procfile's command and settings, four
threads to stay light) on its own queue, against the sandbox started here and the same
test database this process writes to. Tasks are sent the way beat and dispatch send them.
They run where DATABASE_URL and REDIS_URL are set (CI); elsewhere they are skipped.
"""

from __future__ import annotations

import shutil
import time
import uuid
from datetime import timedelta
from pathlib import Path
from urllib.parse import quote

import pytest
from django.conf import settings
from django.db import connection
from django.utils import timezone

from accounts.mercadolivre.sandbox import start_sandbox
from accounts.models import AccountEvent, MLAccount
from sync import harness, mirrors, tasks
from sync.harness import PrivateRedis, wait_for
from tests.factories import MLAccountFactory

pytestmark = [
    pytest.mark.worker,
    pytest.mark.redis,
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True),
    pytest.mark.timeout(120),
]

__all__ = ["PrivateRedis", "Worker", "wait_for"]


def _database_url() -> str:
    """The URL of the database this test runs on (pytest-django's test database)."""
    db = connection.settings_dict
    credentials = quote(db["USER"] or "", safe="")
    if db.get("PASSWORD"):
        credentials += ":" + quote(db["PASSWORD"], safe="")
    return f"postgres://{credentials}@{db['HOST'] or 'localhost'}:{db['PORT'] or 5432}/{db['NAME']}"


class Worker(harness.Worker):
    """The harness's worker on this test's database, queue, Redis and sandbox (4 threads)."""

    def __init__(self, *, queue: str, redis_url: str, sandbox_url: str, log_path: Path, **env):
        self.redis_url = redis_url
        super().__init__(
            env=harness.environment(
                DATABASE_URL=_database_url(),
                REDIS_URL=redis_url,
                CELERY_QUEUE=queue,
                CELERY_WORKER_CONCURRENCY=4,
                ML_SANDBOX_URL=sandbox_url,  # no ML_CLIENT_ID: sandbox mode, pointed at ours
                ML_REQUESTS_PER_SECOND=0,
                SYNC_RETRY_BASE_SECONDS=0.2,
                LOG_FORMAT="json",
                DEBUG="false",
                **env,
            ),
            log_path=log_path,
            queue=queue,
            broker_url=redis_url,
        )


@pytest.fixture
def sandbox():
    server = start_sandbox(port=0)
    # The sellers' orders stand still from here on; the worker counts from its own clock.
    server.frozen_at = time.time()
    server.state.clock = lambda: server.frozen_at
    yield server
    server.stop()


@pytest.fixture
def queue_name():
    return f"test-worker-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def start_worker(sandbox, queue_name, tmp_path):
    """Start workers (stopped at the end of the test); their logs are shown on failure."""
    workers: list[Worker] = []

    def start(*, redis_url: str = settings.REDIS_URL, **env) -> Worker:
        worker = Worker(
            queue=queue_name,
            redis_url=redis_url,
            sandbox_url=sandbox.url,
            log_path=tmp_path / f"worker-{len(workers)}.log",
            **env,
        )
        workers.append(worker)
        return worker

    yield start
    for worker in workers:
        worker.stop()
        # pytest shows a teardown's output only when the test failed.
        print(f"--- {worker.log_path.name}\n{worker.log()[-5000:]}")
    harness.forget_queue(settings.REDIS_URL, queue_name)


@pytest.fixture
def connected(user, sandbox):
    """Make accounts connected with real sandbox tokens, due now."""

    def connect(ml_user_id: int) -> MLAccount:
        pair = sandbox.state.mint(ml_user_id)
        return MLAccountFactory(
            owner=user,
            ml_user_id=ml_user_id,
            access_token=pair["access_token"],
            refresh_token=pair["refresh_token"],
            token_expires_at=timezone.now() + timedelta(seconds=pair["expires_in"]),
            next_sync=timezone.now(),
        )

    return connect


def _status(account: MLAccount) -> str:
    return MLAccount.objects.values_list("last_sync_status", flat=True).get(pk=account.pk)


def _assert_synced(account: MLAccount, sandbox) -> None:
    account.refresh_from_db()
    seller = sandbox.state.seller(account.ml_user_id)
    assert (account.status, account.last_sync_status, account.error_count) == ("active", "success", 0)
    assert account.sync_started_at is None
    assert account.cached_products == seller.listings
    # The standing sales of the 30 days the worker asked for: it read its clock after the
    # sandbox's stopped, before now (an hour may have turned meanwhile).
    assert account.cached_orders in {
        sandbox.state.standing_orders(account.ml_user_id, since=moment - 30 * 86400)
        for moment in (sandbox.frozen_at, time.time())
    }
    assert (account.cached_questions, account.cached_claims) == (seller.questions, seller.claims)


def test_worker_killed_mid_sync_leaves_no_account_stuck(start_worker, connected, sandbox):
    account = connected(241500733)
    sandbox.state.configure(latency_ms=1500)  # each ML call takes 1.5 s: time to kill it
    first = start_worker()
    first.send(tasks.sync_account, str(account.pk))
    wait_for(lambda: _status(account) == "in_progress", timeout=20, what="the sync to start")

    first.kill()  # SIGKILL: no cleanup, no release

    account.refresh_from_db()
    assert account.last_sync_status == "in_progress" and account.sync_started_at is not None
    sandbox.state.configure(latency_ms=0)
    second = start_worker(SYNC_LEASE_SECONDS=3)

    def dispatched_and_synced():
        # What beat does every minute: once the lease has run out, dispatch frees the claim
        # (recording the interruption), makes the account due and sends it again.
        second.send(tasks.dispatch_due_syncs)
        return _status(account) == "success"

    wait_for(dispatched_and_synced, timeout=30, interval=1, what="the account to be synced again")
    _assert_synced(account, sandbox)
    assert any(line["enqueued"] == 1 for line in second.events("job"))


def test_injected_5xx_and_429_are_retried_then_succeed(start_worker, connected, sandbox):
    worker = start_worker()
    account = connected(88221144)
    # First attempt: a 503 (the HTTP layer retries it twice more, into two more 503s);
    # second attempt: a 429; the third goes through.
    sandbox.state.configure(fail_next=[503, 503, 503, 429])

    worker.send(tasks.sync_account, str(account.pk))

    wait_for(lambda: _status(account) == "success", timeout=30, what="the sync to succeed")
    _assert_synced(account, sandbox)
    assert not AccountEvent.objects.filter(account=account).exists()
    stats = sandbox.state.stats()
    assert (stats["answered_5xx"], stats["answered_429"]) == (3, 1)
    retries = worker.events("sync_retry")
    assert [(r["attempt"], r["error"]) for r in retries] == [(1, "MLUnavailable"), (2, "MLRateLimited")]


def test_timeouts_are_retried_then_succeed(start_worker, connected, sandbox):
    worker = start_worker(ML_READ_TIMEOUT=0.5)
    account = connected(1423876650)
    sandbox.state.configure(latency_ms=2000)  # every call times out

    worker.send(tasks.sync_account, str(account.pk))
    # One attempt is a call and its two HTTP-level retries, all timed out.
    wait_for(lambda: sandbox.state.stats()["total_requests"] >= 3, timeout=20, interval=0.02, what="timeouts")
    sandbox.state.configure(latency_ms=0)

    wait_for(lambda: _status(account) == "success", timeout=30, what="the sync to succeed")
    _assert_synced(account, sandbox)
    assert worker.events("sync_retry")[0]["error"] == "MLUnavailable"


def test_persistent_failure_is_recorded_after_the_last_retry(start_worker, connected, sandbox):
    worker = start_worker(SYNC_MAX_RETRIES=2)
    account = connected(1130456789)
    sandbox.state.configure(fail_rate_5xx=1.0)

    worker.send(tasks.sync_account, str(account.pk))

    wait_for(lambda: _status(account) == "failed", timeout=40, what="the failure to be recorded")
    wait_for(lambda: AccountEvent.objects.filter(account=account).exists(), timeout=5, what="the event")
    account.refresh_from_db()
    assert (account.status, account.error_count, account.sync_started_at) == ("active", 1, None)
    assert account.next_sync > timezone.now()
    event = AccountEvent.objects.get(account=account)
    assert (event.kind, event.http_status) == ("unavailable", 503)
    assert sandbox.state.stats()["answered_5xx"] == 3 * 3  # three attempts of three tries
    assert len(worker.events("sync_retry")) == 2


def test_same_account_dispatched_twice_is_synced_once(start_worker, connected, sandbox):
    worker = start_worker()
    account = connected(312987456)
    # A first sync makes ~25 calls (its orders mirror's first import reads 20 pages): at
    # 100 ms a call it takes ~2.5 s, and the second task overlaps it.
    sandbox.state.configure(latency_ms=100)

    worker.send(tasks.sync_account, str(account.pk))
    worker.send(tasks.sync_account, str(account.pk))

    wait_for(lambda: len(worker.events("sync")) >= 2, timeout=30, what="both tasks to finish")
    assert sorted(line["outcome"] for line in worker.events("sync")) == ["skipped", "success"]
    _assert_synced(account, sandbox)
    by_kind = sandbox.state.stats()["by_kind"]
    # One sync's calls: each count once; the orders' import pages (at most 20 a sync) and,
    # while it is not done, ML's count.
    assert (by_kind["items"], by_kind["questions"], by_kind["claims"]) == (1, 1, 1)
    assert 1 <= by_kind["orders"] <= mirrors.ORDER_PAGES_PER_RUN + 1


@pytest.fixture
def private_redis(tmp_path):
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed")
    server = PrivateRedis(tmp_path)
    server.start()
    yield server
    server.stop()


def test_worker_survives_a_redis_restart(start_worker, connected, sandbox, private_redis):
    worker = start_worker(redis_url=private_redis.url)
    before, after = connected(241500733), connected(88221144)
    worker.send(tasks.sync_account, str(before.pk))
    wait_for(lambda: _status(before) == "success", timeout=30, what="the first sync")

    private_redis.stop()
    wait_for(
        lambda: "Connection to broker lost" in worker.log() or "Cannot connect to redis" in worker.log(),
        timeout=30,
        what="the worker to notice",
    )
    private_redis.start()
    wait_for(lambda: worker.log().count("Connected to ") >= 2, timeout=60, what="the worker to reconnect")

    worker.send(tasks.sync_account, str(after.pk))

    wait_for(lambda: _status(after) == "success", timeout=30, what="a sync after the restart")
    _assert_synced(after, sandbox)
    assert worker.process.poll() is None


def _sessions_opened() -> int:
    """Sessions opened on the test database so far (PostgreSQL's count)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute("SELECT sessions FROM pg_stat_database WHERE datname = current_database()")
        return cursor.fetchone()[0]


def test_the_worker_keeps_its_database_connections_across_syncs(start_worker, connected, sandbox):
    """Celery's Django fixup used to open and close a session per task (finding 9.8)."""
    worker = start_worker()  # four threads: at most four connections
    accounts = [connected(610_000_000 + n) for n in range(16)]
    first = accounts.pop()
    worker.send(tasks.sync_account, str(first.pk))
    wait_for(lambda: _status(first) == "success", timeout=30, what="a first sync")
    before = _sessions_opened()

    for account in accounts:
        worker.send(tasks.sync_account, str(account.pk))
    wait_for(lambda: all(_status(account) == "success" for account in accounts), timeout=60, what="the syncs")
    # A closed session is counted when its server process exits: give it the time to.
    time.sleep(0.5)

    assert _sessions_opened() - before <= 4  # the other threads' first connections at most


@pytest.mark.timeout(90)
def test_worker_survives_a_redis_restart_with_syncs_in_flight(start_worker, connected, sandbox, tmp_path):
    # Issue 10.2: a worker holding unacknowledged syncs when Redis went away exited with
    # "Unrecoverable error: AttributeError(... 'hostname')" (mlaccounts/broker.py). It takes
    # a consumer still waiting for more (prefetch not full) while its syncs run.
    server = PrivateRedis(tmp_path, persistent=True)
    server.start()
    try:
        worker = start_worker(redis_url=server.url)  # 4 threads, so up to 8 prefetched
        accounts = [connected(100000 + n) for n in range(6)]
        # A first sync makes ~25 calls (the orders mirror's first import): at 200 ms a call
        # it takes ~5 s, and spans the outage.
        sandbox.state.configure(latency_ms=200)
        for account in accounts:
            worker.send(tasks.sync_account, str(account.pk))
        wait_for(
            lambda: MLAccount.objects.filter(last_sync_status="in_progress").count() == 4,
            timeout=30,
            what="four syncs in flight and two waiting, all six unacknowledged",
        )

        server.stop()
        # Down until the worker has failed to reconnect twice: its syncs are still running.
        wait_for(
            lambda: worker.log().count("Cannot connect to") >= 2 or worker.process.poll() is not None,
            timeout=30,
            what="the worker to retry the broker",
        )
        server.start()

        wait_for(
            lambda: worker.process.poll() is not None or all(_status(a) == "success" for a in accounts),
            timeout=45,
            what="every account synced",
        )
        assert "Unrecoverable error" not in worker.log()
        assert worker.process.poll() is None, "the worker exited"
        assert "Restoring 6 unacknowledged message(s)" in worker.log()
        for account in accounts:
            _assert_synced(account, sandbox)
    finally:
        server.stop()
