"""Webhook notifications as ML sends them (§6, §9 item 5, §11.1): emit, deliver, retry, miss.

A seller's activity (``/_sandbox/activity`` or the ``activity_seconds`` ticker) changes the
sizes its searches report (creating, answering or closing question and claim objects in the
desk, creating paid orders at the sandbox's ``now()`` or cancelling them) and emits §6.2
bodies: a pointer (``resource``, the object touched: ``GET /orders/{id}`` reads the new order)
and nothing else, in both of ML's shapes (``_id`` or ``id``, ``user_id`` a number or a
string), several per change when asked.
A daemon *postman* POSTs them to ``notifications_url``; only HTTP 200 within
``notification_timeout_ms`` counts, anything else is retried with ``attempts`` + 1 and the
same id after ``notification_retry_seconds`` × 2^(n−1), and after ``notification_retries``
retries the notification goes to the missed feeds (§6.5), kept two days and read through
``GET /missed_feeds``.

Notifications live in memory (never in the state file) and under the state's one lock; the
HTTP POST itself runs outside it, so a slow app never blocks the sandbox's API.
"""

from __future__ import annotations

import contextlib
import heapq
import http.client
import itertools
import json
import random
import secrets
import threading
import time
import urllib.error
import urllib.request
import uuid
from bisect import bisect_left, insort
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from .desk import DESK_SIZES
from .sellers import DEMO_SELLERS, SANDBOX_CLIENT_ID, DemoSeller

if TYPE_CHECKING:
    from .state import SandboxState

# The topics ``/_sandbox/activity`` takes and the seller size each one changes.
ACTIVITY_TOPICS = {"questions": "questions", "orders_v2": "orders", "items": "listings", "claims": "claims"}
SIZE_NAMES = ("listings", "orders", "questions", "claims")
MAX_DUPLICATES = 20
MAX_CHANGE = 1_000_000
MISSED_RETENTION_SECONDS = 2 * 86400  # §6.5: missed feeds are kept two days
MAX_MISSED = 10_000  # a failing app under the ticker must not grow memory for two days
DELIVERY_LOG_SIZE = 1000
MISSED_FEEDS_MAX_LIMIT = 200  # §11.1: integrations page with limit=200; more is refused with 400
_RESPONSE_BODY_LIMIT = 4096
# The socket waits this much longer than the deadline, so that a slow answer is still read
# (and shows in the missed feed with its status and req_time) yet counts as failed.
_READ_GRACE_SECONDS = 0.5
_HEADERS = {
    "Content-Type": "application/json",
    "Accept": "application/json",
    "User-Agent": "MLSandbox/1.0 (notifications)",
}


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    # ML does not follow redirects: a 3xx is a failed delivery like any other non-200.
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


# No proxies from the environment: the callback is usually the developer's own machine.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirect)


def utc_stamp(ts: float) -> str:
    """A notification timestamp: UTC with millis and ``Z`` (§0), e.g. ``2025-03-10T16:19:20.129Z``."""
    return datetime.fromtimestamp(ts, tz=UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class _Outcome:
    http_code: int  # 0 when nothing answered (refused, reset, timed out)
    elapsed_ms: int
    body: str
    headers: dict[str, str]


def post_notification(url: str, payload: bytes, timeout_ms: int) -> _Outcome:
    """POST one notification body as ML does (§6.1) and report what came back, never raising."""
    # The knob only takes http:// and https:// URLs, so no file:// or custom scheme gets here.
    request = urllib.request.Request(url, data=payload, headers=_HEADERS, method="POST")  # noqa: S310
    started = time.monotonic()
    code, body, headers = 0, b"", {}
    try:
        with _OPENER.open(request, timeout=timeout_ms / 1000 + _READ_GRACE_SECONDS) as response:
            code, headers = response.status, dict(response.headers)
            body = response.read(_RESPONSE_BODY_LIMIT)
    except urllib.error.HTTPError as exc:
        code, headers = exc.code, dict(exc.headers or {})
        try:
            body = exc.read(_RESPONSE_BODY_LIMIT)
        except (OSError, http.client.HTTPException):
            body = b""
        finally:
            exc.close()
    except (OSError, http.client.HTTPException, ValueError):
        # Refused, reset, timed out (URLError and TimeoutError are OSErrors), or garbage
        # instead of HTTP: no answer at all. A body read that timed out keeps its status.
        pass
    elapsed_ms = round((time.monotonic() - started) * 1000)
    return _Outcome(code, elapsed_ms, body.decode("utf-8", "replace"), headers)


@dataclass
class _Delivery:
    """One notification on its way: its body (``attempts`` and ``sent`` change per try)."""

    body: dict[str, Any]
    url: str
    user_id: int
    site_id: str
    app_id: int
    received_at: float
    status: str = "pending"  # then "delivered" or "missed"
    http_code: int | None = None
    tries: int = 0

    def summary(self) -> dict[str, Any]:
        return {
            "id": self.body.get("_id") or self.body.get("id"),
            "topic": self.body["topic"],
            "resource": self.body["resource"],
            "user_id": self.user_id,
            "attempts": self.body["attempts"],
            "status": self.status,
            "http_code": self.http_code,
        }


class Notifier:
    """The sandbox's notification side: bodies, the postman, the activity ticker, missed feeds.

    Owned by a ``SandboxState`` and sharing its lock; ``start()``/``stop()`` run the two
    daemon threads (``SandboxServer`` does it). Notifications emitted while no postman runs
    wait in the queue. The URL is taken when the event happens: retries go where the first
    attempt went, even if the knob changes meanwhile.
    """

    def __init__(self, state: SandboxState):
        self._state = state
        self._cond = threading.Condition(state._lock)
        self._rng = random.Random()  # noqa: S311 - demo activity, not security
        self._queue: list[tuple[float, int, _Delivery]] = []  # (due, seq, delivery): a heap
        self._seq = itertools.count()
        self._shapes = itertools.count()
        self._serials = itertools.count(1)
        self._log: deque[_Delivery] = deque(maxlen=DELIVERY_LOG_SIZE)
        # (received_at, seq, site_id, app_id, message), oldest first.
        self._missed: list[tuple[float, int, str, int, dict[str, Any]]] = []
        # A reset while a POST is in flight must not let that POST's outcome come back.
        self._generation = 0
        self._threads: list[threading.Thread] = []
        self._users = 0
        self._stopping = False

    # -- threads

    def start(self) -> None:
        """Start the postman and the activity ticker (once, however many servers share the state)."""
        with self._cond:
            self._users += 1
            if self._users > 1:
                return
            self._stopping = False
            for role, target in (("postman", self._postman), ("activity", self._ticker)):
                thread = threading.Thread(target=target, name=f"ml-sandbox-{role}", daemon=True)
                self._threads.append(thread)
                thread.start()  # the thread waits for the lock, held until both are started

    def stop(self) -> None:
        """Stop both threads and wait for them; pending notifications stay queued, undelivered."""
        with self._cond:
            self._users = max(0, self._users - 1)
            if self._users:
                return
            self._stopping = True
            threads, self._threads = self._threads, []
            timeout_ms = self._state.knobs.notification_timeout_ms
            self._cond.notify_all()
        for thread in threads:
            # Ctrl-C (or the command's SIGTERM) can land inside start() between creating a
            # thread and starting it: such a thread cannot be joined, and if it runs at all
            # it sees `_stopping` first and ends at once.
            with contextlib.suppress(RuntimeError):
                # A POST in flight ends within its socket timeout.
                thread.join(timeout=timeout_ms / 1000 + _READ_GRACE_SECONDS + 5)

    def wake(self) -> None:
        """Let the threads see changed knobs (a new activity interval, say) at once."""
        with self._cond:
            self._cond.notify_all()

    def reset(self) -> None:
        """Forget queued notifications, the delivery log and the missed feeds."""
        with self._cond:
            self._generation += 1
            self._queue.clear()
            self._log.clear()
            self._missed.clear()
            self._cond.notify_all()

    # -- emitting

    def record_activity(
        self, user_id: int, topic: str, *, change: int = 1, duplicates: int = 1
    ) -> dict[str, Any]:
        """Change a demo seller's size for ``topic`` by ``change`` and notify, ``duplicates`` times.

        Returns ``{"user_id", "topic", "resource", "seller": sizes after, "notifications":
        bodies}``; no bodies when notifications are off. ValueError on a bad argument. For
        ``orders_v2`` the resource is the order created (or cancelled) and ``seller["orders"]``
        the standing sales of the last 30 days the app's count then reads.
        """
        state = self._state
        if topic not in ACTIVITY_TOPICS:
            raise ValueError(f"topic must be one of {', '.join(ACTIVITY_TOPICS)}")
        if isinstance(change, bool) or not isinstance(change, int) or abs(change) > MAX_CHANGE:
            raise ValueError(f"change must be an integer between -{MAX_CHANGE} and {MAX_CHANGE}")
        if isinstance(duplicates, bool) or not isinstance(duplicates, int):
            raise ValueError("duplicates must be an integer")
        if not 1 <= duplicates <= MAX_DUPLICATES:
            raise ValueError(f"duplicates must be between 1 and {MAX_DUPLICATES}")
        if not state.is_demo_seller(user_id):
            raise ValueError(f"unknown seller {user_id}")
        size = ACTIVITY_TOPICS[topic]
        with self._cond:
            # Questions and claims are objects: the notification points at the one created,
            # answered or closed, which GET /questions/{id} or the claim's detail then serves.
            if size in DESK_SIZES:
                resource = state.desk.activity(user_id, size, change)
                seller = state.seller(user_id)
            elif size == "orders":
                resource = state.order_activity(user_id, change)
                seller = state.seller(user_id)
            else:
                resource, seller = None, state.add_activity(user_id, **{size: change})
            resource = resource or self._new_resource(topic, seller)
            bodies = self._emit(seller, topic, resource, duplicates)
        return {
            "user_id": user_id,
            "topic": topic,
            "resource": resource,
            "seller": {name: getattr(seller, name) for name in SIZE_NAMES},
            "notifications": bodies,
        }

    def notify(self, user_id: int, topic: str, resource: str) -> list[dict[str, Any]]:
        """Notify the app of one change to ``resource`` that did not come from activity (an
        answer sent through the API, a question deleted by a control); the bodies sent."""
        with self._cond:
            return self._emit(self._state.seller(user_id), topic, resource, 1)

    def _new_resource(self, topic: str, seller: DemoSeller) -> str:
        # Fresh ids in ranges the generated search data never uses, so no two events collide;
        # questions, claims and orders get one only when the activity touched no object (an
        # order only for a seller without any order to point at).
        serial = next(self._serials)
        if topic == "questions":
            return f"/questions/{29_000_000_000 + serial}"
        if topic == "orders_v2":
            return f"/orders/{2_000_900_000_000_000 + serial}"
        if topic == "items":
            return f"/items/{seller.site_id}{5_000_000_000 + serial}"
        # §6.3: claims come as post_purchase, with the prefix ML added recently.
        return f"/post-purchase/v1/claims/{5_250_000_000 + serial}"

    def _app_id(self) -> int:
        apps = self._state.apps
        app = apps.get(SANDBOX_CLIENT_ID) or next(iter(apps.values()))
        return app.app_id

    def _body(self, seller: DemoSeller, topic: str, resource: str, received: str) -> dict[str, Any]:
        # §9.5: ML mixes shapes. The general model says `_id`, the typified one `id`; user_id
        # comes as a number or a string. Two counters apart, four notifications show every mix.
        shape = next(self._shapes)
        typified = topic == "claims"
        if typified or shape % 2:
            key, value = "id", str(uuid.uuid4())
        else:
            key, value = "_id", secrets.token_hex(12)
        body: dict[str, Any] = {
            key: value,
            "resource": resource,
            "user_id": seller.id if shape // 2 % 2 == 0 else str(seller.id),
            "topic": "post_purchase" if typified else topic,
        }
        if typified:
            body["actions"] = ["claims"]
        body |= {"application_id": self._app_id(), "attempts": 1, "sent": received, "received": received}
        return body

    def _emit(self, seller: DemoSeller, topic: str, resource: str, duplicates: int) -> list[dict[str, Any]]:
        knobs = self._state.knobs
        url = knobs.notifications_url
        if url is None:
            return []  # notifications off: nothing is sent, so nothing is missed either
        now = time.time()
        received = utc_stamp(now)
        bodies = []
        for _ in range(duplicates):
            delivery = _Delivery(
                body=self._body(seller, topic, resource, received),
                url=url,
                user_id=seller.id,
                site_id=seller.site_id,
                app_id=self._app_id(),
                received_at=now,
            )
            bodies.append(dict(delivery.body))
            self._log.append(delivery)
            self._state._stats["notifications_sent"] += 1
            if knobs.drop_notifications > 0:
                # As if the app had been unreachable for ML's whole retry hour.
                knobs.drop_notifications -= 1
                delivery.body["attempts"] = knobs.notification_retries + 1
                self._miss(delivery, json.dumps(delivery.body).encode(), _Outcome(0, 0, "", {}))
            else:
                heapq.heappush(self._queue, (time.monotonic(), next(self._seq), delivery))
        self._cond.notify_all()
        return bodies

    def random_event(self) -> dict[str, Any] | None:
        """Give a random demo seller a random event (what ``activity_seconds`` does each tick)."""
        state = self._state
        demo_ids = {seller.id for seller in DEMO_SELLERS}
        with self._cond:
            candidates = [seller.id for seller in state.sellers if seller.id in demo_ids]
            if not candidates:
                return None
            seller = state.seller(self._rng.choice(candidates))
            events = [("questions", 1), ("orders_v2", 1), ("items", 1), ("claims", 1)]
            if seller.questions > 0:
                events.append(("questions", -1))  # a question answered
            if seller.claims > 0:
                events.append(("claims", -1))  # a claim closed
            topic, change = self._rng.choice(events)
            # One sale brings several notifications at ML (§11.1): let the app dedupe them.
            duplicates = self._rng.randint(1, 3) if topic == "orders_v2" else 1
            return self.record_activity(seller.id, topic, change=change, duplicates=duplicates)

    def _ticker(self) -> None:
        next_at: float | None = None
        with self._cond:
            while not self._stopping:
                seconds = self._state.knobs.activity_seconds
                now = time.monotonic()
                if seconds is None:
                    next_at = None
                    self._cond.wait()
                    continue
                if next_at is None or next_at > now + seconds:
                    next_at = now + seconds  # first tick, or the interval was shortened
                if now < next_at:
                    self._cond.wait(next_at - now)
                    continue
                next_at = now + seconds
                self.random_event()

    # -- delivering

    def _next_due(self) -> _Delivery | None:
        """Wait (lock held) for the next due delivery; None when stopping."""
        while not self._stopping:
            wait = None
            if self._queue:
                wait = self._queue[0][0] - time.monotonic()
                if wait <= 0:
                    return heapq.heappop(self._queue)[2]
            self._cond.wait(wait)
        return None

    def _postman(self) -> None:
        while True:
            with self._cond:
                delivery = self._next_due()
                if delivery is None:
                    return
                if delivery.tries:
                    delivery.body["attempts"] = delivery.tries + 1
                delivery.tries += 1
                delivery.body["sent"] = utc_stamp(time.time())
                payload = json.dumps(delivery.body).encode("utf-8")
                timeout_ms = self._state.knobs.notification_timeout_ms
                generation = self._generation
            outcome = post_notification(delivery.url, payload, timeout_ms)
            with self._cond:
                if generation == self._generation:
                    self._settle(delivery, payload, outcome, timeout_ms)

    def _settle(self, delivery: _Delivery, payload: bytes, outcome: _Outcome, timeout_ms: int) -> None:
        knobs = self._state.knobs
        delivery.http_code = outcome.http_code
        self._state._stats["notifications_posted"] += 1  # every attempt, answered or not
        # §6.4: a 200 that comes too late is as failed as a 500.
        if outcome.http_code == 200 and outcome.elapsed_ms <= timeout_ms:
            delivery.status = "delivered"
            self._state._stats["notifications_delivered"] += 1
            return
        retries_done = delivery.tries - 1
        if retries_done < knobs.notification_retries:
            due = time.monotonic() + knobs.notification_retry_seconds * 2**retries_done
            heapq.heappush(self._queue, (due, next(self._seq), delivery))
            self._cond.notify_all()
            return
        self._miss(delivery, payload, outcome)

    def _miss(self, delivery: _Delivery, payload: bytes, outcome: _Outcome) -> None:
        """Store a notification that never got its 200 in the missed feeds (§6.5 shape)."""
        delivery.status = "missed"
        delivery.http_code = outcome.http_code
        self._state._stats["notifications_missed"] += 1
        message = {
            **delivery.body,
            "request": {
                "url": delivery.url,
                "headers": {
                    "accept": "application/json",
                    "content-type": "application/json",
                    "content-length": len(payload),
                },
                "data": payload.decode("utf-8"),
            },
            "response": {
                "req_time": outcome.elapsed_ms,
                "http_code": outcome.http_code,
                "body": outcome.body,
                "headers": {name.lower(): value for name, value in outcome.headers.items()},
            },
        }
        # Kept in `received` order: a dropped notification lands before older ones that are
        # still being retried.
        insort(
            self._missed,
            (delivery.received_at, next(self._seq), delivery.site_id, delivery.app_id, message),
            key=lambda entry: (entry[0], entry[1]),
        )
        if len(self._missed) > MAX_MISSED:
            del self._missed[: len(self._missed) - MAX_MISSED]

    def _prune_missed(self) -> None:
        cutoff = time.time() - MISSED_RETENTION_SECONDS
        del self._missed[: bisect_left(self._missed, cutoff, key=lambda entry: entry[0])]

    # -- reading

    def missed_feeds(
        self,
        *,
        app_id: int,
        topic: str | None = None,
        site_id: str | None = None,
        offset: int = 0,
        limit: int = 10,
    ) -> list[dict[str, Any]]:
        """The app's missed notifications of the last two days, oldest first (§6.5).

        ``topic`` and ``site_id`` filter (the site is the seller's); the caller checks that
        ``topic=items`` comes with a ``site_id``.
        """
        with self._cond:
            self._prune_missed()
            matching = [
                message
                for _, _, message_site, message_app, message in self._missed
                if message_app == app_id
                and (topic is None or message["topic"] == topic)
                and (site_id is None or message_site == site_id)
            ]
            # Stored messages never change again, so they can be serialised outside the lock.
            return matching[offset : offset + limit]

    def report(self) -> dict[str, Any]:
        """``GET /_sandbox/notifications``: the last deliveries, oldest first, and the missed count."""
        with self._cond:
            self._prune_missed()
            return {
                "deliveries": [delivery.summary() for delivery in self._log],
                "missed": len(self._missed),
            }
