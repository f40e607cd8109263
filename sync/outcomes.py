"""How a sync ended, in every form it is shown: event kind, history sentence, API code, words.

The one place that maps a sync's outcome (or an ML failure) to what people and programs
read: the engine's history (`describe`), the API's and the sync jobs' codes (`code_for`),
the dashboard's rows (`problem`) and messages (`ml_error_message`).
"""

from __future__ import annotations

from django.utils.translation import gettext as _

from accounts.errors import NoRefreshToken
from accounts.mercadolivre.errors import (
    MLBadResponse,
    MLError,
    MLInvalidGrant,
    MLRateLimited,
    MLUnauthorized,
    MLUnavailable,
)
from accounts.models import EventKind


class Outcome:
    SUCCESS = "success"
    FAILED = "failed"
    SKIPPED = "skipped"  # another sync holds the claim
    MISSING = "missing"  # the account no longer exists


# The API's codes for a sync that did not succeed (api-contract.md), and for sync-all items.
TOKEN_EXPIRED = "TOKEN_EXPIRED"  # noqa: S105 - an error code, not a secret
ML_RATE_LIMITED = "ML_RATE_LIMITED"
ML_UNAVAILABLE = "ML_UNAVAILABLE"
SYNC_IN_PROGRESS = "SYNC_IN_PROGRESS"
NOT_FOUND = "NOT_FOUND"
INTERNAL_ERROR = "INTERNAL_ERROR"
ACCOUNT_PAUSED = "ACCOUNT_PAUSED"
TIMEOUT = "TIMEOUT"


def classify(error: Exception) -> tuple[str, bool]:
    """The event kind of a failure and whether it means the token is dead (reconnect)."""
    if isinstance(error, MLInvalidGrant | NoRefreshToken | MLUnauthorized):
        return EventKind.AUTH, True
    if isinstance(error, MLRateLimited):
        return EventKind.RATE_LIMITED, False
    if isinstance(error, MLUnavailable):
        return EventKind.UNAVAILABLE, False
    if isinstance(error, MLBadResponse):
        return EventKind.BAD_RESPONSE, False
    return EventKind.OTHER, False


def describe(error: Exception) -> str:
    """A sentence for the error history; ML's text, never a token."""
    if isinstance(error, MLInvalidGrant):
        return f"Mercado Livre refused to renew the token ({error.message}); reconnect the account."
    if isinstance(error, NoRefreshToken):
        return "No refresh token is stored; reconnect the account."
    if isinstance(error, MLUnauthorized):
        return f"Mercado Livre rejected the token even after renewing it ({error.message})."
    if isinstance(error, MLRateLimited):
        return f"Mercado Livre rate limit reached ({error.message})."
    if isinstance(error, MLUnavailable):
        return f"Mercado Livre is unavailable ({error.message})."
    if isinstance(error, MLBadResponse):
        return f"Mercado Livre sent an unexpected answer ({error.message})."
    return str(error)


def code_for(outcome: str, error: Exception | None) -> str:
    """The API code of a sync's outcome: "" for a success, else e.g. TOKEN_EXPIRED."""
    if outcome == Outcome.SUCCESS:
        return ""
    if outcome == Outcome.SKIPPED:
        return SYNC_IN_PROGRESS
    if outcome == Outcome.MISSING:
        return NOT_FOUND
    if error is not None and classify(error)[1]:
        # The engine marked the account expired: the token is dead, reconnect.
        return TOKEN_EXPIRED
    if isinstance(error, MLRateLimited):
        return ML_RATE_LIMITED
    if isinstance(error, MLError):
        return ML_UNAVAILABLE
    return INTERNAL_ERROR  # not an ML failure: a bug


def problem(kind: str | None) -> str:
    """What went wrong with a failed sync, in words a seller understands, by event kind."""
    if kind == EventKind.AUTH:
        return _("Mercado Livre no longer accepts this account's authorization. Reconnect it.")
    if kind == EventKind.RATE_LIMITED:
        return _("Mercado Livre asked us to slow down. The next sync will try again.")
    if kind == EventKind.UNAVAILABLE:
        return _("Mercado Livre was not answering. The next sync will try again.")
    if kind == EventKind.BAD_RESPONSE:
        return _("Mercado Livre sent an answer we could not read. The next sync will try again.")
    return _("The last sync failed. The next sync will try again.")


def ml_error_message(error: MLError) -> str:
    """Words a seller understands for a failure at Mercado Livre outside a sync."""
    if isinstance(error, MLUnavailable):
        return _("Mercado Livre is not answering right now. Please try again in a few minutes.")
    if isinstance(error, MLRateLimited):
        return _("Mercado Livre asked us to slow down. Please try again in a minute.")
    return _("Mercado Livre did not accept the connection. Please try again; nothing was changed.")
