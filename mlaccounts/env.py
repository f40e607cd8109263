"""The strict parsers behind mlaccounts/settings.py, and the rules for keys.

Every variable is parsed strictly: a boolean accepts only true/false style values, so a
typo fails at start-up instead of silently meaning "off". Kept apart from the settings so
that they can be tested and reused (the bench and the probe make keys that pass them).
"""

import json
import os
import re

from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean (true/false/1/0), got {raw!r}")


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be an integer, got {raw!r}") from None


def env_float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return float(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a number, got {raw!r}") from None


def env_limits(name: str) -> dict[str, dict[str, float]] | None:
    """A JSON table ``{"5_green": {"claims": 0.03, ...}, ...}`` of rates from 0 to 1, or None when unset."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return None
    try:
        table = json.loads(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be JSON, got {raw!r}") from None
    valid = isinstance(table, dict) and all(
        isinstance(level, str)
        and isinstance(metrics, dict)
        and all(
            isinstance(metric, str)
            and isinstance(value, int | float)
            and not isinstance(value, bool)
            and 0 <= value <= 1
            for metric, value in metrics.items()
        )
        for level, metrics in table.items()
    )
    if not valid:
        raise ImproperlyConfigured(f'{name} must map levels to {{"metric": rate from 0 to 1}}, got {raw!r}')
    return table


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


_RATE_RE = re.compile(r"^[1-9][0-9]*/(s|sec|m|min|h|hour|d|day)$")


def env_rate(name: str, default: str) -> str:
    """A DRF throttle rate such as "600/min"; anything else fails at start-up."""
    raw = os.environ.get(name, default).strip()
    if not _RATE_RE.match(raw):
        raise ImproperlyConfigured(f"{name} must be a rate such as 600/min or 10/hour, got {raw!r}")
    return raw


# Development keys are only acceptable while DEBUG is on; production must set both.
DEV_SECRET_KEY = "dev-insecure-secret-key-do-not-use-in-production-0123456789abcdef"  # noqa: S105 - DEBUG only
DEV_SALT_KEY = "dev-insecure-salt"
# Keys anyone can read (this repository's examples, build and CI lines, the development
# keys above): a deployment running on one has no secret at all, and whoever holds a
# database dump could decrypt every Mercado Livre token. Compared case-insensitively.
PUBLISHED_KEYS = frozenset(
    key.lower()
    for key in (
        DEV_SECRET_KEY,
        DEV_SALT_KEY,
        "change-me",
        "changeme",
        "x",
        "build-only",
        "ci-salt",
        "secret",
        "test-salt-key",
        "test-secret-key-0123456789abcdefghijklmnopqrstuvwxyz",
        "a-long-random-production-secret-key-0123456789-abcdefghijklmnop",
        "production-salt",
    )
)
MIN_KEY_LENGTH = 32
MIN_KEY_DISTINCT_CHARACTERS = 10
_GENERATE_KEY = "python -c 'import secrets; print(secrets.token_urlsafe(50))'"


def check_key_strength(name: str, keys: list[str]) -> None:
    """Refuse a published, short or repetitive key (each key of a rotation list).

    The message never repeats the key: it is a secret even when it is a weak one.
    """
    for position, key in enumerate(keys, start=1):
        where = f"{name} (key {position} of its comma list)" if len(keys) > 1 else name
        if key.lower() in PUBLISHED_KEYS:
            problem = "is a published example value"
        elif len(key) < MIN_KEY_LENGTH:
            problem = f"is shorter than {MIN_KEY_LENGTH} characters"
        elif len(set(key)) < MIN_KEY_DISTINCT_CHARACTERS:
            problem = f"has fewer than {MIN_KEY_DISTINCT_CHARACTERS} distinct characters"
        else:
            continue
        raise ImproperlyConfigured(
            f"{where} {problem}: with DEBUG off it must be a random secret of your own, "
            f"e.g. from {_GENERATE_KEY} (DEBUG=1 allows the development keys)."
        )
