"""The notification figures of `make bench` (manage.py bench): phases 4 to 6.

4. Ingestion: POST /webhooks/mercadolivre/<secret>/ under gunicorn with the production
   settings (gunicorn.conf.py, DEBUG off, behind a TLS proxy), no worker running, so the
   figure is the web path alone: requests per second and latency, every answer checked,
   every notification counted in the database afterwards.
5. Event-to-count latency under `make run`'s processes (runserver, worker, beat) with the
   sandbox posting notifications to that runserver: from a demo seller's change at the
   sandbox to the new number in the account's count column; and the ML calls the sandbox
   counted per processed notification and per change.
6. Capacity of one ML application: accounts kept fresh polling every 5 minutes against
   notifications plus hourly reconciliation, from phase 5's calls per change
   (`accounts_kept_fresh`, a pure function tested in tests/sync/test_bench_notifications.py);
   then a real run (`--capacity-seconds`, 60 s): the seeded accounts fed notifications at
   the activity the model says fills the budget, one worker at the budget, and the request
   rate the sandbox saw. The sandbox's /_sandbox/activity takes only the demo sellers, so
   this run posts its notifications itself (the counts do not move; the calls are made).

The leading underscore keeps Django from taking this module for a command.
"""

from __future__ import annotations

import json
import math
import os
import random
import secrets
import threading
import time
from collections import Counter
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from celery import current_app
from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.test.utils import override_settings
from django.utils import timezone

from accounts import services
from accounts.mercadolivre.sandbox import DEMO_SELLERS
from accounts.mercadolivre.sandbox.knobs import DEFAULT_ACCESS_TOKEN_TTL
from accounts.models import (
    DEFAULT_SYNC_INTERVAL,
    MLAccount,
    Notification,
    NotificationStatus,
    User,
)
from sync import harness, notifications, schedule, tasks
from sync.harness import Beat, Sandbox, Web, Worker
from sync.management.commands import _bench_metrics
from sync.management.commands._bench_load import (
    accounts_kept_fresh,
    changes_to_fill,
    feed,
    notification_bodies,
    percentile,
    post_all,
    post_paced,
    recovery_calls_per_hour,
    webhook_times_ms,
)

WEBHOOK_PATH = "/webhooks/mercadolivre/{}/"
# /_sandbox/activity's topics: the count column each moves and the sandbox size it reads.
ACTIVITY_COLUMNS = {
    "questions": ("cached_questions", "questions"),
    "orders_v2": ("cached_orders", "orders"),
    "items": ("cached_products", "listings"),
    "claims": ("cached_claims", "claims"),
}
# ML sends several notifications for one sale (§11.1): the latency run sends orders twice.
ORDER_DUPLICATES = 2
# The sandbox's by_kind figures of the count reads (every other kind is auth, users, feeds…).
COUNT_KINDS = ("items", "orders", "questions", "claims")
ACTIVITY_LEVELS = (2, 6, 20)  # changes an hour per account, for the capacity figure
EVENT_SPACING_SECONDS = 0.5
EVENT_DEADLINE_SECONDS = 60
POLL_SECONDS = 0.05


def purge_queue() -> int:
    """Drop every message waiting in the bench's queue (Redis or the filesystem broker)."""
    with current_app.connection_for_write() as broker:
        return broker.default_channel.queue_purge(settings.CELERY_TASK_DEFAULT_QUEUE) or 0


def _stores() -> str:
    database = "PostgreSQL" if connection.vendor == "postgresql" else "SQLite"
    broker = "Redis" if settings.REDIS_URL else "the filesystem broker and file cache"
    return f"{database} + {broker}"


# --- the phases ------------------------------------------------------------------------------------


@dataclass
class _Event:
    account_id: object
    column: str
    target: int
    started: float
    seconds: float | None = None


class NotificationPhases:
    """Phases 4 to 6 of the bench, printing as `command` does (its stdout and style)."""

    def __init__(self, command, *, env: dict, bench_dir: Path, sandbox: Sandbox, latency_ms: float):
        self.stdout = command.stdout
        self.style = command.style
        self.bench_dir = bench_dir
        self.sandbox = sandbox
        self.latency_ms = latency_ms
        self.secret = secrets.token_urlsafe(32)
        # The bench's own environment (database, broker, queue, cache prefix, random keys:
        # the processes must decrypt the tokens this process stored) and a webhook secret.
        self.env = {**env, "ML_WEBHOOK_SECRET": self.secret}
        self.path = WEBHOOK_PATH.format(self.secret)

    # -- 4. ingestion

    def ingestion(
        self, *, requests: int, clients: int, paced_rate: float = 100, paced_requests: int = 2000
    ) -> None:
        warmup = max(clients * 20, requests // 10)
        self.stdout.write(
            f"\n4. Notification ingestion: {requests:,} POSTs to /webhooks/mercadolivre/<secret>/ from "
            f"{clients} concurrent clients after {warmup:,} warm-up ones; gunicorn --config "
            "gunicorn.conf.py, DEBUG off, ALLOWED_HOSTS=127.0.0.1, behind a TLS proxy as the README "
            "says (USE_X_FORWARDED_PROTO=1 and X-Forwarded-Proto: https; SECURE_SSL_REDIRECT stays on); "
            f"{_stores()}; no worker running: the web path alone; then {paced_requests:,} more at a "
            f"steady {paced_rate:g} a second"
        )
        env = {
            **self.env,
            "DEBUG": "false",
            "ALLOWED_HOSTS": "127.0.0.1",
            "USE_X_FORWARDED_PROTO": "1",
            "LOG_LEVEL": "WARNING",
        }
        user_ids = list(MLAccount.objects.order_by("ml_user_id").values_list("ml_user_id", flat=True))
        bodies = notification_bodies(
            user_ids, warmup + requests + paced_requests, application_id=settings.ML_APPLICATION_ID
        )
        payloads = [json.dumps(body).encode() for body in bodies]
        headers = {"Content-Type": "application/json", "X-Forwarded-Proto": "https"}
        before = Notification.objects.count()
        purge_queue()  # whatever an earlier phase left (a stopped worker hands its messages back)
        scraped = _bench_metrics.scrape()
        web = Web(env=env, log_path=self.bench_dir / "web-ingestion.log", server="gunicorn")
        try:
            warm = post_all(web.port, self.path, payloads[:warmup], clients=clients, headers=headers)
            cpu_before = self._cpu(web)
            logged_before = len(webhook_times_ms(web.log()))
            load = post_all(
                web.port, self.path, payloads[warmup : warmup + requests], clients=clients, headers=headers
            )
            cpu = {name: _minus(value, cpu_before[name]) for name, value in self._cpu(web).items()}
            paced = post_paced(
                web.port, self.path, payloads[warmup + requests :], rate=paced_rate, headers=headers
            )
        finally:
            web.stop()
        in_worker = webhook_times_ms(web.log())[logged_before:]
        workers = web.log().count("Booting worker")
        stored = Notification.objects.count() - before
        by_status = Counter(Notification.objects.values_list("status", flat=True))
        answered = sum(
            n for status, n in (warm.statuses + load.statuses + paced.statuses).items() if status == 200
        )
        metrics_rows = [
            _bench_metrics.stored_row(stored),
            _bench_metrics.answered_row(answered, by="200s the clients got"),
        ]
        purged = purge_queue()
        self._forget(user_ids)
        sent = warmup + requests + paced_requests
        non_200 = sum(
            n for status, n in (warm.statuses + load.statuses + paced.statuses).items() if status != 200
        )
        self.stdout.write(
            f"   gunicorn: {workers} sync workers; answers: {_statuses(load.statuses)} "
            f"(warm-up: {_statuses(warm.statuses)}); non-200 answers: {non_200}\n"
            f"   stored: {stored:,} notifications for {sent:,} sent "
            f"({'exactly' if stored == sent else 'MISMATCH'}; "
            + ", ".join(f"{status} {n:,}" for status, n in sorted(by_status.items()))
            + f"); processing tasks queued meanwhile, purged: {purged}"
        )
        self._print_cpu(cpu, len(load.latencies))
        self.stdout.write(
            f"   time inside a gunicorn worker (its access log, whole ms; {len(in_worker):,} requests): "
            f"p50 {percentile(in_worker, 50):.0f} ms, p99 {percentile(in_worker, 99):.0f} ms, "
            f"max {max(in_worker, default=0)} ms; the rest of the latency below is the wait for a free "
            f"worker: {clients} clients on {workers} sync workers"
        )
        ms = [seconds * 1000 for seconds in load.latencies]
        self.stdout.write(
            self.style.SUCCESS(
                f"   Ingestion: {len(ms) / load.seconds:.0f} requests per second; latency "
                f"p50 {percentile(ms, 50):.1f} ms, p99 {percentile(ms, 99):.1f} ms, "
                f"max {max(ms):.1f} ms (ML wants 200 within 500 ms; aim p99 < 50 ms)"
            )
        )
        steady = [seconds * 1000 for seconds in paced.latencies]
        self.stdout.write(
            self.style.SUCCESS(
                f"   Ingestion at a steady {paced_rate:g} requests per second ({len(steady):,} requests, "
                f"{_statuses(paced.statuses)}; latency from each request's scheduled moment): "
                f"p50 {percentile(steady, 50):.1f} ms, p99 {percentile(steady, 99):.1f} ms, "
                f"max {max(steady):.1f} ms"
            )
        )
        _bench_metrics.report(self, "4. ingestion", scraped, metrics_rows)

    def _cpu(self, web: Web) -> dict[str, float | None]:
        postgres = harness.postgres_server_pid(connection) if connection.vendor == "postgresql" else None
        return {
            "web": web.cpu_seconds(),
            "database": harness.process_tree_cpu_seconds(postgres) if postgres else None,
            "broker": harness.redis_cpu_seconds(settings.REDIS_URL) if settings.REDIS_URL else None,
            "client": time.process_time(),
        }

    def _print_cpu(self, cpu: dict[str, float | None], requests: int) -> None:
        labels = {
            "web": "gunicorn (every worker"
            + (", SQLite and the file broker inside" if not settings.REDIS_URL else "")
            + ")",
            "database": "PostgreSQL (every process)",
            "broker": "redis-server",
            "client": "the load's clients (this process)",
        }
        parts = [
            f"{label} {cpu[name] * 1000 / max(requests, 1):.2f} ms"
            for name, label in labels.items()
            if cpu[name] is not None
        ]
        self.stdout.write("   CPU per request: " + ", ".join(parts) + f" (on {os.cpu_count()} cores)")

    def _forget(self, user_ids: list[int]) -> None:
        """Delete the load's notifications and merge marks: later phases start clean."""
        account_ids = MLAccount.objects.filter(ml_user_id__in=user_ids).values_list("pk", flat=True)
        cache.delete_many([notifications.KICK_KEY.format(pk) for pk in account_ids])
        Notification.objects.all().delete()

    # -- 5. event-to-count latency

    def latency(self, *, events: int, requests_per_second: float) -> float | None:
        """Run phase 5; return the ML calls per change it measured (None if nothing was processed)."""
        merge = settings.ML_NOTIFICATION_MERGE_SECONDS
        self.stdout.write(
            f"\n5. Event-to-count latency: {events} seller changes {EVENT_SPACING_SECONDS:g} s apart "
            f"(the {len(DEMO_SELLERS)} demo sellers in turn × {', '.join(ACTIVITY_COLUMNS)}; each order "
            f"notified {ORDER_DUPLICATES}×), posted by the sandbox to make run's processes: "
            f"{' '.join(harness.procfile_web_command(8000)[1:])} (8000 swapped for a free port), "
            f"worker, beat (DEBUG=1 as make run's .env); {_stores()}; ML_REQUESTS_PER_SECOND="
            f"{requests_per_second:g}, merge window {merge:g} s, {self.latency_ms:.0f} ms per ML call"
        )
        far = timezone.now() + timedelta(days=1)
        # The synthetic accounts stay out of it: nothing of theirs falls due meanwhile.
        MLAccount.objects.update(next_sync=far)
        purge_queue()
        accounts = self._demo_accounts(far)
        env = {
            **self.env,
            "DEBUG": "1",  # make run's .env (.env.example); the bench's random keys stay
            "LOG_LEVEL": "INFO",
            "ML_REQUESTS_PER_SECOND": str(requests_per_second),
        }
        self.sandbox.configure(latency_ms=self.latency_ms, rate_limit_per_second=None)
        processes = []
        try:
            processes.append(Worker(env=env, log_path=self.bench_dir / "worker-notifications.log"))
            processes.append(Beat(env=env, log_path=self.bench_dir / "beat-notifications.log"))
            web = Web(env=env, log_path=self.bench_dir / "web-notifications.log")
            processes.append(web)
            self.sandbox.configure(notifications_url=web.url + self.path)
            self._initial_sync(accounts)
            self.sandbox.call("POST", "reset-stats")
            scraped = _bench_metrics.scrape()
            logged = {event: len(processes[0].events(event)) for event in ("sync", "sync_retry")}
            started_at = timezone.now()
            done, timeouts = self._events(accounts, events)
            self._settle(accounts)
        finally:
            self.sandbox.configure(notifications_url=None)
            for process in reversed(processes):
                process.stop()
            purge_queue()
        calls = self._report_latency(processes[0], accounts, started_at, done, timeouts, events)
        rows = Notification.objects.filter(
            account_id__in=[a.pk for a in accounts.values()], arrived_at__gte=started_at
        )
        counts = _bench_metrics.latency_rows(rows, processes[0], logged, self.sandbox.stats())
        _bench_metrics.report(self, "5. event-to-count latency", scraped, counts)
        return calls

    def _demo_accounts(self, far) -> dict[int, MLAccount]:
        """An account per demo seller (tokens minted by the sandbox), as bench._seed makes them."""
        user = User.objects.create_user("bench-notifications@example.com", None)
        workspace = services.workspace_personal(user=user)
        rows = []
        for seller in DEMO_SELLERS:
            pair = self.sandbox.call("POST", "mint", {"user_id": seller.id})
            rows.append(
                MLAccount(
                    workspace=workspace,
                    ml_user_id=seller.id,
                    nickname=seller.nickname,
                    account_name=seller.nickname,
                    site_id=seller.site_id,
                    access_token=pair["access_token"],
                    refresh_token=pair["refresh_token"],
                    token_expires_at=timezone.now() + timedelta(seconds=pair["expires_in"]),
                    token_obtained_at=timezone.now(),
                    next_sync=far,
                )
            )
        MLAccount.objects.bulk_create(rows)
        return {
            row.ml_user_id: row
            for row in MLAccount.objects.filter(ml_user_id__in=[s.id for s in DEMO_SELLERS])
        }

    def _initial_sync(self, accounts: dict[int, MLAccount]) -> None:
        """Sync each demo account once through the worker; check it reads the sandbox's numbers."""
        begun = timezone.now()
        for account in accounts.values():
            tasks.sync_account.apply_async((str(account.pk),))
        synced = MLAccount.objects.filter(pk__in=[a.pk for a in accounts.values()], last_sync__gte=begun)
        harness.wait_for(
            lambda: synced.filter(last_sync_status="success").count() == len(accounts),
            timeout=60,
            what="the demo accounts' first sync",
        )
        sizes = {seller["id"]: seller for seller in self.sandbox.call("GET", "sellers")}
        columns = [column for column, _ in ACTIVITY_COLUMNS.values()]
        wrong = [
            f"{row['ml_user_id']} {column}: {row[column]} ≠ {sizes[row['ml_user_id']][size]}"
            for row in MLAccount.objects.filter(pk__in=[a.pk for a in accounts.values()]).values(
                "ml_user_id", *columns
            )
            for column, size in ACTIVITY_COLUMNS.values()
            if row[column] != sizes[row["ml_user_id"]][size]
        ]
        if wrong:
            self.stdout.write(self.style.WARNING("   the first sync read other numbers: " + "; ".join(wrong)))

    def _events(self, accounts: dict[int, MLAccount], count: int) -> tuple[list[_Event], int]:
        """Fire `count` changes EVENT_SPACING_SECONDS apart; time each until its count shows.

        One loop fires and polls (the database every POLL_SECONDS), so the changes overlap
        as ML's would. Every change adds one, so a count is reached when the column holds
        at least the sandbox's new number: a later change of the same seller and topic,
        merged with it, takes it past that number in one step.
        """
        sellers = [seller.id for seller in DEMO_SELLERS]
        topics = list(ACTIVITY_COLUMNS)
        plan = [(sellers[n % len(sellers)], topics[n // len(sellers) % len(topics)]) for n in range(count)]
        waiting: list[_Event] = []
        done: list[_Event] = []
        timeouts = 0
        next_at = time.monotonic()
        while plan or waiting:
            now = time.monotonic()
            if plan and now >= next_at:
                user_id, topic = plan.pop(0)
                column, size = ACTIVITY_COLUMNS[topic]
                started = time.monotonic()
                answer = self.sandbox.call(
                    "POST",
                    "activity",
                    {
                        "user_id": user_id,
                        "topic": topic,
                        "change": 1,
                        "duplicates": ORDER_DUPLICATES if topic == "orders_v2" else 1,
                    },
                )
                waiting.append(_Event(accounts[user_id].pk, column, answer["seller"][size], started))
                next_at += EVENT_SPACING_SECONDS
            if waiting:
                values = {
                    row["pk"]: row
                    for row in MLAccount.objects.filter(pk__in={e.account_id for e in waiting}).values(
                        "pk", *{e.column for e in waiting}
                    )
                }
                seen = time.monotonic()
                for event in list(waiting):
                    value = values.get(event.account_id, {}).get(event.column)
                    if value is not None and value >= event.target:
                        event.seconds = seen - event.started
                        done.append(event)
                        waiting.remove(event)
                    elif seen - event.started > EVENT_DEADLINE_SECONDS:
                        timeouts += 1
                        waiting.remove(event)
            pause = POLL_SECONDS if not plan else min(POLL_SECONDS, max(0.0, next_at - time.monotonic()))
            time.sleep(pause)
        return done, timeouts

    def _settle(self, accounts: dict[int, MLAccount]) -> None:
        """Wait (10 s at most) until the sandbox delivered everything and nothing is left to process."""
        ids = [a.pk for a in accounts.values()]

        def settled() -> bool:
            stats = self.sandbox.stats()
            delivered = stats["notifications_delivered"] + stats["notifications_missed"]
            open_rows = Notification.objects.filter(
                account_id__in=ids, status__in=[NotificationStatus.PENDING, NotificationStatus.PROCESSING]
            )
            return delivered >= stats["notifications_sent"] and not open_rows.exists()

        try:
            harness.wait_for(settled, timeout=10, interval=0.2, what="the notifications to settle")
        except TimeoutError:
            self.stdout.write(self.style.WARNING("   some notifications were still open after 10 s"))

    def _report_latency(
        self, worker: Worker, accounts, started_at, done: list[_Event], timeouts: int, events: int
    ) -> float | None:
        stats = self.sandbox.stats()
        rows = Notification.objects.filter(
            account_id__in=[a.pk for a in accounts.values()], arrived_at__gte=started_at
        )
        by_status = Counter(rows.values_list("status", flat=True))
        processed = by_status.get(NotificationStatus.DONE, 0)
        reads = sum(stats["by_kind"].get(kind, 0) for kind in COUNT_KINDS)
        runs = worker.events("notifications_processed")
        spent = sum(run.get("ml_calls", 0) for run in runs)
        lags = [lag / 1000 for lag in rows.exclude(lag_ms=None).values_list("lag_ms", flat=True)]
        others = [f"{kind} {n}" for kind, n in stats["by_kind"].items() if n and kind not in COUNT_KINDS]
        self.stdout.write(
            f"   notifications: sent {stats['notifications_sent']}, "
            f"delivered {stats['notifications_delivered']}, "
            f"missed {stats['notifications_missed']} (the sandbox); stored "
            + ", ".join(f"{status} {n}" for status, n in sorted(by_status.items()))
            + f"\n   processing runs: {len(runs)} (with something claimed: "
            f"{sum(1 for run in runs if run.get('claimed'))}), ML calls they counted: {spent} "
            f"({spent / max(events, 1):.2f} per change: the capacity model's figure)\n"
            f"   ML calls (the sandbox): {reads} count reads, {stats['total_requests'] - reads} others "
            f"({', '.join(others) or '-'}); "
            f"{reads / max(processed, 1):.2f} per processed notification, "
            f"{reads / max(events, 1):.2f} per change\n"
            f"   lag the app recorded (Notification.lag_ms, ML's `received` to processed): "
            f"p50 {percentile(lags, 50):.2f} s, p95 {percentile(lags, 95):.2f} s"
        )
        seconds = [event.seconds for event in done]
        self.stdout.write(
            self.style.SUCCESS(
                f"   Event-to-count latency: p50 {percentile(seconds, 50):.2f} s, "
                f"p95 {percentile(seconds, 95):.2f} s, max {max(seconds, default=float('nan')):.2f} s; "
                f"timeouts ({EVENT_DEADLINE_SECONDS} s) {timeouts}/{events} (target p95 < 10 s)"
            )
        )
        # Every call processing made, not only the count reads: the desk's mirrors fetch the
        # questions and claims themselves (pages, titles, claim details) since issue 14.
        return spent / events if processed and events else None

    # -- 6. capacity

    def capacity(
        self, *, requests_per_second: float, calls_per_change: float | None, seconds: int, ml_limit: float
    ) -> None:
        share = settings.SYNC_BUDGET_SHARE
        calls = schedule.SYNC_CALLS_PER_ACCOUNT
        reconcile = settings.ML_RECONCILE_INTERVAL
        measured = calls_per_change is not None
        per_change = calls_per_change if measured else 1.0
        recovery = recovery_calls_per_hour()
        self.stdout.write(
            f"\n6. Capacity of one ML application at ML_REQUESTS_PER_SECOND={requests_per_second:g} "
            f"(SYNC_BUDGET_SHARE {share:g}: {requests_per_second * share:g} calls/s for syncs and "
            f"notifications), every account's counts kept fresh"
        )
        polling = accounts_kept_fresh(
            requests_per_second=requests_per_second,
            budget_share=share,
            calls_per_sync=calls,
            sync_interval_seconds=DEFAULT_SYNC_INTERVAL,
        )
        with override_settings(ML_REQUESTS_PER_SECOND=requests_per_second):
            per_minute = schedule.dispatch_capacity()
        self.stdout.write(
            self.style.SUCCESS(
                f"   (a) polling every {DEFAULT_SYNC_INTERVAL // 60} min, {calls} calls per sync: "
                f"{polling:,} accounts"
            )
            + f" (the dispatcher's own cap: {per_minute} syncs a minute, "
            f"{per_minute * DEFAULT_SYNC_INTERVAL // 60:,} per {DEFAULT_SYNC_INTERVAL // 60} min)"
        )
        self.stdout.write(
            f"   (b) notifications + reconciliation every {reconcile // 60} min ({calls} calls), "
            f"{per_change:.2f} ML calls per change "
            + ("(measured in 5)" if measured else "(assumed: phase 5 skipped)")
            + f", missed-feeds recovery {recovery:g} calls/h for the whole application:"
        )
        largest = 0
        for level in ACTIVITY_LEVELS:
            fed = accounts_kept_fresh(
                requests_per_second=requests_per_second,
                budget_share=share,
                calls_per_sync=calls,
                sync_interval_seconds=reconcile,
                changes_per_hour=level,
                calls_per_change=per_change,
                fixed_calls_per_hour=recovery,
            )
            largest = max(largest, fed)
            self.stdout.write(
                self.style.SUCCESS(
                    f"       {level:>2} changes an hour per account: {fed:,} accounts "
                    f"({fed / max(polling, 1):.1f}× polling)"
                )
            )
        # The refresh job renews a token once it expires within ML_TOKEN_REFRESH_MARGIN.
        refreshes = largest / (DEFAULT_ACCESS_TOKEN_TTL - settings.ML_TOKEN_REFRESH_MARGIN)
        self.stdout.write(
            f"   token refreshes (one per {DEFAULT_ACCESS_TOKEN_TTL // 3600} h token, renewed "
            f"{settings.ML_TOKEN_REFRESH_MARGIN // 60} min early) at {largest:,} "
            f"accounts: {refreshes:.2f} calls/s, within the {1 - share:.0%} headroom "
            f"({requests_per_second * (1 - share):.2f} calls/s)"
            if refreshes <= requests_per_second * (1 - share)
            else f"   token refreshes at {largest:,} accounts: {refreshes:.2f} calls/s, MORE than the "
            f"{1 - share:.0%} headroom ({requests_per_second * (1 - share):.2f} calls/s)"
        )
        if seconds > 0:
            self._validate(
                requests_per_second=requests_per_second,
                calls_per_change=per_change,
                recovery=recovery,
                seconds=seconds,
                ml_limit=ml_limit,
            )

    def _validate(
        self,
        *,
        requests_per_second: float,
        calls_per_change: float,
        recovery: float,
        seconds: int,
        ml_limit: float,
    ) -> None:
        """A real run of (b): the seeded accounts fed notifications at the activity that the
        model says fills the budget, their hourly reconciliation falling due at its steady
        pace, one worker at the budget; the request rate the sandbox saw."""
        demo = [seller.id for seller in DEMO_SELLERS]
        fleet = MLAccount.objects.exclude(ml_user_id__in=demo)
        user_ids = list(fleet.order_by("ml_user_id").values_list("ml_user_id", flat=True))
        if not user_ids:
            return
        reconcile = settings.ML_RECONCILE_INTERVAL
        changes = changes_to_fill(
            accounts=len(user_ids),
            requests_per_second=requests_per_second,
            budget_share=settings.SYNC_BUDGET_SHARE,
            calls_per_sync=schedule.SYNC_CALLS_PER_ACCOUNT,
            sync_interval_seconds=reconcile,
            calls_per_change=calls_per_change,
            fixed_calls_per_hour=recovery,
        )
        rate = len(user_ids) * changes / 3600  # notifications a second, one per change
        self.stdout.write(
            f"   validation, {seconds} s: {len(user_ids):,} accounts whose notifications arrive, "
            f"{changes:.1f} changes an hour each (what the model says fills the budget: "
            f"{rate:.2f} notifications/s posted to gunicorn), their reconciliation falling due "
            f"{len(user_ids) / reconcile * 60:.1f} a minute; one worker at "
            f"ML_REQUESTS_PER_SECOND={requests_per_second:g}; the sandbox allowing {ml_limit:g}/s"
        )
        now = timezone.now()
        # Due one after another over the hour, as a fleet reconciled hourly is; the first
        # minute's worth is due at the dispatch below (its look-ahead is half a period).
        step = reconcile / len(user_ids)
        lookahead = schedule.DISPATCH_PERIOD_SECONDS / 2
        ids = list(fleet.order_by("ml_user_id").values_list("pk", flat=True))
        for n, pk in enumerate(ids):
            due = now - timedelta(seconds=lookahead) + timedelta(seconds=n * step)
            MLAccount.objects.filter(pk=pk).update(
                next_sync=due, last_sync=due - timedelta(seconds=reconcile), sync_started_at=None
            )
        fleet.update(last_notification_at=now)
        purge_queue()
        env = {**self.env, "ML_REQUESTS_PER_SECOND": str(requests_per_second), "LOG_LEVEL": "INFO"}
        web_env = {**env, "ALLOWED_HOSTS": "127.0.0.1", "USE_X_FORWARDED_PROTO": "1", "LOG_LEVEL": "WARNING"}
        self.sandbox.configure(latency_ms=self.latency_ms, rate_limit_per_second=ml_limit)
        bodies = notification_bodies(
            user_ids, math.ceil(rate * seconds), application_id=settings.ML_APPLICATION_ID
        )
        random.Random(0).shuffle(bodies)  # noqa: S311 - a spread, not security
        headers = {"Content-Type": "application/json", "X-Forwarded-Proto": "https"}
        begun = timezone.now()
        worker = Worker(env=env, log_path=self.bench_dir / "worker-validation.log")
        try:
            web = Web(env=web_env, log_path=self.bench_dir / "web-validation.log", server="gunicorn")
            try:
                self.sandbox.call("POST", "reset-stats")
                scraped = _bench_metrics.scrape()
                with override_settings(ML_REQUESTS_PER_SECOND=requests_per_second):
                    dispatched = tasks.dispatch_due_syncs()
                feeder = threading.Thread(
                    target=feed, args=(web.port, self.path, bodies, rate, headers), name="bench-feeder"
                )
                clock = time.monotonic()
                feeder.start()
                samples = []
                while (elapsed := time.monotonic() - clock) < seconds:
                    time.sleep(min(5.0, seconds - elapsed))
                    stats = self.sandbox.stats()
                    samples.append((time.monotonic() - clock, stats["total_requests"], stats["answered_429"]))
                feeder.join()
            finally:
                web.stop()
        finally:
            worker.stop()
            purge_queue()
        syncs = [line for line in worker.events("sync") if line.get("outcome") == "success"]
        runs = worker.events("notifications_processed")
        notification_calls = sum(run.get("ml_calls", 0) for run in runs)
        rows = Notification.objects.filter(arrived_at__gte=begun).exclude(account__ml_user_id__in=demo)
        by_status = Counter(rows.values_list("status", flat=True))
        lags = [lag / 1000 for lag in rows.exclude(lag_ms=None).values_list("lag_ms", flat=True)]
        windows = [
            (n1 - n0) / (t1 - t0)
            for (t0, n0, _), (t1, n1, _) in zip([(0.0, 0, 0), *samples], samples, strict=False)
        ]
        elapsed, requests, answered_429 = samples[-1]
        planned = requests_per_second * settings.SYNC_BUDGET_SHARE
        self.stdout.write(
            f"   dispatch sent {dispatched} reconciliation syncs; {len(syncs)} done "
            f"({len(syncs) * schedule.SYNC_CALLS_PER_ACCOUNT} calls); "
            f"{len(bodies):,} notifications posted, "
            + ", ".join(f"{status} {n:,}" for status, n in sorted(by_status.items()))
            + f"; processing made {notification_calls} ML calls; notification lag p50 "
            f"{percentile(lags, 50):.1f} s, p95 {percentile(lags, 95):.1f} s\n"
            "   requests per 5 s window (per second): " + ", ".join(f"{w:.1f}" for w in windows)
        )
        self.stdout.write(
            self.style.SUCCESS(
                f"   Validation: {requests / elapsed:.2f} ML requests per second achieved (budget "
                f"{requests_per_second:g}, the model plans {planned:g}); "
                f"busiest 5 s: {max(windows):.2f}/s; {answered_429} answered 429"
            )
        )
        _bench_metrics.report(
            self,
            "6. capacity validation",
            scraped,
            [
                _bench_metrics.stored_row(rows.count()),
                _bench_metrics.answered_row(len(webhook_times_ms(web.log())), by="gunicorn's access log"),
                *_bench_metrics.processed_rows(by_status),
                *_bench_metrics.sync_rows(worker.events("sync"), retries=len(worker.events("sync_retry"))),
                *_bench_metrics.ml_rows(self.sandbox.stats()),
            ],
        )
        Notification.objects.filter(arrived_at__gte=begun).delete()
        fleet.update(next_sync=timezone.now() + timedelta(days=1), last_notification_at=None)


def _statuses(statuses: Counter) -> str:
    return " ".join(f"{status or 'no answer'}×{n:,}" for status, n in sorted(statuses.items()))


def _minus(after: float | None, before: float | None) -> float | None:
    return after - before if after is not None and before is not None else None


def run(command, *, env, bench_dir, sandbox, latency_ms, budget, ml_limit, options) -> None:
    """The notification phases as `manage.py bench` options ask (the --skip-* ones)."""
    phases = NotificationPhases(command, env=env, bench_dir=bench_dir, sandbox=sandbox, latency_ms=latency_ms)
    if not options["skip_ingestion"]:
        requests = options["ingestion_requests"]
        # The steady part: 2,000 requests, fewer for a small run (20 s at 100 a second).
        phases.ingestion(
            requests=requests, clients=options["ingestion_clients"], paced_requests=min(2000, requests)
        )
    calls_per_change = None
    if not options["skip_latency"]:
        calls_per_change = phases.latency(events=options["latency_events"], requests_per_second=budget)
    phases.capacity(
        requests_per_second=budget,
        calls_per_change=calls_per_change,
        seconds=options["capacity_seconds"],
        ml_limit=ml_limit,
    )
