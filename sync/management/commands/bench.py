"""Benchmark the background engine against the sandbox: `make bench` (manage.py bench).

Seven figures, each printed as it is measured:

1. Capacity: N accounts (1,000) due at once, the sandbox answering every call after
   50 ms, the budget unlimited, one real worker started with the Procfile's command (the
   configuration `make run` and compose use): accounts synced per second, ML calls per
   account, p50 and p95 time per sync. The accounts' orders are imported already (their
   first syncs fill the desk's mirrors; phase 7 measures an orders import).
2. The previous system's algorithm against the same sandbox in the same run: batches of
   3 accounts in parallel, each making its calls one after another, then a 2-second
   pause, on a sample of 60 accounts; and the ratio of the two rates.
3. Budget: 60 seconds with ML_REQUESTS_PER_SECOND=5, more accounts due than that serves,
   the sandbox refusing (429) beyond 6 requests a second: the request rate achieved and
   the number of 429s.

Then the notifications of ML (sync/management/commands/_bench_notifications.py):

4. Ingestion: N POSTs (5,000) to the webhook from 16 concurrent clients under gunicorn
   with the production settings (gunicorn.conf.py, DEBUG off, behind a TLS proxy), no
   worker running: requests per second, p50/p99/max latency, non-200 answers, and the
   notifications stored checked against those sent; then 2,000 more at a steady 100 a
   second (open loop: latency from each request's scheduled moment), a rate closer to
   what one application receives.
5. Event-to-count latency under `make run`'s processes (runserver, worker, beat) with
   the sandbox posting notifications: 60 demo-seller changes half a second apart, each
   timed until the account's count column holds the sandbox's new number: p50, p95, max,
   timeouts; and the ML calls per processed notification and per change.
6. Capacity of one ML application at ML_REQUESTS_PER_SECOND=5: accounts kept fresh by
   polling every 5 minutes against notifications plus hourly reconciliation, at 2, 6 and
   20 changes an hour per account, from phase 5's calls per change; then 60 s of the
   seeded accounts fed that way at the activity that fills the budget: the rate achieved.

Then the sales of issue 15 (sync/management/commands/_bench_sales.py):

7. The "Vendas" page (GET /sales/, page 1) of a workspace with N accounts (100: 80 MLB,
   20 MLA) and M orders (100,000) over the last 90 days, made with bulk_create: its server
   time through Django's test client in this process, p50 and p95 of 20 requests at 30 and
   at 90 days, and its SQL queries, which must equal those of a workspace a tenth the size
   (the figures are aggregated in the database); then the ML calls of a first import of
   ~5,000 orders from a sandbox seller of that size (in-process sandbox, its data clock
   frozen): orders calls per sync, in all and per order, the mirror checked against the
   sandbox's total. `--skip-sales`, `--sales-accounts`, `--sales-orders`.

After each phase that syncs or takes notifications in, the bench prints what GET /metrics
counted beside its own counts, and stops if they differ (sync/management/commands/
_bench_metrics.py): its processes run in Prometheus's multiprocess mode, in a directory
of their own (var/bench/metrics/, emptied at the start).

The capacity run also prints the CPU cost per sync: the CPU seconds the worker, the
database server and the broker used while it ran, divided by the syncs (sync/harness.py
measures them).

It never touches the developer's data: the command re-runs itself with a database of its
own (var/bench/db.sqlite3, or `<name>_bench` on the PostgreSQL server of DATABASE_URL),
and, when REDIS_URL is set, the Redis database REDIS_URL names with a queue and a cache
prefix of its own (the filesystem broker under var/bench/ otherwise): it deletes only
its own keys there. Its budget run takes from the ML budget of that Redis database, so
while an app of yours runs on it, give the bench another: `REDIS_URL=redis://…/5 make bench`.
The sandbox is a memory-only one on a free port.
"""

from __future__ import annotations

import os
import secrets
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import redis
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.db import close_old_connections, connection, connections
from django.db.models import Max
from django.utils import timezone
from psycopg import sql

from accounts import services
from accounts.mercadolivre import ratelimit
from accounts.models import MLAccount, User
from mlaccounts import prometheus
from sync import engine, harness, schedule, tasks
from sync.harness import Sandbox, Worker, procfile_command
from sync.management.commands import _bench_metrics, _bench_notifications, _bench_sales

INNER_FLAG = "MLACCOUNTS_BENCH_INNER"
BENCH_USER_IDS = 7_000_000_000  # synthetic sandbox sellers from here on


def _percentile(values: list[float], percent: int) -> float:
    if len(values) < 2:
        return values[0] if values else float("nan")
    return statistics.quantiles(values, n=100, method="inclusive")[percent - 1]


class CpuMeter:
    """CPU seconds of the worker, the database server and the broker over one measured span.

    The servers are measured whole (every process of PostgreSQL, the redis-server): on a
    server shared with other work, that work is counted too. SQLite runs inside the worker
    and the filesystem broker is files the worker reads: both count as the worker's.
    """

    def __init__(self, worker: Worker):
        self.worker = worker
        self.postgres_pid = (
            harness.postgres_server_pid(connection) if connection.vendor == "postgresql" else None
        )
        self.redis_url = settings.REDIS_URL or None

    def _sessions(self) -> int | None:
        """Sessions opened on the bench database so far (PostgreSQL's own count), or None."""
        if connection.vendor != "postgresql":
            return None
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_stat_clear_snapshot()")  # fresh figures, not a cached snapshot
            cursor.execute("SELECT sessions FROM pg_stat_database WHERE datname = current_database()")
            return cursor.fetchone()[0]

    def _read(self) -> dict[str, float | None]:
        return {
            "worker": self.worker.cpu_seconds(),
            "database": harness.process_tree_cpu_seconds(self.postgres_pid) if self.postgres_pid else None,
            "broker": harness.redis_cpu_seconds(self.redis_url) if self.redis_url else None,
        }

    def start(self) -> None:
        self._before = self._read()
        self._sessions_before = self._sessions()

    def stop(self) -> dict[str, float | None]:
        """Seconds used per component since start() (None: not measured here); `sessions`
        becomes the number of database sessions opened meanwhile (None on SQLite)."""
        after = self._read()
        sessions = self._sessions()
        self.sessions = sessions - self._sessions_before if sessions is not None else None
        return {
            name: after[name] - before if before is not None and after[name] is not None else None
            for name, before in self._before.items()
        }


class Command(BaseCommand):
    help = (
        "Benchmark syncing against the sandbox: capacity, the previous algorithm, the rate budget, "
        "the notifications and the sales page."
    )

    def add_arguments(self, parser):
        parser.add_argument("--accounts", type=int, default=1000, help="accounts due at once (capacity run)")
        parser.add_argument("--latency-ms", type=float, default=50, help="sandbox answer time per call")
        parser.add_argument(
            "--legacy-sample", type=int, default=60, help="accounts for the previous algorithm"
        )
        parser.add_argument(
            "--budget", type=float, default=5, help="ML_REQUESTS_PER_SECOND of the budget run"
        )
        parser.add_argument("--ml-limit", type=float, default=6, help="the sandbox's own limit (requests/s)")
        parser.add_argument("--budget-seconds", type=int, default=60, help="length of the budget run")
        parser.add_argument("--skip-legacy", action="store_true")
        parser.add_argument("--skip-budget", action="store_true")
        parser.add_argument(
            "--ingestion-requests", type=int, default=5000, help="webhook POSTs (ingestion run)"
        )
        parser.add_argument("--ingestion-clients", type=int, default=16, help="concurrent webhook clients")
        parser.add_argument("--latency-events", type=int, default=60, help="seller changes (latency run)")
        parser.add_argument(
            "--capacity-seconds",
            type=int,
            default=60,
            help="notifications' capacity validation run (0: none)",
        )
        parser.add_argument("--skip-ingestion", action="store_true")
        parser.add_argument("--skip-latency", action="store_true")
        parser.add_argument(
            "--sales-accounts", type=int, default=100, help="accounts of the sales page's workspace"
        )
        parser.add_argument(
            "--sales-orders", type=int, default=100_000, help="orders of the sales page's workspace"
        )
        parser.add_argument("--skip-sales", action="store_true")

    def handle(self, *args, **options):
        if os.environ.get(INNER_FLAG) != "1":
            self._run_isolated(options)
            return
        self._run(**options)

    # --- isolation: re-run this command on a database of its own ----------------------------------

    def _run_isolated(self, options: dict) -> None:
        bench_dir = Path(settings.BASE_DIR) / "var" / "bench"
        bench_dir.mkdir(parents=True, exist_ok=True)
        # The worker logs are appended to and read back (durations, retries): start them empty,
        # or each run would count the syncs and retries of every run before it.
        for leftover in bench_dir.glob("*.log"):
            leftover.unlink()
        # Every process of the run counts into this directory, which GET /metrics sums.
        metrics_dir = bench_dir / "metrics"
        prometheus.wipe(metrics_dir)
        env = harness.environment(
            **{
                INNER_FLAG: "1",
                "VAR_DIR": str(bench_dir),
                "DEBUG": "false",  # DEBUG keeps every SQL query in memory: not for a benchmark
                "SECRET_KEY": harness.random_key(),
                "SALT_KEY": harness.random_key(),
                "LOG_FORMAT": "json",
                # This process prints the figures; the workers log INFO (their sync lines).
                "LOG_LEVEL": "WARNING",
                "ML_REQUESTS_PER_SECOND": "0",
                "CELERY_QUEUE": f"bench-{os.getpid()}",
                "CACHE_KEY_PREFIX": "mlaccounts-bench",
                "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
                "METRICS_TOKEN": secrets.token_urlsafe(32),
            }
        )
        database_url = os.environ.get("DATABASE_URL", "")
        if database_url:
            env["DATABASE_URL"] = self._fresh_postgres(database_url)
        else:
            for leftover in bench_dir.glob("db.sqlite3*"):
                leftover.unlink()
        argv = [sys.executable, "manage.py", "bench"]
        for name in (
            "accounts",
            "latency_ms",
            "legacy_sample",
            "budget",
            "ml_limit",
            "budget_seconds",
            "ingestion_requests",
            "ingestion_clients",
            "latency_events",
            "capacity_seconds",
            "sales_accounts",
            "sales_orders",
        ):
            argv += [f"--{name.replace('_', '-')}", str(options[name])]
        skips = ("skip_legacy", "skip_budget", "skip_ingestion", "skip_latency", "skip_sales")
        argv += [f"--{name.replace('_', '-')}" for name in skips if options[name]]
        completed = subprocess.run(argv, cwd=settings.BASE_DIR, env=env, check=False)  # noqa: S603
        if completed.returncode:
            raise CommandError(f"the benchmark failed (exit status {completed.returncode})")

    def _fresh_postgres(self, database_url: str) -> str:
        """Drop and create `<name>_bench` next to the configured database; return its URL."""

        parts = urlsplit(database_url)
        name = parts.path.lstrip("/") + "_bench"
        admin = urlunsplit(parts._replace(path="/postgres"))
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return urlunsplit(parts._replace(path=f"/{name}"))

    # --- the benchmark proper (inside the isolated environment) -------------------------------------

    def _run(self, *, accounts, latency_ms, legacy_sample, budget, ml_limit, budget_seconds, **options):

        bench_dir = Path(settings.VAR_DIR)
        if not prometheus.multiproc_dir() or not settings.METRICS_TOKEN:
            raise CommandError("run `manage.py bench`: its inner run needs the environment it sets up")
        db = settings.DATABASES["default"]
        broker = "Redis" if settings.REDIS_URL else "filesystem"
        self.stdout.write(
            f"Database: {db['ENGINE'].rsplit('.', 1)[-1]} {db['NAME']}; broker: {broker}; "
            f"worker: {' '.join(procfile_command('worker')[1:])} "
            f"(pool {settings.CELERY_WORKER_POOL}, concurrency {settings.CELERY_WORKER_CONCURRENCY}, "
            f"prefetch {settings.CELERY_WORKER_PREFETCH_MULTIPLIER}); cores: {os.cpu_count()}"
        )
        call_command("migrate", verbosity=0)
        env = {**os.environ, "LOG_LEVEL": "INFO"}
        sandbox = Sandbox(env=env, log_path=bench_dir / "sandbox.log")
        env["ML_SANDBOX_URL"] = sandbox.url
        # This process syncs too (the previous algorithm): point it at the same sandbox.
        settings.ML_API_URL = settings.ML_AUTH_URL = sandbox.url
        try:
            self.stdout.write(f"Sandbox: {sandbox.url}; seeding {accounts} accounts…")
            self._seed(sandbox, accounts)
            capacity_rate = self._capacity(sandbox, env, bench_dir, accounts, latency_ms)
            if not options["skip_legacy"]:
                legacy_rate = self._legacy(sandbox, legacy_sample, latency_ms)
                self.stdout.write(
                    self.style.SUCCESS(
                        f"Ratio: {capacity_rate / legacy_rate:.0f}× the previous algorithm's rate"
                    )
                )
            if not options["skip_budget"]:
                self._budget(sandbox, env, bench_dir, budget, ml_limit, budget_seconds, latency_ms)
            _bench_notifications.run(
                self,
                env=env,
                bench_dir=bench_dir,
                sandbox=sandbox,
                latency_ms=latency_ms,
                budget=budget,
                ml_limit=ml_limit,
                options=options,
            )
            if not options["skip_sales"]:
                _bench_sales.run(self, accounts=options["sales_accounts"], orders=options["sales_orders"])
        finally:
            sandbox.stop()
            MLAccount.objects.all().delete()
            if settings.REDIS_URL:
                queue = settings.CELERY_TASK_DEFAULT_QUEUE
                client = redis.Redis.from_url(settings.REDIS_URL)
                # The queue and kombu's bindings of it (_kombu.binding*.<queue>).
                keys = list(client.scan_iter(f"*{queue}*"))
                if keys:
                    client.delete(*keys)

    def _seed(self, sandbox: Sandbox, count: int) -> None:

        user = User.objects.create_user("bench@example.com", None)
        workspace = services.workspace_personal(user=user)
        far = timezone.now() + timedelta(days=1)  # nothing due until a phase says so
        rows = []
        for n in range(count):
            user_id = BENCH_USER_IDS + n
            pair = sandbox.call("POST", "mint", {"user_id": user_id})
            rows.append(
                MLAccount(
                    workspace=workspace,
                    ml_user_id=user_id,
                    nickname=f"BENCH_{n}",
                    account_name=f"Bench {n}",
                    access_token=pair["access_token"],
                    refresh_token=pair["refresh_token"],
                    token_expires_at=timezone.now() + timedelta(seconds=pair["expires_in"]),
                    token_obtained_at=timezone.now(),
                    next_sync=far,
                    # Their orders imported already: the capacity runs measure syncs (with
                    # their first desk mirrors); phase 7 measures an orders import.
                    orders_synced_at=timezone.now(),
                )
            )
        MLAccount.objects.bulk_create(rows, batch_size=500)

    def _make_all_due(self) -> None:

        MLAccount.objects.update(next_sync=timezone.now() - timedelta(seconds=1), sync_started_at=None)

    def _capacity(self, sandbox: Sandbox, env: dict, bench_dir: Path, count: int, latency_ms: float) -> float:

        self.stdout.write(
            f"\n1. Capacity: {count} accounts due at once, {latency_ms:.0f} ms per ML call, no budget"
        )
        sandbox.configure(latency_ms=latency_ms, rate_limit_per_second=None)
        worker = Worker(
            env={**env, "ML_REQUESTS_PER_SECOND": "0"}, log_path=bench_dir / "worker-capacity.log"
        )
        meter = CpuMeter(worker)
        try:
            self._make_all_due()
            sandbox.call("POST", "reset-stats")
            before = _bench_metrics.scrape()
            meter.start()
            started = timezone.now()
            clock = time.monotonic()
            dispatched = tasks.dispatch_due_syncs()
            enqueue_s = time.monotonic() - clock
            done = MLAccount.objects.filter(last_sync__gte=started, last_sync_status="success")
            deadline = time.monotonic() + 600
            while done.count() < dispatched and time.monotonic() < deadline:
                time.sleep(0.25)
            cpu = meter.stop()
            synced = done.count()
            finished = done.aggregate(last=Max("last_sync"))["last"]
        finally:
            worker.stop()
        elapsed = (finished - started).total_seconds() if finished else float("nan")
        stats = sandbox.stats()
        syncs = [line for line in worker.events("sync") if line["outcome"] == "success"]
        durations = [line["duration_ms"] for line in syncs]
        rate = synced / elapsed
        self.stdout.write(
            f"   {synced}/{dispatched} synced in {elapsed:.1f} s (enqueueing took {enqueue_s:.1f} s)\n"
            f"   ML calls per account: {stats['total_requests'] / max(synced, 1):.2f} "
            f"({stats['total_requests']} calls; 429s {stats['answered_429']}, 5xx {stats['answered_5xx']})\n"
            f"   time per account (one sync, in the worker): p50 {_percentile(durations, 50):.0f} ms, "
            f"p95 {_percentile(durations, 95):.0f} ms"
        )
        self.stdout.write(self.style.SUCCESS(f"   Capacity: {rate:.1f} accounts synced per second"))
        self._print_cpu(cpu, synced)
        if meter.sessions is not None:
            self.stdout.write(f"   database sessions opened during the run: {meter.sessions}")
        _bench_metrics.report(
            self,
            "1. capacity",
            before,
            [
                *_bench_metrics.sync_rows(worker.events("sync"), retries=len(worker.events("sync_retry"))),
                ("syncs success (the database)", _bench_metrics.SYNCS, {"outcome": "success"}, synced),
                *_bench_metrics.ml_rows(stats),
            ],
        )
        return rate

    def _print_cpu(self, cpu: dict[str, float | None], synced: int) -> None:
        """One line per component and the total: CPU milliseconds per sync."""
        inside = [
            name
            for name, used in (
                ("SQLite", connection.vendor == "sqlite"),
                ("the filesystem broker", not settings.REDIS_URL),
            )
            if used
        ]
        labels = {
            "worker": "worker (all its processes" + "".join(f", {name} inside" for name in inside) + ")",
            "database": "database server (PostgreSQL, every process)"
            if connection.vendor != "sqlite"
            else None,
            "broker": "broker (redis-server)" if settings.REDIS_URL else None,
        }
        total = 0.0
        self.stdout.write("   CPU per sync (user + system, while the syncs ran):")
        for name, label in labels.items():
            if label is None:
                continue  # it runs inside the worker: counted there
            if cpu[name] is None:
                self.stdout.write(f"     {label}: not measurable from here (on another machine?)")
                continue
            per_sync = cpu[name] * 1000 / max(synced, 1)
            total += per_sync
            self.stdout.write(f"     {label}: {per_sync:.1f} ms")
        self.stdout.write(self.style.SUCCESS(f"   CPU per sync: {total:.1f} ms in total"))

    def _legacy(self, sandbox: Sandbox, sample: int, latency_ms: float) -> float:

        self.stdout.write(
            f"\n2. Previous algorithm: {sample} accounts, batches of 3 in parallel, calls one after "
            f"another, 2 s pause after each batch, {latency_ms:.0f} ms per ML call"
        )
        ids = [
            str(pk) for pk in MLAccount.objects.order_by("ml_user_id").values_list("pk", flat=True)[:sample]
        ]
        sandbox.call("POST", "reset-stats")
        before = _bench_metrics.scrape()

        def sync(account_id):
            try:
                return engine.sync_account(account_id).outcome
            finally:
                close_old_connections()
                connections.close_all()

        clock = time.monotonic()
        outcomes = []
        with ThreadPoolExecutor(max_workers=3) as pool:
            for start in range(0, len(ids), 3):
                outcomes += pool.map(sync, ids[start : start + 3])
                time.sleep(2)
        elapsed = time.monotonic() - clock
        ok = outcomes.count(engine.Outcome.SUCCESS)
        rate = ok / elapsed
        stats = sandbox.stats()
        self.stdout.write(f"   {ok}/{len(ids)} synced in {elapsed:.1f} s; {stats['total_requests']} ML calls")
        self.stdout.write(self.style.SUCCESS(f"   Previous algorithm: {rate:.2f} accounts synced per second"))
        _bench_metrics.report(
            self,
            "2. previous algorithm",
            before,
            [
                *_bench_metrics.sync_rows([{"outcome": outcome} for outcome in outcomes]),
                *_bench_metrics.ml_rows(stats),
            ],
        )
        return rate

    def _budget(
        self,
        sandbox: Sandbox,
        env: dict,
        bench_dir: Path,
        budget: float,
        ml_limit: float,
        seconds: int,
        latency_ms: float,
    ) -> None:

        self.stdout.write(
            f"\n3. Budget: {seconds} s at ML_REQUESTS_PER_SECOND={budget:g}, the sandbox allowing "
            f"{ml_limit:g}/s (429 beyond), {latency_ms:.0f} ms per call, every account due"
        )
        settings.ML_REQUESTS_PER_SECOND = budget  # this process dispatches: the same budget
        ratelimit.reset()
        worker = Worker(
            env={**env, "ML_REQUESTS_PER_SECOND": str(budget)}, log_path=bench_dir / "worker-budget.log"
        )
        try:
            self._make_all_due()
            sandbox.configure(latency_ms=latency_ms, rate_limit_per_second=ml_limit)
            sandbox.call("POST", "reset-stats")
            before = _bench_metrics.scrape()
            clock = time.monotonic()
            dispatched = tasks.dispatch_due_syncs()
            due = MLAccount.objects.filter(next_sync__lte=timezone.now()).count()
            samples = []
            while (elapsed := time.monotonic() - clock) < seconds:
                time.sleep(min(5.0, seconds - elapsed))
                stats = sandbox.stats()
                samples.append((time.monotonic() - clock, stats["total_requests"], stats["answered_429"]))
        finally:
            worker.stop()
        stopped = time.monotonic() - clock
        _, requests, answered_429 = samples[-1]
        retries = worker.events("sync_retry")
        self.stdout.write(
            f"   dispatch sent {dispatched} syncs (capacity {schedule.dispatch_capacity()} a minute); "
            f"{due} accounts left due for later runs\n"
            "   requests so far: "
            + ", ".join(f"{t:.0f} s: {n}" for t, n, _ in samples)
            + f"\n   sync retries: {len(retries)} ({', '.join(sorted({r['error'] for r in retries})) or '-'})"
        )
        self.stdout.write(
            self.style.SUCCESS(
                f"   Budget: {requests / seconds:.2f} requests per second achieved, "
                f"{answered_429} answered 429"
            )
        )
        # Counted until the worker stopped: the requests of the syncs it finished meanwhile too.
        after = _bench_metrics.report(
            self,
            "3. budget",
            before,
            [
                *_bench_metrics.sync_rows(worker.events("sync"), retries=len(retries)),
                *_bench_metrics.ml_rows(sandbox.stats()),
            ],
        )
        self.stdout.write(_bench_metrics.budget_line(before, after, seconds=stopped, allowed=budget))
