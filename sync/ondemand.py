"""Syncs and renewals a user asks for: the dashboard's "sync now" and "sync all", the API's
sync and sync-all, the admin's actions.

Nothing here talks to Mercado Livre but `sync_inline` (the API's synchronous "sync now"):
each sync is queued as a `sync.tasks.sync_account` task (after the transaction commits)
and runs in the worker, so no web request waits for ML or leaves a thread behind. The page
and the API call the same `sync_all`, so they skip the same accounts. Each account a person
asks to sync (or to renew) gets its audit entry here, when the request is made: the task
that runs later is nobody's action.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from accounts import selectors, services
from accounts.models import AccountStatus, AuditAction, MLAccount, SyncJob
from accounts.roles import Can, allows
from sync import engine, outcomes, tasks

# How often a waiting sync-all request looks at its job's items again.
JOB_POLL_SECONDS = 0.2


@dataclass
class SyncAllPlan:
    """What "sync all" did: accounts queued, and those skipped with the reason's code."""

    queued: list[MLAccount] = field(default_factory=list)
    paused: list[MLAccount] = field(default_factory=list)
    expired: list[MLAccount] = field(default_factory=list)
    job: SyncJob | None = None


# Longer than a "sync all" of hundreds of accounts waits in the queue at the ML budget.
QUEUED_FOR_AT_MOST = timedelta(minutes=15)


def sync_phase(account: MLAccount, *, now: datetime | None = None) -> str:
    """Where an account's sync stands: "interrupted", "syncing", "queued", or "" (idle).

    A claim older than SYNC_LEASE_SECONDS belongs to a worker that died: the next sync
    takes it over, so it reads "interrupted, retrying" rather than a sync that never ends.
    """
    now = now or timezone.now()
    if account.sync_started_at is not None:
        if now - account.sync_started_at > timedelta(seconds=settings.SYNC_LEASE_SECONDS):
            return "interrupted"
        return "syncing"
    # A request older than QUEUED_FOR_AT_MOST lost its message (the broker was down when it
    # was sent, say): the scheduler syncs the account in its turn, so stop saying "queued".
    if account.sync_requested_at is not None and now - account.sync_requested_at <= QUEUED_FOR_AT_MOST:
        return "queued"
    return ""


def sync_request(*, account: MLAccount) -> None:
    """A person's "sync now" of one account; the dashboard shows it as "queued…" until it runs."""
    sync_request_many(accounts=[account])


def sync_request_many(*, accounts: list[MLAccount]) -> None:
    """A person's "sync now" of each of `accounts` (a bulk one, the admin's), in one transaction."""
    with transaction.atomic():
        services.audit_record_many(action=AuditAction.SYNC_NOW, accounts=accounts)
        _queue(accounts)


def _queue(accounts: list[MLAccount]) -> None:
    services.mlaccount_mark_sync_requested(account_ids=[account.pk for account in accounts])
    for account in accounts:
        tasks.sync_account.apply_async_on_commit((str(account.pk),))


def sync_inline(*, account: MLAccount) -> engine.SyncResult:
    """The API's synchronous "sync now": noted in the audit log, then run in this request
    (under the caller's deadline)."""
    services.audit_record(action=AuditAction.SYNC_NOW, account=account)
    return engine.sync_account(account.pk)


def refresh_request_many(*, accounts) -> None:
    """A person's "renew the token now" of each of `accounts` (the admin's action), queued:
    one REFRESH audit entry each now, one forced renewal task each after the commit."""
    with transaction.atomic():
        services.audit_record_many(action=AuditAction.REFRESH, accounts=accounts)
        for account in accounts:
            tasks.refresh_account_token.delay_on_commit(str(account.pk), force=True)


def sync_connected(*, account: MLAccount) -> bool:
    """Queue the first sync of an account just connected or reconnected; return whether it was.

    Every way of connecting calls this (the dashboard's token form and OAuth callback, the
    API, seed_demo), so a new account shows its numbers within seconds instead of waiting for
    the next dispatch minute; until they come its row reads "first sync…" (sync_phase
    "queued", then "syncing", with no cached numbers yet). By the same rules as "sync all":
    a paused or expired account is left alone.
    """
    if skip_code(account):
        return False
    with transaction.atomic():
        _queue([account])  # part of the connect, which has its own audit entry
    return True


def skip_code(account: MLAccount) -> str:
    """Why "sync all" leaves an account out ("" when it syncs it).

    Paused: its owner asked for no syncs. Expired: a try would only spend an ML refresh
    that fails again; resuming the account is the explicit way to try it once more.
    """
    if account.status == AccountStatus.PAUSED:
        return outcomes.ACCOUNT_PAUSED
    if account.status == AccountStatus.EXPIRED:
        return outcomes.TOKEN_EXPIRED
    return ""


def sync_all(*, user, workspace=None, with_job: bool = False) -> SyncAllPlan:
    """Queue a sync of every account `user` may sync (in `workspace` only, when given; the
    accounts their role only lets them view are left out) that is neither paused nor expired.

    With `with_job` a SyncJob records every account (skipped ones with their code) and
    each queued task fills its item in, for the API to answer from (`sync_job_wait`).
    """
    plan = SyncAllPlan()
    accounts = [
        account
        for account in selectors.mlaccount_list_for_user(user=user, workspace=workspace)
        if allows(account.role, Can.SYNC)
    ]
    codes = {account.pk: skip_code(account) for account in accounts}
    for account in accounts:
        code = codes[account.pk]
        if code == outcomes.ACCOUNT_PAUSED:
            plan.paused.append(account)
        elif code == outcomes.TOKEN_EXPIRED:
            plan.expired.append(account)
        else:
            plan.queued.append(account)
    with transaction.atomic():
        if with_job:
            plan.job = services.sync_job_create(
                owner=user, items=[(account.pk, codes[account.pk]) for account in accounts]
            )
        services.mlaccount_mark_sync_requested(account_ids=[account.pk for account in plan.queued])
        services.audit_record_many(action=AuditAction.SYNC_NOW, accounts=plan.queued)
        job_id = str(plan.job.pk) if plan.job else None
        for account in plan.queued:
            tasks.sync_account.apply_async_on_commit((str(account.pk),), {"job_id": job_id})
    return plan


def sync_job_wait(*, job: SyncJob, timeout: float) -> None:
    """Wait up to `timeout` seconds for the job's syncs to end, looking every 0.2 s.

    Short reads in autocommit, no lock held: the tasks write the items meanwhile.
    """
    end = time.monotonic() + timeout
    while selectors.sync_job_pending_count(job_id=job.pk):
        left = end - time.monotonic()
        if left <= 0:
            return
        time.sleep(min(JOB_POLL_SECONDS, left))
