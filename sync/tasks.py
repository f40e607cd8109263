"""Celery tasks: thin. They take ids and plain values, call the engine or a service, and
classify errors (style.md).

- `sync_account`: scheduled, or asked for by a user (sync/ondemand.py). Rate limited /
  unavailable → retried with back-off and jitter, at most settings.SYNC_MAX_RETRIES times;
  only the last attempt records the failure (the engine's `final_attempt`). Unauthorized →
  the engine renews the token once, then marks `expired`.
- The four periodic jobs of sync/schedule.py (`dispatch_due_syncs`,
  `refresh_expiring_tokens`, `health_check`, `cleanup_events`) each log one line per run.

Every task has time limits. `acks_late` is on only where running twice is harmless: a
sync (the claim makes a duplicate a no-op) and a token refresh (single-flight under the
refresh lease, re-checked once the lease is held).
"""

from __future__ import annotations

import contextlib
import logging
import math
import random
import time
from collections.abc import Iterator
from datetime import timedelta

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.utils import timezone

from accounts import selectors, services, tokens
from accounts.errors import NoRefreshToken
from accounts.mercadolivre import http as ml_http
from accounts.mercadolivre.errors import MLInvalidGrant, MLRateLimited, MLUnavailable
from accounts.models import EventKind, MLAccount
from sync import engine, notifications, outcomes, schedule

logger = logging.getLogger(__name__)

RETRYABLE = (MLRateLimited, MLUnavailable)
# A Retry-After or back-off beyond this is capped: the account's next scheduled sync is
# a better retry than a message parked in the worker for longer.
MAX_RETRY_COUNTDOWN = 300.0

# A sync ends by its deadline (settings.SYNC_DEADLINE_SECONDS, 155 s at the defaults);
# these limits (which only a prefork pool enforces) stop one that somehow did not, still
# before its claim's lease (SYNC_LEASE_SECONDS, the deadline + 45 s) lets another sync in.
SYNC_SOFT_TIME_LIMIT = math.ceil(settings.SYNC_DEADLINE_SECONDS) + 15
SYNC_TIME_LIMIT = math.ceil(settings.SYNC_DEADLINE_SECONDS) + 30
REFRESH_SOFT_TIME_LIMIT = 60
REFRESH_TIME_LIMIT = 90


def retry_countdown(error: Exception, attempt: int) -> float:
    """Seconds to wait before retry `attempt + 1` (attempt counts from 0).

    ML's Retry-After when it sent one (or the wait our own budget computed), otherwise
    SYNC_RETRY_BASE_SECONDS × 2^attempt; plus up to half again of random jitter so that
    accounts that failed together do not retry together (ML's advice, §5.2).
    """
    retry_after = getattr(error, "retry_after", None)
    if retry_after is not None and retry_after > 0:
        delay = float(retry_after)
    else:
        delay = float(settings.SYNC_RETRY_BASE_SECONDS) * 2**attempt
    delay = min(delay, MAX_RETRY_COUNTDOWN)
    return delay + random.uniform(0, delay / 2)  # noqa: S311 - timing jitter, not security


@shared_task(
    bind=True,
    name="sync.tasks.sync_account",
    acks_late=True,
    max_retries=settings.SYNC_MAX_RETRIES,
    soft_time_limit=SYNC_SOFT_TIME_LIMIT,
    time_limit=SYNC_TIME_LIMIT,
)
def sync_account(self, account_id: str, job_id: str | None = None) -> str:
    """Sync one account (sync.engine.sync_account), retrying transient ML failures.

    When its sync ends, it drops the account's "sync requested" mark and, for a sync of
    an API sync-all (`job_id`), records the outcome in the job's item.
    """
    attempt = self.request.retries
    final = attempt >= self.max_retries
    begun = timezone.now()
    try:
        result = engine.sync_account(account_id, final_attempt=final)
    except RETRYABLE as error:
        countdown = retry_countdown(error, attempt)
        logger.info(
            "sync retry in %.1f s",
            countdown,
            extra={
                "event": "sync_retry",
                "account_id": str(account_id),
                "attempt": attempt + 1,
                "max_retries": self.max_retries,
                "countdown_s": round(countdown, 1),
                "error": type(error).__name__,
                "status": getattr(error, "status", None),
            },
        )
        engine.SYNCS.labels("retry").inc()
        # A retry must not inherit the dispatch's expiry: it is a continuation, not a
        # queued sync that went stale.
        raise self.retry(exc=error, countdown=countdown, expires=None) from None
    except SoftTimeLimitExceeded:
        # Only a pool that can interrupt a task raises this (prefork); the engine has
        # released the claim on the way out. Count it as a transient failure.
        services.mlaccount_record_sync_failure(
            account_id=account_id,
            kind=EventKind.UNAVAILABLE,
            message=f"The sync took longer than {SYNC_SOFT_TIME_LIMIT} seconds and was stopped.",
        )
        engine.SYNCS.labels("timeout").inc()
        logger.warning(
            "sync timed out",
            extra={"event": "sync", "account_id": str(account_id), "outcome": "timeout"},
        )
        _sync_ended(account_id, job_id, begun, code=outcomes.ML_UNAVAILABLE)
        return "timeout"
    except Exception:
        # A bug: the job must not wait for this account forever. Then fail loudly.
        _sync_ended(account_id, job_id, begun, code=outcomes.INTERNAL_ERROR)
        raise
    _sync_ended(
        account_id,
        job_id,
        begun,
        code=outcomes.code_for(result.outcome, result.error),
        counts=result.counts,
        synced_at=result.synced_at,
    )
    if result.outcome == outcomes.Outcome.FAILED and selectors.alert_emails_waiting():
        # A failure that fired an alert (a dead grant): its emails go now, not at the next sweep.
        send_alert_emails.apply_async_on_commit()
    return result.outcome


def _sync_ended(account_id, job_id, begun, *, code: str, counts=None, synced_at=None) -> None:
    if synced_at is None:
        # A success already dropped the mark with its counts (record_sync_success).
        services.mlaccount_clear_sync_request(account_id=account_id, started_at=begun)
    if job_id is not None:
        services.sync_job_item_finish(
            job_id=job_id, account_id=account_id, code=code, counts=counts, synced_at=synced_at
        )


@shared_task(
    bind=True,
    name="sync.tasks.refresh_account_token",
    acks_late=True,
    max_retries=settings.SYNC_MAX_RETRIES,
    soft_time_limit=REFRESH_SOFT_TIME_LIMIT,
    time_limit=REFRESH_TIME_LIMIT,
)
def refresh_account_token(self, account_id: str, force: bool = False) -> str:
    """Renew one account's token if it needs it (or with `force`), through the single path.

    `accounts.tokens.get_fresh_access_token` takes the refresh lease, re-checks, refreshes
    and saves; it logs the refresh and marks the account `expired` on invalid_grant. This
    only retries transient failures; any other ML error fails the task loudly.
    """
    attempt = self.request.retries
    facts = {"event": "token_refresh_task", "account_id": str(account_id), "force": force}
    try:
        tokens.get_fresh_access_token(account_id, force=force)
    except MLAccount.DoesNotExist:
        logger.info("token refresh: account gone", extra={**facts, "outcome": "missing"})
        return "missing"
    except MLInvalidGrant:
        return "invalid_grant"  # logged, and the account marked, by accounts.tokens
    except NoRefreshToken:
        logger.warning(
            "token refresh: no refresh token stored", extra={**facts, "outcome": "no_refresh_token"}
        )
        return "no_refresh_token"
    except RETRYABLE as error:
        if attempt >= self.max_retries:
            logger.warning(
                "token refresh failed; the next run or sync tries again",
                extra={**facts, "outcome": "failed", "error": type(error).__name__},
            )
            return "failed"
        countdown = retry_countdown(error, attempt)
        logger.info(
            "token refresh retry in %.1f s",
            countdown,
            extra={**facts, "outcome": "retry", "attempt": attempt + 1, "error": type(error).__name__},
        )
        raise self.retry(exc=error, countdown=countdown) from None
    return "ok"


# --- the periodic jobs (sync/schedule.py) ---------------------------------------------------------


@contextlib.contextmanager
def _job_run(name: str) -> Iterator[dict]:
    """Log one line per job run: its outcome, duration, ML calls and the facts it gathered."""
    facts: dict = {}
    started = time.monotonic()
    with ml_http.count_calls() as calls:
        try:
            yield facts
        except Exception as error:
            logger.error(
                "job %s failed",
                name,
                extra={
                    "event": "job",
                    "job": name,
                    "outcome": "error",
                    "error": type(error).__name__,
                    "duration_ms": round((time.monotonic() - started) * 1000),
                    **facts,
                },
            )
            raise
    logger.info(
        "job %s done",
        name,
        extra={
            "event": "job",
            "job": name,
            "outcome": "ok",
            "duration_ms": round((time.monotonic() - started) * 1000),
            "ml_calls": calls.count,
            **facts,
        },
    )


@shared_task(name="sync.tasks.dispatch_due_syncs", soft_time_limit=45, time_limit=55)
def dispatch_due_syncs() -> int:
    """Start a sync for every due account, within what the ML budget serves; return how many.

    First frees the claims of syncs whose worker died (services.mlaccount_release_stale_claims):
    their accounts are due at once and go out in this same run.

    Least recently synced first, so that when the fleet is larger than the budget nobody
    starves, and never more than the budget serves before the next run, so the queue does
    not pile up. An unlimited budget (ML_REQUESTS_PER_SECOND=0) has no cap.
    """
    with _job_run("dispatch_due_syncs") as facts:
        now = timezone.now()
        lease = settings.SYNC_LEASE_SECONDS
        # Claims abandoned by a killed worker: freed and due now, so this run resends them.
        freed = services.mlaccount_release_stale_claims(lease_seconds=lease, now=now)
        # Notification processing spends the same budget: what it spent a minute lately is
        # kept for it (schedule.dispatch_capacity).
        notification_calls = notifications.calls_per_minute()
        capacity = schedule.dispatch_capacity(
            queued=schedule.queued_syncs(),
            reserved_calls=notification_calls * schedule.DISPATCH_PERIOD_SECONDS / 60,
        )
        # Runs are a minute apart: taking what falls due within the next half minute too
        # keeps every account near its interval (within ±30 s, and up to a minute later
        # under a budget, whose syncs are spread over the minute: schedule.spread), where
        # "due by now" alone would sync a 5-minute account every 5 to 6 minutes.
        account_ids = services.mlaccount_dispatch_due(
            lease_seconds=lease,
            limit=capacity,
            now=now,
            lookahead_seconds=schedule.DISPATCH_PERIOD_SECONDS / 2,
        )
        # Not yet started when its lease is up: the account is due again by then and the
        # next dispatch sends a fresh message, so this one can be dropped.
        expires = now + timedelta(seconds=lease)
        for account_id, countdown in zip(
            account_ids, schedule.spread(len(account_ids), capacity), strict=True
        ):
            sync_account.apply_async_on_commit((account_id,), expires=expires, countdown=countdown)
        facts.update(
            enqueued=len(account_ids),
            stale_claims_freed=freed,
            capacity=capacity,
            notification_calls_per_minute=round(notification_calls, 1),
            still_due=selectors.mlaccount_count_due(now=now) if capacity is not None else None,
        )
    return len(account_ids)


@shared_task(name="sync.tasks.refresh_expiring_tokens", soft_time_limit=120, time_limit=150)
def refresh_expiring_tokens() -> int:
    """Renew every token that expires within ML_TOKEN_REFRESH_MARGIN (an hour); return how many.

    One `refresh_account_token` task per account: they run in parallel and one failing
    account cannot stop the others. The margin is the one get_fresh_access_token uses, so
    every account listed here is one it will renew; it must exceed the job's 30 minutes.
    """
    with _job_run("refresh_expiring_tokens") as facts:
        before = timezone.now() + timedelta(seconds=settings.ML_TOKEN_REFRESH_MARGIN)
        account_ids = [str(account_id) for account_id in selectors.mlaccount_ids_expiring(before=before)]
        for account_id in account_ids:
            refresh_account_token.apply_async_on_commit((account_id,))
        facts.update(enqueued=len(account_ids))
    return len(account_ids)


@shared_task(name="sync.tasks.health_check", soft_time_limit=60, time_limit=90)
def health_check() -> dict:
    """Count accounts per status, free abandoned claims, record a heartbeat, log a summary."""
    with _job_run("health_check") as facts:
        now = timezone.now()
        freed = services.mlaccount_release_stale_claims(lease_seconds=settings.SYNC_LEASE_SECONDS, now=now)
        heartbeat = schedule.heartbeat_write(
            at=now,
            status_counts=selectors.mlaccount_status_counts(),
            due=selectors.mlaccount_count_due(now=now),
            stale_claims_freed=freed,
            budget_cycle_seconds=schedule.budget_cycle_seconds(),
        )
        facts.update({k: v for k, v in heartbeat.items() if k != "at"})
    return heartbeat


@shared_task(name="sync.tasks.cleanup_events", soft_time_limit=600, time_limit=660)
def cleanup_events() -> int:
    """Delete old account events (services.event_cleanup), old ML notifications
    (services.notification_cleanup), abandoned authorizations
    (services.oauth_state_purge_expired) and sync jobs older than a day
    (services.sync_job_cleanup), questions answered here long ago
    (services.question_cleanup) and count snapshots older than COUNT_HISTORY_DAYS
    (services.count_snapshot_cleanup), alerts older than ALERT_RETENTION_DAYS
    (services.alert_cleanup) and reconnect links long expired (services.reconnect_link_cleanup);
    return how many events."""
    with _job_run("cleanup_events") as facts:
        deleted = services.event_cleanup()
        facts.update(
            deleted=deleted,
            notifications_deleted=services.notification_cleanup(),
            oauth_states_purged=services.oauth_state_purge_expired(),
            sync_jobs_deleted=services.sync_job_cleanup(),
            answered_questions_deleted=services.question_cleanup(),
            count_snapshots_deleted=services.count_snapshot_cleanup(),
            alerts_deleted=services.alert_cleanup(),
            reconnect_links_deleted=services.reconnect_link_cleanup(),
        )
    return deleted


@shared_task(name="sync.tasks.snapshot_counts", soft_time_limit=600, time_limit=660)
def snapshot_counts() -> int:
    """Give every synced account a counts snapshot of this hour (services.count_snapshots_fill)."""
    with _job_run("snapshot_counts") as facts:
        added = services.count_snapshots_fill()
        facts.update(added=added)
    return added


# --- alerts (accounts.services.alerts, accounts.services.alert_emails) ---------------------------


@shared_task(name="sync.tasks.evaluate_alerts", soft_time_limit=240, time_limit=300)
def evaluate_alerts() -> int:
    """Run the alert rules over every account (services.alert_rules_evaluate), then send the
    emails waiting to go at once; return how many alerts fired."""
    with _job_run("evaluate_alerts") as facts:
        fired = services.alert_rules_evaluate()
        facts.update(fired=fired, emails_sent=services.alert_emails_send())
    return fired


@shared_task(name="sync.tasks.send_alert_emails", soft_time_limit=240, time_limit=300)
def send_alert_emails() -> int:
    """Send the alert emails waiting to go at once (services.alert_emails_send)."""
    with _job_run("send_alert_emails") as facts:
        sent = services.alert_emails_send()
        facts.update(sent=sent)
    return sent


@shared_task(name="sync.tasks.send_alert_digests", soft_time_limit=600, time_limit=660)
def send_alert_digests() -> int:
    """Send each member the daily digest of the alerts they chose to get that way."""
    with _job_run("send_alert_digests") as facts:
        sent = services.alert_digests_send()
        facts.update(sent=sent)
    return sent


# --- Mercado Livre notifications (sync/notifications.py) ---------------------------------------


@shared_task(
    name="sync.tasks.process_account_notifications",
    acks_late=True,
    soft_time_limit=notifications.PROCESS_DEADLINE_SECONDS + 15,
    time_limit=notifications.PROCESS_DEADLINE_SECONDS + 30,
)
def process_account_notifications(account_id: str) -> dict:
    """Process one account's due notifications (merge per count, re-read each once).

    Queued by the webhook once per merge window and by the minute job. Running twice is
    harmless (the claim hands each notification to one run), hence `acks_late`. Failures
    that may pass are rescheduled on the notifications themselves, not by retrying the task.
    """
    result = notifications.process_account(account_id)
    return {"claimed": result.claimed, "ml_calls": result.ml_calls, **result.outcomes}


@shared_task(name="sync.tasks.process_notifications", soft_time_limit=45, time_limit=55)
def process_notifications() -> int:
    """Every minute: queue processing for every account with notifications due; return how many.

    The webhook queues its own processing at once; this catches the rest: retries whose
    back-off ended, claims of a worker that died, kicks lost to a broker outage.
    """
    with _job_run("process_notifications") as facts:
        queued = notifications.process_due()
        facts.update(accounts_queued=queued)
    return queued


@shared_task(name="sync.tasks.recover_notifications", soft_time_limit=600, time_limit=660)
def recover_notifications() -> dict:
    """Every 15 minutes: read ML's missed feeds into the notification intake (§6.5)."""
    with _job_run("recover_notifications") as facts:
        report = notifications.recover_missed_feeds()
        facts.update(
            fetched=report.fetched,
            stored=report.stored,
            duplicates=report.duplicates,
            skipped=report.skipped or None,
        )
    return {"fetched": report.fetched, "stored": report.stored, "duplicates": report.duplicates}
