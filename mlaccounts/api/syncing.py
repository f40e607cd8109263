"""How the API reports syncs: one account's outcome as an answer, and sync-all's results.

The engine (sync.engine.sync_account) and the tasks do the work and record the outcome;
sync.outcomes names it with a code. This module only turns codes into the contract's
answers: an error for "sync now", items and a summary for sync-all and its jobs.
"""

from __future__ import annotations

from types import SimpleNamespace

from django.utils.translation import gettext as _

from accounts.errors import AccountNotFound, SyncInProgress
from accounts.models import SyncJob, SyncJobItem
from mlaccounts.api.errors import MLRateLimitedError, MLUnavailableError, TokenExpired
from sync import engine, outcomes

# The API error of each code a sync can end with (its status and its message).
CODE_ERRORS = {
    outcomes.TOKEN_EXPIRED: TokenExpired,
    outcomes.ML_RATE_LIMITED: MLRateLimitedError,
    outcomes.ML_UNAVAILABLE: MLUnavailableError,
    outcomes.SYNC_IN_PROGRESS: SyncInProgress,
    outcomes.NOT_FOUND: AccountNotFound,
}
# Codes only sync-all items carry. PENDING: in a job that is still running.
PENDING = "PENDING"


def cached_data(counts, synced_at) -> SimpleNamespace:
    """The counts a successful sync brought back, shaped for CachedDataSerializer."""
    return SimpleNamespace(
        cached_products=counts.products,
        cached_orders=counts.orders,
        cached_questions=counts.questions,
        cached_claims=counts.claims,
        cached_issues=counts.issues,
        cached_at=synced_at,
    )


def failure(result: engine.SyncResult) -> Exception:
    """The API error for a sync that did not succeed (the engine already recorded it)."""
    code = outcomes.code_for(result.outcome, result.error)
    if code == outcomes.ML_RATE_LIMITED:
        return MLRateLimitedError(retry_after=getattr(result.error, "retry_after", None))
    if code in CODE_ERRORS:
        return CODE_ERRORS[code]()
    # Not an ML failure: a bug, reported as one.
    return result.error or RuntimeError(f"sync ended with outcome {result.outcome!r} and no error")


def code_message(code: str) -> str:
    """What an item's code means, in the request's language."""
    error = CODE_ERRORS.get(code)
    if error is not None:
        return str(getattr(error, "default_detail", None) or error.default_message)
    if code == outcomes.ACCOUNT_PAUSED:
        return _("Account is paused.")
    if code in (outcomes.TIMEOUT, PENDING):
        return _("Still running; the sync finishes in the background.")
    return _("Unexpected error; it was logged.")


def _item(item: SyncJobItem, *, pending_code: str) -> dict:
    if item.finished_at is None:
        return {
            "accountId": item.account_id,
            "success": False,
            "code": pending_code,
            "error": code_message(pending_code),
        }
    if item.success:
        counts = _counts(item.counts or {})
        return {"accountId": item.account_id, "success": True, "data": cached_data(counts, item.synced_at)}
    return {
        "accountId": item.account_id,
        "success": False,
        "code": item.code,
        "error": code_message(item.code),
    }


def _counts(data: dict) -> SimpleNamespace:
    # The counts an item stored, with `issues` computed as the account's own.
    questions, claims = data.get("questions"), data.get("claims")
    issues = None if questions is None and claims is None else (questions or 0) + (claims or 0)
    return SimpleNamespace(
        products=data.get("products"),
        orders=data.get("orders"),
        questions=questions,
        claims=claims,
        issues=issues,
    )


def sync_all_answer(items: list[SyncJobItem]) -> dict:
    """POST sync-all's synchronous answer: syncs not ended by the deadline are TIMEOUT."""
    results = [_item(item, pending_code=outcomes.TIMEOUT) for item in items]
    successful = sum(1 for result in results if result["success"])
    return {
        "results": results,
        "summary": {"total": len(results), "successful": successful, "failed": len(results) - successful},
    }


def job_answer(job: SyncJob, items: list[SyncJobItem]) -> dict:
    """A sync job as GET /api/sync-jobs/:id (and the 202 of sync-all) show it."""
    results = [_item(item, pending_code=PENDING) for item in items]
    pending = sum(1 for item in items if item.finished_at is None)
    successful = sum(1 for result in results if result["success"])
    return {
        "jobId": job.pk,
        "status": "running" if pending else "done",
        "createdAt": job.created_at,
        "results": results,
        "summary": {
            "total": len(results),
            "successful": successful,
            "failed": len(results) - successful - pending,
            "pending": pending,
        },
    }
