"""Reads of the audit log (accounts.models.audit), always through the access helper.

Owners and managers read it (Can.AUDIT); an operator or a viewer who can see the workspace
or the account is Forbidden (403), anybody else gets the usual 404. Newest first.

A manager limited to chosen accounts reads the entries of those accounts only. The entries
about the workspace as a whole (members, invitations, the workspace's settings, sign-ins)
name no account, and are for unscoped managers and owners: a scope limits what a member
sees of the workspace, and its people are part of it. An account removed since leaves a
scoped manager's view with its entries (its scope rows went with it); owners and unscoped
managers keep seeing them.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

from django.db.models import Q, QuerySet
from django.utils import timezone

from accounts.errors import AccountNotFound, Forbidden
from accounts.models import AuditEntry, Membership, MembershipAccount, MLAccount, Workspace
from accounts.roles import RANK, Can, allows
from accounts.selectors import mlaccount_get_for_user, workspace_get_for_user

AUDIT_PAGE_SIZE = 50
ACCOUNT_ACTIVITY_SIZE = 10


def _auditor_roles() -> list[str]:
    return [role for role in RANK if allows(role, Can.AUDIT)]


def _start_of(day: date) -> datetime:
    """Midnight of `day` in the current time zone (the page's dates are the reader's days)."""
    return timezone.make_aware(datetime.combine(day, time.min))


def _filtered(
    entries: QuerySet[AuditEntry],
    *,
    action: str = "",
    actor: str = "",
    since: date | None = None,
    until: date | None = None,
) -> QuerySet[AuditEntry]:
    if action:
        entries = entries.filter(action=action)
    actor = actor.strip()
    if actor:
        entries = entries.filter(actor_email__icontains=actor)
    # The first and last days a date can name leave nothing out, and their midnights would
    # overflow once moved to UTC.
    if since is not None and since > date.min + timedelta(days=1):
        entries = entries.filter(at__gte=_start_of(since))
    if until is not None and until < date.max - timedelta(days=1):  # the whole of that day
        entries = entries.filter(at__lt=_start_of(until + timedelta(days=1)))
    return entries.order_by("-at", "-id")


def _in_scope(workspace: Workspace) -> Q:
    """What of `workspace`'s log its reader sees: all of it, or a scoped member's accounts."""
    membership = workspace.membership
    if not membership.scoped:
        return Q(workspace_id=workspace.pk)
    accounts = MembershipAccount.objects.filter(membership=membership).values("account_id")
    return Q(workspace_id=workspace.pk, account_id__in=accounts)


def audit_entries_for_workspace(
    *,
    user,
    workspace: Workspace,
    account_id=None,
    action: str = "",
    actor: str = "",
    since: date | None = None,
    until: date | None = None,
) -> QuerySet[AuditEntry]:
    """The log of `workspace` as `user` may read it (see the module), filtered.

    `workspace` comes from the access helper (workspace_get_for_user: 404 unless a member),
    with the reader's role and membership; Forbidden (403) below manager. `account_id`: only
    that account's entries; AccountNotFound (404) unless `user` sees it in this workspace.
    `actor`: a piece of the actor's email. `since`, `until`: days in the current time zone,
    both included.
    """
    if not allows(getattr(workspace, "role", None), Can.AUDIT):
        raise Forbidden()
    entries = AuditEntry.objects.filter(_in_scope(workspace))
    if account_id not in (None, ""):
        account = mlaccount_get_for_user(user=user, account_id=account_id, need=Can.AUDIT)
        if account.workspace_id != workspace.pk:
            raise AccountNotFound()
        entries = entries.filter(account_id=account.pk)
    return _filtered(entries, action=action, actor=actor, since=since, until=until)


def audit_entries_for_user(
    *, user, workspace_id=None, account_id=None, action: str = ""
) -> QuerySet[AuditEntry]:
    """The API's list: the log of every workspace `user` manages or owns, or of one
    workspace, or of one account (404 for what they cannot see, 403 below manager).

    Without a workspace or an account, a member below manager everywhere gets no entries
    (nothing to refuse: they asked for "everything I may read").
    """
    if workspace_id not in (None, ""):
        workspace = workspace_get_for_user(user=user, workspace_id=workspace_id, need=Can.AUDIT)
        return audit_entries_for_workspace(
            user=user, workspace=workspace, account_id=account_id, action=action
        )
    if account_id not in (None, ""):
        account = mlaccount_get_for_user(user=user, account_id=account_id, need=Can.AUDIT)
        return _filtered(AuditEntry.objects.filter(account_id=account.pk), action=action)
    auditing = Membership.objects.filter(user=user, role__in=_auditor_roles())
    whole = auditing.filter(scoped=False).values("workspace_id")
    scoped = MembershipAccount.objects.filter(
        membership__user=user, membership__role__in=_auditor_roles(), membership__scoped=True
    ).values("account_id")
    return _filtered(
        AuditEntry.objects.filter(Q(workspace_id__in=whole) | Q(account_id__in=scoped)), action=action
    )


def audit_latest_for_account(
    *, account: MLAccount, limit: int = ACCOUNT_ACTIVITY_SIZE
) -> list[AuditEntry] | None:
    """The account page's "Activity": its newest entries, in one query, for an account that
    came through the access helper (it carries the reader's `role`); None, without a query,
    when that role may not read the log."""
    if not allows(getattr(account, "role", None), Can.AUDIT):
        return None
    return list(AuditEntry.objects.filter(account_id=account.pk).order_by("-at", "-id")[:limit])
