"""The bundled sandbox: a local fake of the Mercado Livre API, served over real HTTP.

Mercado Livre has no sandbox of its own (mercadolivre-api.md §7), so this module plays both
ML hosts on one port: the browser authorization page (``/authorization``) and the REST API
(``/oauth/token``, ``/users/me``, the counting searches of §4). It reproduces the quirks the
app must survive (§9): single-use rotating refresh tokens where only the latest one works,
PKCE, form-only token requests, Bearer-only resource calls, ML's odd error bodies, and
injectable 429s, 5xx and latency. ``/_sandbox/*`` holds the test controls (knobs, stats,
minting tokens without a browser).

It is a leaf: standard library only, nothing from Django or the rest of the project, so the
``ml_sandbox`` command, the tests, the seeding command and a benchmark can all use it.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import hashlib
import hmac
import html
import json
import os
import random
import re
import secrets
import socket
import sys
import tempfile
import threading
import time
import traceback
from bisect import bisect_left, bisect_right
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime, timedelta, timezone
from functools import lru_cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

__all__ = [
    "CALLBACK_PATH_SUFFIX",
    "DEMO_SELLERS",
    "SANDBOX_APP",
    "SANDBOX_CLIENT_ID",
    "SANDBOX_CLIENT_SECRET",
    "DemoSeller",
    "SandboxApp",
    "SandboxKnobs",
    "SandboxOAuthError",
    "SandboxServer",
    "SandboxState",
    "mint_into_state_file",
    "serve_forever",
    "start_sandbox",
    "synthetic_seller",
]

SANDBOX_CLIENT_ID = "sandbox-app"
SANDBOX_CLIENT_SECRET = "sandbox-secret"  # noqa: S105 - the sandbox's public demo secret
# Registered redirect URIs: any local or HTTPS URI whose path ends with the app's callback.
CALLBACK_PATH_SUFFIX = "/ml-accounts/connect/callback/"

DEFAULT_ACCESS_TOKEN_TTL = 21600  # §1.4: 6 hours
DEFAULT_REFRESH_TOKEN_TTL = 180 * 86400  # §1.5 rule 4: 6 months, restarted at each rotation
DEFAULT_CODE_TTL = 600  # §1.2: short-lived; 10 minutes as Mercado Pago documents
TOKEN_SCOPE = "offline_access read write"  # noqa: S105 - not a secret
STATE_FILE_VERSION = 1

# ML answers in the seller's local time with millis and an offset (§0).
_LOCAL_TZ = timezone(timedelta(hours=-3))
_DAY = 86400


# --- Apps and demo sellers -------------------------------------------------------------------


@dataclass(frozen=True)
class SandboxApp:
    """A registered application: credentials, its numeric APP ID, and the PKCE toggle (§1.1)."""

    client_id: str
    client_secret: str
    app_id: int
    pkce: bool = True


SANDBOX_APP = SandboxApp(SANDBOX_CLIENT_ID, SANDBOX_CLIENT_SECRET, app_id=5503910054141466)


@dataclass(frozen=True)
class DemoSeller:
    """A seller the sandbox knows, with the sizes its searches report.

    ``listings`` are active listings, ``orders`` paid orders of the last 30 days,
    ``questions`` unanswered questions and ``claims`` open claims. Every search also has
    data outside those filters, so a client that forgets a filter sees a different
    number: listings/8 paused and listings/4 closed items, orders/2 orders 32–90 days
    old, 3×questions answered questions and 3×claims closed claims.
    """

    id: int
    nickname: str
    email: str
    first_name: str
    last_name: str
    site_id: str
    listings: int
    orders: int
    questions: int
    claims: int
    registration_date: str = "2019-05-14T10:21:07.000-03:00"


# Newer ML accounts have ids above 2^32 (§0), hence the new seller's id.
DEMO_SELLERS: list[DemoSeller] = [
    DemoSeller(
        241500733,
        "CASA_DA_ANA",
        "test_user_241500733@testuser.com",
        "Ana",
        "Ribeiro",
        "MLB",
        listings=37,
        orders=58,
        questions=4,
        claims=1,
        registration_date="2017-03-02T09:12:44.000-03:00",
    ),
    DemoSeller(
        88221144,
        "MEGASTORE_BR",
        "test_user_88221144@testuser.com",
        "Marcos",
        "Oliveira",
        "MLB",
        listings=4820,
        orders=12640,
        questions=213,
        claims=27,
        registration_date="2011-08-19T14:03:10.000-03:00",
    ),
    DemoSeller(
        2_500_000_001_234,
        "LOJA_NOVA_TESTE",
        "test_user_2500000001234@testuser.com",
        "Beatriz",
        "Souza",
        "MLB",
        listings=0,
        orders=0,
        questions=0,
        claims=0,
        registration_date="2026-01-05T16:40:00.000-03:00",
    ),
    DemoSeller(
        1423876650,
        "MODA_PAULISTA",
        "test_user_1423876650@testuser.com",
        "Carla",
        "Mendes",
        "MLB",
        listings=146,
        orders=312,
        questions=11,
        claims=2,
        registration_date="2020-10-11T11:30:00.000-03:00",
    ),
    DemoSeller(
        312987456,
        "TECNO_BAIRES",
        "test_user_312987456@testuser.com",
        "Julián",
        "Fernández",
        "MLA",
        listings=512,
        orders=930,
        questions=18,
        claims=3,
        registration_date="2018-02-27T08:05:51.000-03:00",
    ),
    DemoSeller(
        1130456789,
        "GIGA_OUTLET",
        "test_user_1130456789@testuser.com",
        "Rafael",
        "Costa",
        "MLB",
        listings=1250,
        orders=2104,
        questions=57,
        claims=9,
        registration_date="2019-06-30T19:45:02.000-03:00",
    ),
]


def synthetic_seller(user_id: int) -> DemoSeller:
    """Return a deterministic made-up seller for an id that is not a demo seller.

    Lets a benchmark or seeding command mint tokens for hundreds of accounts; the
    authorization page only offers ``DEMO_SELLERS``.
    """
    digest = int.from_bytes(hashlib.sha256(str(user_id).encode()).digest()[:8], "big")
    return DemoSeller(
        user_id,
        f"SANDBOX_{user_id}",
        f"test_user_{user_id}@testuser.com",
        "Sandbox",
        f"Seller {user_id}",
        "MLB",
        listings=digest % 600,
        orders=(digest >> 12) % 900,
        questions=(digest >> 24) % 40,
        claims=(digest >> 32) % 6,
    )


_SITES = [
    {"default_currency_id": "ARS", "id": "MLA", "name": "Argentina"},
    {"default_currency_id": "BRL", "id": "MLB", "name": "Brasil"},
    {"default_currency_id": "MXN", "id": "MLM", "name": "Mexico"},
    {"default_currency_id": "COP", "id": "MCO", "name": "Colombia"},
    {"default_currency_id": "CLP", "id": "MLC", "name": "Chile"},
    {"default_currency_id": "UYU", "id": "MLU", "name": "Uruguay"},
]
_CURRENCY = {site["id"]: site["default_currency_id"] for site in _SITES}
_COUNTRY = {"MLA": "AR", "MLB": "BR", "MLM": "MX", "MCO": "CO", "MLC": "CL", "MLU": "UY"}
_PROFILE_HOST = {"MLB": "perfil.mercadolivre.com.br"}
_DEFAULT_PROFILE_HOST = "perfil.mercadolibre.com.ar"


# --- Knobs -------------------------------------------------------------------------------------


@dataclass
class SandboxKnobs:
    """Behaviour switches, settable at start and at run time (``POST /_sandbox/config``).

    ``fail_next`` / ``fail_next_token`` are queues of HTTP statuses returned, in order,
    by the next resource / token requests. ``retry_after`` (seconds) adds a Retry-After
    header to every 429; None sends none, as ML does not document one (§5.2).
    ``rate_limit_per_second`` makes the sandbox enforce an app-wide token bucket (burst
    ``rate_limit_burst``, default one second's worth) over every API request.
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


KNOB_NAMES = frozenset(f.name for f in fields(SandboxKnobs))


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _check_knob(name: str, value: Any) -> Any:
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
    # rate_limit_per_second, rate_limit_burst
    if value is None or value == 0:
        return None
    if not _is_number(value) or value < 0:
        raise ValueError(f"{name} must be null or a number > 0")
    return float(value)


# --- Errors ------------------------------------------------------------------------------------


class SandboxOAuthError(Exception):
    """A token-endpoint error, rendered as ML's §1.7 body."""

    def __init__(self, error: str, description: str, status: int = 400):
        super().__init__(f"{error}: {description}")
        self.error = error
        self.description = description
        self.status = status

    def body(self) -> dict[str, Any]:
        """The JSON body ML sends with this error."""
        return _oauth_error_body(self.error, self.description, self.status)


_INVALID_GRANT = (
    "Error validating grant. Your authorization code or refresh token may be expired or it was already used"
)


def _oauth_error_body(error: str, description: str, status: int = 400) -> dict[str, Any]:
    # The token endpoint says `error_description` where the rest of the API says `message`.
    return {"error_description": description, "error": error, "status": status, "cause": []}


def _api_error_body(status: int, error: str, message: str) -> dict[str, Any]:
    return {"message": message, "error": error, "status": status, "cause": []}


# §2: the 401 carries the odd `error: not_found`; §5.1 generic bodies otherwise.
_UNAUTHORIZED = _api_error_body(401, "not_found", "invalid_token")
_FORBIDDEN = _api_error_body(403, "forbidden", "forbidden")
_TOO_MANY = _api_error_body(429, "too_many_requests", "Too Many Requests")


def _failure_body(status: int, *, token_endpoint: bool) -> dict[str, Any]:
    if status == 429:
        if token_endpoint:
            body = _oauth_error_body(
                "local_rate_limited", "Too many requests, retry after a few seconds", 429
            )
            body["message"] = "Too Many Requests"
            return body
        return dict(_TOO_MANY)
    if status == 401:
        return dict(_UNAUTHORIZED)
    if status == 403:
        return dict(_FORBIDDEN)
    names = {
        500: ("internal_server_error", "Internal server error"),
        502: ("bad_gateway", "Bad Gateway"),
        503: ("service_unavailable", "Service Unavailable"),
        504: ("gateway_timeout", "Gateway Timeout"),
    }
    error, message = names.get(status, ("error", f"Injected HTTP {status}"))
    return _api_error_body(status, error, message)


# --- State ---------------------------------------------------------------------------------------

_STAT_KINDS = (
    "authorization",
    "token_exchange",
    "token_refresh",
    "token_other",
    "users_me",
    "users",
    "items",
    "orders",
    "questions",
    "claims",
    "sites",
    "applications",
    "unknown",
)


@contextlib.contextmanager
def _file_lock(lock_path: Path, *, exclusive: bool) -> Iterator[None]:
    """Hold an flock on ``lock_path``: the seeder and a running server share one state file."""
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "a+b") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _file_signature(path: Path) -> tuple[int, int, int] | None:
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    # os.replace gives every save a new inode, so this changes even within one mtime tick.
    return (st.st_ino, st.st_mtime_ns, st.st_size)


class SandboxState:
    """Everything the sandbox remembers: sellers, codes, tokens, knobs and stats.

    Thread-safe (one lock). With ``state_file`` the codes and tokens live in a JSON file
    as well: loaded at start, saved atomically after every change under an ``flock``, and
    re-read when another process (the seeding command, a restarted sandbox) changed it.
    """

    def __init__(
        self,
        state_file: Path | str | None = None,
        *,
        sellers: Iterable[DemoSeller] | None = None,
        apps: Iterable[SandboxApp] | None = None,
        **knobs: Any,
    ):
        self._lock = threading.RLock()
        self.state_file = Path(state_file) if state_file else None
        self._lock_path = (
            self.state_file.with_name(self.state_file.name + ".lock") if self.state_file else None
        )
        self.sellers: list[DemoSeller] = list(DEMO_SELLERS if sellers is None else sellers)
        self._sellers_by_id = {seller.id: seller for seller in self.sellers}
        self._seller_numbers = {seller.id: number for number, seller in enumerate(self.sellers, start=1)}
        self.apps: dict[str, SandboxApp] = {app.client_id: app for app in (apps or (SANDBOX_APP,))}
        self.knobs = SandboxKnobs()
        self._initial_knobs: dict[str, Any] = {}
        self._rng = random.Random()  # noqa: S311 - failure injection, not security
        self._bucket = 0.0
        self._bucket_at = time.monotonic()
        self._codes: dict[str, dict[str, Any]] = {}
        self._access: dict[str, dict[str, Any]] = {}
        # Only the latest refresh token of each (client_id, user_id) is alive (§1.5 rule 2).
        self._refresh: dict[tuple[str, int], dict[str, Any]] = {}
        self._file_sig: tuple[int, int, int] | None = None
        self._dirty = False
        self.reset_stats()
        self.configure(**knobs)
        self._initial_knobs = asdict(self.knobs)
        if self.state_file is not None:
            with self._lock, _file_lock(self._lock_path, exclusive=False):
                self._load_file()

    # -- knobs and stats

    def configure(self, **changes: Any) -> dict[str, Any]:
        """Change knobs (validated; ValueError on a bad one) and return all knobs."""
        checked = {name: _check_knob(name, value) for name, value in changes.items()}
        with self._lock:
            for name, value in checked.items():
                setattr(self.knobs, name, value)
            if {"rate_limit_per_second", "rate_limit_burst"} & checked.keys():
                self._bucket = self._bucket_capacity()
                self._bucket_at = time.monotonic()
            return self.config()

    def config(self) -> dict[str, Any]:
        """Return the current knobs as a JSON-ready dict."""
        with self._lock:
            return asdict(self.knobs)

    def reset_stats(self) -> None:
        """Zero every counter (requests being served right now stay counted as in flight)."""
        with self._lock:
            in_flight = getattr(self, "_stats", {}).get("in_flight", 0)
            self._stats: dict[str, Any] = {
                "total_requests": 0,
                "by_kind": Counter(),
                "by_status": Counter(),
                "answered_429": 0,
                "answered_5xx": 0,
                "answered_invalid_grant": 0,
                "in_flight": in_flight,
                "max_in_flight": in_flight,
            }

    def stats(self) -> dict[str, Any]:
        """Return the counters of API requests (``/_sandbox/*`` calls are not counted)."""
        with self._lock:
            snapshot = dict(self._stats)
            snapshot["by_kind"] = {kind: self._stats["by_kind"].get(kind, 0) for kind in _STAT_KINDS}
            snapshot["by_status"] = {str(k): v for k, v in sorted(self._stats["by_status"].items())}
            return snapshot

    def reset(self) -> None:
        """Forget every code and token, zero the stats and restore the starting knobs."""
        with self._mutation():
            self._codes.clear()
            self._access.clear()
            self._refresh.clear()
            self._dirty = True
        self.configure(**self._initial_knobs)
        self.reset_stats()

    def _request_started(self, kind: str) -> None:
        with self._lock:
            stats = self._stats
            stats["total_requests"] += 1
            stats["by_kind"][kind] += 1
            stats["in_flight"] += 1
            stats["max_in_flight"] = max(stats["max_in_flight"], stats["in_flight"])

    def _request_finished(self) -> None:
        with self._lock:
            self._stats["in_flight"] -= 1

    def _record_response(self, status: int, error: str | None) -> None:
        with self._lock:
            stats = self._stats
            stats["by_status"][status] += 1
            if status == 429:
                stats["answered_429"] += 1
            elif status >= 500:
                stats["answered_5xx"] += 1
            if error == "invalid_grant":
                stats["answered_invalid_grant"] += 1

    def _bucket_capacity(self) -> float:
        rate = self.knobs.rate_limit_per_second or 0.0
        return max(1.0, self.knobs.rate_limit_burst or rate)

    def _take_rate_token(self) -> bool:
        """Spend one request of the app-wide budget; False means answer 429 (§5.2)."""
        with self._lock:
            rate = self.knobs.rate_limit_per_second
            if not rate:
                return True
            now = time.monotonic()
            capacity = self._bucket_capacity()
            self._bucket = min(capacity, self._bucket + (now - self._bucket_at) * rate)
            self._bucket_at = now
            if self._bucket >= 1.0:
                self._bucket -= 1.0
                return True
            return False

    def _draw_failure(self, *, token_endpoint: bool) -> int | None:
        """Return an injected HTTP status for this request, or None to answer normally."""
        with self._lock:
            queue = self.knobs.fail_next_token if token_endpoint else self.knobs.fail_next
            if queue:
                return queue.pop(0)
            draw = self._rng.random()
            if draw < self.knobs.fail_rate_429:
                return 429
            if draw < self.knobs.fail_rate_429 + self.knobs.fail_rate_5xx:
                return self.knobs.fail_5xx_status
            return None

    # -- sellers and apps

    def seller(self, user_id: int) -> DemoSeller:
        """Return the demo seller with ``user_id``, or a synthetic one for any other id."""
        return self._sellers_by_id.get(user_id) or synthetic_seller(user_id)

    def is_demo_seller(self, user_id: int) -> bool:
        """Whether ``user_id`` is one of the sellers offered on the authorization page."""
        return user_id in self._sellers_by_id

    def _seller_number(self, user_id: int) -> int:
        # A small per-seller number that keeps generated item/order ids apart.
        return self._seller_numbers.get(user_id) or 100 + user_id % 900

    def check_client(self, client_id: str | None, client_secret: str | None) -> SandboxApp | None:
        """Return the app for valid client credentials, else None."""
        app = self.apps.get(client_id or "")
        if app is None or not hmac.compare_digest(app.client_secret, client_secret or ""):
            return None
        return app

    # -- persistence

    @contextlib.contextmanager
    def _mutation(self) -> Iterator[None]:
        """Lock for a token change; with a state file, reload it first and save it after."""
        with self._lock:
            if self.state_file is None:
                try:
                    yield
                finally:
                    if self._dirty:
                        self._prune(time.time())
                        self._dirty = False
                return
            with _file_lock(self._lock_path, exclusive=True):
                if _file_signature(self.state_file) != self._file_sig:
                    self._load_file()
                try:
                    yield
                finally:
                    # Burnt codes must be saved even when the request then fails.
                    if self._dirty:
                        self._save_file()

    def _load_file(self) -> None:
        assert self.state_file is not None
        self._file_sig = _file_signature(self.state_file)
        self._codes, self._access, self._refresh = {}, {}, {}
        if self._file_sig is None:
            return
        raw = self.state_file.read_text(encoding="utf-8")
        if not raw.strip():
            return
        try:
            data = json.loads(raw)
        except ValueError as exc:
            raise ValueError(f"sandbox state file {self.state_file} is not valid JSON: {exc}") from None
        self._codes = dict(data.get("codes", {}))
        self._access = dict(data.get("access_tokens", {}))
        for record in data.get("refresh_tokens", []):
            key = (record["client_id"], int(record["user_id"]))
            self._refresh[key] = {"token": record["token"], "issued_at": record["issued_at"]}

    def _prune(self, now: float) -> None:
        self._codes = {c: r for c, r in self._codes.items() if r["expires_at"] > now}
        self._access = {t: r for t, r in self._access.items() if r["expires_at"] > now}
        ttl = self.knobs.refresh_token_ttl
        self._refresh = {k: r for k, r in self._refresh.items() if r["issued_at"] + ttl > now}

    def _save_file(self) -> None:
        assert self.state_file is not None
        self._prune(time.time())
        data = {
            "version": STATE_FILE_VERSION,
            "codes": self._codes,
            "access_tokens": self._access,
            "refresh_tokens": [
                {"client_id": client_id, "user_id": user_id, **record}
                for (client_id, user_id), record in self._refresh.items()
            ],
        }
        self.state_file.parent.mkdir(parents=True, exist_ok=True)
        # mkstemp files are 0600: the file holds live tokens.
        fd, tmp_name = tempfile.mkstemp(prefix=self.state_file.name + ".", dir=self.state_file.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(data, handle, separators=(",", ":"))
            os.replace(tmp_name, self.state_file)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp_name)
            raise
        self._file_sig = _file_signature(self.state_file)
        self._dirty = False

    def _refresh_from_file_if_changed(self) -> None:
        """Pick up tokens another process wrote (the seeder) before rejecting one."""
        if self.state_file is None or _file_signature(self.state_file) == self._file_sig:
            return
        with _file_lock(self._lock_path, exclusive=False):
            self._load_file()

    # -- tokens

    def _issue_pair(self, app: SandboxApp, user_id: int) -> dict[str, Any]:
        """Issue a new access + refresh pair; older refresh tokens of (app, user) die."""
        now = time.time()
        ttl = self.knobs.access_token_ttl
        stamp = datetime.now(UTC).strftime("%m%d%H")
        access_token = f"APP_USR-{app.app_id}-{stamp}-{secrets.token_hex(16)}-{user_id}"
        refresh_token = f"TG-{secrets.token_hex(12)}-{user_id}"
        self._access[access_token] = {"client_id": app.client_id, "user_id": user_id, "expires_at": now + ttl}
        self._refresh[(app.client_id, user_id)] = {"token": refresh_token, "issued_at": now}
        self._dirty = True
        return {
            "access_token": access_token,
            "token_type": "Bearer",
            "expires_in": ttl,
            "scope": TOKEN_SCOPE,
            "user_id": user_id,
            "refresh_token": refresh_token,
        }

    def mint(self, user_id: int, *, client_id: str = SANDBOX_CLIENT_ID) -> dict[str, Any]:
        """Authorize ``user_id`` without a browser and return the §1.4 token body.

        Like a real re-authorization, this kills the user's older refresh tokens.
        """
        user_id = int(user_id)
        if user_id <= 0:
            raise ValueError("user_id must be a positive integer")
        app = self.apps.get(client_id)
        if app is None:
            raise ValueError(f"unknown client_id {client_id!r}")
        with self._mutation():
            return self._issue_pair(app, user_id)

    def create_code(
        self,
        *,
        client_id: str,
        user_id: int,
        redirect_uri: str,
        code_challenge: str | None,
        code_challenge_method: str | None,
    ) -> str:
        """Store and return a single-use authorization code ``TG-<24 hex>-<user_id>``."""
        code = f"TG-{secrets.token_hex(12)}-{user_id}"
        with self._mutation():
            self._codes[code] = {
                "client_id": client_id,
                "user_id": user_id,
                "redirect_uri": redirect_uri,
                "code_challenge": code_challenge,
                "code_challenge_method": code_challenge_method,
                "expires_at": time.time() + self.knobs.code_ttl,
            }
            self._dirty = True
        return code

    def exchange_code(
        self, *, app: SandboxApp, code: str, redirect_uri: str, code_verifier: str | None
    ) -> dict[str, Any]:
        """Trade a code for a token pair (§1.3); SandboxOAuthError when refused."""
        with self._mutation():
            record = self._codes.pop(code, None)
            if record is not None:
                # Any attempt burns the code: codes are single use.
                self._dirty = True
            if (
                record is None
                or record["expires_at"] <= time.time()
                or record["client_id"] != app.client_id
                or record["redirect_uri"] != redirect_uri
            ):
                raise SandboxOAuthError("invalid_grant", _INVALID_GRANT)
            if app.pkce and not _pkce_matches(
                code_verifier or "", record["code_challenge"] or "", record["code_challenge_method"]
            ):
                raise SandboxOAuthError("invalid_grant", "Error validating grant. Invalid code_verifier")
            return self._issue_pair(app, int(record["user_id"]))

    def refresh(self, *, app: SandboxApp, refresh_token: str) -> dict[str, Any]:
        """Rotate a refresh token (§1.5): only the latest unexpired one of (app, user) works."""
        user_part = refresh_token.rsplit("-", 1)[-1]
        with self._mutation():
            record = self._refresh.get((app.client_id, int(user_part))) if user_part.isdigit() else None
            if (
                record is None
                or not hmac.compare_digest(record["token"], refresh_token)
                or record["issued_at"] + self.knobs.refresh_token_ttl <= time.time()
            ):
                raise SandboxOAuthError("invalid_grant", _INVALID_GRANT)
            user_id = int(user_part)
            if not self.knobs.old_access_tokens_survive_refresh:
                self._drop_access_tokens(user_id, app.client_id)
            return self._issue_pair(app, user_id)

    def authenticate(self, access_token: str) -> tuple[str, int] | None:
        """Return (client_id, user_id) for a live access token, else None."""
        with self._lock:
            record = self._access.get(access_token)
            if record is None:
                self._refresh_from_file_if_changed()
                record = self._access.get(access_token)
            if record is None or record["expires_at"] <= time.time():
                return None
            return record["client_id"], int(record["user_id"])

    def _drop_access_tokens(self, user_id: int, client_id: str | None = None) -> int:
        doomed = [
            token
            for token, record in self._access.items()
            if record["user_id"] == user_id and client_id in (None, record["client_id"])
        ]
        for token in doomed:
            del self._access[token]
        self._dirty = self._dirty or bool(doomed)
        return len(doomed)

    def expire_access_tokens(self, user_id: int) -> int:
        """Make the user's access tokens expire now (early expiry, §1.6); return how many."""
        now = time.time()
        with self._mutation():
            count = 0
            for record in self._access.values():
                if record["user_id"] == user_id and record["expires_at"] > now:
                    record["expires_at"] = now
                    count += 1
            self._dirty = self._dirty or bool(count)
            return count

    def revoke(self, user_id: int, *, client_id: str | None = None) -> dict[str, int]:
        """Revoke the user's grant: every token and pending code dies (refresh → invalid_grant)."""
        with self._mutation():
            keys = [key for key in self._refresh if key[1] == user_id and client_id in (None, key[0])]
            for key in keys:
                del self._refresh[key]
            codes = [
                code
                for code, record in self._codes.items()
                if record["user_id"] == user_id and client_id in (None, record["client_id"])
            ]
            for code in codes:
                del self._codes[code]
            access = self._drop_access_tokens(user_id, client_id)
            self._dirty = True
            return {"access_tokens": access, "refresh_tokens": len(keys), "codes": len(codes)}

    @classmethod
    def mint_into_state_file(
        cls, path: Path | str, user_id: int, *, client_id: str = SANDBOX_CLIENT_ID, **knobs: Any
    ) -> dict[str, Any]:
        """Mint a token pair straight into a state file, with or without a running sandbox."""
        return cls(state_file=path, **knobs).mint(user_id, client_id=client_id)


def mint_into_state_file(path: Path | str, user_id: int, **kwargs: Any) -> dict[str, Any]:
    """Mint a token pair for ``user_id`` into the state file at ``path`` (for seeding commands)."""
    return SandboxState.mint_into_state_file(path, user_id, **kwargs)


def _pkce_matches(verifier: str, challenge: str, method: str | None) -> bool:
    if method == "S256":
        digest = hashlib.sha256(verifier.encode("ascii", "replace")).digest()
        expected = base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")
    else:
        expected = verifier
    return bool(verifier) and hmac.compare_digest(expected, challenge)


# --- Generated seller data ---------------------------------------------------------------------


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=_LOCAL_TZ).isoformat(timespec="milliseconds")


def _item_id(seller: DemoSeller, number: int, index: int) -> str:
    """Item id like ``MLB4010000012``: site prefix + digits (§0); active items come first."""
    return f"{seller.site_id}{4_000_000_000 + number * 10_000_000 + index}"


def _item_counts(seller: DemoSeller) -> dict[str, int]:
    return {"active": seller.listings, "paused": seller.listings // 8, "closed": seller.listings // 4}


def _question_counts(seller: DemoSeller) -> dict[str, int]:
    return {"UNANSWERED": seller.questions, "ANSWERED": seller.questions * 3}


@lru_cache(maxsize=256)
def _order_ages(recent: int, older: int) -> tuple[float, ...]:
    """Ages (seconds before the current hour) of a seller's orders, newest first.

    The last-30-days orders sit within 29 days and the older ones beyond 32 days, so a
    30-day window matches exactly even after ML truncates the date filter to the hour
    (§4.2) or a client rounds it to midnight.
    """
    ages = [(i + 0.5) * (29 * _DAY / recent) for i in range(recent)]
    ages += [32 * _DAY + (j + 0.5) * (58 * _DAY / older) for j in range(older)]
    return tuple(ages)


def _private_user(seller: DemoSeller) -> dict[str, Any]:
    """The §3 private shape of ``/users/me``, abridged."""
    country = _COUNTRY.get(seller.site_id, "BR")
    if seller.orders >= 5000:
        level, power = "5_green", "platinum"
    elif seller.orders >= 1000:
        level, power = "5_green", "gold"
    elif seller.orders >= 100:
        level, power = "4_light_green", None
    elif seller.orders > 0:
        level, power = "3_yellow", None
    else:
        level, power = None, None  # new sellers have no reputation yet
    total = seller.orders * 6
    completed = total - total // 12
    claims_rate = round(seller.claims / seller.orders, 4) if seller.orders else 0.0
    return {
        "id": seller.id,
        "nickname": seller.nickname,
        "registration_date": seller.registration_date,
        "first_name": seller.first_name,
        "last_name": seller.last_name,
        "gender": "",
        "country_id": country,
        "email": seller.email,
        "identification": {"type": "CPF" if country == "BR" else "DNI", "number": str(seller.id)[-8:]},
        "address": {
            "state": f"{country}-SP" if country == "BR" else f"{country}-C",
            "city": "",
            "address": "",
        },
        "phone": {"area_code": "11", "number": "5555-0100", "extension": "", "verified": False},
        "user_type": "normal",
        "tags": ["normal", "test_user", "user_info_verified"],
        "logo": None,
        "points": 100,
        "site_id": seller.site_id,
        "permalink": f"http://{_PROFILE_HOST.get(seller.site_id, _DEFAULT_PROFILE_HOST)}/{seller.nickname}",
        "seller_experience": "ADVANCED" if seller.orders >= 100 else "NEWBIE",
        "seller_reputation": {
            "level_id": level,
            "power_seller_status": power,
            "transactions": {
                "period": "historic",
                "total": total,
                "completed": completed,
                "canceled": total - completed,
                "ratings": {"positive": 0.92, "negative": 0.03, "neutral": 0.05}
                if total
                else {"positive": 0, "negative": 0, "neutral": 0},
            },
            "metrics": {
                "sales": {"period": "60 days", "completed": seller.orders * 2},
                "claims": {"period": "60 days", "rate": claims_rate, "value": seller.claims},
                "delayed_handling_time": {"period": "60 days", "rate": 0.0, "value": 0},
                "cancellations": {"period": "60 days", "rate": 0.0, "value": 0},
            },
        },
        "status": {
            "site_status": "active",
            "list": {"allow": True, "codes": [], "immediate_payment": {"required": False, "reasons": []}},
            "confirmed_email": True,
            "user_type": "normal",
            "required_action": "",
        },
    }


# --- HTTP ----------------------------------------------------------------------------------------


class _Reply(Exception):
    """Raised by a route to answer at once with a JSON (or HTML) error."""

    def __init__(self, status: int, body: dict[str, Any] | str, headers: dict[str, str] | None = None):
        super().__init__(status)
        self.status = status
        self.body = body
        self.headers = headers or {}


def _bad_request(message: str, error: str = "bad_request") -> _Reply:
    return _Reply(400, _api_error_body(400, error, message))


def _redirect_uri_acceptable(uri: str) -> bool:
    """Stand-in for ML's exact match against the app's registered URIs (§1.1)."""
    try:
        parts = urlsplit(uri)
        parts.port  # noqa: B018 - raises ValueError for a malformed port
    except ValueError:
        return False
    if parts.query or parts.fragment or not parts.path.endswith(CALLBACK_PATH_SUFFIX):
        return False  # ML forbids variable parts: context travels in `state`
    if parts.scheme == "https":
        return bool(parts.hostname)
    return parts.scheme == "http" and parts.hostname in {"127.0.0.1", "localhost"}


_CHALLENGE_RE = re.compile(r"^[A-Za-z0-9\-._~]{43,128}$")
_CLAIM_FILTERS = (
    "id",
    "type",
    "stage",
    "status",
    "resource",
    "resource_id",
    "reason_id",
    "site_id",
    "players.role",
    "players.user_id",
    "order_id",
    "pack_id",
    "payment_id",
    "parent_id",
    "date_created",
    "last_updated",
)

_PAGE_STYLE = """
body{font-family:system-ui,sans-serif;background:#ebebeb;margin:0;color:#333}
header{background:#fff159;padding:14px 24px;font-weight:700}
main{max-width:560px;margin:32px auto;background:#fff;border-radius:6px;padding:24px 32px}
h1{font-size:1.3rem}fieldset{border:0;padding:0}
li{list-style:none;padding:10px 0;border-bottom:1px solid #eee}ul{padding:0}
small{display:block;color:#666;margin-left:26px}
button{font-size:1rem;padding:10px 22px;border-radius:6px;border:0;margin-right:8px;cursor:pointer}
button[value=allow]{background:#3483fa;color:#fff}button[value=deny]{background:#e3edfb;color:#3483fa}
.error{color:#b00020}
"""


def _page(title: str, body: str) -> str:
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>{_PAGE_STYLE}</style></head>"
        f"<body><header>Mercado Livre sandbox</header><main>{body}</main></body></html>\n"
    )


def _error_page(reason: str) -> str:
    # ML shows this generic page for a bad redirect_uri, an unknown app and similar (§1.2).
    return _page(
        "Mercado Livre sandbox",
        "<h1>Sorry, the application cannot connect to your account</h1>"
        f'<p class="error" id="error-reason">{html.escape(reason)}</p>',
    )


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive; every answer carries a Content-Length
    disable_nagle_algorithm = True  # headers and body go in two writes: no 40 ms delayed-ACK stall
    server_version = "MLSandbox/1.0"
    timeout = 60  # an idle keep-alive connection frees its thread after a minute
    server: _HTTPServer

    # (path regex, {method: route}, stats kind, family). Families: "auth" is the browser
    # page; "token" and "api" are API calls (rate limit and failure injection apply).
    _ROUTES: list[tuple[re.Pattern[str], dict[str, str], str, str]] = [
        (
            re.compile(r"/authorization/?"),
            {"GET": "auth_page", "POST": "auth_decision"},
            "authorization",
            "auth",
        ),
        (re.compile(r"/oauth/token/?"), {"POST": "token"}, "token_other", "token"),
        (re.compile(r"/users/me/?"), {"GET": "users_me"}, "users_me", "api"),
        (re.compile(r"/users/(?P<user_id>\d+)/?"), {"GET": "user"}, "users", "api"),
        (re.compile(r"/users/(?P<user_id>\d+)/items/search/?"), {"GET": "items_search"}, "items", "api"),
        (
            re.compile(r"/users/(?P<user_id>\d+)/applications/(?P<app_id>[^/]+)/?"),
            {"DELETE": "delete_grant"},
            "applications",
            "api",
        ),
        (re.compile(r"/orders/search/?"), {"GET": "orders_search"}, "orders", "api"),
        (re.compile(r"/questions/search/?"), {"GET": "questions_search"}, "questions", "api"),
        (re.compile(r"/post-purchase/v1/claims/search/?"), {"GET": "claims_search"}, "claims", "api"),
        (re.compile(r"/sites/?"), {"GET": "sites"}, "sites", "api"),
    ]

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def do_PATCH(self) -> None:
        self._dispatch("PATCH")

    def log_message(self, format: str, *args: Any) -> None:
        if self.server.verbose:
            super().log_message(format, *args)

    @property
    def state(self) -> SandboxState:
        return self.server.sandbox_state

    # -- plumbing

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline().strip():
                        pass  # trailers
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        if length > 1_000_000:
            self.close_connection = True
            raise _Reply(413, _api_error_body(413, "request_entity_too_large", "Body too large"))
        return self.rfile.read(length) if length else b""

    def _send(self, status: int, payload: bytes, content_type: str, headers: dict[str, str]) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)

    def _reply(
        self, status: int, body: dict[str, Any] | list[Any] | str, headers: dict[str, str] | None = None
    ):
        headers = dict(headers or {})
        if isinstance(body, str):
            payload, content_type = body.encode("utf-8"), "text/html; charset=utf-8"
        else:
            payload, content_type = json.dumps(body).encode("utf-8"), "application/json;charset=UTF-8"
        if self._counted:
            error = body.get("error") if isinstance(body, dict) else None
            self.state._record_response(status, error if isinstance(error, str) else None)
        self._send(status, payload, content_type, headers)

    def _redirect(self, location: str) -> None:
        if self._counted:
            self.state._record_response(302, None)
        self._send(302, b"", "text/html; charset=utf-8", {"Location": location})

    def _dispatch(self, method: str) -> None:
        self._counted = False
        try:
            self._body = self._read_body()
            split = urlsplit(self.path)
            self._raw_query = split.query
            self._query = parse_qs(split.query, keep_blank_values=True)
            if split.path.startswith("/_sandbox/"):
                self._control(method, split.path)
                return
            self._api(method, split.path)
        except _Reply as reply:
            self._reply(reply.status, reply.body, reply.headers)
        except (ConnectionError, TimeoutError):
            self.close_connection = True
        except Exception as exc:
            traceback.print_exc(file=sys.stderr)
            self.close_connection = True
            with contextlib.suppress(OSError):
                self._reply(500, _api_error_body(500, "internal_error", f"sandbox error: {exc!r}"))

    def _api(self, method: str, path: str) -> None:
        methods: dict[str, str] = {}
        kind, family, match = "unknown", "api", None
        for pattern, route_methods, route_kind, route_family in self._ROUTES:
            match = pattern.fullmatch(path)
            if match:
                methods, kind, family = route_methods, route_kind, route_family
                break
        if family == "token":
            self._form = parse_qs(self._body.decode("utf-8", "replace"), keep_blank_values=True)
            grant = (self._form.get("grant_type") or [""])[0]
            kind = {"authorization_code": "token_exchange", "refresh_token": "token_refresh"}.get(grant, kind)
        state = self.state
        state._request_started(kind)
        self._counted = True
        try:
            latency = state.knobs.latency_ms
            if latency:
                time.sleep(latency / 1000)
            if family != "auth":
                self._inject_failures(token_endpoint=family == "token")
            if match is None:
                raise _Reply(404, _api_error_body(404, "not_found", f"Resource {path} not found."))
            route = methods.get(method)
            if route is None:
                raise _Reply(405, _api_error_body(405, "method_not_allowed", f"Method {method} not allowed"))
            getattr(self, f"route_{route}")(**match.groupdict())
        except _Reply as reply:
            self._reply(reply.status, reply.body, reply.headers)
        finally:
            state._request_finished()

    def _inject_failures(self, *, token_endpoint: bool) -> None:
        state = self.state
        retry_after = state.knobs.retry_after
        headers = {} if retry_after is None else {"Retry-After": str(retry_after)}
        if not state._take_rate_token():
            raise _Reply(429, _failure_body(429, token_endpoint=token_endpoint), headers)
        status = state._draw_failure(token_endpoint=token_endpoint)
        if status is not None:
            raise _Reply(
                status, _failure_body(status, token_endpoint=token_endpoint), headers if status == 429 else {}
            )

    def _param(self, name: str, default: str | None = None) -> str | None:
        values = self._query.get(name)
        return values[0] if values else default

    def _int_param(self, name: str, default: int) -> int:
        raw = self._param(name)
        if raw is None or raw == "":
            return default
        try:
            value = int(raw)
        except ValueError:
            raise _bad_request(f"Invalid value for parameter {name}: {raw}") from None
        if value < 0:
            raise _bad_request(f"Invalid value for parameter {name}: {raw}")
        return value

    def _authenticate(self) -> tuple[str, int]:
        """Return (client_id, user_id) of the Bearer token, or answer 400/401."""
        if "access_token" in self._query:
            # Tokens in the query string were switched off in 2021 (§2); refusing them
            # outright also keeps tokens out of URLs and access logs.
            raise _bad_request(
                "The access_token query parameter is not supported. Send it in the Authorization header."
            )
        scheme, _, token = self.headers.get("Authorization", "").partition(" ")
        identity = (
            self.state.authenticate(token.strip()) if scheme.lower() == "bearer" and token.strip() else None
        )
        if identity is None:
            raise _Reply(401, dict(_UNAUTHORIZED))
        return identity

    def _own_user(self, raw_user_id: str | None) -> DemoSeller:
        """Authenticate and require the token's user to be ``raw_user_id`` (403 otherwise)."""
        _, token_user = self._authenticate()
        if raw_user_id is None or not raw_user_id.strip().isdigit() or int(raw_user_id) != token_user:
            raise _Reply(403, dict(_FORBIDDEN))
        return self.state.seller(token_user)

    # -- control endpoints (not counted, no latency or failures)

    def _control(self, method: str, path: str) -> None:
        state = self.state
        name = path.removeprefix("/_sandbox/").rstrip("/")
        if method == "GET" and name == "config":
            self._reply(200, state.config())
        elif method == "GET" and name == "stats":
            self._reply(200, state.stats())
        elif method == "GET" and name == "sellers":
            self._reply(200, [asdict(seller) for seller in state.sellers])
        elif method == "POST" and name == "reset-stats":
            state.reset_stats()
            self._reply(200, state.stats())
        elif method == "POST" and name == "reset":
            state.reset()
            self._reply(200, {"reset": True})
        elif method == "POST" and name in {"config", "mint", "expire", "revoke"}:
            data = self._json_body()
            try:
                if name == "config":
                    self._reply(200, state.configure(**data))
                elif name == "mint":
                    self._reply(
                        200,
                        state.mint(
                            self._json_user_id(data), client_id=data.get("client_id", SANDBOX_CLIENT_ID)
                        ),
                    )
                elif name == "expire":
                    self._reply(200, {"expired": state.expire_access_tokens(self._json_user_id(data))})
                else:
                    self._reply(200, {"revoked": state.revoke(self._json_user_id(data))})
            except (TypeError, ValueError) as exc:
                raise _Reply(400, {"error": "bad_request", "message": str(exc), "status": 400}) from None
        else:
            raise _Reply(
                404, {"error": "not_found", "message": f"no control endpoint {method} {path}", "status": 404}
            )

    def _json_body(self) -> dict[str, Any]:
        try:
            data = json.loads(self._body or b"{}")
        except ValueError:
            raise _Reply(
                400, {"error": "bad_request", "message": "body must be JSON", "status": 400}
            ) from None
        if not isinstance(data, dict):
            raise _Reply(
                400, {"error": "bad_request", "message": "body must be a JSON object", "status": 400}
            )
        return data

    @staticmethod
    def _json_user_id(data: dict[str, Any]) -> int:
        value = data.get("user_id")
        if isinstance(value, bool) or not isinstance(value, int | str) or not str(value).isdigit():
            raise ValueError("user_id must be a positive integer")
        return int(value)

    # -- authorization host (§1.2)

    def _auth_params(self, source: dict[str, list[str]]) -> dict[str, str]:
        """Validate an authorization request; raise an HTML error page (400) when invalid."""
        params = {name: values[0] for name, values in source.items() if values}
        if params.get("response_type") != "code":
            raise _Reply(400, _error_page("response_type must be code."))
        if params.get("client_id") not in self.state.apps:
            raise _Reply(400, _error_page("Unknown application (client_id)."))
        app = self.state.apps[params["client_id"]]
        if not _redirect_uri_acceptable(params.get("redirect_uri", "")):
            raise _Reply(
                400, _error_page("The redirect_uri does not match the application's registered URIs.")
            )
        method = params.get("code_challenge_method")
        challenge = params.get("code_challenge")
        if app.pkce:
            # PKCE is switched on for the sandbox app, which makes it mandatory (§1.1).
            if method not in {"S256", "plain"}:
                raise _Reply(400, _error_page("code_challenge_method must be S256 or plain."))
            if not challenge or not _CHALLENGE_RE.match(challenge):
                raise _Reply(400, _error_page("code_challenge is missing or invalid."))
        return params

    def route_auth_page(self) -> None:
        params = self._auth_params(self._query)
        hidden = "".join(
            f'<input type="hidden" name="{name}" value="{html.escape(params[name], quote=True)}">'
            for name in (
                "response_type",
                "client_id",
                "redirect_uri",
                "state",
                "code_challenge",
                "code_challenge_method",
            )
            if name in params
        )
        rows = []
        for index, seller in enumerate(self.state.sellers):
            checked = " checked" if index == 0 else ""
            rows.append(
                f'<li><label><input type="radio" name="user_id" value="{seller.id}" '
                f'id="seller-{seller.id}"{checked}> {html.escape(seller.nickname)}</label>'
                f"<small>{html.escape(seller.site_id)} · {seller.listings} listings · "
                f"{seller.orders} orders (30 days) · {seller.questions} questions · "
                f"{seller.claims} claims</small></li>"
            )
        target = html.escape(urlsplit(params["redirect_uri"]).netloc)
        body = (
            "<h1>Mercado Livre sandbox</h1>"
            f"<p>The application <strong>{html.escape(params['client_id'])}</strong> "
            f"({target}) wants to read and manage your account. Choose the seller account to connect.</p>"
            f'<form method="post" action="/authorization" id="authorization-form">{hidden}'
            f"<fieldset><legend>Seller accounts</legend><ul>{''.join(rows)}</ul></fieldset>"
            '<button type="submit" name="decision" value="allow" id="allow">Allow</button>'
            '<button type="submit" name="decision" value="deny" id="deny">Deny</button>'
            "</form>"
        )
        self._reply(200, _page("Mercado Livre sandbox", body))

    def route_auth_decision(self) -> None:
        form = parse_qs(self._body.decode("utf-8", "replace"), keep_blank_values=True)
        params = self._auth_params(form)
        decision = (form.get("decision") or [""])[0]
        extra: dict[str, str]
        if decision == "deny":
            # ML does not document its denial redirect (§1.2); this is the RFC 6749 form.
            extra = {
                "error": "access_denied",
                "error_description": "The user denied the authorization request",
            }
        elif decision == "allow":
            raw_user = (form.get("user_id") or [""])[0]
            if not raw_user.isdigit() or not self.state.is_demo_seller(int(raw_user)):
                raise _Reply(400, _error_page("Choose one of the seller accounts."))
            code = self.state.create_code(
                client_id=params["client_id"],
                user_id=int(raw_user),
                redirect_uri=params["redirect_uri"],
                code_challenge=params.get("code_challenge"),
                code_challenge_method=params.get("code_challenge_method"),
            )
            extra = {"code": code}
        else:
            raise _Reply(400, _error_page("Choose Allow or Deny."))
        if "state" in params:
            extra["state"] = params["state"]  # echoed untouched; ML never checks it
        parts = urlsplit(params["redirect_uri"])
        self._redirect(urlunsplit(parts._replace(query=urlencode(extra))))

    # -- token endpoint (§1.3–§1.7)

    def route_token(self) -> None:
        if self._raw_query:
            # Old SDKs sent these in the query string; ML's best practices require the body.
            raise _Reply(
                400, _oauth_error_body("invalid_request", "Parameters must be sent in the request body.")
            )
        content_type = self.headers.get("Content-Type", "").split(";")[0].strip().lower()
        if content_type != "application/x-www-form-urlencoded":
            raise _Reply(
                400,
                _oauth_error_body(
                    "invalid_request", "The request body must be application/x-www-form-urlencoded."
                ),
            )
        duplicated = sorted(name for name, values in self._form.items() if len(values) > 1)
        if duplicated:
            raise _Reply(400, _oauth_error_body("invalid_request", f"Duplicated parameter: {duplicated[0]}"))
        form = {name: values[0] for name, values in self._form.items()}
        app = self.state.check_client(form.get("client_id"), form.get("client_secret"))
        if app is None:
            raise _Reply(400, _oauth_error_body("invalid_client", "Invalid client_id or client_secret."))
        grant = form.get("grant_type")
        try:
            if not grant:
                raise SandboxOAuthError("invalid_request", "grant_type is a required parameter")
            if grant == "authorization_code":
                for required in ("code", "redirect_uri"):
                    if not form.get(required):
                        raise SandboxOAuthError("invalid_request", f"{required} is a required parameter")
                if app.pkce and not form.get("code_verifier"):
                    raise SandboxOAuthError("invalid_request", "code_verifier is a required parameter")
                body = self.state.exchange_code(
                    app=app,
                    code=form["code"],
                    redirect_uri=form["redirect_uri"],
                    code_verifier=form.get("code_verifier"),
                )
            elif grant == "refresh_token":
                if not form.get("refresh_token"):
                    raise SandboxOAuthError("invalid_request", "refresh_token is a required parameter")
                body = self.state.refresh(app=app, refresh_token=form["refresh_token"])
            else:
                raise SandboxOAuthError("unsupported_grant_type", f"Unsupported grant_type: {grant}")
        except SandboxOAuthError as exc:
            raise _Reply(exc.status, exc.body()) from None
        self._reply(200, body)

    # -- resources (§3, §4)

    def route_users_me(self) -> None:
        _, user_id = self._authenticate()
        self._reply(200, _private_user(self.state.seller(user_id)))

    def route_user(self, user_id: str) -> None:
        self._reply(200, _private_user(self._own_user(user_id)))

    def route_delete_grant(self, user_id: str, app_id: str) -> None:
        client_id, token_user = self._authenticate()
        if int(user_id) != token_user:
            raise _Reply(403, dict(_FORBIDDEN))
        app = self.state.apps.get(client_id)
        if app is None or app_id not in {str(app.app_id), app.client_id}:
            raise _Reply(404, _api_error_body(404, "not_found", f"Application {app_id} not found"))
        self.state.revoke(token_user, client_id=client_id)
        self._reply(200, {"user_id": str(token_user), "app_id": app_id, "msg": "Autorización eliminada"})

    def route_sites(self) -> None:
        if "access_token" in self._query or self.headers.get("Authorization"):
            self._authenticate()  # public, but a token that is sent must be valid
        self._reply(200, _SITES)

    def route_items_search(self, user_id: str) -> None:
        seller = self._own_user(user_id)
        limit = self._int_param("limit", 50)
        offset = self._int_param("offset", 0)
        if limit > 100:
            raise _bad_request("Limit must be lower or equal to 100")
        if self._param("search_type") == "scan":
            raise _bad_request("search_type=scan is not implemented by the sandbox")
        if offset + limit > 1000:
            # §4.1: past 1000 results ML wants search_type=scan, not offsets.
            raise _bad_request("Invalid offset. Use search_type=scan to read more than 1000 results")
        counts = _item_counts(seller)
        status = self._param("status")
        if status is None:
            start, total = 0, sum(counts.values())
        else:
            start, total = 0, 0
            for name, count in counts.items():
                if name == status:
                    total = count
                    break
                start += count
        number = self.state._seller_number(seller.id)
        results = [_item_id(seller, number, start + k) for k in range(offset, min(offset + limit, total))]
        body: dict[str, Any] = {
            "seller_id": str(seller.id),
            "query": None,
            "paging": {"limit": limit, "offset": offset, "total": total},
            "results": results,
            "orders": [{"id": "stop_time_asc", "name": "Order by stop time ascending"}],
            "available_orders": [
                {"id": "stop_time_desc", "name": "Order by stop time descending"},
                {"id": "start_time_desc", "name": "Order by start time descending"},
            ],
        }
        if self._param("include_filters") == "true":
            body["filters"] = [] if status is None else [{"id": "status", "values": [{"id": status}]}]
            body["available_filters"] = [
                {
                    "id": "status",
                    "name": "Status",
                    "type": "text",
                    "values": [
                        {"id": name, "name": name.title(), "results": n} for name, n in counts.items()
                    ],
                }
            ]
        self._reply(200, body)

    def _date_param(self, name: str) -> float | None:
        raw = self._param(name)
        if not raw:
            return None
        try:
            # An unencoded "+" in the offset arrives as a space.
            parsed = datetime.fromisoformat(raw.strip().replace(" ", "+").replace("Z", "+00:00"))
        except ValueError:
            raise _bad_request(f"Invalid date format for {name}: {raw}", "invalid_date_format") from None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        # §4.2: ML truncates order date filters to the hour.
        return parsed.replace(minute=0, second=0, microsecond=0).timestamp()

    def route_orders_search(self) -> None:
        if self._param("seller") is None:
            self._authenticate()
            raise _bad_request("Missing required parameter: seller", "invalid_request")
        seller = self._own_user(self._param("seller"))
        limit = min(self._int_param("limit", 50), 51)
        offset = self._int_param("offset", 0)
        date_from = self._date_param("order.date_created.from")
        date_to = self._date_param("order.date_created.to")
        sort = self._param("sort", "date_asc")
        if sort not in {"date_asc", "date_desc"}:
            raise _bad_request(f"Invalid sort: {sort}")
        statuses = {s.strip() for s in (self._param("order.status") or "paid").split(",")}
        anchor = time.time() // 3600 * 3600
        ages = _order_ages(seller.orders, seller.orders // 2) if "paid" in statuses else ()
        low = 0 if date_to is None else bisect_left(ages, anchor - date_to)
        high = len(ages) if date_from is None else bisect_right(ages, anchor - date_from)
        high = max(low, high)
        total = high - low
        # ages run newest first; date_asc (the default) lists the oldest first.
        window = range(high - 1, low - 1, -1) if sort == "date_asc" else range(low, high)
        picked = window[offset : offset + limit]
        number = self.state._seller_number(seller.id)
        currency = _CURRENCY.get(seller.site_id, "BRL")
        results = []
        for index in picked:
            serial = len(ages) - 1 - index  # 0 = the seller's oldest order
            created = anchor - ages[index]
            amount = round(19.9 + (serial * 37) % 480, 2)
            results.append(
                {
                    "id": 2_000_000_000_000_000 + number * 100_000_000 + serial,
                    "status": "paid",
                    "status_detail": None,
                    "date_created": _iso(created),
                    "date_closed": _iso(created + 2),
                    "last_updated": _iso(created + 3600),
                    "date_last_updated": _iso(created + 3600),
                    "total_amount": amount,
                    "paid_amount": amount,
                    "currency_id": currency,
                    "seller": {"id": seller.id, "nickname": seller.nickname},
                    "buyer": {"id": 100_000_000 + (serial * 104_729 + number) % 899_999_999},
                    "order_items": [
                        {
                            "item": {
                                "id": _item_id(seller, number, serial % max(seller.listings, 1)),
                                "title": f"Produto de teste {serial % 97}",
                                "variation_id": None,
                                "seller_sku": None,
                            },
                            "quantity": 1,
                            "unit_price": amount,
                            "sale_fee": round(amount * 0.11, 2),
                            "listing_type_id": "gold_special",
                            "currency_id": currency,
                        }
                    ],
                    "payments": [],
                    "shipping": {"id": 40_000_000_000 + number * 100_000_000 + serial},
                    "pack_id": None,
                    "tags": ["paid", "delivered"],
                    "mediations": [],
                    "feedback": {"sale": None, "purchase": None},
                    "fulfilled": True,
                }
            )
        self._reply(
            200,
            {
                "query": None,
                "results": results,
                "sort": {"id": sort, "name": "Date ascending" if sort == "date_asc" else "Date descending"},
                "available_sorts": [
                    {"id": "date_desc" if sort == "date_asc" else "date_asc", "name": "Date"}
                ],
                "filters": [],
                "paging": {"total": total, "offset": offset, "limit": limit},
                "display": "complete",
            },
        )

    def route_questions_search(self) -> None:
        if self._param("item"):
            self._authenticate()
            raise _bad_request("The sandbox only supports question searches by seller_id")
        if self._param("seller_id") is None:
            self._authenticate()
            raise _bad_request("Missing required parameter: item or seller_id", "invalid_request")
        seller = self._own_user(self._param("seller_id"))
        limit = min(self._int_param("limit", 50), 100)
        offset = self._int_param("offset", 0)
        counts = _question_counts(seller)
        status = (self._param("status") or "").upper()
        selected = [(name, count) for name, count in counts.items() if not status or status == name]
        total = sum(count for _, count in selected)
        page: list[tuple[str, int]] = []
        position = 0  # unanswered first, then answered
        for name, count in selected:
            first, last = max(0, offset - position), min(count, offset + limit - position)
            page.extend((name, k) for k in range(first, last))
            position += count
        number = self.state._seller_number(seller.id)
        questions = []
        for name, k in page:
            serial = k if name == "UNANSWERED" else counts["UNANSWERED"] + k
            created = time.time() // 3600 * 3600 - (serial + 1) * 5400
            questions.append(
                {
                    "id": 13_000_000_000 + number * 10_000_000 + serial,
                    "seller_id": seller.id,
                    "item_id": _item_id(seller, number, serial % max(seller.listings, 1)),
                    "status": name,
                    "text": "Tem em outra cor?",
                    "date_created": _iso(created),
                    "deleted_from_listing": False,
                    "hold": False,
                    "suspected_spam": False,
                    "answer": None
                    if name == "UNANSWERED"
                    else {"text": "Temos sim!", "status": "ACTIVE", "date_created": _iso(created + 900)},
                    "from": {"id": 100_000_000 + (serial * 7919 + number) % 899_999_999},
                }
            )
        # §4.3: the count is a top-level `total`; there is no `paging` object here.
        self._reply(
            200,
            {
                "total": total,
                "limit": limit,
                "questions": questions,
                "filters": {
                    "limit": limit,
                    "offset": offset,
                    "api_version": self._param("api_version"),
                    "is_admin": False,
                    "sorts": [],
                    "caller": seller.id,
                    "seller_id": str(seller.id),
                    "status": status or None,
                },
                "available_filters": [
                    {
                        "id": "status",
                        "name": "Status",
                        "type": "text",
                        "values": [
                            "ANSWERED",
                            "BANNED",
                            "CLOSED_UNANSWERED",
                            "DELETED",
                            "DISABLED",
                            "UNANSWERED",
                        ],
                    }
                ],
                "available_sorts": ["item_id", "from_id", "date_created", "seller_id"],
            },
        )

    def route_claims_search(self) -> None:
        _, token_user = self._authenticate()
        query = {name: values[0] for name, values in self._query.items() if values}
        if not any(name in query for name in _CLAIM_FILTERS):
            # §4.4: paging and sort parameters do not count as a filter.
            raise _Reply(
                400,
                {
                    "message": "at least any of these filters: " + ", ".join(_CLAIM_FILTERS),
                    "error": "invalid_query",
                    "status": 400,
                    "cause": [],
                },
            )

        def invalid(message: str) -> _Reply:
            return _Reply(400, _api_error_body(400, "invalid_params", message))

        if ("players.role" in query) != ("players.user_id" in query):
            raise invalid("players.role and players.user_id must be sent together")
        if "resource_id" in query and "resource" not in query:
            raise invalid("resource_id requires resource")
        if "resource" in query and "resource_id" not in query and "players.role" not in query:
            raise invalid("resource requires resource_id or players.role and players.user_id")
        if "order_id" in query and "pack_id" in query:
            raise invalid("order_id and pack_id cannot be combined")
        if query.get("players.role", "respondent") not in {"respondent", "complainant", "mediator"}:
            raise invalid(f"invalid players.role: {query['players.role']}")
        if "players.user_id" in query and query["players.user_id"] != str(token_user):
            raise _Reply(403, _api_error_body(403, "forbidden_error", "forbidden"))
        limit = min(self._int_param("limit", 30), 100)  # larger limits are silently clamped
        offset = self._int_param("offset", 0)
        if offset + limit >= 10000:
            raise invalid("offset + limit must be lower than 10000")
        seller = self.state.seller(token_user)
        claims = self._claims_of(seller) if query.get("players.role", "respondent") == "respondent" else []
        # Filters compared field by field; the demo claims have no packs, payments or parents.
        fields_by_filter = {name: name for name in ("id", "type", "stage", "status", "resource", "site_id")}
        fields_by_filter |= {
            "resource_id": "resource_id",
            "order_id": "resource_id",
            "reason_id": "reason_id",
        }
        matching = [
            claim
            for claim in claims
            if all(
                str(claim[fields_by_filter[name]]) == value
                for name, value in query.items()
                if name in fields_by_filter
            )
            and not {"pack_id", "payment_id", "parent_id"} & query.keys()
        ]
        self._reply(
            200,
            {
                "paging": {"total": len(matching), "offset": offset, "limit": limit},
                "data": matching[offset : offset + limit],
            },
        )

    def _claims_of(self, seller: DemoSeller) -> list[dict[str, Any]]:
        number = self.state._seller_number(seller.id)
        claims = []
        for k in range(seller.claims * 4):
            opened = k < seller.claims
            order_id = 2_000_000_000_000_000 + number * 100_000_000 + k * 7
            created = time.time() // 3600 * 3600 - (k + 1) * 86400
            claims.append(
                {
                    "id": 5_100_000_000 + number * 100_000 + k,
                    "resource_id": order_id,
                    "resource": "order",
                    "status": "opened" if opened else "closed",
                    "type": "mediations",
                    "stage": "claim" if opened else "none",
                    "parent_id": None,
                    "reason_id": "PDD9528",
                    "fulfilled": True,
                    "quantity_type": None,
                    "players": [
                        {
                            "role": "complainant",
                            "type": "buyer",
                            "user_id": 100_000_000 + k,
                            "available_actions": [],
                        },
                        {
                            "role": "respondent",
                            "type": "seller",
                            "user_id": seller.id,
                            "available_actions": [
                                {
                                    "action": "send_message_to_complainant",
                                    "mandatory": False,
                                    "due_date": None,
                                }
                            ]
                            if opened
                            else [],
                        },
                    ],
                    "resolution": None
                    if opened
                    else {"reason": "item_returned", "date_created": _iso(created + 86400)},
                    "site_id": seller.site_id,
                    "date_created": _iso(created),
                    "last_updated": _iso(created + 3600),
                }
            )
        return claims


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    block_on_close = False
    request_queue_size = 256

    def __init__(self, address: tuple[str, int], state: SandboxState, verbose: bool):
        self.sandbox_state = state
        self.verbose = verbose
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, _Handler)

    def process_request(self, request, client_address):
        with self._connections_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request):
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        """Cut open keep-alive connections so no handler of a stopped server answers again."""
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request, client_address):
        if isinstance(sys.exc_info()[1], ConnectionError | TimeoutError) and not self.verbose:
            return
        super().handle_error(request, client_address)


class SandboxServer:
    """The sandbox bound to ``host:port`` (port 0 picks a free one), with its ``state``.

    ``start()`` serves in a daemon thread, ``serve_forever()`` in the calling thread;
    ``stop()`` ends either. Usable as a context manager.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        state: SandboxState | None = None,
        *,
        verbose: bool = False,
    ):
        self.state = state if state is not None else SandboxState()
        self._httpd = _HTTPServer((host, port), self.state, verbose)
        self.host = host
        self.port: int = self._httpd.server_address[1]
        self._thread: threading.Thread | None = None
        self._serving = False
        self._closed = False

    @property
    def url(self) -> str:
        """Base URL of both the API and the authorization page, e.g. ``http://127.0.0.1:54321``."""
        host = "127.0.0.1" if self.host in {"", "0.0.0.0"} else self.host  # noqa: S104
        return f"http://{host}:{self.port}"

    def start(self) -> SandboxServer:
        """Serve in a daemon thread and return self."""
        self._serving = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.1}, name="ml-sandbox", daemon=True
        )
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        """Serve in this thread until ``stop()`` or KeyboardInterrupt, then close."""
        self._serving = True
        try:
            self._httpd.serve_forever(poll_interval=0.2)
        finally:
            self._serving = False
            self.stop()

    def stop(self) -> None:
        """Stop serving, cut open connections and release the port. Idempotent."""
        if self._closed:
            return
        self._closed = True
        if self._serving:
            self._httpd.shutdown()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._httpd.close_connections()
        self._httpd.server_close()

    def __enter__(self) -> SandboxServer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def start_sandbox(
    host: str = "127.0.0.1",
    port: int = 0,
    state: SandboxState | None = None,
    *,
    state_file: Path | str | None = None,
    verbose: bool = False,
    **knobs: Any,
) -> SandboxServer:
    """Start the sandbox in a daemon thread and return the running SandboxServer.

    Without ``state`` a new SandboxState is made (on ``state_file`` if given); ``knobs``
    configure it. ``with start_sandbox() as sandbox: requests.get(sandbox.url + "/sites")``.
    """
    if state is None:
        state = SandboxState(state_file=state_file, **knobs)
    elif knobs:
        state.configure(**knobs)
    return SandboxServer(host, port, state, verbose=verbose).start()


def serve_forever(
    host: str = "127.0.0.1",
    port: int = 8001,
    state: SandboxState | None = None,
    *,
    verbose: bool = False,
    on_ready: Callable[[SandboxServer], None] | None = None,
) -> None:
    """Serve the sandbox in the calling thread until KeyboardInterrupt (re-raised) or stop.

    ``on_ready`` is called with the bound server before serving starts (to print its URL).
    """
    server = SandboxServer(host, port, state, verbose=verbose)
    if on_ready is not None:
        on_ready(server)
    server.serve_forever()
