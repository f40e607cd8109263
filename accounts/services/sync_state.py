"""The sync engine's and the background jobs' writes: claims, outcomes, tokens, dispatch."""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import connections, router, transaction
from django.db.models import Case, F, Q, TextField, Value, When
from django.db.models.functions import Cast, Coalesce
from django.db.models.lookups import Exact
from django.db.models.sql import UpdateQuery
from django.utils import timezone

from accounts import selectors
from accounts.mercadolivre.resources import Counts
from accounts.models import (
    ERROR_STATUS_AFTER,
    AccountStatus,
    EventKind,
    MLAccount,
    SyncStatus,
)
from accounts.services.events import event_record

MAX_ERROR_BACKOFF = 3600  # an account in error is retried at least hourly


def mlaccount_claim(*, account_id, lease_seconds: int, now: datetime | None = None) -> int | None:
    """Take the sync claim with one conditional UPDATE; return the account's ML user id.

    None if another sync holds the claim or the account is gone (selectors tell which). A
    claim older than the lease counts as abandoned (its worker died) and may be taken.
    The UPDATE returns the ml_user_id the sync needs (RETURNING: PostgreSQL, SQLite 3.35+),
    which saves the engine a SELECT per sync.
    """
    now = now or timezone.now()
    stale = now - timedelta(seconds=lease_seconds)
    query = (
        MLAccount.objects.filter(pk=account_id)
        .filter(Q(sync_started_at__isnull=True) | Q(sync_started_at__lt=stale))
        .query.chain(UpdateQuery)
    )
    query.add_update_values({"sync_started_at": now, "last_sync_status": SyncStatus.IN_PROGRESS})
    db = router.db_for_write(MLAccount)
    sql, params = query.get_compiler(db).as_sql()
    with connections[db].cursor() as cursor:
        cursor.execute(f"{sql} RETURNING {connections[db].ops.quote_name('ml_user_id')}", params)
        row = cursor.fetchone()
    return row[0] if row else None


def mlaccount_release(*, account_id, claimed_at: datetime) -> None:
    """Drop our claim if we still hold it (no-op after success/failure already released it)."""
    MLAccount.objects.filter(pk=account_id, sync_started_at=claimed_at).update(
        sync_started_at=None,
        last_sync_status=Case(
            When(last_sync_status=SyncStatus.IN_PROGRESS, then=Value(SyncStatus.FAILED)),
            default=F("last_sync_status"),
        ),
    )


@transaction.atomic
def mlaccount_record_sync_success(
    *, account_id, counts: Counts, synced_at: datetime | None = None, started_at: datetime | None = None
) -> None:
    """Save the counts of a successful sync, reset the error streak and schedule the next one.

    With `started_at` (when the sync took its claim) it also drops a "sync requested" mark
    set before then, which this sync served, in the same UPDATE (one query less per sync).
    """
    synced_at = synced_at or timezone.now()
    account = (
        MLAccount.objects.select_for_update()
        .only("status", "sync_enabled", "sync_interval")
        .filter(pk=account_id)
        .first()
    )
    if account is None:  # removed while it synced
        return
    # A success means the account works: `active`, whatever it was (an `expired` account
    # synced through the API after its grant came back included), unless the user paused
    # it, possibly while this sync ran.
    status = AccountStatus.PAUSED if account.status == AccountStatus.PAUSED else AccountStatus.ACTIVE
    next_sync = synced_at + timedelta(seconds=account.sync_interval) if account.sync_enabled else None
    served = {}
    if started_at is not None:
        served["sync_requested_at"] = Case(
            When(sync_requested_at__lte=started_at, then=Value(None)), default=F("sync_requested_at")
        )
    MLAccount.objects.filter(pk=account_id).update(
        **served,
        cached_products=counts.products,
        cached_orders=counts.orders,
        cached_questions=counts.questions,
        cached_claims=counts.claims,
        cached_at=synced_at,
        last_sync=synced_at,
        last_sync_status=SyncStatus.SUCCESS,
        last_sync_error="",
        error_count=0,
        sync_started_at=None,
        status=status,
        disconnected_at=None,
        next_sync=next_sync,
        updated_at=synced_at,
    )


def error_backoff_seconds(*, sync_interval: int, error_count: int) -> int:
    """Interval before the next try of an account in `error`: its own, doubling, at most an hour."""
    doublings = max(0, error_count - ERROR_STATUS_AFTER + 1)
    return int(
        min(max(sync_interval, 1) * math.pow(2, min(doublings, 20)), max(MAX_ERROR_BACKOFF, sync_interval))
    )


@transaction.atomic
def mlaccount_record_sync_failure(
    *,
    account_id,
    kind: str,
    message: str,
    http_status: int | None = None,
    auth_failure: bool = False,
    failed_at: datetime | None = None,
    record_event: bool = True,
) -> MLAccount | None:
    """Record a failed sync: an event, the error streak, and the status it leads to.

    An authorization failure (the token cannot be renewed) marks the account `expired`.
    Transient failures mark it `error` after ERROR_STATUS_AFTER in a row; it keeps being
    tried with a growing interval. Tokens are never touched here.
    """
    failed_at = failed_at or timezone.now()
    account = (
        MLAccount.objects.select_for_update().defer(*MLAccount.SECRET_FIELDS).filter(pk=account_id).first()
    )
    if account is None:  # removed while it synced
        return None
    if record_event:
        event_record(account_id=account_id, kind=kind, message=message, http_status=http_status)
    error_count = account.error_count + 1
    status = account.status
    disconnected_at = account.disconnected_at
    if auth_failure:
        status = AccountStatus.EXPIRED
        disconnected_at = disconnected_at or failed_at
    elif error_count >= ERROR_STATUS_AFTER and status == AccountStatus.ACTIVE:
        status = AccountStatus.ERROR
    if status == AccountStatus.ERROR:
        delay = error_backoff_seconds(sync_interval=account.sync_interval, error_count=error_count)
    else:
        delay = account.sync_interval
    next_sync = failed_at + timedelta(seconds=delay) if account.sync_enabled else None
    MLAccount.objects.filter(pk=account_id).update(
        error_count=error_count,
        status=status,
        disconnected_at=disconnected_at,
        last_sync_status=SyncStatus.FAILED,
        last_sync_error=str(message)[:2000],
        sync_started_at=None,
        next_sync=next_sync,
        updated_at=failed_at,
    )
    account.refresh_from_db()
    return account


@transaction.atomic
def mlaccount_mark_expired(*, account_id, message: str, http_status: int | None = None) -> None:
    """The token can no longer be renewed: reconnect needed. Tokens are kept for diagnosis."""
    event_record(account_id=account_id, kind=EventKind.AUTH, message=message, http_status=http_status)
    now = timezone.now()
    MLAccount.objects.filter(pk=account_id).update(
        status=AccountStatus.EXPIRED,
        disconnected_at=Coalesce(F("disconnected_at"), Value(now)),
        updated_at=now,
    )


# --- the token refresh lease (accounts.tokens) ------------------------------------------------------


@dataclass(frozen=True)
class RefreshClaim:
    """A held refresh lease and the refresh token it may spend.

    `refresh_cipher` is the stored ciphertext of that token: encryption is randomised, so
    it changes whenever anybody stores a pair, and "still the token we used" is a plain
    equality in SQL.
    """

    account_id: str
    claim: uuid.UUID
    refresh_token: str | None
    refresh_cipher: str | None


def _refresh_cipher():
    # The column as stored, not decrypted (a plain TextField reads it as it is).
    return Cast("refresh_token", output_field=TextField())


def _held(claim: RefreshClaim) -> Q:
    """Rows where `claim` still holds the lease and the refresh token has not changed."""
    return Q(pk=claim.account_id, refresh_claim=claim.claim) & Q(
        Exact(_refresh_cipher(), claim.refresh_cipher)
        if claim.refresh_cipher is not None
        else Q(refresh_token__isnull=True)
    )


def mlaccount_refresh_claim(
    *, account_id, lease_seconds: float, now: datetime | None = None
) -> RefreshClaim | None:
    """Take the account's token refresh lease with a conditional UPDATE; None if it is held.

    A lease past its expiry was abandoned (its process died or hung) and may be taken
    over. No transaction stays open: the caller calls ML holding only the lease.
    """
    now = now or timezone.now()
    claim = uuid.uuid4()
    taken = (
        MLAccount.objects.filter(pk=account_id)
        .filter(Q(refresh_lease_until__isnull=True) | Q(refresh_lease_until__lt=now))
        .update(refresh_claim=claim, refresh_lease_until=now + timedelta(seconds=lease_seconds))
    )
    if not taken:
        return None
    row = (
        MLAccount.objects.filter(pk=account_id, refresh_claim=claim)
        .annotate(refresh_cipher=_refresh_cipher())
        .values_list("refresh_token", "refresh_cipher")
        .first()
    )
    if row is None:  # removed in between
        return None
    return RefreshClaim(str(account_id), claim, row[0], row[1])


def mlaccount_refresh_store(
    *,
    claim: RefreshClaim,
    access_token: str,
    refresh_token: str | None,
    expires_at: datetime,
    scopes: str = "",
    refreshed_at: datetime | None = None,
) -> bool:
    """Save the pair ML renewed and release the lease; False (nothing saved) if we lost it.

    Only while `claim` still holds the lease and the stored refresh token is the one spent:
    a newer pair (a reconnect meanwhile) is never overwritten with an older one.
    """
    refreshed_at = refreshed_at or timezone.now()
    account = MLAccount(pk=claim.account_id)
    account.access_token = access_token
    # ML rotates the refresh token on every use; keep the old one only if none came back.
    fields = ["access_token", "token_expires_at", "token_obtained_at", "last_token_refresh", "updated_at"]
    if refresh_token:
        account.refresh_token = refresh_token
        fields.append("refresh_token")
    if scopes:
        account.token_scopes = scopes[:2000]
        fields.append("token_scopes")
    account.token_expires_at = expires_at
    account.token_obtained_at = refreshed_at
    account.last_token_refresh = refreshed_at
    account.updated_at = refreshed_at
    return bool(
        MLAccount.objects.filter(_held(claim)).update(
            refresh_claim=None,
            refresh_lease_until=None,
            **{field: getattr(account, field) for field in fields},
        )
    )


@transaction.atomic
def mlaccount_refresh_refused(*, claim: RefreshClaim, message: str, http_status: int | None = None) -> bool:
    """ML refused the refresh token (invalid_grant): mark the account `expired`, release.

    Only if the stored refresh token is still the one refused (and our lease holds): a
    pair stored meanwhile (a reconnect) is alive, and the account is left alone. Returns
    whether the account was marked.
    """
    now = timezone.now()
    marked = MLAccount.objects.filter(_held(claim)).update(
        status=AccountStatus.EXPIRED,
        disconnected_at=Coalesce(F("disconnected_at"), Value(now)),
        refresh_claim=None,
        refresh_lease_until=None,
        updated_at=now,
    )
    if marked:
        event_record(
            account_id=claim.account_id, kind=EventKind.AUTH, message=message, http_status=http_status
        )
    else:
        mlaccount_refresh_release(claim=claim)
    return bool(marked)


def mlaccount_refresh_release(*, claim: RefreshClaim) -> None:
    """Give the refresh lease back (a transient failure), if we still hold it."""
    MLAccount.objects.filter(pk=claim.account_id, refresh_claim=claim.claim).update(
        refresh_claim=None, refresh_lease_until=None
    )


@transaction.atomic
def mlaccount_dispatch_due(
    *,
    lease_seconds: int,
    limit: int | None = None,
    now: datetime | None = None,
    lookahead_seconds: float = 0,
) -> list[str]:
    """Pick the accounts whose scheduled sync should start now; return their ids.

    Due (selectors.mlaccount_due_q) by `now` + `lookahead_seconds`, and not held by a
    running sync, or held longer than the lease (its worker died). Least recently synced
    first (never synced before all), then the longest overdue, so that with a `limit` (the
    rate budget) nobody starves.

    The picked accounts' next_sync moves to now + lease: the next dispatch does not pick
    them again while their sync waits in the queue, and the sync, when it ends, sets the
    real next_sync. Should the queued sync be lost (a worker killed, an expired message),
    the account is simply due again when the lease runs out. Two dispatchers running at
    once pick disjoint accounts: SKIP LOCKED on PostgreSQL; SQLite serialises writers.
    """
    now = now or timezone.now()
    stale = now - timedelta(seconds=lease_seconds)
    due = (
        MLAccount.objects.select_for_update(skip_locked=True)
        .filter(selectors.mlaccount_due_q(now=now + timedelta(seconds=lookahead_seconds)))
        .filter(Q(sync_started_at__isnull=True) | Q(sync_started_at__lt=stale))
        .order_by(F("last_sync").asc(nulls_first=True), "next_sync", "id")
        .values_list("id", flat=True)
    )
    if limit is not None:
        due = due[: max(0, limit)]
    ids = list(due)
    if ids:
        MLAccount.objects.filter(id__in=ids).update(next_sync=now + timedelta(seconds=lease_seconds))
    return [str(account_id) for account_id in ids]


INTERRUPTED_MESSAGE = "The sync was interrupted (its worker stopped); retrying."


@transaction.atomic
def mlaccount_release_stale_claims(*, lease_seconds: int, now: datetime | None = None) -> int:
    """Free sync claims older than the lease (their worker died mid-sync); return how many.

    A sync ends by its deadline, before its lease runs out (settings.SYNC_LEASE_SECONDS),
    so a claim past it was abandoned. Each freed account records that the sync was
    interrupted (an `interrupted` event, the last sync `failed` with that message) instead
    of showing a sync that never ends, and, when it is scheduled, becomes due now so the
    dispatch that freed it sends it again at once. The error streak is not touched.
    """
    now = now or timezone.now()
    stale = Q(sync_started_at__lt=now - timedelta(seconds=lease_seconds))
    ids = list(
        MLAccount.objects.select_for_update(skip_locked=True).filter(stale).values_list("id", flat=True)
    )
    if not ids:
        return 0
    freed = MLAccount.objects.filter(stale, id__in=ids).update(
        sync_started_at=None,
        last_sync_status=Case(
            When(last_sync_status=SyncStatus.IN_PROGRESS, then=Value(SyncStatus.FAILED)),
            default=F("last_sync_status"),
        ),
        last_sync_error=INTERRUPTED_MESSAGE,
        next_sync=Case(When(sync_enabled=True, then=Value(now)), default=F("next_sync")),
        updated_at=now,
    )
    for account_id in ids:
        event_record(account_id=account_id, kind=EventKind.INTERRUPTED, message=INTERRUPTED_MESSAGE)
    return freed
