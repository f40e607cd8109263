"""Syncs asked for by a user ("sync now", "sync all"): the request mark and the sync jobs."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from accounts.mercadolivre.resources import Counts
from accounts.models import MLAccount, SyncJob, SyncJobItem


def mlaccount_mark_sync_requested(*, account_ids, now: datetime | None = None) -> None:
    """Note that a sync of these accounts was queued (the dashboard shows "queued…")."""
    MLAccount.objects.filter(pk__in=list(account_ids)).update(sync_requested_at=now or timezone.now())


def mlaccount_clear_sync_request(*, account_id, started_at: datetime) -> None:
    """A requested sync ended: drop the mark, unless a newer request came in meanwhile."""
    MLAccount.objects.filter(pk=account_id, sync_requested_at__lte=started_at).update(sync_requested_at=None)


@transaction.atomic
def sync_job_create(*, owner, items: list[tuple[str, str]], now: datetime | None = None) -> SyncJob:
    """A job over `items`, each `(account_id, code)`: an empty code is a sync to wait for,
    any other code an outcome known already (ACCOUNT_PAUSED, TOKEN_EXPIRED)."""
    now = now or timezone.now()
    job = SyncJob.objects.create(owner=owner, created_at=now)
    SyncJobItem.objects.bulk_create(
        SyncJobItem(
            job=job,
            account_id=account_id,
            position=position,
            success=False if code else None,
            code=code,
            finished_at=now if code else None,
        )
        for position, (account_id, code) in enumerate(items)
    )
    return job


def sync_job_item_finish(
    *,
    job_id,
    account_id,
    code: str = "",
    counts: Counts | None = None,
    synced_at: datetime | None = None,
    now: datetime | None = None,
) -> None:
    """Record how a job's sync ended: a success with its counts (`code` empty), or a code."""
    data = None
    if counts is not None:
        data = {
            "products": counts.products,
            "orders": counts.orders,
            "questions": counts.questions,
            "claims": counts.claims,
        }
    # Only the first outcome counts: a duplicate delivery of the task changes nothing.
    SyncJobItem.objects.filter(job_id=job_id, account_id=account_id, finished_at__isnull=True).update(
        success=not code, code=code, counts=data, synced_at=synced_at, finished_at=now or timezone.now()
    )


def sync_job_cleanup(*, max_age_hours: int = SyncJob.MAX_AGE_HOURS, now: datetime | None = None) -> int:
    """Delete sync jobs (and their items) older than `max_age_hours`; return how many jobs."""
    now = now or timezone.now()
    deleted = SyncJob.objects.filter(created_at__lt=now - timedelta(hours=max_age_hours)).delete()[1]
    return deleted.get(SyncJob._meta.label, 0)
