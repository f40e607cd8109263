"""Token health math and the single-flight token refresh.

Mercado Livre refresh tokens are single-use and only the most recently issued one works
(mercadolivre-api.md §1.5): two processes refreshing one account at once would leave it
with a dead pair. So `get_fresh_access_token` is the only code in the project that
refreshes, and only the holder of the account's refresh LEASE (a conditional UPDATE with
an expiry, like the sync claim) calls ML. No transaction or row lock is held while it
waits for the budget or for ML: on SQLite a write transaction locks the whole database.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone
from prometheus_client import Counter

from accounts import services
from accounts.errors import NoRefreshToken
from accounts.mercadolivre import deadline, oauth, ratelimit
from accounts.mercadolivre.errors import MLInvalidGrant, MLUnavailable
from accounts.models import AuditAction, MLAccount

logger = logging.getLogger(__name__)

# One per refresh this process attempted under the lease (GET /metrics).
REFRESHES = Counter(
    "mlaccounts_token_refreshes",
    "Token refreshes attempted, by outcome: success, invalid_grant (ML refused: reconnect), "
    "lease_lost (a newer pair was stored meanwhile), no_refresh_token, error (ML unavailable, "
    "rate limited, anything else).",
    ["outcome"],
)
for _outcome in ("success", "invalid_grant", "lease_lost", "no_refresh_token", "error"):
    REFRESHES.labels(_outcome)


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
    """How much life the stored token has left (tokenInfo in api-contract.md).

    A dead grant never looks healthy: for an account whose refresh ML refused (status
    `expired`, reconnect needed) the health is 0 %, `needs_refresh` and `is_expired` are
    true, whatever the access token's own clock says (it may still answer for a few hours,
    but nothing can renew it, and the causes of a refused grant usually revoke it too).
    `time_to_expiry` and `expires_at` stay the access token's own figures.
    """
    health = _clock_health(account, now=now)
    if account.status == MLAccount.Status.EXPIRED:
        return TokenHealth(health.expires_at, health.time_to_expiry, 0, True, True)
    return health


def _clock_health(account: MLAccount, *, now: datetime | None = None) -> TokenHealth:
    """The access token's health by its clock alone (when it was stored, when it expires)."""
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
    """The contract's `tokenInfo` object (camelCase keys, ready to serialise); see token_health."""
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


def refresh_lease_seconds() -> float:
    """How long a refresh lease lasts: the longest the one token call may take, plus slack.

    The budget is taken before the lease, so only the call itself (connect + read timeout)
    runs under it; a holder still running past this is treated as dead and taken over.
    """
    return float(settings.ML_CONNECT_TIMEOUT) + float(settings.ML_READ_TIMEOUT) + 5.0


# Polling for another process's refresh: quick at first (a refresh takes ~100 ms), slower later.
POLL_FIRST = 0.05
POLL_MAX = 0.5


def _renewed(account: MLAccount, *, force: bool, asked_at: datetime) -> bool:
    """Whether the stored token already answers this call (someone else may have renewed it)."""
    if not account.access_token:
        return False
    if force:
        # Renewed since we were asked: five "renew now" clicks cause one refresh at ML.
        return bool(account.last_token_refresh and account.last_token_refresh >= asked_at)
    # The clock, not token_health: an `expired` account's access token may still work
    # (a sync that succeeds with it brings the account back), and refreshing it would
    # only hear the refusal again.
    return not _clock_health(account).needs_refresh


def _refused_meanwhile(account: MLAccount, *, asked_at: datetime) -> bool:
    """Whether a refresh that ran while we waited found the grant dead (same token, no retry)."""
    return account.status == MLAccount.Status.EXPIRED and bool(
        account.disconnected_at and account.disconnected_at >= asked_at
    )


# Not the refresh token: most calls find a healthy token and need not decrypt a second one.
# The sync's claim returns them (services.mlaccount_claim), for `state`.
STATE_FIELDS = (
    "access_token",
    "status",
    "token_expires_at",
    "token_obtained_at",
    "last_token_refresh",
    "disconnected_at",
    "refresh_lease_until",
    "created_at",
)


def get_fresh_access_token(account_id, *, force: bool = False, state: MLAccount | None = None) -> str:
    """An access token for the account that is not about to expire, refreshing if needed.

    With `force`, renew even a healthy token, unless another caller renewed it since this
    call began (five simultaneous "renew now" clicks cause one refresh at ML).

    `state` is the account's row with STATE_FIELDS, read just now by the caller (the sync
    takes it from its claim): the first look uses it instead of reading the row again.

    Single-flight across processes: take the budget, then the refresh lease, call ML with
    no transaction open, save the new pair only if the lease and the spent refresh token
    are still ours, release. A caller finding the lease held polls until the other refresh
    lands and returns its token (or takes over a lease that expired), waiting at most a
    lease, cut to the caller's overall deadline (`deadline.within`).

    Raises NoRefreshToken when there is nothing to refresh with, MLInvalidGrant after
    marking the account `expired` (tokens kept for diagnosis), MLUnavailable when another
    refresh did not finish in time, and any other MLError (transient) with the account
    untouched, for the caller to retry.
    """
    asked_at = timezone.now()
    wait_until = time.monotonic() + deadline.cap(refresh_lease_seconds())
    poll = POLL_FIRST
    while True:
        account = state if state is not None else MLAccount.objects.only(*STATE_FIELDS).get(pk=account_id)
        state = None  # any later look reads the row afresh
        if _renewed(account, force=force, asked_at=asked_at):
            return account.access_token
        if _refused_meanwhile(account, asked_at=asked_at):
            raise MLInvalidGrant("Mercado Livre refused the refresh token", status=400, code="invalid_grant")
        lease = account.refresh_lease_until
        if lease is None or lease < timezone.now():
            # Budget first, so that the lease is never held while waiting for it; the
            # token call below then does not take it again.
            ratelimit.acquire()
            claim = services.mlaccount_refresh_claim(
                account_id=account_id, lease_seconds=refresh_lease_seconds()
            )
            if claim is not None:
                token = _refresh_under_lease(claim, force=force, asked_at=asked_at)
                if token is not None:
                    return token
                continue  # the pair changed under us: look again
        remaining = wait_until - time.monotonic()
        if remaining <= 0:
            raise MLUnavailable("Another renewal of this token did not finish in time", code="refresh_busy")
        time.sleep(min(poll, remaining))
        poll = min(poll * 2, POLL_MAX)


def renew_now(account: MLAccount) -> str:
    """A person's "renew the token now" (the API's refresh-token, the dashboard's button):
    an audit entry, then the forced single-flight refresh. The refreshes of the background
    job and of the syncs call get_fresh_access_token directly: nobody's action, no entry."""
    services.audit_record(action=AuditAction.REFRESH, account=account)
    return get_fresh_access_token(account.pk, force=True)


def _refresh_under_lease(claim: services.RefreshClaim, *, force: bool, asked_at: datetime) -> str | None:
    """Renew the pair while holding `claim`; the new access token, or None if it was not ours to save."""
    try:
        # Re-check under the lease: another refresh may have landed since we looked.
        account = MLAccount.objects.only(*STATE_FIELDS).get(pk=claim.account_id)
        if _renewed(account, force=force, asked_at=asked_at):
            services.mlaccount_refresh_release(claim=claim)
            return None
        if not claim.refresh_token:
            raise NoRefreshToken()
        started = time.monotonic()
        token_set = oauth.refresh_tokens(refresh_token=claim.refresh_token, budget=False)
    except MLInvalidGrant as exc:
        REFRESHES.labels("invalid_grant").inc()
        # Refused: dead (revoked, expired, rotated elsewhere) if it is still the stored one.
        if services.mlaccount_refresh_refused(
            claim=claim,
            message=f"Mercado Livre refused the refresh token: {exc.message}",
            http_status=exc.status,
        ):
            logger.warning(
                "token refresh refused",
                extra={"event": "token_refresh", "account_id": claim.account_id, "outcome": "invalid_grant"},
            )
            raise
        return None  # a newer pair was stored meanwhile (a reconnect): use it
    except BaseException as exc:
        if isinstance(exc, Exception):
            REFRESHES.labels("no_refresh_token" if isinstance(exc, NoRefreshToken) else "error").inc()
        services.mlaccount_refresh_release(claim=claim)
        raise
    stored = services.mlaccount_refresh_store(
        claim=claim,
        access_token=token_set.access_token,
        refresh_token=token_set.refresh_token,
        expires_at=token_set.expires_at,
        scopes=" ".join(token_set.scopes),
    )
    if not stored:
        # The pair changed under us (a reconnect): ours is older; free the lease if still held.
        services.mlaccount_refresh_release(claim=claim)
    REFRESHES.labels("success" if stored else "lease_lost").inc()
    logger.info(
        "token refreshed" if stored else "token refreshed but the lease was lost; pair discarded",
        extra={
            "event": "token_refresh",
            "account_id": claim.account_id,
            "outcome": "success" if stored else "lease_lost",
            "duration_ms": round((time.monotonic() - started) * 1000),
            "expires_at": token_set.expires_at.isoformat(),
        },
    )
    return token_set.access_token if stored else None
