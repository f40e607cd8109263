"""Sync one account: claim it, get a fresh token, fetch the four counts, save, release.

Used by the scheduled task, the API's "sync now" and `manage.py sync_account`. The claim
is a conditional UPDATE with a lease, so two workers (or a worker and a web request) never
sync one account at once, and a worker that dies mid-sync blocks the account only until
its lease runs out.
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.db import connection
from django.utils import timezone

from accounts import services, tokens
from accounts.errors import NoRefreshToken
from accounts.mercadolivre import deadline as ml_deadline
from accounts.mercadolivre import http as ml_http
from accounts.mercadolivre import resources
from accounts.mercadolivre.errors import (
    MLBadResponse,
    MLError,
    MLInvalidGrant,
    MLRateLimited,
    MLUnauthorized,
    MLUnavailable,
)
from accounts.models import EventKind, MLAccount

logger = logging.getLogger(__name__)

TRANSIENT_ERRORS = (MLRateLimited, MLUnavailable)


class Outcome:
    SUCCESS = "success"
    FAILED = "failed"
    SKIPPED = "skipped"  # another sync holds the claim
    MISSING = "missing"  # the account no longer exists


@dataclass
class SyncResult:
    account_id: str
    outcome: str
    synced_at: datetime | None = None
    counts: resources.Counts | None = None
    error: Exception | None = None
    ml_calls: int = 0
    duration_ms: int = 0

    @property
    def ok(self) -> bool:
        return self.outcome == Outcome.SUCCESS


def classify(error: Exception) -> tuple[str, bool]:
    """The event kind of a failure and whether it means the token is dead (reconnect)."""
    if isinstance(error, MLInvalidGrant | NoRefreshToken):
        return EventKind.AUTH, True
    if isinstance(error, MLUnauthorized):
        return EventKind.AUTH, True
    if isinstance(error, MLRateLimited):
        return EventKind.RATE_LIMITED, False
    if isinstance(error, MLUnavailable):
        return EventKind.UNAVAILABLE, False
    if isinstance(error, MLBadResponse):
        return EventKind.BAD_RESPONSE, False
    return EventKind.OTHER, False


def describe(error: Exception) -> str:
    """A sentence for the error history; ML's text, never a token."""
    if isinstance(error, MLInvalidGrant):
        return f"Mercado Livre refused to renew the token ({error.message}); reconnect the account."
    if isinstance(error, NoRefreshToken):
        return "No refresh token is stored; reconnect the account."
    if isinstance(error, MLUnauthorized):
        return f"Mercado Livre rejected the token even after renewing it ({error.message})."
    if isinstance(error, MLRateLimited):
        return f"Mercado Livre rate limit reached ({error.message})."
    if isinstance(error, MLUnavailable):
        return f"Mercado Livre is unavailable ({error.message})."
    if isinstance(error, MLBadResponse):
        return f"Mercado Livre sent an unexpected answer ({error.message})."
    return str(error)


def _fetch_counts(account_id, ml_user_id: int) -> resources.Counts:
    token = tokens.get_fresh_access_token(account_id)
    try:
        counts = resources.fetch_counts(token, ml_user_id)
    except MLUnauthorized:
        # A token can die before its expiry (password change, revoked app, secret rotation):
        # renew once and try again; a second 401 means the grant itself is gone.
        token = tokens.get_fresh_access_token(account_id, force=True)
        counts = resources.fetch_counts(token, ml_user_id)
    return counts


def sync_account(account_id, *, final_attempt: bool = True) -> SyncResult:
    """Sync one account and record the outcome.

    With `final_attempt=False` a transient failure (rate limited, ML unavailable) is not
    recorded, nor logged, but raised (the claim released), so that a retrying caller
    records and logs only what it does about it.
    """
    started = time.monotonic()
    account_id = str(account_id)
    claimed_at = timezone.now()
    # The claim hands back the ML user id the counts need: no separate SELECT.
    ml_user_id = services.mlaccount_claim(
        account_id=account_id, lease_seconds=settings.SYNC_LEASE_SECONDS, now=claimed_at
    )
    if ml_user_id is None:
        held = MLAccount.objects.filter(pk=account_id).exists()
        return _done(SyncResult(account_id, Outcome.SKIPPED if held else Outcome.MISSING), started)

    result = SyncResult(account_id, Outcome.FAILED)
    # Recording the outcome (success or failure) also frees the claim; only a sync that
    # ends otherwise (a retry handed back, an unexpected exception) releases it itself.
    recorded = False
    with ml_http.count_calls() as calls:
        try:
            # One overall deadline (settings.SYNC_DEADLINE_SECONDS): the sync ends before its
            # claim's lease runs out, so no second sync starts beside it.
            with ml_deadline.within(min(settings.SYNC_DEADLINE_SECONDS, settings.SYNC_LEASE_SECONDS)):
                counts = _fetch_counts(account_id, ml_user_id)
        except (MLError, NoRefreshToken) as error:
            result.error = error
            if not final_attempt and isinstance(error, TRANSIENT_ERRORS):
                # Handed back unrecorded; the retrying caller logs the retry (one line).
                raise
            kind, dead = classify(error)
            services.mlaccount_record_sync_failure(
                account_id=account_id,
                kind=kind,
                message=describe(error),
                http_status=getattr(error, "status", None),
                auth_failure=dead,
                # The refresh path already wrote the `auth` event for an invalid grant.
                record_event=not isinstance(error, MLInvalidGrant),
            )
            recorded = True
        else:
            synced_at = timezone.now()
            services.mlaccount_record_sync_success(account_id=account_id, counts=counts, synced_at=synced_at)
            recorded = True
            result = SyncResult(account_id, Outcome.SUCCESS, synced_at=synced_at, counts=counts)
        finally:
            result.ml_calls = calls.count
            if not recorded:
                services.mlaccount_release(account_id=account_id, claimed_at=claimed_at)
    return _done(result, started)


def _done(result: SyncResult, started: float) -> SyncResult:
    result.duration_ms = round((time.monotonic() - started) * 1000)
    log = logger.info if result.outcome != Outcome.FAILED else logger.warning
    log(
        "sync %s",
        result.outcome,
        extra={
            "event": "sync",
            "account_id": result.account_id,
            "outcome": result.outcome,
            "duration_ms": result.duration_ms,
            "ml_calls": result.ml_calls,
            "error": type(result.error).__name__ if result.error else None,
        },
    )
    return result


def _sync_in_thread(account_id) -> SyncResult:
    try:
        return sync_account(account_id)
    finally:
        # Each pool thread opened its own connection; nothing else would ever close it.
        connection.close()


def sync_many(account_ids, *, workers: int, timeout: float) -> dict[str, SyncResult | BaseException | None]:
    """Sync several accounts now, at most `workers` at a time, for at most `timeout` seconds.

    Used by "sync all" in the dashboard and the API. Returns, per account id, its
    SyncResult, the exception that escaped the engine (a bug), or None when it did not
    finish in time: syncs already running then finish in the background and record their
    outcome; queued ones never start. Every call still spends the shared ML budget.
    """
    ids = [str(account_id) for account_id in account_ids]
    if not ids:
        return {}
    outcomes: dict[str, SyncResult | BaseException | None] = dict.fromkeys(ids)
    executor = ThreadPoolExecutor(max_workers=max(1, min(workers, len(ids))), thread_name_prefix="sync-all")
    futures = {executor.submit(_sync_in_thread, account_id): account_id for account_id in ids}
    done, _pending = wait(futures, timeout=timeout)
    executor.shutdown(wait=False, cancel_futures=True)
    for future in done:
        error = future.exception()
        outcomes[futures[future]] = error if error is not None else future.result()
    return outcomes
