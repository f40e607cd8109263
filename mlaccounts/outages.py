"""What the web app does while Redis (the cache and the Celery broker) is down (issue 10.3).

- The cache fails open: `FailOpenRedisCache` answers a failed read as a miss and a failed
  write as done, with a warning at most once a minute per process. The cache only holds
  rate-limit counts (our API throttles, allauth's login limits) and the background jobs'
  heartbeat, so an outage lifts the limits for its length instead of turning every
  login and API call into a 500.
- Anything else that needs Redis and fails (a task sent to a broker that is down) raises
  one of `UNAVAILABLE_ERRORS`: the API answers 503 `SERVICE_UNAVAILABLE` in its envelope
  (mlaccounts.api.exceptions), the dashboard a plain 503 page (mlaccounts.middleware).
- `/health/` asks Redis itself (`redis_status`), so monitors see the outage.
"""

from __future__ import annotations

import logging
import threading
import time
from functools import wraps

import redis
from django.conf import settings
from django.core.cache.backends.redis import RedisCache
from kombu.exceptions import OperationalError

logger = logging.getLogger(__name__)

# A Redis client error, or kombu's wrapper of one when a task cannot be sent.
UNAVAILABLE_ERRORS = (redis.RedisError, OperationalError)

# Retry-After of a 503 while Redis is down: a restart takes seconds, a failover about this.
RETRY_AFTER = 30
# Seconds between two "cache unavailable" warnings of one process: an outage under load
# would otherwise log one line per request.
WARNING_INTERVAL = 60.0
# Bounds on each cache call, so that a Redis that hangs (rather than refusing the
# connection) costs about a second, well inside the web server's timeout.
SOCKET_TIMEOUT = 1.0
# After a failure, the cache answers from its fallbacks for this long without asking
# Redis: a login makes several cache calls, and each must not wait out a timeout again.
RETRY_INTERVAL = 5.0
HEALTH_TIMEOUT = 1.0
_SOCKET_OPTIONS = {"socket_connect_timeout": SOCKET_TIMEOUT, "socket_timeout": SOCKET_TIMEOUT}


class _Throttled:
    """Lets a warning through at most once per interval (per process, thread-safe)."""

    def __init__(self, interval: float):
        self.interval = interval
        self._lock = threading.Lock()
        self._last: float | None = None

    def ready(self) -> bool:
        now = time.monotonic()
        with self._lock:
            if self._last is not None and now - self._last < self.interval:
                return False
            self._last = now
            return True


class _Pause:
    """After a failure, "do not ask Redis" for an interval (per process; races harmless)."""

    def __init__(self, interval: float):
        self.interval = interval
        self._until = 0.0

    def active(self) -> bool:
        return time.monotonic() < self._until

    def start(self) -> None:
        self._until = time.monotonic() + self.interval


_cache_warning = _Throttled(WARNING_INTERVAL)
_cache_pause = _Pause(RETRY_INTERVAL)


def _fail_open(fallback):
    """Run the cache method; on a Redis error, warn (rate-limited) and return `fallback`,
    which is also the answer, without asking Redis, for RETRY_INTERVAL after a failure."""

    def decorate(method):
        @wraps(method)
        def wrapper(self, *args, **kwargs):
            if not _cache_pause.active():
                try:
                    return method(self, *args, **kwargs)
                except redis.RedisError as error:
                    _cache_pause.start()
                    _warn(method.__name__, error)
            return fallback(*args, **kwargs) if callable(fallback) else fallback

        return wrapper

    return decorate


def _warn(operation: str, error: Exception) -> None:
    if _cache_warning.ready():
        logger.warning(
            "cache unavailable; rate limits are not enforced until Redis answers",
            extra={"event": "cache_unavailable", "operation": operation, "error": type(error).__name__},
        )


def _default(key, default=None, version=None):
    return default


class FailOpenRedisCache(RedisCache):
    """Django's Redis cache, answering as if empty while Redis does not answer.

    `add` reports success: allauth takes a lock with it before counting an attempt, and
    a lock that can never be taken would refuse every login (failing closed). `incr` and
    `clear` are left alone: nothing here uses them, and no answer would be honest.
    """

    def __init__(self, server, params):
        params = {**params, "OPTIONS": {**_SOCKET_OPTIONS, **params.get("OPTIONS", {})}}
        super().__init__(server, params)

    add = _fail_open(True)(RedisCache.add)
    get = _fail_open(_default)(RedisCache.get)
    set = _fail_open(None)(RedisCache.set)
    touch = _fail_open(False)(RedisCache.touch)
    delete = _fail_open(False)(RedisCache.delete)
    get_many = _fail_open({})(RedisCache.get_many)
    has_key = _fail_open(False)(RedisCache.has_key)
    set_many = _fail_open([])(RedisCache.set_many)
    delete_many = _fail_open(None)(RedisCache.delete_many)


def redis_status() -> str:
    """ "ok", "unavailable", or "unused" (no REDIS_URL: `make run`'s file cache and queue)."""
    if not settings.REDIS_URL:
        return "unused"
    try:
        with redis.Redis.from_url(
            settings.REDIS_URL, socket_connect_timeout=HEALTH_TIMEOUT, socket_timeout=HEALTH_TIMEOUT
        ) as client:
            client.ping()
    except redis.RedisError as error:
        logger.warning("health: redis unreachable", extra={"event": "health", "error": repr(error)})
        return "unavailable"
    return "ok"
