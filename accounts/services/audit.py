"""The audit log's one write: `audit_record`, called by the services a person's action runs.

Who acted, from which address and browser, comes from the request the action runs in:
`mlaccounts.middleware.AuditContextMiddleware` opens `audit_context(request)` around every
request, so the dashboard, the API and the admin need not pass it down through each service.
The actor is read when the entry is written (the API authenticates its bearer tokens inside
the view, after the middleware ran). Work without a request (Celery, commands) is nobody's
action and records nothing, unless its caller names the `actor`.
"""

from __future__ import annotations

import contextlib
import ipaddress
from collections.abc import Iterable
from contextvars import ContextVar
from datetime import datetime

from django.utils import timezone

from accounts.models import AuditEntry, MLAccount, Workspace

_request: ContextVar = ContextVar("audit_request", default=None)

MAX_USER_AGENT = 500
_NOBODY = object()


@contextlib.contextmanager
def audit_context(request):
    """Within this block, audit entries take their actor, IP and user agent from `request`."""
    token = _request.set(request)
    try:
        yield
    finally:
        _request.reset(token)


def _client_ip(request) -> str | None:
    value = request.META.get("REMOTE_ADDR", "")
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        return None


def _request_user(request):
    user = getattr(request, "user", None)
    return user if user is not None and user.is_authenticated else None


def audit_record(
    *,
    action: str,
    workspace: Workspace | None = None,
    account: MLAccount | None = None,
    changes: dict | None = None,
    actor=_NOBODY,
    at: datetime | None = None,
) -> AuditEntry | None:
    """Append an entry for a person's action; None when no person acted (no request, no actor).

    `changes` is `{"field": [from, to]}` for settings, or facts about the action
    (`{"question": 123}`); JSON values only, never a token. The account's workspace is the
    entry's workspace unless `workspace` says otherwise.
    """
    request = _request.get()
    if actor is _NOBODY:
        if request is None:
            return None
        actor = _request_user(request)
    if workspace is None and account is not None:
        workspace = account.workspace
    return AuditEntry.objects.create(
        at=at or timezone.now(),
        action=action,
        actor_id=actor.pk if actor is not None else None,
        actor_email=actor.email if actor is not None else "",
        workspace_id=workspace.pk if workspace is not None else None,
        workspace_name=workspace.name if workspace is not None else "",
        account_id=account.pk if account is not None else None,
        account_label=(account.account_name or account.nickname) if account is not None else "",
        ip=_client_ip(request) if request is not None else None,
        user_agent=request.META.get("HTTP_USER_AGENT", "")[:MAX_USER_AGENT] if request is not None else "",
        changes=changes or {},
    )


def audit_record_many(
    *, action: str, accounts: Iterable[MLAccount], changes: dict | None = None, actor=_NOBODY
) -> int:
    """`audit_record` for each of `accounts` ("sync all" over hundreds), in two queries: the
    workspaces' names, and one insert. Returns how many entries were written (0 when no
    person acted)."""
    accounts = list(accounts)
    request = _request.get()
    if actor is _NOBODY:
        if request is None:
            return 0
        actor = _request_user(request)
    if not accounts:
        return 0
    names = dict(
        Workspace.objects.filter(pk__in={account.workspace_id for account in accounts}).values_list(
            "pk", "name"
        )
    )
    at = timezone.now()
    ip = _client_ip(request) if request is not None else None
    agent = request.META.get("HTTP_USER_AGENT", "")[:MAX_USER_AGENT] if request is not None else ""
    entries = AuditEntry.objects.bulk_create(
        AuditEntry(
            at=at,
            action=action,
            actor_id=actor.pk if actor is not None else None,
            actor_email=actor.email if actor is not None else "",
            workspace_id=account.workspace_id,
            workspace_name=names.get(account.workspace_id, ""),
            account_id=account.pk,
            account_label=account.account_name or account.nickname,
            ip=ip,
            user_agent=agent,
            changes=changes or {},
        )
        for account in accounts
    )
    return len(entries)
