"""Reads. Every lookup of a user's Mercado Livre accounts goes through here.

Another user's account and an id that does not exist are indistinguishable to the caller
(AccountNotFound, a 404), so ids cannot be probed.
"""

import uuid
from datetime import datetime

from django.db.models import Count, OuterRef, Q, QuerySet, Subquery

from accounts.errors import AccountNotFound, SyncJobNotFound
from accounts.models import AccountEvent, MLAccount, SyncJob, SyncJobItem


def mlaccount_list_for_user(*, user) -> QuerySet[MLAccount]:
    """The user's accounts, primary first then oldest first, without the token columns."""
    return (
        MLAccount.objects.filter(owner=user)
        .defer(*MLAccount.SECRET_FIELDS)
        .order_by("-is_primary", "created_at", "id")
    )


def mlaccount_get_for_user(*, user, account_id, with_tokens: bool = False) -> MLAccount:
    """One of the user's accounts by id; AccountNotFound for malformed, missing or foreign ids."""
    try:
        pk = uuid.UUID(str(account_id))
    except (TypeError, ValueError, AttributeError):
        raise AccountNotFound() from None
    if user is None or not getattr(user, "is_authenticated", False):
        raise AccountNotFound()
    queryset = MLAccount.objects.filter(owner=user)
    if not with_tokens:
        queryset = queryset.defer(*MLAccount.SECRET_FIELDS)
    try:
        return queryset.get(pk=pk)
    except MLAccount.DoesNotExist:
        raise AccountNotFound() from None


def mlaccount_events(*, account: MLAccount) -> QuerySet[AccountEvent]:
    """The account's error history, newest first."""
    return AccountEvent.objects.filter(account=account).order_by("-created_at", "-id")


def mlaccount_due_q(*, now: datetime) -> Q:
    """Accounts the scheduler should sync: active or error, sync enabled, next sync reached."""
    return Q(
        sync_enabled=True,
        status__in=[MLAccount.Status.ACTIVE, MLAccount.Status.ERROR],
        next_sync__lte=now,
    )


def mlaccount_ids_expiring(*, before: datetime) -> list:
    """Ids of accounts (not expired, not paused) whose access token expires before `before`."""
    return list(
        MLAccount.objects.filter(token_expires_at__lt=before)
        .exclude(status__in=[MLAccount.Status.EXPIRED, MLAccount.Status.PAUSED])
        .exclude(refresh_token__isnull=True)
        .order_by("token_expires_at")
        .values_list("id", flat=True)
    )


def mlaccount_list_for_overview(*, user) -> QuerySet[MLAccount]:
    """The user's accounts as the dashboard lists them, with `last_event_kind` annotated.

    `last_event_kind` is the kind of the account's newest history entry (None without one),
    so the dashboard can say in words what went wrong with a failed sync. A subquery keeps
    the page at one query however many accounts there are.
    """
    newest = (
        AccountEvent.objects.filter(account=OuterRef("pk")).order_by("-created_at", "-id").values("kind")[:1]
    )
    return mlaccount_list_for_user(user=user).annotate(last_event_kind=Subquery(newest))


def sync_job_get_for_user(*, user, job_id) -> SyncJob:
    """One of the user's sync jobs by id; SyncJobNotFound for malformed, missing or foreign ids."""
    try:
        pk = uuid.UUID(str(job_id))
    except (TypeError, ValueError, AttributeError):
        raise SyncJobNotFound() from None
    if user is None or not getattr(user, "is_authenticated", False):
        raise SyncJobNotFound()
    try:
        return SyncJob.objects.get(owner=user, pk=pk)
    except SyncJob.DoesNotExist:
        raise SyncJobNotFound() from None


def sync_job_items(*, job: SyncJob) -> list[SyncJobItem]:
    """The job's items in the order the accounts were listed."""
    return list(SyncJobItem.objects.filter(job=job).order_by("position"))


def sync_job_pending_count(*, job_id) -> int:
    """How many of the job's syncs have not ended yet."""
    return SyncJobItem.objects.filter(job_id=job_id, finished_at__isnull=True).count()


# --- the background jobs (system-wide reads, never shown to a user as is) ----------------------


def mlaccount_status_counts() -> dict[str, int]:
    """How many accounts are in each status, every status present (zero when none)."""
    counts = dict.fromkeys(MLAccount.Status.values, 0)
    for row in MLAccount.objects.order_by().values("status").annotate(n=Count("id")):
        counts[row["status"]] = row["n"]
    return counts


def mlaccount_count_due(*, now: datetime) -> int:
    """How many accounts the scheduler considers due at `now` (claimed ones included)."""
    return MLAccount.objects.filter(mlaccount_due_q(now=now)).count()


def mlaccount_schedule_groups() -> list[dict]:
    """The scheduled fleet in groups: status, sync_interval, error_count and how many (`n`).

    Only accounts the scheduler syncs (active or error, sync enabled). Active accounts are
    grouped by interval alone (error_count 0); accounts in error by interval and error
    streak, which sets their back-off. A handful of rows whatever the fleet's size.
    """
    scheduled = MLAccount.objects.filter(
        sync_enabled=True, status__in=[MLAccount.Status.ACTIVE, MLAccount.Status.ERROR]
    ).order_by()
    active = scheduled.filter(status=MLAccount.Status.ACTIVE).values("sync_interval").annotate(n=Count("id"))
    in_error = (
        scheduled.filter(status=MLAccount.Status.ERROR)
        .values("sync_interval", "error_count")
        .annotate(n=Count("id"))
    )
    groups = [
        {
            "status": MLAccount.Status.ACTIVE,
            "sync_interval": row["sync_interval"],
            "error_count": 0,
            "n": row["n"],
        }
        for row in active
    ]
    groups += [{"status": MLAccount.Status.ERROR, **row} for row in in_error]
    return groups
