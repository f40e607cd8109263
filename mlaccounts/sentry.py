"""Optional error reporting to Sentry (SENTRY_DSN), with tokens scrubbed before anything leaves.

Mercado Livre tokens (`APP_USR-…` access tokens, `TG-…` refresh tokens and OAuth codes), the
API's bearer tokens, passwords, secrets and cookies must never reach Sentry, where they would
outlive every rotation. `send_default_pii=False` keeps the user, the cookies and the IP out;
request bodies are never sent (the API's connect-by-token takes a token pair in its body);
and `scrub_event` / `scrub_breadcrumb` walk what is left (headers, query strings, log
messages and their arguments, exception messages, local variables of every frame, extra
data) and replace each sensitive value. They are plain functions, testable without a DSN.
"""

from __future__ import annotations

import re
from typing import Any

FILTERED = "[Filtered]"
MAX_DEPTH = 20

# A key whose value is replaced whole, wherever it is (dicts of any depth): request headers,
# cookies, frame variables, extra data.
SENSITIVE_KEY = re.compile(
    r"token|code_verifier|authorization|password|passwd|secret|cookie|session|csrf|api_?key|signature|dsn",
    re.IGNORECASE,
)
# Inside any text: a bearer credential, an ML token or code, a `key=value` or `"key": value`
# of a sensitive key (query strings, reprs, JSON in a message), and the webhook's secret path.
_PATTERNS = (
    (re.compile(r"(?i)\b(bearer)\s+[^\s\"',;]+"), r"\1 " + FILTERED),
    (re.compile(r"\b(?:APP_USR|TG)-[A-Za-z0-9._~+/=-]+"), FILTERED),
    (
        re.compile(
            r"(?i)([\"']?\b(?:access_token|refresh_token|token|code_verifier|client_secret|password|secret)"
            r"\b[\"']?\s*[=:]\s*[\"']?)[^\"'\s&,;)}]+"
        ),
        r"\1" + FILTERED,
    ),
    (re.compile(r"(/webhooks/mercadolivre/)[^/\s?#\"']+"), r"\1" + FILTERED),
    # A reconnect link's token (mlaccounts.views.reconnect).
    (re.compile(r"(/reconnect/)[^/\s?#\"']+"), r"\1" + FILTERED),
)


def scrub_text(text: str) -> str:
    """`text` with every token-shaped part replaced."""
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def scrub(value: Any, depth: int = 0) -> Any:
    """A copy of `value` (dicts, lists, tuples, text) with sensitive keys and token-shaped text scrubbed.

    A list of two-item lists whose first item is a sensitive name (headers as pairs) has
    the second replaced too.
    """
    if depth > MAX_DEPTH:
        return FILTERED
    if isinstance(value, str):
        return scrub_text(value)
    if isinstance(value, dict):
        return {
            key: FILTERED
            if isinstance(key, str) and SENSITIVE_KEY.search(key) and _present(item)
            else scrub(item, depth + 1)
            for key, item in value.items()
        }
    if isinstance(value, list | tuple):
        items = [
            [item[0], FILTERED]
            if isinstance(item, list | tuple)
            and len(item) == 2
            and isinstance(item[0], str)
            and SENSITIVE_KEY.search(item[0])
            else scrub(item, depth + 1)
            for item in value
        ]
        return items if isinstance(value, list) else tuple(items)
    return value


def _present(item: Any) -> bool:
    # An empty or missing value says nothing: keep it (a null token field reads as such).
    return item not in (None, "", [], {})


def scrub_event(event: dict, hint: dict | None = None) -> dict:
    """Sentry's `before_send`: the event, scrubbed."""
    return scrub(event)


def scrub_breadcrumb(crumb: dict, hint: dict | None = None) -> dict:
    """Sentry's `before_breadcrumb`: the breadcrumb (a log line, an HTTP call), scrubbed."""
    return scrub(crumb)


def init(*, dsn: str) -> None:
    """Start reporting to `dsn`: Django's and Celery's errors, nothing personal, tokens scrubbed.

    SENTRY_ENVIRONMENT and SENTRY_RELEASE, when set, are read by sentry-sdk itself.
    """
    import sentry_sdk
    from sentry_sdk.integrations.celery import CeleryIntegration
    from sentry_sdk.integrations.django import DjangoIntegration

    sentry_sdk.init(
        dsn=dsn,
        integrations=[DjangoIntegration(), CeleryIntegration()],
        send_default_pii=False,
        # The API's connect-by-token takes a token pair in its body: never send bodies.
        max_request_body_size="never",
        before_send=scrub_event,
        before_breadcrumb=scrub_breadcrumb,
        # Errors only: no performance tracing unless configured in Sentry's own variables.
        traces_sample_rate=0.0,
    )
