"""The measuring pieces of the notification figures of `make bench`: load and model.

Pure functions and load generators, used by
_bench_notifications.py: the capacity model (`accounts_kept_fresh` and its inverse), the
notification bodies, three ways to POST them (as fast as `clients` allow, at a steady rate
with latency from each request's moment, and ML's trickle), and gunicorn's access log read
back. The leading underscore keeps Django from taking this module for a command.
"""

from __future__ import annotations

import http.client
import json
import math
import re
import secrets
import statistics
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field

from accounts.mercadolivre.sandbox.notifications import utc_stamp
from accounts.models import SUBSCRIBED_TOPICS
from sync import schedule

# The ingestion load's topics: one per count the app keeps from a plain resource id.
INGESTION_TOPICS = ("questions", "orders_v2", "items")


def percentile(values: list[float], percent: int) -> float:
    if len(values) < 2:
        return values[0] if values else float("nan")
    return statistics.quantiles(values, n=100, method="inclusive")[percent - 1]


# --- the capacity model (phase 6) ------------------------------------------------------------------


def accounts_kept_fresh(
    *,
    requests_per_second: float,
    budget_share: float,
    calls_per_sync: float,
    sync_interval_seconds: float,
    changes_per_hour: float = 0.0,
    calls_per_change: float = 0.0,
    fixed_calls_per_hour: float = 0.0,
) -> int:
    """How many accounts one ML application keeps fresh within its request budget.

    Each account costs `calls_per_sync` calls every `sync_interval_seconds` (a poll, or
    the reconciliation of an account whose notifications arrive) plus `changes_per_hour`
    × `calls_per_change` for the counts its notifications make the app re-read. The fleet
    shares `requests_per_second` × `budget_share` (SYNC_BUDGET_SHARE: what scheduled syncs
    and notification processing plan to use), less `fixed_calls_per_hour` that do not grow
    with the fleet (the missed-feeds recovery).

    Assumptions: a steady state; activity spread evenly over the hour and the accounts
    (a burst waits in the queue, it does not change the average); every account's
    notifications arrive (one whose do not is polled at its own interval); an account's
    changes rarely share a merge window, so each costs `calls_per_change` (several
    notifications of one change merge into one call: that is in the measured figure);
    token refreshes (about four a day per account) fit in the 1 − budget_share headroom,
    as sync.schedule assumes. 0 when nothing fits; ValueError if an account costs nothing.
    """
    per_account = calls_per_sync * 3600 / sync_interval_seconds + changes_per_hour * calls_per_change
    if per_account <= 0:
        raise ValueError("an account must cost some calls an hour")
    budget = requests_per_second * budget_share * 3600 - fixed_calls_per_hour
    if budget <= 0:
        return 0
    return math.floor(budget / per_account + 1e-9)  # 17,100 / 6 is 2,850, not 2,849.999…


def changes_to_fill(
    *,
    accounts: int,
    requests_per_second: float,
    budget_share: float,
    calls_per_sync: float,
    sync_interval_seconds: float,
    calls_per_change: float,
    fixed_calls_per_hour: float = 0.0,
) -> float:
    """The changes an hour per account at which `accounts` use the whole budget.

    The inverse of `accounts_kept_fresh` (same model, same assumptions): what the
    validation run feeds its accounts so that the model says they just fit. 0 when the
    accounts' syncs alone already take the budget.
    """
    budget = requests_per_second * budget_share * 3600 - fixed_calls_per_hour
    spare = budget / accounts - calls_per_sync * 3600 / sync_interval_seconds
    return max(0.0, spare / calls_per_change)


def recovery_calls_per_hour(*, sites: int = 1) -> float:
    """ML calls an hour of the missed-feeds job when nothing was missed: one page per query.

    One query per subscribed topic, `items` once per site (sync.notifications), every
    run of the "recover missed notifications" job (sync.schedule.JOBS).
    """
    job = next(job for job in schedule.JOBS if job.task == "sync.tasks.recover_notifications")
    queries = len(SUBSCRIBED_TOPICS) - 1 + sites
    return queries * 3600 / job.every_seconds


# --- the ingestion load (phase 4) ------------------------------------------------------------------


def notification_bodies(user_ids: list[int], count: int, *, application_id: int | None) -> list[dict]:
    """`count` §6.2 notification bodies for `user_ids` in turn, each with an id of its own.

    The topics rotate over INGESTION_TOPICS; ML's shapes alternate as the sandbox sends
    them (`_id` or `id`; `user_id` a number or a string).
    """
    stamp = utc_stamp(time.time())
    bodies = []
    for n in range(count):
        topic = INGESTION_TOPICS[n % len(INGESTION_TOPICS)]
        user_id = user_ids[n // len(INGESTION_TOPICS) % len(user_ids)]
        resource = {
            "questions": f"/questions/{13_000_000_000 + n}",
            "orders_v2": f"/orders/{2_000_800_000_000_000 + n}",
            "items": f"/items/MLB{4_900_000_000 + n}",
        }[topic]
        key, value = ("_id", secrets.token_hex(12)) if n % 2 == 0 else ("id", str(uuid.uuid4()))
        body = {
            key: value,
            "resource": resource,
            "user_id": user_id if n // 2 % 2 == 0 else str(user_id),
            "topic": topic,
            "attempts": 1,
            "sent": stamp,
            "received": stamp,
        }
        if application_id is not None:
            body["application_id"] = application_id
        bodies.append(body)
    return bodies


@dataclass
class Load:
    """What a load run got back: one latency (seconds) and one status per request (0: none)."""

    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    statuses: Counter = field(default_factory=Counter)


def post_all(port: int, path: str, payloads: list[bytes], *, clients: int, headers: dict) -> Load:
    """POST every payload to 127.0.0.1:`port` from `clients` threads, one request at a time each.

    Each client keeps one http.client connection; gunicorn's sync workers close it after
    every answer (they do not keep connections alive), and http.client opens the next.
    """
    return _load(port, path, payloads, threads=clients, headers=headers, rate=None)


def post_paced(port: int, path: str, payloads: list[bytes], *, rate: float, headers: dict) -> Load:
    """POST the payloads at a steady `rate` a second, whatever the answers take (open loop).

    Each request has its moment (n / rate after the start) and its latency counts from that
    moment, so time spent waiting for a free gunicorn worker is in it, as it would be for ML.
    A few sender threads share the schedule, so one slow answer does not delay the next send.
    """
    return _load(port, path, payloads, threads=8, headers=headers, rate=rate)


def _load(
    port: int, path: str, payloads: list[bytes], *, threads: int, headers: dict, rate: float | None
) -> Load:
    """Send `payloads` from `threads` threads: as fast as answers come (`rate` None), or each
    at its moment n / `rate`, latency then counted from that moment."""
    load = Load()
    lock = threading.Lock()
    work = iter(enumerate(payloads))
    clock = time.perf_counter()

    def sender() -> None:
        latencies, statuses = [], Counter()
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        while True:
            with lock:
                item = next(work, None)
            if item is None:
                break
            index, payload = item
            started = time.perf_counter()
            if rate is not None:
                started = clock + index / rate
                if (pause := started - time.perf_counter()) > 0:
                    time.sleep(pause)
            try:
                conn.request("POST", path, body=payload, headers=headers)
                response = conn.getresponse()
                response.read()
                status = response.status
            except (OSError, http.client.HTTPException):
                conn.close()
                status = 0
            latencies.append(time.perf_counter() - started)
            statuses[status] += 1
        conn.close()
        with lock:
            load.latencies += latencies
            load.statuses.update(statuses)

    senders = [threading.Thread(target=sender, name=f"bench-load-{n}") for n in range(threads)]
    for thread in senders:
        thread.start()
    for thread in senders:
        thread.join()
    load.seconds = time.perf_counter() - clock
    return load


_ACCESS_LINE = re.compile(r'"POST /webhooks/mercadolivre/\S* HTTP/[\d.]+" (\d{3}) \S+ (\d+)ms')


def webhook_times_ms(access_log: str) -> list[int]:
    """Milliseconds each webhook POST spent in a gunicorn worker, from its access log.

    gunicorn.conf.py's format ends `%(s)s %(b)s %(M)sms`: the status, the bytes and the
    request time, measured by the worker from reading the request to the last byte sent,
    so the wait in the listen queue before a worker is free is not in it.
    """
    return [int(match[2]) for match in _ACCESS_LINE.finditer(access_log)]


def feed(port: int, path: str, bodies: list[dict], rate: float, headers: dict) -> None:
    """POST `bodies` one after another at `rate` a second (ML's steady trickle), on schedule."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    clock = time.monotonic()
    for n, body in enumerate(bodies):
        pause = clock + n / rate - time.monotonic()
        if pause > 0:
            time.sleep(pause)
        # Stamped when sent, as ML does: the app's lag counts from `received`.
        stamp = utc_stamp(time.time())
        body = {**body, "sent": stamp, "received": stamp}
        try:
            conn.request("POST", path, body=json.dumps(body).encode(), headers=headers)
            conn.getresponse().read()
        except (OSError, http.client.HTTPException):
            conn.close()
    conn.close()
