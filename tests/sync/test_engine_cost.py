"""What one sync costs the database, and a retry that releases and logs once (issue 9, 7–8)."""

import logging

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts import services
from accounts.mercadolivre.errors import MLUnavailable
from accounts.models import MLAccount
from sync import engine, tasks
from tests.mlmock import add_counts

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("ml_settings")]


def test_what_a_successful_sync_costs_the_database(ml_account, ml):
    """Claim (UPDATE … RETURNING the ML user id, the token state and the mirrors' marks), the
    orders read's watermark (UPDATE) and the recent orders count (SELECT), the desk's two
    mirrors (a DELETE each of what ML no longer lists: here nothing is listed, so nothing
    is stored), the result (UPDATE) and the hour's counts snapshot (upsert); the first sync
    of the day also stores the reputation (upsert, and the day on the account) and reads
    what its alert rule needs (one SELECT: the margin, the day before, the rates flagged).

    No SELECT of ml_user_id or of the token, no row lock, no release UPDATE after the
    success: the claim returns what the sync needs and recording the success, one
    conditional UPDATE, frees the claim. (The cost of a desk with questions and claims is
    pinned in tests/sync/test_mirrors.py, of orders in tests/sync/test_orders.py.)
    """
    add_counts(ml, orders=0, questions=0, claims=0)
    with CaptureQueriesContext(connection) as queries:
        assert engine.sync_account(ml_account.pk).ok
    statements = [
        q["sql"] for q in queries.captured_queries if not q["sql"].startswith(("SAVEPOINT", "RELEASE"))
    ]
    assert len(statements) == 10, statements
    assert statements[0].startswith("UPDATE") and "RETURNING" in statements[0]
    assert statements[1].startswith("UPDATE") and "orders_synced_at" in statements[1]
    assert statements[2].startswith("SELECT COUNT") and "accounts_order" in statements[2]
    assert statements[3].startswith("DELETE") and "accounts_question" in statements[3]
    assert statements[4].startswith("DELETE") and "accounts_claim" in statements[4]
    assert statements[5].startswith("INSERT") and "accounts_reputationsnapshot" in statements[5]
    assert statements[6].startswith("UPDATE") and "reputation_day" in statements[6]
    assert statements[7].startswith("SELECT") and "accounts_alertstate" in statements[7]
    assert statements[8].startswith("UPDATE")
    assert statements[9].startswith("INSERT") and "accounts_countsnapshot" in statements[9]
    assert MLAccount.objects.get(pk=ml_account.pk).sync_started_at is None

    # The day's reputation is stored: the next sync costs seven.
    with CaptureQueriesContext(connection) as queries:
        assert engine.sync_account(ml_account.pk).ok
    statements = [
        q["sql"] for q in queries.captured_queries if not q["sql"].startswith(("SAVEPOINT", "RELEASE"))
    ]
    assert len(statements) == 7, statements
    assert not [sql for sql in statements if "reputation" in sql.split("WHERE")[0]]


def test_a_successful_sync_task_costs_no_more_than_the_engine(ml_account, ml):
    # The task used to drop the "sync requested" mark with an UPDATE of its own after every
    # sync; a success now drops it with the counts, when it was set before the claim.
    add_counts(ml, orders=0, questions=0, claims=0)
    MLAccount.objects.filter(pk=ml_account.pk).update(sync_requested_at=timezone.now())
    with CaptureQueriesContext(connection) as queries:
        assert tasks.sync_account.run(str(ml_account.pk)) == "success"
    statements = [
        q["sql"] for q in queries.captured_queries if not q["sql"].startswith(("SAVEPOINT", "RELEASE"))
    ]
    assert len(statements) == 10, statements  # what the engine's first sync of the day costs
    assert MLAccount.objects.get(pk=ml_account.pk).sync_requested_at is None


def test_a_claimed_or_missing_account_costs_one_more_query_only_then(ml_account, ml):
    MLAccount.objects.filter(pk=ml_account.pk).update(sync_started_at=timezone.now())
    with CaptureQueriesContext(connection) as queries:
        assert engine.sync_account(ml_account.pk).outcome == engine.Outcome.SKIPPED
    assert len(queries.captured_queries) == 2


def test_a_retried_failure_releases_the_claim_once_and_logs_once(ml_account, ml, monkeypatch, caplog):
    add_counts(ml, status=503)
    releases = []
    real_release = services.mlaccount_release
    monkeypatch.setattr(
        services, "mlaccount_release", lambda **kwargs: releases.append(kwargs) or real_release(**kwargs)
    )
    with caplog.at_level(logging.INFO, logger="sync.engine"), pytest.raises(MLUnavailable):
        engine.sync_account(ml_account.pk, final_attempt=False)
    assert len(releases) == 1
    # The engine stays silent: the retrying task logs the retry with its countdown.
    assert [r for r in caplog.records if r.name == "sync.engine"] == []
    account = MLAccount.objects.get(pk=ml_account.pk)
    assert (account.sync_started_at, account.last_sync_status, account.error_count) == (None, "failed", 0)


def test_each_attempt_of_a_retried_sync_logs_one_line(ml_account, ml, caplog, run_with_retries):
    add_counts(ml, status=503)
    with caplog.at_level(logging.INFO):
        outcome, countdowns = run_with_retries(tasks.sync_account, str(ml_account.pk))
    assert outcome == "failed"
    events = [r.event for r in caplog.records if getattr(r, "event", None) in ("sync", "sync_retry")]
    assert events == ["sync_retry"] * len(countdowns) + ["sync"]
    assert len(countdowns) == tasks.sync_account.max_retries
