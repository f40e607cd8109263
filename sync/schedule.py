"""The periodic jobs, defined once, and the arithmetic of the shared ML request budget.

`JOBS` is the single definition of what runs when. `install()` writes it into
django-celery-beat's tables, where beat reads it and admins can see it, switch a job off
or run it: every `migrate` creates the missing jobs (sync/apps.py), and
`manage.py setup_periodic_tasks` also brings existing ones back in line with the code.

The budget part answers two questions with the same numbers: how many syncs one
`dispatch_due_syncs` run may start (`dispatch_capacity`), and how often each account is
really synced when the fleet needs more requests than ML allows (`budget_cycle_seconds`,
`effective_interval`, shown in the admin).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime

from celery import current_app
from django.conf import settings
from django.core.cache import cache
from django.db import DEFAULT_DB_ALIAS, transaction
from django.utils import timezone
from django_celery_beat.models import CrontabSchedule, IntervalSchedule, PeriodicTask
from kombu.exceptions import ChannelError

from accounts import selectors, services
from accounts.models import COUNT_HISTORY_DAYS, MAX_EVENTS_PER_ACCOUNT, MLAccount

# How often dispatch_due_syncs runs: the horizon of the budget planning.
DISPATCH_PERIOD_SECONDS = 60
# ML calls a sync makes in the steady state: the four counts, questions and claims being the
# first pages of their mirrors (sync.mirrors). A token refresh adds one, and a first mirror
# or a scan of a long questions list (every 6 h, or when ML's total moved) adds pages and
# titles: a few times a day per account, covered by the budget share; the shared budget
# itself holds ML's rate whatever this estimate says.
SYNC_CALLS_PER_ACCOUNT = 4
HEARTBEAT_CACHE_KEY = "sync:heartbeat"
# The heartbeat outlives three missed health checks, then disappears (read as "stale").
HEARTBEAT_TTL_SECONDS = 45 * 60


@dataclass(frozen=True)
class Job:
    """One periodic job: a name (the admin's key), the task, and when it runs."""

    name: str
    task: str
    description: str
    every_seconds: int | None = None
    crontab: dict[str, str] = field(default_factory=dict)
    # A run that waited longer than this in the queue (a worker was down) is dropped: the
    # next run does the same work with fresher data.
    expire_seconds: int | None = None


JOBS: tuple[Job, ...] = (
    Job(
        name="dispatch due syncs",
        task="sync.tasks.dispatch_due_syncs",
        description="Every minute: start a sync for each account whose next sync is due, "
        "as many as the Mercado Livre request budget serves, least recently synced first.",
        every_seconds=DISPATCH_PERIOD_SECONDS,
        expire_seconds=DISPATCH_PERIOD_SECONDS - 5,
    ),
    Job(
        name="refresh expiring tokens",
        task="sync.tasks.refresh_expiring_tokens",
        description="Every 30 minutes: renew every access token that expires within the next hour.",
        every_seconds=30 * 60,
        expire_seconds=25 * 60,
    ),
    Job(
        name="health check",
        task="sync.tasks.health_check",
        description="Every 15 minutes: count accounts per status, free abandoned sync claims, "
        "record a heartbeat and log a summary.",
        every_seconds=15 * 60,
        expire_seconds=14 * 60,
    ),
    Job(
        name="process notifications",
        task="sync.tasks.process_notifications",
        description="Every minute: process the Mercado Livre notifications still pending "
        "(retries after their back-off, work of a worker that stopped).",
        every_seconds=60,
        expire_seconds=55,
    ),
    Job(
        name="recover missed notifications",
        task="sync.tasks.recover_notifications",
        description="Every 15 minutes: read the notifications Mercado Livre could not deliver "
        "(/missed_feeds) into the same processing.",
        every_seconds=15 * 60,
        expire_seconds=14 * 60,
    ),
    Job(
        name="snapshot counts",
        task="sync.tasks.snapshot_counts",
        description="Hourly: give every synced account its point in the counts history (the "
        "counts it has now), unless a sync or a notification gave it one this hour already.",
        crontab={"minute": "0", "hour": "*", "day_of_week": "*", "day_of_month": "*", "month_of_year": "*"},
        expire_seconds=50 * 60,
    ),
    Job(
        name="evaluate alerts",
        task="sync.tasks.evaluate_alerts",
        description="Every minute: run the alert rules over every account (reconnect needed, "
        "failing, recovered, overdue questions, new claims) and send the emails due at once.",
        every_seconds=60,
        expire_seconds=55,
    ),
    Job(
        name="send alert digests",
        task="sync.tasks.send_alert_digests",
        description="Daily at 08:00: email each member who chose the digest the alerts of the last day.",
        crontab={"minute": "0", "hour": "8", "day_of_week": "*", "day_of_month": "*", "month_of_year": "*"},
        expire_seconds=6 * 3600,
    ),
    Job(
        name="cleanup events",
        task="sync.tasks.cleanup_events",
        description=f"Daily at 03:00: delete account events older than {services.EVENT_MAX_AGE_DAYS} days "
        f"and beyond each account's newest {MAX_EVENTS_PER_ACCOUNT}, abandoned Mercado Livre "
        f"authorizations, count history older than {COUNT_HISTORY_DAYS} days, alerts older "
        f"than {services.ALERT_RETENTION_DAYS} days and reconnect links long expired.",
        crontab={"minute": "0", "hour": "3", "day_of_week": "*", "day_of_month": "*", "month_of_year": "*"},
        expire_seconds=6 * 3600,
    ),
)


# --- installing into django-celery-beat ---------------------------------------------------------


def install(
    *, reset: bool = False, only_missing: bool = False, using: str = DEFAULT_DB_ALIAS
) -> list[tuple[str, str]]:
    """Create or update the PeriodicTask rows of `JOBS` by name; return (name, action) pairs.

    Idempotent. The task, schedule, expiry and description follow the code on every run;
    whether a job is enabled is the admins' call and is kept, unless `reset`, which also
    enables every job again. Rows of other names (added by hand) are left alone.

    With `only_missing` (every `migrate` runs that: sync/apps.py) only the absent jobs are
    created and every existing row is left exactly as it is ("kept").
    """
    with transaction.atomic(using=using):
        return _install(reset=reset, only_missing=only_missing, using=using)


def _install(*, reset: bool, only_missing: bool, using: str) -> list[tuple[str, str]]:
    results = []
    tasks = PeriodicTask.objects.using(using)
    for job in JOBS:
        if only_missing and tasks.filter(name=job.name).exists():
            results.append((job.name, "kept"))
            continue
        interval = crontab = None
        if job.every_seconds is not None:
            interval, _ = IntervalSchedule.objects.using(using).get_or_create(
                every=job.every_seconds, period=IntervalSchedule.SECONDS
            )
        else:
            crontab, _ = CrontabSchedule.objects.using(using).get_or_create(
                **job.crontab, timezone=settings.CELERY_TIMEZONE
            )
        wanted = {
            "task": job.task,
            "interval": interval,
            "crontab": crontab,
            "solar": None,
            "clocked": None,
            "one_off": False,
            "args": "[]",
            "kwargs": "{}",
            "queue": None,
            "expires": None,
            "expire_seconds": job.expire_seconds,
            "description": job.description,
        }
        task = tasks.filter(name=job.name).first()
        if task is None:
            tasks.create(name=job.name, enabled=True, **wanted)
            results.append((job.name, "created"))
            continue
        changed = [name for name, value in wanted.items() if getattr(task, name) != value]
        if reset and not task.enabled:
            changed.append("enabled")
            task.enabled = True
        if not changed:
            results.append((job.name, "unchanged"))
            continue
        for name, value in wanted.items():
            setattr(task, name, value)
        task.save(using=using)
        results.append((job.name, "updated: " + ", ".join(changed)))
    return results


# --- the request budget -------------------------------------------------------------------------


def _budget_syncs_per_second() -> float | None:
    """Scheduled syncs per second the ML budget allows; None when the budget is unlimited."""
    rate = float(settings.ML_REQUESTS_PER_SECOND)
    if not math.isfinite(rate) or rate <= 0:
        return None
    return rate * settings.SYNC_BUDGET_SHARE / SYNC_CALLS_PER_ACCOUNT


def dispatch_capacity(
    *, period_seconds: int = DISPATCH_PERIOD_SECONDS, queued: int = 0, reserved_calls: float = 0
) -> int | None:
    """How many syncs one dispatch may start: what the budget serves until the next one.

    ML_REQUESTS_PER_SECOND × period × SYNC_BUDGET_SHARE ÷ calls per sync, less the
    `queued` syncs still waiting in the queue (`queued_syncs()`) and less the calls
    `reserved_calls` that notification processing is expected to make in the period (what
    it made a minute lately, sync.notifications.calls_per_minute); at 5 requests a second
    and no notifications, 71 syncs a minute. None when the budget is unlimited (no cap).

    The queue is first come, first served, and "sync now" / "sync all" put their syncs
    in it too. Counting what already waits keeps the queue within what the budget serves
    in one period: after a large manual batch, dispatch holds back until the batch has
    drained below a period's worth instead of piling more behind it (where its messages
    would outlive their lease), then resumes least recently synced first, so the accounts
    the batch did not cover come next. A scheduled sync then waits at most the batch's
    own drain time plus one period.
    """
    per_second = _budget_syncs_per_second()
    if per_second is None:
        return None
    reserved = max(0.0, reserved_calls) / SYNC_CALLS_PER_ACCOUNT
    return max(0, max(1, math.floor(per_second * period_seconds - reserved)) - max(0, queued))


def spread(
    count: int, capacity: int | None, *, period_seconds: int = DISPATCH_PERIOD_SECONDS
) -> list[float | None]:
    """When each of `count` dispatched syncs should start: spread evenly over the period.

    Under a budget (`capacity` not None) a dispatch sent at once would have its syncs take
    the whole budget until they are done, and the notifications processed meanwhile (every
    call through the same budget) would wait behind them for most of a minute. Started one
    after the other across the period, the syncs leave room for them at every moment. An
    account is then synced up to a period after it fell due. Unlimited: all at once (None).
    """
    if capacity is None or count <= 1:
        return [None] * count
    step = period_seconds / count
    return [round(index * step, 2) or None for index in range(count)]


def queued_syncs() -> int:
    """How many messages wait in the task queue (scheduled and manual syncs alike).

    Read from the broker (Redis or the filesystem transport). Messages a worker has
    already taken (prefetched, or waiting for a retry's countdown) are not counted:
    at most concurrency × prefetch per worker, a fraction of a period at the budget.
    """
    queue = settings.CELERY_TASK_DEFAULT_QUEUE
    with current_app.connection_for_read() as connection:
        try:
            return connection.default_channel.queue_declare(queue=queue, passive=True).message_count
        except ChannelError:
            return 0  # the queue does not exist yet: nothing waits


def _base_interval(*, status: str, sync_interval: int, error_count: int, fed: bool = False) -> int:
    if status == MLAccount.Status.ERROR:
        return services.error_backoff_seconds(sync_interval=sync_interval, error_count=error_count)
    if fed:
        # Its notifications arrive: polled only as a reconciliation.
        return max(sync_interval, settings.ML_RECONCILE_INTERVAL)
    return sync_interval


def notifications_arrive(account: MLAccount, *, now: datetime | None = None) -> bool:
    """Whether the account's ML notifications arrive (one within ML_NOTIFICATIONS_SILENT_AFTER)."""
    if account.last_notification_at is None:
        return False
    now = now or timezone.now()
    return (now - account.last_notification_at).total_seconds() <= settings.ML_NOTIFICATIONS_SILENT_AFTER


def budget_cycle_seconds(groups: list[dict] | None = None) -> int | None:
    """The interval the budget stretches scheduled syncs to, or None when it keeps up.

    When the fleet's accounts, each at its own interval, need more syncs per second than
    the budget serves, dispatch serves the least recently synced first, so the accounts
    end up taking turns: every account whose own interval is shorter than some cycle T is
    synced every T, the others at their own pace. T solves
    Σ n / max(interval, T) = budget syncs per second (found by bisection; the left side
    falls as T grows).
    """
    per_second = _budget_syncs_per_second()
    if per_second is None:
        return None
    groups = selectors.mlaccount_schedule_groups() if groups is None else groups
    intervals = [
        (
            _base_interval(
                status=g["status"],
                sync_interval=g["sync_interval"],
                error_count=g["error_count"],
                fed=g.get("fed", False),
            ),
            g["n"],
        )
        for g in groups
    ]
    if not intervals:
        return None

    def demand(cycle: float) -> float:
        return sum(n / max(interval, cycle) for interval, n in intervals)

    if demand(0) <= per_second:
        return None
    low, high = 0.0, sum(n for _, n in intervals) / per_second
    for _ in range(60):
        middle = (low + high) / 2
        if demand(middle) > per_second:
            low = middle
        else:
            high = middle
    return math.ceil(high)


def effective_interval(account: MLAccount, *, budget_cycle: int | None) -> int | None:
    """Seconds between this account's scheduled syncs as things stand; None if not scheduled.

    Its own interval (at least ML_RECONCILE_INTERVAL while its notifications arrive); the
    error back-off for an account in `error`; at least the budget
    cycle (`budget_cycle_seconds()`) when the fleet is larger than the budget serves.
    """
    if not account.sync_enabled or account.status not in (MLAccount.Status.ACTIVE, MLAccount.Status.ERROR):
        return None
    interval = _base_interval(
        status=account.status,
        sync_interval=account.sync_interval,
        error_count=account.error_count,
        fed=notifications_arrive(account),
    )
    return max(interval, budget_cycle or 0)


# --- the heartbeat ---------------------------------------------------------------------------------


def heartbeat_write(*, at: datetime, status_counts: dict[str, int], **facts) -> dict:
    """Record the health check's findings in the cache for a health endpoint to read."""
    beat = {"at": at.isoformat(), "status_counts": status_counts, **facts}
    cache.set(HEARTBEAT_CACHE_KEY, beat, HEARTBEAT_TTL_SECONDS)
    return beat


def heartbeat_read() -> dict | None:
    """The last heartbeat the health check recorded, or None (never ran, or stale).

    The cache is shared by every process: Redis with REDIS_URL, otherwise a file cache
    under VAR_DIR, so the web process sees what the worker wrote.
    """
    return cache.get(HEARTBEAT_CACHE_KEY)
