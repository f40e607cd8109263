"""Sync one account: claim it, get a fresh token, fetch the four counts and the desk, save, release.

Used by the task (scheduled syncs, the dashboard's "sync now" and every "sync all"), the
API's synchronous "sync now" and `manage.py sync_account`. The claim is a conditional
UPDATE with a lease, so two workers (or a worker and a web request) never sync one
account at once, and a worker that dies mid-sync blocks the account only until its lease
runs out.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.utils import timezone
from prometheus_client import Counter

from accounts import services, tokens
from accounts.errors import NoRefreshToken
from accounts.mercadolivre import deadline as ml_deadline
from accounts.mercadolivre import http as ml_http
from accounts.mercadolivre import resources
from accounts.mercadolivre.errors import MLError, MLInvalidGrant, MLRateLimited, MLUnauthorized, MLUnavailable
from accounts.models import MLAccount
from sync import mirrors
from sync.outcomes import Outcome, classify, describe

logger = logging.getLogger(__name__)

# Every sync that ended, by outcome (GET /metrics): the engine's four (sync.outcomes.Outcome),
# and the task's `retry` (a transient failure handed back for a later attempt) and `timeout`.
SYNCS = Counter(
    "mlaccounts_syncs",
    "Account syncs by outcome: success, failed, skipped (another sync held the claim), "
    "missing (the account was removed), retry (a transient failure, retried later), timeout.",
    ["outcome"],
)
for _outcome in (Outcome.SUCCESS, Outcome.FAILED, Outcome.SKIPPED, Outcome.MISSING, "retry", "timeout"):
    SYNCS.labels(_outcome)

TRANSIENT_ERRORS = (MLRateLimited, MLUnavailable)
# What the mirrors need of the account besides its token: the claim hands them back.
MIRROR_FIELDS = (
    "questions_scanned_at",
    "orders_synced_at",
    "orders_read_started_at",
    "orders_offset",
    "reputation_day",
)


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


def _fetch_counts(account_id, claimed: MLAccount) -> resources.Counts:
    token = tokens.get_fresh_access_token(account_id, state=claimed)
    try:
        counts = _read(token, claimed)
    except MLUnauthorized:
        # A token can die before its expiry (password change, revoked app, secret rotation):
        # renew once and try again; a second 401 means the grant itself is gone. The mirrors'
        # writes are upserts, so what the first try stored is simply stored again.
        token = tokens.get_fresh_access_token(account_id, force=True)
        counts = _read(token, claimed)
    return counts


def _read(token: str, claimed: MLAccount) -> resources.Counts:
    """The four counts and the mirrors (sync.mirrors). Questions and claims come with their
    mirrors, whose first page carries ML's count, so a quiet desk costs what the two count
    calls did. The orders mirror reads what changed since the last sync (one call when
    little did) and, once its first import ended, counts the recent orders itself. The
    reputation is read once a day."""
    ml_user_id = claimed.ml_user_id
    counts = resources.Counts(
        products=resources.count_active_listings(token, ml_user_id),
        orders=_orders(token, claimed),
        questions=mirrors.refresh_questions(token, claimed),
        claims=mirrors.refresh_claims(token, claimed),
    )
    if counts.questions:
        mirrors.fill_details(token, claimed)
    mirrors.refresh_reputation(token, claimed)
    return counts


def _orders(token: str, claimed: MLAccount) -> int:
    # A current orders mirror counts the recent orders itself: its read replaces the count call.
    if mirrors.refresh_orders(token, claimed):
        return mirrors.recent_orders(claimed.pk)
    return resources.count_recent_orders(token, claimed.ml_user_id)


def sync_account(account_id, *, final_attempt: bool = True) -> SyncResult:
    """Sync one account and record the outcome.

    With `final_attempt=False` a transient failure (rate limited, ML unavailable) is not
    recorded, nor logged, but raised (the claim released), so that a retrying caller
    records and logs only what it does about it.
    """
    started = time.monotonic()
    account_id = str(account_id)
    claimed_at = timezone.now()
    # The claim hands back the ML user id and the token state the sync needs: no SELECT.
    claimed = services.mlaccount_claim(
        account_id=account_id,
        lease_seconds=settings.SYNC_LEASE_SECONDS,
        now=claimed_at,
        fields=(*tokens.STATE_FIELDS, *MIRROR_FIELDS),
    )
    if claimed is None:
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
                counts = _fetch_counts(account_id, claimed)
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
            services.mlaccount_record_sync_success(
                account_id=account_id, counts=counts, synced_at=synced_at, started_at=claimed_at
            )
            services.count_snapshot_record(account_id=account_id, counts=counts, at=synced_at)
            recorded = True
            result = SyncResult(account_id, Outcome.SUCCESS, synced_at=synced_at, counts=counts)
        finally:
            result.ml_calls = calls.count
            if not recorded:
                services.mlaccount_release(account_id=account_id, claimed_at=claimed_at)
    return _done(result, started)


def _done(result: SyncResult, started: float) -> SyncResult:
    result.duration_ms = round((time.monotonic() - started) * 1000)
    SYNCS.labels(result.outcome).inc()
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
