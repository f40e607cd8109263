"""The account's error history (AccountEvent): append, trim, clean up."""

from __future__ import annotations

from datetime import timedelta

from django.db import transaction
from django.db.models import F, Window
from django.db.models.functions import RowNumber
from django.utils import timezone

from accounts.models import MAX_EVENTS_PER_ACCOUNT, AccountEvent, EventKind


def event_record(*, account_id, kind: str, message: str, http_status: int | None = None) -> AccountEvent:
    """Append to an account's error history, keeping only the newest MAX_EVENTS_PER_ACCOUNT."""
    if kind not in EventKind.values:
        kind = EventKind.OTHER
    with transaction.atomic():
        event = AccountEvent.objects.create(
            account_id=account_id, kind=kind, message=str(message)[:2000], http_status=http_status
        )
        keep = AccountEvent.objects.filter(account_id=account_id).order_by("-created_at", "-id")
        stale = list(keep.values_list("id", flat=True)[MAX_EVENTS_PER_ACCOUNT:])
        if stale:
            AccountEvent.objects.filter(id__in=stale).delete()
    return event


EVENT_MAX_AGE_DAYS = 30
_CLEANUP_CHUNK = 1000


def event_cleanup(
    *, max_age_days: int = EVENT_MAX_AGE_DAYS, keep_per_account: int = MAX_EVENTS_PER_ACCOUNT, now=None
) -> int:
    """Drop error-history entries older than `max_age_days` or beyond each account's newest
    `keep_per_account`; return how many were deleted.

    event_record already trims on every write; this catches what it cannot (age, and rows
    written by anything else), in chunks so that a large backlog never holds a long lock.
    """
    now = now or timezone.now()
    deleted = AccountEvent.objects.filter(created_at__lt=now - timedelta(days=max_age_days)).delete()[0]
    surplus = (
        AccountEvent.objects.annotate(
            rank=Window(
                RowNumber(), partition_by=[F("account_id")], order_by=[F("created_at").desc(), F("id").desc()]
            )
        )
        .filter(rank__gt=keep_per_account)
        .values_list("id", flat=True)
    )
    ids = list(surplus)
    for start in range(0, len(ids), _CLEANUP_CHUNK):
        deleted += AccountEvent.objects.filter(id__in=ids[start : start + _CLEANUP_CHUNK]).delete()[0]
    return deleted
