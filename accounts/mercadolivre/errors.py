"""The typed errors of the Mercado Livre client and the one place that builds them.

Callers classify failures by type, never by parsing text: ``MLUnauthorized`` means
"refresh once and retry", ``MLInvalidGrant`` means "the seller must reconnect",
``MLRateLimited`` and ``MLUnavailable`` are transient, everything else is a bug or a
configuration problem that should fail loudly (mercadolivre-api.md §1.7, §2, §5.1).
"""

from __future__ import annotations

import email.utils
import math
import re
from datetime import UTC, datetime

import requests

# ML tokens look like APP_USR-… (access) and TG-… (refresh, authorization codes). An
# error text should never echo one, but these strings end up in logs, the database
# (AccountEvent) and the UI, so scrub defensively anyway.
_SECRET_PATTERNS = re.compile(r"(APP_USR-[\w-]+|TG-[\w-]+|Bearer\s+\S+)", re.IGNORECASE)
_MAX_MESSAGE_LENGTH = 500


def redact(text: str) -> str:
    """Return ``text`` with anything that looks like an ML token replaced, and bounded."""
    cleaned = _SECRET_PATTERNS.sub("[redacted]", text)
    if len(cleaned) > _MAX_MESSAGE_LENGTH:
        cleaned = cleaned[: _MAX_MESSAGE_LENGTH - 1] + "…"
    return cleaned


class MLError(Exception):
    """Any failure talking to Mercado Livre.

    ``status`` is the HTTP status (None when no response arrived), ``code`` ML's machine
    code (its ``error`` or ``code`` field, or a local fallback such as "unavailable") and
    ``message`` a human-readable text that never contains a token.
    """

    default_code = "ml_error"
    default_message = "Mercado Livre request failed"

    def __init__(self, message: str = "", *, status: int | None = None, code: str | None = None) -> None:
        self.status = status
        self.code = code or self.default_code
        self.message = redact(message or self.default_message)
        super().__init__(self.message)

    def __str__(self) -> str:
        if self.status is None:
            return f"{self.message} ({self.code})"
        return f"{self.message} (HTTP {self.status}, {self.code})"

    def __repr__(self) -> str:
        return f"{type(self).__name__}(status={self.status!r}, code={self.code!r}, message={self.message!r})"


class MLUnauthorized(MLError):
    """401: the access token is invalid, expired or revoked (§2). Refresh once, then retry."""

    default_code = "unauthorized"
    default_message = "Mercado Livre rejected the access token"


class MLInvalidGrant(MLError):
    """400 ``invalid_grant`` from the token endpoint (§1.7): the grant is dead.

    The code or refresh token was used already, expired, revoked or belongs to another
    client. Not retryable; before marking the account expired, re-read the stored pair
    because another worker may have rotated it (§1.5).
    """

    default_code = "invalid_grant"
    default_message = "Mercado Livre rejected the authorization grant"


class MLForbidden(MLError):
    """403 (§5.1): another user's token, missing scopes, blocked app or IP, PolicyAgent."""

    default_code = "forbidden"
    default_message = "Mercado Livre refused access to the resource"


class MLBadRequest(MLError):
    """Any other 4xx: invalid_client, invalid_request, unsupported_grant_type, 404…

    These point at a bug or a misconfigured application, not at the seller's account.
    """

    default_code = "bad_request"
    default_message = "Mercado Livre rejected the request"


class MLRateLimited(MLError):
    """429 from ML (``too_many_requests``, ``local_rate_limited``) or our own budget ran out.

    ``retry_after`` is in seconds when known (ML's ``Retry-After`` header, which is not
    documented but honoured when present, §5.2; or the wait our budget computed).
    """

    default_code = "too_many_requests"
    default_message = "Mercado Livre rate limit reached"

    def __init__(
        self,
        message: str = "",
        *,
        status: int | None = 429,
        code: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, status=status, code=code)
        self.retry_after = retry_after


class MLUnavailable(MLError):
    """5xx, timeouts and connection errors: transient, retry later with back-off."""

    default_code = "unavailable"
    default_message = "Mercado Livre is unavailable"


class MLBadResponse(MLError):
    """A response we cannot use: not JSON, not an object, or missing an expected field."""

    default_code = "bad_response"
    default_message = "Unexpected response from Mercado Livre"


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Parse a ``Retry-After`` header given in seconds or as an HTTP-date; None if unusable."""
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    if not math.isfinite(seconds):
        return None
    return max(0.0, seconds)


def _body_fields(response: requests.Response) -> tuple[str, str]:
    """Return (code, message) from an ML error body, or empty strings for a non-JSON body."""
    try:
        body = response.json()
    except ValueError:  # requests' JSONDecodeError is a ValueError
        return "", ""
    if not isinstance(body, dict):
        return "", ""
    # The generic body has `error` + `message`; the token endpoint `error` +
    # `error_description` (older answers used `message`); PolicyAgent sends `code`
    # and no `error` (§1.7, §5.1). Prefer the first non-empty string of each pair.
    code = next((v for v in (body.get("error"), body.get("code")) if isinstance(v, str) and v), "")
    message = next(
        (v for v in (body.get("message"), body.get("error_description")) if isinstance(v, str) and v),
        "",
    )
    return code, message


def error_from_response(response: requests.Response) -> MLError:
    """Build the typed error for a non-successful ML response (§1.7, §2, §5.1).

    Tolerates bodies that are not JSON (proxies answer 502/504 with HTML). Never keeps a
    reference to the response, whose request carries the bearer token or client secret.
    """
    status = response.status_code
    code, message = _body_fields(response)
    if not message:
        message = f"HTTP {status} {response.reason or ''}".strip()

    if status == 429:
        return MLRateLimited(
            message,
            status=status,
            code=code or "too_many_requests",
            retry_after=parse_retry_after(response.headers.get("Retry-After")),
        )
    if 500 <= status <= 599:
        return MLUnavailable(message, status=status, code=code or "unavailable")
    if 400 <= status <= 499:
        # invalid_grant is documented as 400; accept it on any 4xx so a dead grant is
        # never mistaken for a transient or configuration error.
        if code == "invalid_grant":
            return MLInvalidGrant(message, status=status, code=code)
        # invalid_client may come as 401 (§1.7 [?]): it is the app's credentials that are
        # wrong, not the seller's token, so it must not look like MLUnauthorized.
        if code == "invalid_client":
            return MLBadRequest(message, status=status, code=code)
        if status == 401:
            # ML's 401 body says error "not_found" with message "invalid_token" (§2).
            return MLUnauthorized(message, status=status, code=code or "unauthorized")
        if status == 403:
            return MLForbidden(message, status=status, code=code or "forbidden")
        return MLBadRequest(message, status=status, code=code or ("not_found" if status == 404 else ""))
    return MLBadResponse(message, status=status, code=code or "unexpected_status")
