"""Mercado Livre notifications: store them as they arrive, claim, finish, retry, clean up.

The webhook stores a notification with one INSERT and nothing else: no lock, no ML call
(ML wants 200 within 500 ms, §6.4). Processing (sync/notifications.py) claims an account's
pending notifications with a conditional UPDATE, so two workers never process one twice,
and a claim older than its lease (a worker that died) is taken again, so none is lost.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Case, F, Q, Value, When
from django.utils import timezone

from accounts.models import COUNT_BITS, TOPIC_COUNTS, MLAccount, Notification, NotificationStatus

# A processing claim older than this belongs to a worker that died: taken again.
CLAIM_LEASE_SECONDS = 300
# Back-off of a notification whose processing failed for a reason that may pass.
RETRY_BASE_SECONDS = 15
RETRY_MAX_SECONDS = 1800

UNSUPPORTED_TOPIC = "unsupported topic: stored, nothing to update"
UNKNOWN_USER = "no connected account has this Mercado Livre user id"


@dataclass(frozen=True)
class Incoming:
    """A notification as parsed from ML's body (§6.2), before it is stored."""

    ml_id: str | None
    topic: str
    resource: str
    ml_user_id: int
    application_id: int | None
    attempts: int
    sent_at: datetime | None
    received_at: datetime | None
    body: dict


def notification_store(*, incoming: Incoming, source: str, now: datetime | None = None) -> Notification:
    """Store one notification (one INSERT; a duplicate `ml_id` is dropped by the database).

    A topic the app does not use, and a user id no account has, are stored `ignored` at
    once with the reason; anything else is `pending` for the processing task. Returns the
    row as built, not read back (when its `ml_id` was stored before, nothing was inserted);
    its `account_id` and `status` tell whether there is anything to process.
    """
    now = now or timezone.now()
    account_id = MLAccount.objects.filter(ml_user_id=incoming.ml_user_id).values_list("id", flat=True).first()
    status, reason = NotificationStatus.PENDING, ""
    if incoming.topic not in TOPIC_COUNTS:
        status, reason = NotificationStatus.IGNORED, UNSUPPORTED_TOPIC
    elif account_id is None:
        status, reason = NotificationStatus.IGNORED, UNKNOWN_USER
    notification = Notification(
        ml_id=incoming.ml_id,
        topic=incoming.topic,
        resource=incoming.resource,
        ml_user_id=incoming.ml_user_id,
        application_id=incoming.application_id,
        attempts=incoming.attempts,
        sent_at=incoming.sent_at,
        received_at=incoming.received_at,
        arrived_at=now,
        source=source,
        account_id=account_id,
        status=status,
        reason=reason,
        next_attempt_at=now if status == NotificationStatus.PENDING else None,
        processed_at=now if status != NotificationStatus.PENDING else None,
        body=incoming.body,
    )
    # ON CONFLICT DO NOTHING (PostgreSQL) / INSERT OR IGNORE (SQLite): ML's retries of one
    # delivery and the same message recovered from missed feeds share an id.
    Notification.objects.bulk_create([notification], ignore_conflicts=True)
    return notification


def notification_accounts_due(*, now: datetime | None = None, limit: int = 1000) -> list[str]:
    """Accounts with notifications to process now: pending and due, or claimed by a dead worker."""
    now = now or timezone.now()
    ids = (
        Notification.objects.filter(_claimable(now))
        .exclude(account_id=None)
        .order_by()  # the model's ordering would make DISTINCT per notification, not per account
        .values_list("account_id", flat=True)
        .distinct()[:limit]
    )
    return [str(account_id) for account_id in ids]


def _claimable(now: datetime) -> Q:
    return Q(status=NotificationStatus.PENDING, next_attempt_at__lte=now) | Q(
        status=NotificationStatus.PROCESSING, claimed_at__lt=now - timedelta(seconds=CLAIM_LEASE_SECONDS)
    )


def notification_claim(*, account_id, now: datetime | None = None) -> list[Notification]:
    """Claim the account's notifications that are due (conditional UPDATE); return them.

    Another worker's live claim is left alone, so a notification is processed once; one
    older than CLAIM_LEASE_SECONDS was abandoned and is taken over.
    """
    now = now or timezone.now()
    claim = uuid.uuid4()
    taken = Notification.objects.filter(_claimable(now), account_id=account_id).update(
        status=NotificationStatus.PROCESSING, claim=claim, claimed_at=now
    )
    if not taken:
        return []
    return list(
        Notification.objects.filter(claim=claim, status=NotificationStatus.PROCESSING)
        .only(
            "id", "topic", "resource", "source", "arrived_at", "received_at", "tries", "claim", "account_id"
        )
        .order_by("id")
    )


MAX_LAG_MS = 2**31 - 1


def _lag_ms(notification: Notification, processed_at: datetime) -> int:
    start = notification.received_at or notification.arrived_at
    # ML's clock is not ours: a `received` in our future counts from its arrival instead.
    if start > processed_at:
        start = notification.arrived_at
    # Stored in a 32-bit column: a `received` weeks old (a bad timestamp from ML) must not fail
    # the processing; anything past ~24 days is "very late" anyway.
    return min(max(0, round((processed_at - start).total_seconds() * 1000)), MAX_LAG_MS)


def notification_finish(
    *, notifications: Iterable[Notification], status: str, reason: str = "", at: datetime | None = None
) -> int:
    """End claimed notifications `done`, `ignored` or `failed` with `reason`; return how many.

    Only rows still under the claim they were taken with are written (a claim taken over
    after its lease belongs to the other worker now).
    """
    at = at or timezone.now()
    finished = 0
    by_claim: dict[uuid.UUID, list[Notification]] = {}
    for notification in notifications:
        by_claim.setdefault(notification.claim, []).append(notification)
    for claim, rows in by_claim.items():
        lags = {row.pk: _lag_ms(row, at) for row in rows}
        finished += Notification.objects.filter(
            pk__in=lags, claim=claim, status=NotificationStatus.PROCESSING
        ).update(
            status=status,
            reason=reason[:255],
            processed_at=at,
            lag_ms=Case(*(When(pk=pk, then=Value(lag)) for pk, lag in lags.items())),
            claim=None,
            claimed_at=None,
            next_attempt_at=None,
        )
    return finished


def retry_delay_seconds(tries: int) -> int:
    """Back-off before processing try `tries + 1`: doubling from RETRY_BASE_SECONDS, capped."""
    return min(RETRY_BASE_SECONDS * 2 ** max(0, tries - 1), RETRY_MAX_SECONDS)


def notification_retry(
    *,
    notifications: Iterable[Notification],
    reason: str,
    at: datetime | None = None,
    delay: float | None = None,
) -> tuple[int, int]:
    """A processing try failed for a reason that may pass: back to `pending` with back-off.

    A notification that has had ML_NOTIFICATION_MAX_TRIES tries ends `failed` with the
    reason instead. `delay` (ML's Retry-After) overrides the back-off when longer. Returns
    (rescheduled, failed).
    """
    at = at or timezone.now()
    rows = list(notifications)
    final = [row for row in rows if row.tries + 1 >= settings.ML_NOTIFICATION_MAX_TRIES]
    later = [row for row in rows if row.tries + 1 < settings.ML_NOTIFICATION_MAX_TRIES]
    rescheduled = 0
    for row in later:
        wait = max(retry_delay_seconds(row.tries + 1), delay or 0)
        rescheduled += Notification.objects.filter(
            pk=row.pk, claim=row.claim, status=NotificationStatus.PROCESSING
        ).update(
            status=NotificationStatus.PENDING,
            tries=F("tries") + 1,
            reason=reason[:255],
            next_attempt_at=at + timedelta(seconds=wait),
            claim=None,
            claimed_at=None,
        )
    if final:
        Notification.objects.filter(pk__in=[row.pk for row in final]).update(tries=F("tries") + 1)
    failed = notification_finish(notifications=final, status=NotificationStatus.FAILED, reason=reason, at=at)
    return rescheduled, failed


@transaction.atomic
def notification_retry_failed(*, ids: Iterable[int] | None = None, now: datetime | None = None) -> list[str]:
    """Send failed notifications (all, or those of `ids`) through processing again (the admin's action).

    Returns the accounts to process. Their tries start over; `ignored` and `done` ones are
    left as they are.
    """
    now = now or timezone.now()
    failed = Notification.objects.filter(status=NotificationStatus.FAILED).exclude(account_id=None)
    if ids is not None:
        failed = failed.filter(pk__in=list(ids))
    accounts = [str(a) for a in failed.values_list("account_id", flat=True).distinct()]
    failed.update(
        status=NotificationStatus.PENDING,
        tries=0,
        reason="",
        next_attempt_at=now,
        processed_at=None,
        lag_ms=None,
    )
    return accounts


def mlaccount_set_count(*, account_id, field: str, value: int, at: datetime | None = None) -> bool:
    """Store one count that a notification made us re-read.

    One UPDATE. `cached_at` (when the counts were read) moves too, so the dashboard's
    "updated" time and its live refresh follow; the scheduled sync's own fields are not
    touched. Returns False when the account is gone.
    """
    if field not in COUNT_BITS:
        raise ValueError(f"not a count column: {field}")
    at = at or timezone.now()
    return bool(MLAccount.objects.filter(pk=account_id).update(**{field: value}, cached_at=at, updated_at=at))


def mlaccount_note_notifications(*, account_id, notified_at: datetime) -> None:
    """Record that ML delivered notifications for the account (its newest arrival), never backwards."""
    MLAccount.objects.filter(pk=account_id).filter(
        Q(last_notification_at__isnull=True) | Q(last_notification_at__lt=notified_at)
    ).update(last_notification_at=notified_at)


REMOVED_ACCOUNT = "the account was removed"


def notification_orphans_finish(*, now: datetime | None = None) -> int:
    """End the open notifications of accounts removed since they arrived (`ignored`)."""
    now = now or timezone.now()
    return Notification.objects.filter(
        account_id=None, status__in=[NotificationStatus.PENDING, NotificationStatus.PROCESSING]
    ).update(
        status=NotificationStatus.IGNORED,
        reason=REMOVED_ACCOUNT,
        processed_at=now,
        next_attempt_at=None,
        claim=None,
        claimed_at=None,
    )


def notification_cleanup(*, now: datetime | None = None) -> int:
    """Delete notifications older than ML_NOTIFICATION_RETENTION_DAYS; return how many."""
    now = now or timezone.now()
    cutoff = now - timedelta(days=settings.ML_NOTIFICATION_RETENTION_DAYS)
    deleted, _ = (
        Notification.objects.filter(arrived_at__lt=cutoff)
        .exclude(status__in=[NotificationStatus.PENDING, NotificationStatus.PROCESSING])
        .delete()
    )
    return deleted
