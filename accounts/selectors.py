"""Reads. Every lookup of a user's Mercado Livre accounts goes through here.

Another user's account and an id that does not exist are indistinguishable to the caller
(AccountNotFound, a 404), so ids cannot be probed.
"""

import uuid
from datetime import datetime

from django.db.models import Q, QuerySet

from accounts.errors import AccountNotFound
from accounts.models import AccountEvent, MLAccount


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
