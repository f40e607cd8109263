"""GET /metrics: the app's Prometheus metrics, for whoever runs the server (docs/operations.md).

Guarded by a bearer token, METRICS_TOKEN: unset, the endpoint is off (404, as if nothing
were here); a missing or wrong token is a 401. The view loads no user and no session and
sets no cookie: a scraper is nobody's browser.

The counters live where things are counted, in every process (mlaccounts/prometheus.py
picks one process or the multiprocess directory):

- `mlaccounts_syncs_total{outcome}`: sync/engine.py (and sync/tasks.py for retries);
- `mlaccounts_ml_requests_total{method,endpoint,status}`: accounts/mercadolivre/http.py;
- `mlaccounts_ml_budget_*`: accounts/mercadolivre/ratelimit.py;
- `mlaccounts_token_refreshes_total{outcome}`: accounts/tokens.py;
- `mlaccounts_notifications_received_total{source,outcome}`, `…_processed_total{outcome}`,
  `mlaccounts_notification_lag_seconds`: sync/notifications.py and the webhook view.

What the database, the broker and the cache hold is read at each scrape (`StateCollector`),
so it is right whichever process answers: accounts by status (one GROUP BY), the task
queue's depth (Redis: one pipeline of LLENs; the filesystem broker: one listing of its
folder), the age of beat's heartbeat (the cache) and the budget allowed (settings).
"""

from __future__ import annotations

import hmac
import logging
import os
from collections.abc import Iterator
from datetime import datetime

import redis
from django.conf import settings
from django.db import DatabaseError
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.views.decorators.http import require_GET
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector

from accounts import selectors
from mlaccounts import prometheus

# sync.engine and sync.notifications hold counters: imported, every family is listed at once.
from sync import engine, notifications, schedule  # noqa: F401

logger = logging.getLogger(__name__)

# The classic text format, which every Prometheus reads (prometheus-client's newest default
# names version 1.0.0; the body is the same for these names).
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
REDIS_TIMEOUT = 0.5
# kombu's Redis transport keeps a queue's messages of priority 3, 6 and 9 in lists of their
# own, named after the queue and this separator (priority 0: the queue's own name).
KOMBU_PRIORITY_SEPARATOR = "\x06\x16"
KOMBU_PRIORITY_STEPS = (3, 6, 9)

_redis_clients: dict[str, redis.Redis] = {}


def _redis(url: str) -> redis.Redis:
    client = _redis_clients.get(url)
    if client is None:
        client = _redis_clients[url] = redis.Redis.from_url(
            url, socket_connect_timeout=REDIS_TIMEOUT, socket_timeout=REDIS_TIMEOUT
        )
    return client


def queue_depth(queue: str) -> int | None:
    """Messages waiting in the task queue `queue`, or None when the broker cannot say now.

    Messages a worker has taken (prefetched, or waiting for a retry's countdown) are not
    waiting any more and are not counted.
    """
    if settings.REDIS_URL:
        try:
            with _redis(settings.REDIS_URL).pipeline(transaction=False) as pipe:
                pipe.llen(queue)
                for step in KOMBU_PRIORITY_STEPS:
                    pipe.llen(f"{queue}{KOMBU_PRIORITY_SEPARATOR}{step}")
                return sum(pipe.execute())
        except redis.RedisError as error:
            logger.warning("metrics: queue depth unavailable", extra={"error": type(error).__name__})
            return None
    folder = (getattr(settings, "CELERY_BROKER_TRANSPORT_OPTIONS", None) or {}).get("data_folder_in")
    if not folder:
        return None
    # The filesystem transport's messages are files named `<time>_<id>.<queue>.msg`.
    wanted = f"{queue}.msg"
    try:
        with os.scandir(folder) as entries:
            return sum(1 for entry in entries if entry.name.partition(".")[2] == wanted)
    except OSError:
        return 0  # not created yet: nothing was ever queued


def heartbeat_age(now: datetime | None = None) -> float:
    """Seconds since beat's health check last wrote its heartbeat; +Inf when there is none.

    The health check (sync.tasks.health_check) writes it every 15 minutes and the cache
    keeps it 45 (schedule.HEARTBEAT_TTL_SECONDS): none means beat or the worker has been
    down that long, or never ran, or the cache is unavailable.
    """
    beat = schedule.heartbeat_read()
    at = datetime.fromisoformat(beat["at"]) if beat and beat.get("at") else None
    if at is None:
        return float("inf")
    return max(0.0, ((now or timezone.now()) - at).total_seconds())


class StateCollector:
    """The gauges read at scrape time: a fixed handful of reads, whatever the fleet's size."""

    def collect(self) -> Iterator[Metric]:
        yield GaugeMetricFamily(
            "mlaccounts_ml_budget_allowed_per_second",
            "The app-wide ML request budget (ML_REQUESTS_PER_SECOND; 0: unlimited).",
            value=float(settings.ML_REQUESTS_PER_SECOND),
        )
        try:
            counts = selectors.mlaccount_status_counts()
        except DatabaseError as error:
            logger.warning("metrics: accounts unavailable", extra={"error": type(error).__name__})
        else:
            accounts = GaugeMetricFamily(
                "mlaccounts_accounts", "Connected ML accounts by status.", labels=["status"]
            )
            for status, n in sorted(counts.items()):
                accounts.add_metric([status], n)
            yield accounts
        queue = settings.CELERY_TASK_DEFAULT_QUEUE
        depth = queue_depth(queue)
        if depth is not None:
            family = GaugeMetricFamily(
                "mlaccounts_queue_depth", "Tasks waiting in the broker's queue.", labels=["queue"]
            )
            family.add_metric([queue], depth)
            yield family
        yield GaugeMetricFamily(
            "mlaccounts_beat_heartbeat_age_seconds",
            "Seconds since the health check's heartbeat (every 15 min; +Inf: none in 45 min).",
            value=heartbeat_age(),
        )


def exposition() -> bytes:
    """The metrics in Prometheus's text format: the counters (summed over every process in
    multiprocess mode), then the gauges read now."""
    path = prometheus.multiproc_dir()
    if path:
        counters = CollectorRegistry()
        MultiProcessCollector(counters, path=path)
    else:
        counters = REGISTRY
    state = CollectorRegistry(auto_describe=False)
    state.register(StateCollector())
    return generate_latest(counters) + generate_latest(state)


def _authorized(request: HttpRequest, token: str) -> bool:
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode())


@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    """Prometheus's scrape: 404 while METRICS_TOKEN is unset, 401 without it, else the metrics."""
    token = settings.METRICS_TOKEN
    if not token:
        # Plain, not Django's 404 page: that page renders templates with the session's user.
        return HttpResponse("Not Found\n", status=404, content_type="text/plain; charset=utf-8")
    if not _authorized(request, token):
        response = HttpResponse("Unauthorized\n", status=401, content_type="text/plain; charset=utf-8")
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    return HttpResponse(exposition(), content_type=CONTENT_TYPE)
