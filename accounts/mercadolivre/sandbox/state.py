"""What the sandbox remembers: codes, tokens, knobs and stats, optionally in a shared state file.

Refresh tokens rotate like ML's (§1.5): only the latest one of each (app, user) works. With a
state file, the seeding command and a running sandbox share the tokens under an ``flock``.
The sellers' activity (changes to their sizes), their questions and claims (``desk``) and the
notifications live in memory only; the orders activity created (``orders``, an
``OrderLedger``) live in the state file too, when there is one, since the app mirrors them.

``clock`` is the sellers' data clock (epoch seconds): the orders and the reputation are what
they are at ``now()``. It is ``time.time`` unless a test freezes or moves it (tokens, codes
and notifications always use the real time).
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import hashlib
import hmac
import json
import os
import random
import secrets
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .desk import DESK_SIZES, DESK_STAT_KINDS, Desk
from .errors import INVALID_GRANT, SandboxOAuthError
from .knobs import SandboxKnobs, check_knob
from .notifications import SIZE_NAMES, Notifier
from .order_schedule import MAX_ACTIVITY_ORDERS
from .orders import OrderLedger, SellerOrders, owns_order
from .sellers import DEMO_SELLERS, SANDBOX_APP, SANDBOX_CLIENT_ID, DemoSeller, SandboxApp, synthetic_seller

TOKEN_SCOPE = "offline_access read write"  # noqa: S105 - not a secret
STATE_FILE_VERSION = 1

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
    "missed_feeds",
    "unknown",
    *DESK_STAT_KINDS,
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
    The sellers' activity (``add_activity``, ``record_activity``), their question and claim
    objects (``desk``, a ``Desk``) and ``notifications`` (a ``Notifier``) are kept in memory
    only; the orders activity created (``orders``) in the state file as well. ``clock`` (a
    callable returning epoch seconds, ``time.time`` by default) is the time of the sellers'
    orders and reputation: tests freeze it or move it (``state.clock = lambda: t``).
    """

    def __init__(
        self,
        state_file: Path | str | None = None,
        *,
        sellers: Iterable[DemoSeller] | None = None,
        apps: Iterable[SandboxApp] | None = None,
        clock: Callable[[], float] = time.time,
        **knobs: Any,
    ):
        self._lock = threading.RLock()
        self.clock = clock
        # Per-seller changes to listings, applied by seller(): the searches follow them.
        # Questions and claims are objects in the desk, orders records in the ledger.
        self._activity: dict[int, dict[str, int]] = {}
        self.orders = OrderLedger()
        self.desk = Desk(self)
        self.notifications = Notifier(self)
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
        checked = {name: check_knob(name, value) for name, value in changes.items()}
        with self._lock:
            for name, value in checked.items():
                setattr(self.knobs, name, value)
            if {"rate_limit_per_second", "rate_limit_burst"} & checked.keys():
                self._bucket = self._bucket_capacity()
                self._bucket_at = time.monotonic()
            self.notifications.wake()
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
                "notifications_sent": 0,
                "notifications_delivered": 0,
                "notifications_missed": 0,
                "notifications_posted": 0,
            }

    def stats(self) -> dict[str, Any]:
        """Return the counters of API requests (``/_sandbox/*`` calls are not counted).

        ``notifications_sent`` counts notifications emitted while ``notifications_url`` was
        set (each once, however many attempts), ``notifications_delivered`` those that got
        their 200 in time and ``notifications_missed`` those stored in the missed feeds;
        ``notifications_posted`` counts every POST attempt (retries included, answered in time,
        late, or not at all: a request the app took too long over is still one it received).
        """
        with self._lock:
            snapshot = dict(self._stats)
            snapshot["by_kind"] = {kind: self._stats["by_kind"].get(kind, 0) for kind in _STAT_KINDS}
            snapshot["by_status"] = {str(k): v for k, v in sorted(self._stats["by_status"].items())}
            return snapshot

    def reset(self) -> None:
        """Forget every code, token, activity and notification; zero the stats; restore the knobs."""
        with self._mutation():
            self._codes.clear()
            self._access.clear()
            self._refresh.clear()
            self._dirty = True
            self._activity.clear()
            self.orders.clear()
            self.desk.reset()
            self.notifications.reset()
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

    def base_seller(self, user_id: int) -> DemoSeller:
        """The demo seller with ``user_id`` (or a synthetic one) as configured, without activity."""
        return self._sellers_by_id.get(user_id) or synthetic_seller(user_id)

    def seller(self, user_id: int) -> DemoSeller:
        """Return the seller with ``user_id`` (demo or synthetic) with the sizes its searches report
        now: listings with their activity, the desk's counts, and ``orders`` the standing sales
        of the last 30 days (``standing_orders``), which the schedule's clock moves."""
        seller = self.base_seller(user_id)
        with self._lock:
            deltas = self._activity.get(user_id, {})
            sizes = {name: max(0, getattr(seller, name) + d) for name, d in deltas.items()}
            sizes |= self.desk.sizes(user_id)
            sizes["orders"] = self.standing_orders(user_id)
            return replace(seller, **sizes)

    def add_activity(self, user_id: int, **changes: int) -> DemoSeller:
        """Change the seller's sizes (listings, orders, questions, claims) by ``changes``.

        No listings count goes below 0: a decrease larger than the size stops at 0, so a later
        increase counts from there. Questions and claims change as objects (``Desk.activity``),
        orders as orders (``order_activity``). Returns the seller as the searches now see it.
        """
        unknown = changes.keys() - set(SIZE_NAMES)
        if unknown:
            raise ValueError(f"unknown sizes: {', '.join(sorted(unknown))}")
        base = self.base_seller(user_id)
        with self._lock:
            for name, change in changes.items():
                if name in DESK_SIZES:
                    self.desk.activity(user_id, name, change)
                elif name == "orders":
                    self.order_activity(user_id, change)
                else:
                    deltas = self._activity.setdefault(user_id, {})
                    deltas[name] = max(deltas.get(name, 0) + change, -getattr(base, name))
            return self.seller(user_id)

    # -- orders

    def now(self) -> float:
        """The sellers' data clock (epoch seconds): the moment orders and reputation are shown at."""
        return self.clock()

    def seller_orders(self, user_id: int) -> SellerOrders:
        """The seller's orders (its schedule and the ones activity created) as they stand ``now()``."""
        with self._lock:
            extra = self.orders.records(user_id)
        return SellerOrders(
            self.base_seller(user_id), self._seller_number(user_id), int(self.now() * 1000), extra
        )

    def standing_orders(self, user_id: int, since: float | None = None) -> int:
        """The seller's standing sales (all statuses but cancelled and invalid) created since
        ``since`` (epoch seconds, truncated to the hour; default 30 days before ``now()``):
        ``paging.total`` of the app's 30-day count, activity orders included."""
        return self.seller_orders(user_id).standing(None if since is None else int(since * 1000))

    def order_activity(self, user_id: int, change: int) -> str | None:
        """Create ``change`` paid orders at ``now()`` or, for a negative change, cancel the newest
        ones activity created that still stand; the resource (``/orders/{id}``) of the last one
        touched, else of the seller's newest order (None if it has none). ValueError if asked
        for more than ``MAX_ACTIVITY_ORDERS``."""
        if abs(change) > MAX_ACTIVITY_ORDERS:
            raise ValueError(
                f"change for orders must be between -{MAX_ACTIVITY_ORDERS} and {MAX_ACTIVITY_ORDERS}"
            )
        now = int(self.now() * 1000)
        with self._mutation():
            if change > 0:
                touched = self.orders.create(user_id, change, now)
            else:
                touched = self.orders.cancel(user_id, -change, now)
            self._dirty = self._dirty or bool(touched)
        if touched:
            return f"/orders/{touched[-1].id}"
        newest = self.seller_orders(user_id).newest_ids(1)
        return f"/orders/{newest[0]}" if newest else None

    def order_owner(self, order_id: int, user_id: int) -> int | None:
        """The seller whose order ``order_id`` is (it exists ``now()``), trying ``user_id`` first,
        then the demo sellers and the sellers holding tokens; None for an unknown order."""
        with self._lock:
            owner = self.orders.owner(order_id)
            if owner is not None:
                candidates = [owner]
            else:
                holders = {record["user_id"] for record in self._access.values()}
                candidates = [user_id, *(seller.id for seller in self.sellers), *sorted(holders)]
        for candidate in dict.fromkeys(candidates):
            if (owner is not None or owns_order(candidate, order_id)) and self.seller_orders(candidate).get(
                order_id
            ):
                return candidate
        return None

    def record_activity(
        self, user_id: int, topic: str, *, change: int = 1, duplicates: int = 1
    ) -> dict[str, Any]:
        """Apply one event of a demo seller and notify the app (see ``Notifier.record_activity``)."""
        return self.notifications.record_activity(user_id, topic, change=change, duplicates=duplicates)

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
            self.orders.load(None)
            return
        raw = self.state_file.read_text(encoding="utf-8")
        if not raw.strip():
            self.orders.load(None)
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
        self.orders.load(data.get("orders"))

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
            "orders": self.orders.dump(),
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
                raise SandboxOAuthError("invalid_grant", INVALID_GRANT)
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
                raise SandboxOAuthError("invalid_grant", INVALID_GRANT)
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
