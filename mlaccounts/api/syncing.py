"""How the API reports syncs: one account's outcome as an answer, and the bounded sync-all.

The engine (sync.engine.sync_account) does the work and records the outcome on the
account; this module only turns its SyncResult into the contract's codes, and for
sync-all runs several engine calls at once.
"""

from __future__ import annotations

import logging
import uuid
from types import SimpleNamespace

from django.utils.translation import gettext as _

from accounts.errors import AccountNotFound, DomainError, NoRefreshToken, SyncInProgress
from accounts.mercadolivre.errors import MLError, MLInvalidGrant, MLRateLimited, MLUnauthorized
from accounts.models import AccountStatus, MLAccount
from mlaccounts.api.errors import ApiError, MLRateLimitedError, MLUnavailableError, TokenExpired
from sync import engine

logger = logging.getLogger(__name__)


def cached_data(result: engine.SyncResult) -> SimpleNamespace:
    """The counts a successful sync brought back, shaped for CachedDataSerializer."""
    counts = result.counts
    return SimpleNamespace(
        cached_products=counts.products,
        cached_orders=counts.orders,
        cached_questions=counts.questions,
        cached_claims=counts.claims,
        cached_issues=counts.issues,
        cached_at=result.synced_at,
    )


def failure(result: engine.SyncResult) -> Exception:
    """The API error for a sync that did not succeed (the engine already recorded it)."""
    if result.outcome == engine.Outcome.SKIPPED:
        return SyncInProgress()
    if result.outcome == engine.Outcome.MISSING:
        return AccountNotFound()
    error = result.error
    # The engine marked the account expired for these: the token is dead, reconnect.
    if isinstance(error, MLInvalidGrant | MLUnauthorized | NoRefreshToken):
        return TokenExpired()
    if isinstance(error, MLRateLimited):
        return MLRateLimitedError(retry_after=error.retry_after)
    if isinstance(error, MLError):
        return MLUnavailableError()
    # Not an ML failure: a bug, reported as one.
    return error or RuntimeError(f"sync ended with outcome {result.outcome!r} and no error")


def _item_failure(account_id, code: str, message) -> dict:
    return {"accountId": account_id, "success": False, "code": code, "error": str(message)}


def _item(account_id, result: engine.SyncResult) -> dict:
    if result.ok:
        return {"accountId": account_id, "success": True, "data": cached_data(result)}
    error = failure(result)
    if isinstance(error, ApiError):
        return _item_failure(account_id, error.error_code, error.detail)
    if isinstance(error, DomainError):
        return _item_failure(account_id, error.code, error.message)
    return _internal_error(account_id, error)


def _internal_error(account_id, error: BaseException) -> dict:
    request_id = uuid.uuid4().hex
    logger.error(
        "sync-all: unexpected error for account %s (%s)",
        account_id,
        request_id,
        exc_info=error,
        extra={"event": "api_error", "request_id": request_id, "account_id": str(account_id)},
    )
    message = _("Unexpected error (request id %(request_id)s).") % {"request_id": request_id}
    return _item_failure(account_id, "INTERNAL_ERROR", message)


def sync_accounts(accounts: list[MLAccount], *, workers: int, timeout: float) -> dict:
    """Sync `accounts` with at most `workers` at a time, for at most `timeout` seconds.

    Paused accounts are not synced (the user asked for no syncs) and are reported as
    failed with code ACCOUNT_PAUSED; expired ones are tried, as their owner asked for it.
    Accounts not finished in time are reported as failed with code TIMEOUT (see
    sync.engine.sync_many). Returns ``{"results": [one item per account, in the order
    given], "summary": {"total", "successful", "failed"}}``.
    """
    items: dict = {}
    runnable = []
    for account in accounts:
        if account.status == AccountStatus.PAUSED:
            items[account.pk] = _item_failure(account.pk, "ACCOUNT_PAUSED", _("Account is paused."))
        else:
            runnable.append(account)

    outcomes = engine.sync_many([account.pk for account in runnable], workers=workers, timeout=timeout)
    for account in runnable:
        outcome = outcomes[str(account.pk)]
        if outcome is None:
            items[account.pk] = _item_failure(account.pk, "TIMEOUT", _("Timed out."))
        elif isinstance(outcome, BaseException):
            items[account.pk] = _internal_error(account.pk, outcome)
        else:
            items[account.pk] = _item(account.pk, outcome)
    results = [items[account.pk] for account in accounts]
    successful = sum(1 for item in results if item["success"])
    return {
        "results": results,
        "summary": {"total": len(results), "successful": successful, "failed": len(results) - successful},
    }
