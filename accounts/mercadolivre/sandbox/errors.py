"""ML's error bodies as the sandbox sends them (§1.7, §2, §5.1), and the early answer of a route."""

from __future__ import annotations

from typing import Any


class SandboxOAuthError(Exception):
    """A token-endpoint error, rendered as ML's §1.7 body."""

    def __init__(self, error: str, description: str, status: int = 400):
        super().__init__(f"{error}: {description}")
        self.error = error
        self.description = description
        self.status = status

    def body(self) -> dict[str, Any]:
        """The JSON body ML sends with this error."""
        return oauth_error_body(self.error, self.description, self.status)


INVALID_GRANT = (
    "Error validating grant. Your authorization code or refresh token may be expired or it was already used"
)


def oauth_error_body(error: str, description: str, status: int = 400) -> dict[str, Any]:
    # The token endpoint says `error_description` where the rest of the API says `message`.
    return {"error_description": description, "error": error, "status": status, "cause": []}


def api_error_body(status: int, error: str, message: str) -> dict[str, Any]:
    return {"message": message, "error": error, "status": status, "cause": []}


# §2: the 401 carries the odd `error: not_found`; §5.1 generic bodies otherwise.
UNAUTHORIZED = api_error_body(401, "not_found", "invalid_token")
FORBIDDEN = api_error_body(403, "forbidden", "forbidden")
TOO_MANY = api_error_body(429, "too_many_requests", "Too Many Requests")


def failure_body(status: int, *, token_endpoint: bool) -> dict[str, Any]:
    if status == 429:
        if token_endpoint:
            body = oauth_error_body("local_rate_limited", "Too many requests, retry after a few seconds", 429)
            body["message"] = "Too Many Requests"
            return body
        return dict(TOO_MANY)
    if status == 401:
        return dict(UNAUTHORIZED)
    if status == 403:
        return dict(FORBIDDEN)
    names = {
        500: ("internal_server_error", "Internal server error"),
        502: ("bad_gateway", "Bad Gateway"),
        503: ("service_unavailable", "Service Unavailable"),
        504: ("gateway_timeout", "Gateway Timeout"),
    }
    error, message = names.get(status, ("error", f"Injected HTTP {status}"))
    return api_error_body(status, error, message)


class Reply(Exception):
    """Raised by a route to answer at once with a JSON (or HTML) error."""

    def __init__(self, status: int, body: dict[str, Any] | str, headers: dict[str, str] | None = None):
        super().__init__(status)
        self.status = status
        self.body = body
        self.headers = headers or {}


def bad_request(message: str, error: str = "bad_request") -> Reply:
    return Reply(400, api_error_body(400, error, message))
