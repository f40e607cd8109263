"""The sandbox's behaviour switches: token lifetimes, latency, injected failures, a rate limit,
and the webhook notifications it sends (where, how patiently, and how much activity).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any
from urllib.parse import urlsplit

DEFAULT_ACCESS_TOKEN_TTL = 21600  # §1.4: 6 hours
DEFAULT_REFRESH_TOKEN_TTL = 180 * 86400  # §1.5 rule 4: 6 months, restarted at each rotation
DEFAULT_CODE_TTL = 600  # §1.2: short-lived; 10 minutes as Mercado Pago documents
MAX_NOTIFICATION_RETRIES = 20


@dataclass
class SandboxKnobs:
    """Behaviour switches, settable at start and at run time (``POST /_sandbox/config``).

    ``fail_next`` / ``fail_next_token`` are queues of HTTP statuses returned, in order,
    by the next resource / token requests. ``retry_after`` (seconds) adds a Retry-After
    header to every 429; None sends none, as ML does not document one (§5.2).
    ``rate_limit_per_second`` makes the sandbox enforce an app-wide token bucket (burst
    ``rate_limit_burst``, default one second's worth) over every API request.

    Notifications (§6, see ``notifications``): ``notifications_url`` is the app's callback
    URL (None: notifications off, nothing is sent nor missed); a delivery that does not get
    HTTP 200 within ``notification_timeout_ms`` is retried ``notification_retries`` times,
    the first after ``notification_retry_seconds``, doubling each time (ML retries for an
    hour; the sandbox compresses it), then lands in ``/missed_feeds``. ``drop_notifications``
    sends the next N notifications straight to the missed feeds, as if the app had been
    unreachable for the whole hour. ``activity_seconds`` makes a random demo seller change
    something (and notify) every that many seconds; None: only ``/_sandbox/activity`` does.
    """

    latency_ms: float = 0
    fail_rate_429: float = 0.0
    fail_rate_5xx: float = 0.0
    fail_5xx_status: int = 503
    retry_after: int | None = None
    fail_next: list[int] = field(default_factory=list)
    fail_next_token: list[int] = field(default_factory=list)
    access_token_ttl: int = DEFAULT_ACCESS_TOKEN_TTL
    refresh_token_ttl: int = DEFAULT_REFRESH_TOKEN_TTL
    code_ttl: int = DEFAULT_CODE_TTL
    old_access_tokens_survive_refresh: bool = True
    rate_limit_per_second: float | None = None
    rate_limit_burst: float | None = None
    notifications_url: str | None = None
    notification_retries: int = 3
    notification_retry_seconds: float = 1.0
    notification_timeout_ms: int = 500  # §6.4: HTTP 200 within 500 ms or the delivery failed
    drop_notifications: int = 0
    activity_seconds: float | None = None


KNOB_NAMES = frozenset(f.name for f in fields(SandboxKnobs))


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_url(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError("notifications_url must be null or an http:// or https:// URL")
    split = urlsplit(value)
    if split.scheme not in {"http", "https"} or not split.hostname:
        raise ValueError("notifications_url must be null or an http:// or https:// URL")
    return value


def check_knob(name: str, value: Any) -> Any:
    """Validate one knob value and return it normalised; ValueError when invalid."""
    if name not in KNOB_NAMES:
        raise ValueError(f"unknown knob {name!r}")
    if name in {"fail_rate_429", "fail_rate_5xx"}:
        if not _is_number(value) or not 0 <= value <= 1:
            raise ValueError(f"{name} must be a probability between 0 and 1")
        return float(value)
    if name == "latency_ms":
        if not _is_number(value) or value < 0:
            raise ValueError("latency_ms must be a number >= 0")
        return value
    if name in {"access_token_ttl", "refresh_token_ttl", "code_ttl"}:
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise ValueError(f"{name} must be an integer >= 0")
        return value
    if name == "fail_5xx_status":
        if not isinstance(value, int) or isinstance(value, bool) or not 500 <= value <= 599:
            raise ValueError("fail_5xx_status must be an HTTP status between 500 and 599")
        return value
    if name == "retry_after":
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 0):
            raise ValueError("retry_after must be null or an integer >= 0")
        return value
    if name in {"fail_next", "fail_next_token"}:
        if not isinstance(value, list) or not all(
            isinstance(v, int) and not isinstance(v, bool) and 100 <= v <= 599 for v in value
        ):
            raise ValueError(f"{name} must be a list of HTTP statuses")
        return list(value)
    if name == "old_access_tokens_survive_refresh":
        if not isinstance(value, bool):
            raise ValueError(f"{name} must be true or false")
        return value
    if name == "notifications_url":
        return _check_url(value)
    if name == "notification_retries":
        if not _is_int(value) or not 0 <= value <= MAX_NOTIFICATION_RETRIES:
            raise ValueError(f"notification_retries must be an integer from 0 to {MAX_NOTIFICATION_RETRIES}")
        return value
    if name == "notification_retry_seconds":
        if not _is_number(value) or not 0 < value <= 3600:
            raise ValueError("notification_retry_seconds must be a number > 0 (at most 3600)")
        return float(value)
    if name == "notification_timeout_ms":
        # Capped so that stopping the sandbox never waits long for a delivery in flight.
        if not _is_int(value) or not 1 <= value <= 10_000:
            raise ValueError("notification_timeout_ms must be an integer from 1 to 10000")
        return value
    if name == "drop_notifications":
        if not _is_int(value) or value < 0:
            raise ValueError("drop_notifications must be an integer >= 0")
        return value
    # rate_limit_per_second, rate_limit_burst, activity_seconds: 0 switches them off
    if value is None or value == 0:
        return None
    if not _is_number(value) or value < 0:
        raise ValueError(f"{name} must be null or a number > 0")
    return float(value)
