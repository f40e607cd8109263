"""The app-wide Mercado Livre request budget (mercadolivre-api.md §5.2).

ML limits requests per application, not per seller, and publishes no numbers: every
seller synced through one app draws from one budget, and exceeding it answers 429. So
every process takes a token from one bucket before each call: in Redis when
``settings.REDIS_URL`` is set (shared by all web and worker processes on all hosts),
in process memory otherwise (one machine, ``make run``).

``settings.ML_REQUESTS_PER_SECOND`` is the refill rate; the bucket holds about one
second of requests (at least one) so bursts stay small. A rate of 0 or less switches
the limiter off entirely (benchmarks and tests only).
"""

from __future__ import annotations

import logging
import math
import random
import threading
import time
from collections.abc import Callable
from typing import Protocol

import redis
from django.conf import settings
from prometheus_client import Counter

from . import deadline as ml_deadline
from .errors import MLRateLimited

logger = logging.getLogger(__name__)

DEFAULT_BUCKET = "ml-api"
# After a 429 without Retry-After, ML only says "retry after a few seconds" (§1.7).
DEFAULT_PENALTY = 2.0
# A bogus Retry-After (an HTTP-date far in the future) must not stall every sync for hours.
MAX_PENALTY = 120.0
# After a Redis failure, use the local bucket for this long before trying Redis again,
# so an outage costs one connect timeout per interval rather than one per ML call.
REDIS_RETRY_INTERVAL = 30.0
REDIS_SOCKET_TIMEOUT = 0.5
# Extra life of the bucket key after a block ends, for the refill that follows.
_BLOCK_KEY_TTL = 120

# The budget as used, in every process (GET /metrics): what it allowed, what waiting cost,
# what it refused and ML's 429 pauses. What it allows is ML_REQUESTS_PER_SECOND (a gauge).
BUDGET_TOKENS = Counter(
    "mlaccounts_ml_budget_tokens", "Requests the app-wide ML budget let through (tokens taken)."
)
BUDGET_WAIT = Counter(
    "mlaccounts_ml_budget_wait_seconds", "Seconds callers spent waiting for a token of the ML budget."
)
BUDGET_REFUSED = Counter(
    "mlaccounts_ml_budget_refused",
    "Requests the ML budget did not let through: `exhausted` (a wait longer than "
    "ML_RATE_LIMIT_MAX_WAIT: rate limited), `no_spare` (work that can wait found no free token).",
    ["reason"],
)
BUDGET_PENALTIES = Counter(
    "mlaccounts_ml_budget_penalties", "Times ML answered 429 and every process paused its requests."
)
for _reason in ("exhausted", "no_spare"):
    BUDGET_REFUSED.labels(_reason)

# Indirections so tests can drive acquire() with a fake clock.
_sleep = time.sleep
_monotonic = time.monotonic


class Bucket(Protocol):
    name: str

    def take(self, rate: float) -> float:
        """Take one token; return 0 on success, else the seconds to wait before trying again."""
        ...

    def block(self, seconds: float) -> None:
        """Empty the bucket and hand out no token for ``seconds``."""
        ...

    def reset(self) -> None:
        """Forget all state (tests)."""
        ...


def _capacity(rate: float) -> float:
    return max(1.0, rate)


class LocalBucket:
    """A token bucket in process memory, safe across threads."""

    def __init__(self, name: str = DEFAULT_BUCKET, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.name = name
        self._clock = clock
        self._lock = threading.Lock()
        self._tokens: float | None = None  # None: never used, starts full
        self._updated = 0.0
        self._blocked_until = 0.0

    def take(self, rate: float) -> float:
        """Take one token at ``rate`` tokens per second; return 0 or the wait needed."""
        capacity = _capacity(rate)
        with self._lock:
            now = self._clock()
            if now < self._blocked_until:
                return self._blocked_until - now
            if self._tokens is None:
                tokens = capacity
            else:
                tokens = min(capacity, self._tokens + max(0.0, now - self._updated) * rate)
            self._updated = max(now, self._updated)
            # The epsilon absorbs float error (0.1 * 10 is 0.9999…), which would
            # otherwise make callers sleep for a femtosecond and try again.
            if tokens >= 1.0 - 1e-9:
                self._tokens = max(0.0, tokens - 1.0)
                return 0.0
            self._tokens = tokens
            return (1.0 - tokens) / rate

    def block(self, seconds: float) -> None:
        """Empty the bucket and refuse tokens for ``seconds``."""
        with self._lock:
            self._blocked_until = max(self._blocked_until, self._clock() + seconds)
            # Refill starts when the block ends, so the waiting callers do not all fire
            # a full bucket at ML the moment it lifts.
            self._tokens = 0.0
            self._updated = self._blocked_until

    def reset(self) -> None:
        """Forget all state: the next take() finds a full bucket."""
        with self._lock:
            self._tokens = None
            self._updated = 0.0
            self._blocked_until = 0.0


# Both scripts read the clock with Redis TIME so that every process, on every host,
# agrees on "now" regardless of local clock skew. Numbers go through string.format:
# Lua's default number-to-string keeps only 14 significant digits, too few for epoch
# seconds with microseconds, and a number returned from a script is truncated to an
# integer, hence returning strings.
_TAKE_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local rate = tonumber(ARGV[1])
local capacity = tonumber(ARGV[2])
local ttl = tonumber(ARGV[3])
local blocked_until = tonumber(redis.call('GET', KEYS[2]) or '0')
if blocked_until > now then
  return string.format('%.6f', blocked_until - now)
end
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1])
local ts = tonumber(state[2])
if tokens == nil or ts == nil then
  tokens = capacity
  ts = now
end
if now > ts then
  tokens = tokens + (now - ts) * rate
  ts = now
end
tokens = math.min(capacity, tokens)
local wait = 0
if tokens >= 1 - 1e-9 then
  tokens = math.max(0, tokens - 1)
else
  wait = (1 - tokens) / rate
end
redis.call('HSET', KEYS[1], 'tokens', string.format('%.6f', tokens), 'ts', string.format('%.6f', ts))
redis.call('EXPIRE', KEYS[1], ttl)
return string.format('%.6f', wait)
"""

_BLOCK_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local until_ts = now + tonumber(ARGV[1])
local current = tonumber(redis.call('GET', KEYS[2]) or '0')
if current > until_ts then
  until_ts = current
end
local ms = math.ceil((until_ts - now) * 1000) + 1000
redis.call('SET', KEYS[2], string.format('%.6f', until_ts), 'PX', string.format('%d', ms))
redis.call('HSET', KEYS[1], 'tokens', '0', 'ts', string.format('%.6f', until_ts))
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[2]) + math.ceil(until_ts - now))
return 'ok'
"""


class RedisBucket:
    """The same token bucket kept in Redis and updated atomically by a Lua script.

    When Redis fails the bucket falls back to a process-local one (warning once per
    outage) rather than failing the sync: an outage then lets each process spend the
    full rate, which ML may answer with 429s that penalize() absorbs.
    """

    def __init__(
        self,
        name: str = DEFAULT_BUCKET,
        *,
        url: str,
        client: redis.Redis | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name = name
        self._client = client or redis.Redis.from_url(
            url,
            socket_connect_timeout=REDIS_SOCKET_TIMEOUT,
            socket_timeout=REDIS_SOCKET_TIMEOUT,
        )
        self._take_script = self._client.register_script(_TAKE_LUA)
        self._block_script = self._client.register_script(_BLOCK_LUA)
        # One hash tag keeps both keys in one slot, as a script needs on Redis Cluster.
        prefix = f"{{mlaccounts:ratelimit:{name}}}"
        self.keys = [f"{prefix}:bucket", f"{prefix}:blocked"]
        self._clock = clock
        self._fallback = LocalBucket(name, clock=clock)
        self._lock = threading.Lock()
        self._down_until = 0.0
        self._warned = False

    @staticmethod
    def _ttl(rate: float) -> int:
        # Long enough to outlive a full refill, short enough that a renamed bucket or a
        # lowered rate leaves no stale state behind.
        return math.ceil(_capacity(rate) / rate) + 60

    def _redis_down(self) -> bool:
        with self._lock:
            return self._clock() < self._down_until

    def _mark_down(self, exc: redis.RedisError) -> None:
        with self._lock:
            self._down_until = self._clock() + REDIS_RETRY_INTERVAL
            if self._warned:
                return
            self._warned = True
        logger.warning(
            "ML rate limit: Redis unavailable (%s); using a per-process budget until it is back",
            type(exc).__name__,
        )

    def _mark_up(self) -> None:
        with self._lock:
            if not self._warned:
                return
            self._warned = False
        logger.info("ML rate limit: Redis is back; the budget is shared again")

    def take(self, rate: float) -> float:
        """Take one token from the shared bucket; return 0 or the wait needed."""
        if self._redis_down():
            return self._fallback.take(rate)
        try:
            wait = float(
                self._take_script(keys=self.keys, args=[repr(rate), repr(_capacity(rate)), self._ttl(rate)])
            )
        except redis.RedisError as exc:
            self._mark_down(exc)
            return self._fallback.take(rate)
        self._mark_up()
        return wait

    def block(self, seconds: float) -> None:
        """Empty the shared bucket and refuse tokens to every process for ``seconds``."""
        self._fallback.block(seconds)
        if self._redis_down():
            return
        try:
            self._block_script(keys=self.keys, args=[repr(float(seconds)), _BLOCK_KEY_TTL])
        except redis.RedisError as exc:
            self._mark_down(exc)

    def reset(self) -> None:
        """Delete this bucket's keys and local state (tests)."""
        self._fallback.reset()
        with self._lock:
            self._down_until = 0.0
            self._warned = False
        try:
            self._client.delete(*self.keys)
        except redis.RedisError as exc:
            logger.warning("ML rate limit: could not reset Redis keys (%s)", type(exc).__name__)


_buckets: dict[tuple[str, str], LocalBucket | RedisBucket] = {}
_buckets_lock = threading.Lock()


def _rate() -> float:
    rate = float(settings.ML_REQUESTS_PER_SECOND)
    return rate if math.isfinite(rate) else 0.0


def get_bucket(name: str = DEFAULT_BUCKET) -> LocalBucket | RedisBucket:
    """Return the bucket for ``name``: in Redis when ``settings.REDIS_URL`` is set, else local.

    Read at call time so a settings override (tests) takes effect; one instance per
    (Redis URL, name) per process.
    """
    url = getattr(settings, "REDIS_URL", "") or ""
    key = (url, name)
    with _buckets_lock:
        bucket = _buckets.get(key)
        if bucket is None:
            bucket = RedisBucket(name, url=url) if url else LocalBucket(name)
            _buckets[key] = bucket
        return bucket


def acquire(*, max_wait: float | None = None, bucket: Bucket | None = None) -> None:
    """Block until the budget allows one ML request.

    Waits at most ``max_wait`` seconds (default ``settings.ML_RATE_LIMIT_MAX_WAIT``),
    then raises ``MLRateLimited`` with code "budget_exhausted" and the wait it would
    still need as ``retry_after``, so a task can retry later instead of holding a worker.
    """
    rate = _rate()
    if rate <= 0:
        return
    if max_wait is None:
        max_wait = float(settings.ML_RATE_LIMIT_MAX_WAIT)
    # Never wait for the budget past the caller's overall deadline (a web request's).
    max_wait = ml_deadline.cap(max_wait)
    bucket = bucket or get_bucket()
    started = _monotonic()
    deadline = started + max_wait
    while True:
        wait = bucket.take(rate)
        if wait <= 0:
            BUDGET_TOKENS.inc()
            _waited(started)
            return
        remaining = deadline - _monotonic()
        if wait > remaining:
            BUDGET_REFUSED.labels("exhausted").inc()
            _waited(started)
            raise MLRateLimited(
                "The Mercado Livre request budget is exhausted",
                status=None,
                code="budget_exhausted",
                retry_after=wait,
            )
        # A little jitter so processes that waited for the same refill do not all
        # retry at the same instant (ML's advice: back off with jitter, §5.2).
        jitter = random.uniform(0, min(0.05, wait / 10))  # noqa: S311 - timing jitter, not security
        _sleep(min(wait + jitter, remaining))


# How long work that can wait (an orders import's further pages) waits for a spare token: a
# budget that is not saturated refills one within a fraction of a second; a saturated one
# keeps its tokens for the syncs.
SPARE_WAIT = 0.25


def spare(*, max_wait: float = SPARE_WAIT, bucket: Bucket | None = None) -> bool:
    """Take one token if the budget has one now or within `max_wait` seconds, else take none
    and say so: work that can wait runs on what the syncs leave and never queues behind them
    for the budget. True with the limiter off."""
    rate = _rate()
    if rate <= 0:
        return True
    bucket = bucket or get_bucket()
    started = _monotonic()
    deadline = started + ml_deadline.cap(max_wait)
    while True:
        wait = bucket.take(rate)
        if wait <= 0:
            BUDGET_TOKENS.inc()
            _waited(started)
            return True
        if wait > deadline - _monotonic():
            BUDGET_REFUSED.labels("no_spare").inc()
            _waited(started)
            return False
        _sleep(wait)


def _waited(started: float) -> None:
    waited = _monotonic() - started
    if waited > 0:
        BUDGET_WAIT.inc(waited)


def penalize(retry_after: float | None, *, bucket: Bucket | None = None) -> None:
    """Slow every process down after ML answered 429.

    Empties the bucket and hands out no token for ``retry_after`` seconds (ML's
    Retry-After, when it sent one) or ``DEFAULT_PENALTY``; capped at ``MAX_PENALTY``.
    """
    rate = _rate()
    if rate <= 0:
        return
    seconds = DEFAULT_PENALTY if retry_after is None else retry_after
    seconds = min(max(0.0, seconds), MAX_PENALTY)
    bucket = bucket or get_bucket()
    bucket.block(seconds)
    BUDGET_PENALTIES.inc()
    logger.warning("ML answered 429: pausing ML requests for %.1f s", seconds)


def reset() -> None:
    """Clear every bucket this process created (tests)."""
    with _buckets_lock:
        buckets = list(_buckets.values())
        _buckets.clear()
    for bucket in buckets:
        bucket.reset()
