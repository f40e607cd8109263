"""Token health math and the single-flight token refresh.

Mercado Livre refresh tokens are single-use and only the most recently issued one works
(mercadolivre-api.md §1.5): two processes refreshing one account at once would leave it
with a dead pair. So `get_fresh_access_token` is the only code in the project that
refreshes, and it does so under a row lock, re-checking under the lock whether another
process already did the work, and saving the new pair in the same transaction.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from accounts import services
from accounts.errors import NoRefreshToken
from accounts.mercadolivre import oauth
from accounts.mercadolivre.errors import MLInvalidGrant
from accounts.models import MLAccount

logger = logging.getLogger(__name__)


def refresh_margin() -> timedelta:
    return timedelta(seconds=settings.ML_TOKEN_REFRESH_MARGIN)


@dataclass(frozen=True)
class TokenHealth:
    expires_at: datetime | None
    time_to_expiry: int | None  # whole seconds, negative once expired
    health_percent: int  # 0..100, the share of the token's lifetime left
    is_expired: bool
    needs_refresh: bool


def token_health(account: MLAccount, *, now: datetime | None = None) -> TokenHealth:
    """How much life the stored access token has left (tokenInfo in api-contract.md)."""
    now = now or timezone.now()
    expires_at = account.token_expires_at
    if expires_at is None:
        return TokenHealth(None, None, 0, True, True)
    remaining = (expires_at - now).total_seconds()
    # The lifetime starts when the pair was stored here (connect or refresh).
    started = account.token_obtained_at or account.last_token_refresh or account.created_at or now
    lifetime = (expires_at - started).total_seconds()
    if remaining <= 0:
        percent = 0
    elif lifetime <= 0:
        percent = 100
    else:
        percent = max(0, min(100, round(remaining / lifetime * 100)))
    return TokenHealth(
        expires_at=expires_at,
        time_to_expiry=math.floor(remaining),
        health_percent=percent,
        is_expired=remaining <= 0,
        needs_refresh=remaining <= refresh_margin().total_seconds(),
    )


def token_info(account: MLAccount, *, now: datetime | None = None) -> dict:
    """The contract's `tokenInfo` object (camelCase keys, ready to serialise)."""
    health = token_health(account, now=now)
    return {
        "accountId": str(account.pk),
        "mlUserId": str(account.ml_user_id),
        "tokenExpiry": health.expires_at,
        "timeToExpiry": health.time_to_expiry,
        "healthPercent": health.health_percent,
        "isExpired": health.is_expired,
        "needsRefresh": health.needs_refresh,
        "lastTokenRefresh": account.last_token_refresh,
    }


def get_fresh_access_token(account_id, *, force: bool = False) -> str:
    """An access token for the account that is not about to expire, refreshing if needed.

    With `force`, renew even a healthy token, unless another caller renewed it while we
    waited for the lock (five simultaneous "renew now" clicks cause one refresh at ML).

    Raises NoRefreshToken when there is nothing to refresh with, MLInvalidGrant after
    marking the account `expired` (tokens kept for diagnosis), and any other MLError
    (transient) with the account untouched, for the caller to retry.
    """
    asked_at = timezone.now()
    if not force:
        # Fast path without a lock: most calls find a healthy token.
        account = MLAccount.objects.only(
            "access_token", "token_expires_at", "token_obtained_at", "last_token_refresh", "created_at"
        ).get(pk=account_id)
        if account.access_token and not token_health(account).needs_refresh:
            return account.access_token

    invalid_grant = None
    with transaction.atomic():
        account = MLAccount.objects.select_for_update().get(pk=account_id)
        # Re-check under the lock: another process may have refreshed while we waited.
        if force:
            if account.last_token_refresh and account.last_token_refresh >= asked_at and account.access_token:
                return account.access_token
        elif account.access_token and not token_health(account).needs_refresh:
            return account.access_token
        if not account.refresh_token:
            raise NoRefreshToken()

        started = time.monotonic()
        try:
            token_set = oauth.refresh_tokens(refresh_token=account.refresh_token)
        except MLInvalidGrant as exc:
            # The refresh token is dead (revoked, expired, or rotated elsewhere): under our
            # lock the stored pair is the latest, so this is not a lost race.
            services.mlaccount_mark_expired(
                account_id=account.pk,
                message=f"Mercado Livre refused the refresh token: {exc.message}",
                http_status=exc.status,
            )
            invalid_grant = exc
        else:
            services.mlaccount_store_tokens(
                account_id=account.pk,
                access_token=token_set.access_token,
                refresh_token=token_set.refresh_token,
                expires_at=token_set.expires_at,
                scopes=" ".join(token_set.scopes),
            )
            logger.info(
                "token refreshed",
                extra={
                    "event": "token_refresh",
                    "account_id": str(account.pk),
                    "outcome": "success",
                    "duration_ms": round((time.monotonic() - started) * 1000),
                    "expires_at": token_set.expires_at.isoformat(),
                },
            )
            return token_set.access_token
    # Raised after the transaction committed, so the `expired` mark is kept.
    logger.warning(
        "token refresh refused",
        extra={"event": "token_refresh", "account_id": str(account_id), "outcome": "invalid_grant"},
    )
    raise invalid_grant
