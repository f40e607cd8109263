"""A repeatable fault probe (issue 10, "Must show"): `manage.py probe_faults`.

It runs a production-like stack on loopback addresses only and prints one line of figures
per scenario, then a summary table:

- a database of its own (`<name of DATABASE_URL>_probe`, dropped and created afresh),
- a private redis-server on a free port (broker, cache and ML budget), started and stopped
  by the probe, persisting to var/probe/redis/ so that a stop and start keeps the queue,
- the bundled sandbox ML (`manage.py ml_sandbox`) with its knobs (latency, 429s, 5xx),
- gunicorn with DEBUG=0 and random 50-character SECRET_KEY/SALT_KEY, 3 workers,
  `--timeout 30` (or `-c gunicorn.conf.py` when the repository has one),
- the Procfile's Celery worker (threads pool),
- one user with 50 sandbox sellers connected through services.mlaccount_connect.

There is no beat process: this process runs the periodic jobs of sync.schedule.JOBS
itself, at their own periods (the first run at start, as beat does for a new schedule),
and skips a run while the private Redis is down (beat could not deliver it either). So
the jobs keep beat's cadence while their timing relative to each fault is known; a
scenario that needs work at once calls dispatch_due_syncs itself, as a beat run at that
moment would.

Scenarios (each bounded by --recover-seconds of recovery time):
  kill     the worker SIGKILLed while syncing the 50 accounts, then a new worker started
  redis    the private Redis stopped for --outage-seconds under load, then started
  slow     ML answering in --slow-seconds (25 s): API and dashboard syncs
  ml5xx    ML answering 500 to every call, then restored
  ml429    ML answering 429 to every call, then restored
  schema   schemathesis with every check against gunicorn's /api/schema/

Refuses to run without DATABASE_URL (PostgreSQL) and REDIS_URL: it is a production-like
probe. It never touches the developer's database, nor the Redis of REDIS_URL.
"""

from __future__ import annotations

import http.cookiejar
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import redis
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.db import close_old_connections
from django.db.models import Q
from django.utils import timezone
from django.utils.module_loading import import_string
from psycopg import sql

from accounts import services
from accounts.mercadolivre.oauth import parse_token_response
from accounts.models import AccountStatus, MLAccount, SyncStatus, User
from mlaccounts.api.authentication import access_token_for
from sync import harness, schedule, tasks
from sync.management.commands import _probe as p
from sync.management.commands._probe_scenarios import BASE_LATENCY_MS, Scenarios

INNER_FLAG = "MLACCOUNTS_PROBE_INNER"
SCENARIOS = ("kill", "redis", "slow", "ml5xx", "ml429", "schema")
PROBE_USER_IDS = 7_100_000_000  # synthetic sandbox sellers from here on
PROBE_EMAIL = "probe@example.com"
# Variables that would point the probe at a real ML application instead of the sandbox.
_ML_VARIABLES = ("ML_CLIENT_ID", "ML_CLIENT_SECRET", "ML_API_URL", "ML_AUTH_URL", "ML_SANDBOX_URL")


class Command(BaseCommand):
    help = "Production-like fault probe (issue 10): prints 5xx counts, stuck accounts and recovery times."

    def add_arguments(self, parser):
        parser.add_argument(
            "--scenarios", default=",".join(SCENARIOS), help=f"comma list out of {', '.join(SCENARIOS)}"
        )
        parser.add_argument("--accounts", type=int, default=50)
        parser.add_argument("--recover-seconds", type=float, default=120, help="bound of each recovery wait")
        parser.add_argument("--outage-seconds", type=float, default=30, help="how long Redis stays down")
        parser.add_argument("--slow-seconds", type=float, default=25, help="ML latency of the slow scenario")
        parser.add_argument("--api-syncs", type=int, default=3, help="concurrent API syncs per ML scenario")
        parser.add_argument("--max-examples", type=int, default=3, help="schemathesis examples per operation")
        parser.add_argument("--keep-db", action="store_true", help="keep the probe's database afterwards")

    def handle(self, *args, **options):
        scenarios = [name.strip() for name in options["scenarios"].split(",") if name.strip()]
        unknown = sorted(set(scenarios) - set(SCENARIOS))
        if unknown:
            raise CommandError(f"unknown scenarios: {', '.join(unknown)}")
        options["scenarios"] = scenarios
        if os.environ.get(INNER_FLAG) == "1":
            Probe(self, **options).run()
        else:
            self._run_isolated(options)

    # --- isolation: re-run this command on a database and a Redis of its own --------------------

    def _run_isolated(self, options: dict) -> None:
        database_url = os.environ.get("DATABASE_URL", "")
        if not database_url.startswith(("postgres://", "postgresql://")) or not os.environ.get("REDIS_URL"):
            raise CommandError(
                "probe_faults is a production-like probe: set DATABASE_URL (PostgreSQL) and REDIS_URL. "
                "It uses a database <name>_probe and a private redis-server of its own, never those."
            )
        probe_dir = Path(settings.BASE_DIR) / "var" / "probe"
        probe_dir.mkdir(parents=True, exist_ok=True)
        for old in probe_dir.glob("*.log"):
            old.unlink()
        probe_url, admin_url, name = self._database_urls(database_url)
        self._recreate(admin_url, name)
        env = {k: v for k, v in os.environ.items() if k not in _ML_VARIABLES}
        env.update(
            {
                INNER_FLAG: "1",
                "VAR_DIR": str(probe_dir),
                "DATABASE_URL": probe_url,
                "REDIS_URL": f"redis://127.0.0.1:{harness.free_port()}/0",
                "DEBUG": "0",
                "SECRET_KEY": harness.random_key(),
                "SALT_KEY": harness.random_key(),
                # Plain HTTP on loopback, as behind a TLS-terminating proxy.
                "SECURE_SSL_REDIRECT": "0",
                "SESSION_COOKIE_SECURE": "0",
                "CSRF_COOKIE_SECURE": "0",
                "LOG_FORMAT": "json",
                # This process prints the figures; the programs it starts log INFO to var/probe/.
                "LOG_LEVEL": "WARNING",
            }
        )
        argv = [sys.executable, "manage.py", "probe_faults", "--scenarios", ",".join(options["scenarios"])]
        for option in (
            "accounts",
            "recover_seconds",
            "outage_seconds",
            "slow_seconds",
            "api_syncs",
            "max_examples",
        ):
            argv += [f"--{option.replace('_', '-')}", str(options[option])]
        # A SIGTERM to the probe's process group, like Ctrl-C, lets both processes clean up.
        signal.signal(signal.SIGTERM, _interrupt)
        inner = subprocess.Popen(argv, cwd=settings.BASE_DIR, env=env)  # noqa: S603 - this command
        try:
            returncode = inner.wait()
        except KeyboardInterrupt:
            # The inner probe got the Ctrl-C too: let it stop what it started.
            returncode = inner.wait()
        finally:
            if not options["keep_db"]:
                self._drop(admin_url, name)
        if returncode:
            raise CommandError(f"the probe failed (exit status {returncode}); logs in {probe_dir}")

    @staticmethod
    def _database_urls(database_url: str) -> tuple[str, str, str]:
        parts = urlsplit(database_url)
        name = parts.path.lstrip("/") + "_probe"
        return (
            urlunsplit(parts._replace(path=f"/{name}")),
            urlunsplit(parts._replace(path="/postgres")),
            name,
        )

    @staticmethod
    def _recreate(admin_url: str, name: str) -> None:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))

    @staticmethod
    def _drop(admin_url: str, name: str) -> None:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def _interrupt(signum, frame):
    raise KeyboardInterrupt


class BeatDriver(threading.Thread):
    """Runs sync.schedule.JOBS's interval jobs in this process at their periods (see module doc)."""

    def __init__(self, redis_answers):
        super().__init__(daemon=True)
        self.redis_answers = redis_answers
        self.stopped = threading.Event()
        self.jobs = [(job, import_string(job.task)) for job in schedule.JOBS if job.every_seconds]
        self.skipped = 0
        self.failed = 0

    def run(self):
        next_run = {job.name: time.monotonic() for job, _ in self.jobs}
        while not self.stopped.is_set():
            now = time.monotonic()
            for job, task in self.jobs:
                if now < next_run[job.name]:
                    continue
                next_run[job.name] = now + job.every_seconds
                if not self.redis_answers():
                    self.skipped += 1
                    continue
                try:
                    task()
                except Exception:  # a failed run is counted; beat would log it and go on
                    self.failed += 1
                finally:
                    close_old_connections()
            self.stopped.wait(0.5)

    def stop(self):
        self.stopped.set()
        self.join(timeout=120)


class Probe(Scenarios):
    """The probe proper, inside the isolated environment (settings point at its own services)."""

    def __init__(
        self, command: BaseCommand, *, scenarios, accounts, recover_seconds, outage_seconds, **options
    ):
        self.out = command.stdout
        self.style = command.style
        self.scenarios = scenarios
        self.count = accounts
        self.bound = recover_seconds
        self.outage = outage_seconds
        self.slow_seconds = options["slow_seconds"]
        self.api_syncs = options["api_syncs"]
        self.max_examples = options["max_examples"]
        self.base = Path(settings.BASE_DIR)
        self.dir = Path(settings.VAR_DIR)
        self.env = {**os.environ}
        self.env.pop(INNER_FLAG)
        self.env["LOG_LEVEL"] = "INFO"
        self.recorder = p.Recorder()
        self.rows: list[list[str]] = []
        self.started: list = []  # what to stop, newest last
        self.redis = self.sandbox = self.web = self.worker = None
        self.driver: BeatDriver | None = None

    def say(self, text: str) -> None:
        self.out.write(text)
        self.out.flush()

    # --- the run ------------------------------------------------------------------------------

    def run(self) -> None:
        # A SIGTERM stops what the probe started, as Ctrl-C does.
        signal.signal(signal.SIGTERM, _interrupt)
        try:
            self._start_stack()
            for number, name in enumerate(self.scenarios):
                if number:
                    self._reset_ground()
                getattr(self, f"scenario_{name}")()
        finally:
            self._stop_all()
        self.say(
            "\nSummary\n" + p.table(["scenario", "5xx", "stuck", "recovery", "key figures"], self.rows) + "\n"
        )
        if self.driver is not None:
            self.say(
                f"Periodic jobs run by the probe: {self.driver.skipped} runs skipped while Redis was down, "
                f"{self.driver.failed} failed."
            )

    def _start_stack(self) -> None:
        db = settings.DATABASES["default"]
        web_timeout = "gunicorn.conf.py" if (self.base / "gunicorn.conf.py").exists() else "--timeout 30"
        worker = " ".join(p.procfile_command("worker", self.base / "Procfile")[1:])
        self.say(
            f"Probe stack: PostgreSQL {db['NAME']}, private Redis {settings.REDIS_URL}, "
            f"DEBUG={settings.DEBUG}, gunicorn 3 workers ({web_timeout}), worker: {worker}; "
            f"cores: {os.cpu_count()}"
        )
        call_command("migrate", verbosity=0)
        port = int(urlsplit(settings.REDIS_URL).port)
        self.redis = p.PrivateRedis(port=port, folder=self.dir / "redis")
        self.redis.start()
        self.started.append(self.redis.stop)
        self.sandbox = p.Sandbox(cwd=self.base, env=self.env, log_path=self.dir / "sandbox.log")
        self.started.append(self.sandbox.stop)
        self.env["ML_SANDBOX_URL"] = self.sandbox.url
        settings.ML_API_URL = settings.ML_AUTH_URL = self.sandbox.url  # this process dispatches
        self.sandbox.configure(latency_ms=BASE_LATENCY_MS)
        self._seed()
        self._start_web()
        self._start_worker()
        self.api = f"{self.web.url}/api"
        self.bearer = {"Authorization": f"Bearer {access_token_for(self.user)}"}
        self.session = self._dashboard_session()
        self.poller = p.Repeater(lambda: self._get("/api/ml-accounts", "poll"), 0.5)
        self.poller.start()
        self.started.append(self.poller.stop)
        # Baseline: every account syncs once on the healthy stack.
        since = timezone.now()
        self._make_due()
        tasks.dispatch_due_syncs()
        seconds = self._wait_all_synced(since, time.monotonic())
        self.say(
            f"\nBaseline: {self._synced_since(since)}/{self.count} accounts synced in "
            f"{p.seconds_text(seconds, self.bound)}; sandbox {self.sandbox.url}, web {self.web.url}\n"
        )
        if seconds is None:
            raise CommandError("the stack does not sync on a healthy ML: see the logs in var/probe/")
        self.driver = BeatDriver(self.redis.answers)
        self.driver.start()
        self.started.append(self.driver.stop)

    def _start_web(self, **extra_env) -> None:
        self.web = p.Gunicorn(
            cwd=self.base,
            env={**self.env, **extra_env},
            log_path=self.dir / "gunicorn.log",
            access_log=self.dir / "gunicorn-access.log",
        )
        self.started.append(self.web.stop)

    def _start_worker(self) -> None:
        self.worker = p.Worker(cwd=self.base, env=self.env, log_path=self.dir / "worker.log")
        self.started.append(self.worker.stop)

    def _stop_all(self) -> None:
        while self.started:
            stop = self.started.pop()
            try:
                stop()
            except Exception as error:  # keep stopping the rest
                self.say(f"(stopping: {error!r})")

    def _reset_ground(self) -> None:
        """The same ground for every scenario: a healthy ML, an empty private Redis (queue,
        cache, budget and throttles), no claim or expiry left by the previous scenario, nothing
        due, and a fresh worker. What had to be undone is printed."""
        self.worker.stop()
        self.started.remove(self.worker.stop)
        self.sandbox.configure(
            latency_ms=BASE_LATENCY_MS, fail_rate_429=0.0, fail_rate_5xx=0.0, fail_next=[], fail_next_token=[]
        )
        redis.Redis.from_url(settings.REDIS_URL).flushdb()
        claimed = self._in_progress()
        expired = self._expired()
        self._accounts().filter(last_sync_status=SyncStatus.IN_PROGRESS).update(
            last_sync_status=SyncStatus.FAILED
        )
        self._accounts().update(
            sync_started_at=None,
            status=AccountStatus.ACTIVE,
            error_count=0,
            next_sync=timezone.now() + timedelta(days=1),
        )
        self._start_worker()
        self.say(
            f"   (ground reset: {claimed} claims and {expired} expired accounts left by the scenario undone, "
            "Redis emptied, worker restarted)\n"
        )

    def _seed(self) -> None:
        self.password = harness.random_key(24)
        self.user = User.objects.create_user(PROBE_EMAIL, self.password)
        workspace = services.workspace_personal(user=self.user)
        for n in range(self.count):
            user_id = PROBE_USER_IDS + n
            token_set = parse_token_response(self.sandbox.call("POST", "mint", {"user_id": user_id}))
            services.mlaccount_connect(
                workspace=workspace,
                connected_by=self.user,
                ml_user_id=user_id,
                nickname=f"PROBE_{n}",
                email=f"probe{n}@example.com",
                access_token=token_set.access_token,
                refresh_token=token_set.refresh_token,
                token_expires_at=token_set.expires_at,
                scopes=" ".join(token_set.scopes),
            )
        self.ids = [str(pk) for pk in MLAccount.objects.order_by("ml_user_id").values_list("pk", flat=True)]

    # --- HTTP ---------------------------------------------------------------------------------

    def _get(self, path: str, label: str, *, dashboard: bool = False) -> p.Hit:
        hit, _ = p.http(
            "GET",
            self.web.url + path,
            label=label,
            headers={} if dashboard else self.bearer,
            opener=self.session if dashboard else None,
            timeout=70,
        )
        self.recorder.add(hit)
        return hit

    def _api_sync(self, account_id: str, label: str = "api-sync") -> p.Hit:
        hit, _ = p.http("POST", f"{self.api}/ml-accounts/{account_id}/sync", label=label, headers=self.bearer)
        self.recorder.add(hit)
        return hit

    def _dashboard_session(self) -> urllib.request.OpenerDirector:
        jar = http.cookiejar.CookieJar()
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar), p._NoRedirect)
        p.http("GET", f"{self.web.url}/accounts/login/", opener=opener)
        self.jar = jar
        form = {"login": PROBE_EMAIL, "password": self.password, "csrfmiddlewaretoken": self._csrf()}
        hit, _ = p.http(
            "POST",
            f"{self.web.url}/accounts/login/",
            body=urllib.parse.urlencode(form).encode(),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
            opener=opener,
        )
        if hit.status != 302:
            raise CommandError(f"dashboard login answered {hit.status}, expected 302")
        return opener

    def _csrf(self) -> str:
        return next((cookie.value for cookie in self.jar if cookie.name == "csrftoken"), "")

    def _dashboard_sync(self, account_id: str) -> p.Hit:
        hit, _ = p.http(
            "POST",
            f"{self.web.url}/ml-accounts/{account_id}/sync/",
            label="dashboard-sync",
            body=urllib.parse.urlencode({"csrfmiddlewaretoken": self._csrf()}).encode(),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
            opener=self.session,
        )
        self.recorder.add(hit)
        return hit

    def _api_login(self) -> p.Hit:
        hit, _ = p.http(
            "POST",
            f"{self.api}/auth/login",
            label="api-login",
            body=json.dumps({"email": PROBE_EMAIL, "password": self.password}).encode(),
            headers={"Content-Type": "application/json"},
        )
        self.recorder.add(hit)
        return hit

    def _load(self, *, logins: bool) -> p.Repeater:
        """Requests beside the poller: /health/, the dashboard, and (every 5 s) an API login."""
        ticks = iter(range(10**9))

        def action():
            self._get("/health/", "health")
            self._get("/", "dashboard", dashboard=True)
            if logins and next(ticks) % 5 == 0:
                self._api_login()

        repeater = p.Repeater(action, 1.0)
        repeater.start()
        return repeater

    # --- database figures ---------------------------------------------------------------------

    def _accounts(self):
        return MLAccount.objects.filter(workspace__personal_for=self.user)

    def _make_due(self) -> None:
        """Every account due now (claims untouched: a claimed account stays claimed)."""
        self._accounts().update(next_sync=timezone.now() - timedelta(seconds=1))

    def _synced_since(self, since) -> int:
        return self._accounts().filter(last_sync__gte=since, last_sync_status=SyncStatus.SUCCESS).count()

    def _in_progress(self) -> int:
        return (
            self._accounts()
            .filter(Q(last_sync_status=SyncStatus.IN_PROGRESS) | Q(sync_started_at__isnull=False))
            .count()
        )

    def _expired(self) -> int:
        return self._accounts().filter(status=AccountStatus.EXPIRED).count()

    def _wait_all_synced(self, since, clock: float) -> float | None:
        """Seconds from `clock` (monotonic) until every account has a successful sync since
        `since` (a datetime), or None when that does not happen within the bound."""
        while time.monotonic() - clock < self.bound:
            if self._synced_since(since) >= self.count:
                return time.monotonic() - clock
            time.sleep(1)
        return None

    def _wait_in_progress(self, at_least: int, timeout: float = 30) -> int:
        deadline = time.monotonic() + timeout
        while (busy := self._in_progress()) < at_least and time.monotonic() < deadline:
            time.sleep(0.2)
        return busy

    def _gunicorn_offset(self) -> int:
        return len(self.web.log_text())

    def _five_xx_text(self, summary: p.Summary) -> str:
        kinds = summary.kinds
        return (
            f"{summary.five_xx} (HTML 500 {kinds['html500']}, enveloped {kinds['envelope5xx']}, "
            f"other {kinds['other5xx']}: {summary.errors_text()}; no answer {kinds['noanswer']})"
        )

    def _row(self, name: str, summary: p.Summary, stuck: str, recovery: str, details: str, key: str) -> None:
        """Print a scenario's figures in full, and keep its row (`key`: the table's short column)."""
        five_xx = f"{summary.five_xx} ({summary.errors_text()})" if summary.five_xx else "0"
        self.rows.append([name, five_xx, stuck, recovery, key])
        self.say(self.style.SUCCESS(f"   => {name}: 5xx {self._five_xx_text(summary)}; stuck {stuck};"))
        self.say(self.style.SUCCESS(f"      recovery {recovery}; {details}\n"))
