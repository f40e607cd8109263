"""The fault scenarios of `manage.py probe_faults` (see that command for the stack they run on).

Each scenario is a method of Scenarios, a mixin of probe_faults.Probe: it starts from the
healthy stack, injects its fault, measures what the users saw (5xx, stuck accounts) and how
long recovery took, and adds one row to the summary table.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

from django.utils import timezone

from mlaccounts.api.authentication import access_token_for
from sync import tasks
from sync.management.commands import _probe as p

BASE_LATENCY_MS = 50  # a healthy ML
# ML's answer time while Redis goes down: syncs are in the middle of their calls at the
# stop and finish (acknowledge, retry) during the outage.
REDIS_LATENCY_MS = 4000
# Syncs in flight when the worker is killed or Redis stops: about the worker's 32 threads
# busy, the load under which the Redis restart killed the worker in issue 10 (with a
# dozen in flight it often survives).
BUSY_AT_FAULT = 30
# Throttle rates for the schemathesis run only: a throttle's 429 on a valid request would
# be noise there (the throttles have their own tests; the other scenarios keep them).
_UNTHROTTLED = dict.fromkeys(
    (
        "API_THROTTLE_USER",
        "API_THROTTLE_ML_ACTION",
        "API_THROTTLE_LOGIN_IP",
        "API_THROTTLE_LOGIN_FAILURES",
        "API_THROTTLE_REGISTER_IP",
        "API_THROTTLE_REGISTER_EMAIL",
    ),
    "100000/min",
)


class Scenarios:
    """kill, redis, slow, ml5xx, ml429 and schema: the probe's faults, one method each."""

    def scenario_kill(self) -> None:
        self.say(
            f"1. Worker SIGKILLed while syncing {self.count} accounts (ML answering in 1.5 s), then restarted"
        )
        self.sandbox.configure(latency_ms=1500)
        since = timezone.now()
        self._make_due()
        dispatched = tasks.dispatch_due_syncs()
        busy = self._wait_in_progress(min(BUSY_AT_FAULT, self.count))
        clock = time.monotonic()
        killed_at = timezone.now()
        self.worker.kill()
        self.worker.stop()
        self.started.remove(self.worker.stop)
        time.sleep(2)
        stuck = self._in_progress()
        not_synced = self.count - self._synced_since(since)
        self.sandbox.configure(latency_ms=BASE_LATENCY_MS)
        # "Sync now" on an account the dead worker held (the first one if none is held).
        held = self._accounts().filter(sync_started_at__isnull=False).values_list("pk", flat=True).first()
        sync_now = self._api_sync(str(held or self.ids[0]), "api-sync-after-kill")
        self._start_worker()
        recovered = self._wait_all_synced(killed_at, clock)
        summary = p.summarize(self.recorder.between(clock))
        self._row(
            "worker killed",
            summary,
            f"{stuck} in_progress, {not_synced} not synced",
            p.seconds_text(recovered, self.bound),
            f"dispatched {dispatched}, {busy} syncing at the kill; 'sync now' right after: "
            f"{sync_now.status} {sync_now.code}; API answers {summary.statuses_text()}",
            f"'sync now' after the kill: {sync_now.status} {sync_now.code}",
        )

    def scenario_redis(self) -> None:
        self.say(
            f"\n2. Private Redis stopped for {self.outage:.0f} s under load (syncs running, ML answering in "
            f"{REDIS_LATENCY_MS / 1000:g} s; API, dashboard, /health/, logins), then started"
        )
        self.sandbox.configure(latency_ms=REDIS_LATENCY_MS)
        load = self._load(logins=True)
        try:
            self._make_due()
            tasks.dispatch_due_syncs()
            busy = self._wait_in_progress(min(BUSY_AT_FAULT, self.count))
            clock = time.monotonic()
            self.redis.stop()
            time.sleep(self.outage)
            self.redis.start()
            restarted = time.monotonic()
            restarted_at = timezone.now()
            self.sandbox.configure(latency_ms=BASE_LATENCY_MS)
            time.sleep(20)
            alive_after_20s = self.worker.alive()
            self._make_due()
            recovered = self._wait_all_synced(restarted_at, restarted)
            alive_at_end = self.worker.alive()
        finally:
            load.stop()
        stuck = self._in_progress()
        outage = p.summarize(self.recorder.between(clock, restarted))
        summary = p.summarize(self.recorder.between(clock))
        worker_log = self.worker.log_text()
        self._row(
            "redis outage",
            summary,
            f"{stuck} in_progress at the end",
            p.seconds_text(recovered, self.bound),
            f"{busy} syncing at the stop; during the outage {outage.requests} requests, "
            f"{self._five_xx_text(outage)}; worker alive 20 s after restart: "
            f"{'yes' if alive_after_20s else 'NO'}, at the end: {'yes' if alive_at_end else 'NO'}; "
            "'Unrecoverable error' in worker log: "
            f"{worker_log.count('Unrecoverable error')}",
            f"worker alive after: {'yes' if alive_at_end else 'NO'}; outage 5xx {outage.five_xx}",
        )
        if not alive_at_end:
            # No supervisor restarts it in `make run`; the next scenarios need a worker.
            self.worker.stop()
            self.started.remove(self.worker.stop)
            self._start_worker()
            self.say("   (the dead worker was replaced for the next scenarios)\n")

    def _ml_fault(self, name: str, title: str, knobs: dict, restore: dict) -> None:
        self.say(f"\n{title}")
        offset = self._gunicorn_offset()
        clock = time.monotonic()
        self.sandbox.configure(**knobs)
        load = self._load(logins=False)
        try:
            self._make_due()
            tasks.dispatch_due_syncs()  # background syncs under the fault too
            targets = self.ids[: self.api_syncs]
            threads = [threading.Thread(target=self._api_sync, args=(account_id,)) for account_id in targets]
            threads.append(threading.Thread(target=self._dashboard_sync, args=(self.ids[self.api_syncs],)))
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
        finally:
            load.stop()
        during = p.summarize(self.recorder.between(clock))
        syncs = p.summarize([hit for hit in self.recorder.between(clock) if hit.label.endswith("sync")])
        timeouts = p.count_worker_timeouts(self.web.log_text()[offset:])
        expired_fault = self._expired()
        stuck_fault = self._in_progress()
        # Restore ML, make every account due (as "sync all" would) and let beat's cadence work.
        self.sandbox.configure(**restore)
        restored = time.monotonic()
        restored_at = timezone.now()
        self._make_due()
        api_back = None
        while time.monotonic() - restored < self.bound:
            if self._api_sync(self.ids[0], "api-sync-recovery").status == 200:
                api_back = time.monotonic() - restored
                break
            time.sleep(5)
        recovered = self._wait_all_synced(restored_at, restored)
        expired = self._expired()
        summary = p.summarize(self.recorder.between(clock))
        self._row(
            name,
            summary,
            f"{stuck_fault} in_progress after the fault, {self._in_progress()} at the end; "
            f"{expired} expired (0 expected)",
            p.seconds_text(recovered, self.bound),
            f"syncs (API ×{self.api_syncs}, dashboard ×1): {syncs.statuses_text()} "
            f"codes {dict(syncs.codes) or '-'}; all requests during the fault: {during.statuses_text()}, "
            f"max {during.max_seconds:.1f} s, HTML 500 {during.kinds['html500']}; gunicorn WORKER TIMEOUT "
            f"{timeouts}; expired during the fault {expired_fault}; 429s with Retry-After "
            f"{during.retry_after_429}/{during.statuses[429]}; API sync 200 again after "
            f"{p.seconds_text(api_back, self.bound)}",
            f"syncs {syncs.statuses_text()}, max {during.max_seconds:.1f} s, WORKER TIMEOUT {timeouts}, "
            f"expired {max(expired, expired_fault)}, "
            f"Retry-After {during.retry_after_429}/{during.statuses[429]}",
        )

    def scenario_slow(self) -> None:
        self._ml_fault(
            "ML slow",
            f"3. ML answering in {self.slow_seconds:.0f} s",
            {"latency_ms": self.slow_seconds * 1000},
            {"latency_ms": BASE_LATENCY_MS},
        )

    def scenario_ml5xx(self) -> None:
        self._ml_fault(
            "ML 500s",
            "4. ML answering 500 to every call",
            {"fail_rate_5xx": 1.0, "fail_5xx_status": 500},
            {"fail_rate_5xx": 0.0},
        )

    def scenario_ml429(self) -> None:
        self._ml_fault(
            "ML 429s",
            "5. ML answering 429 to every call (no Retry-After from ML, as documented)",
            {"fail_rate_429": 1.0},
            {"fail_rate_429": 0.0},
        )

    def scenario_schema(self) -> None:
        self.say(
            f"\n6. schemathesis, every check, {self.max_examples} examples per operation, as the account "
            "owner (gunicorn restarted with the API throttles lifted)"
        )
        self.web.stop()
        self.started.remove(self.web.stop)
        self._start_web(**_UNTHROTTLED)
        self.api = f"{self.web.url}/api"
        report = self.dir / "schemathesis.ndjson"
        report.unlink(missing_ok=True)
        token = access_token_for(self.user)
        argv = [str(Path(sys.executable).parent / "schemathesis"), "run", f"{self.web.url}/api/schema/"]
        argv += ["--url", self.web.url, "--checks", "all", "-H", f"Authorization: Bearer {token}"]
        argv += ["--max-examples", str(self.max_examples), "--seed", "10", "--no-shrink", "--workers", "1"]
        argv += ["--generation-database", "none", "--request-timeout", "40", "--no-color"]
        argv += ["--report", "ndjson", "--report-ndjson-path", str(report)]
        clock = time.monotonic()
        offset = self._gunicorn_offset()
        with open(self.dir / "schemathesis.log", "wb") as log:
            try:
                completed = subprocess.run(  # noqa: S603 - the venv's schemathesis
                    argv, cwd=self.dir, stdout=log, stderr=subprocess.STDOUT, timeout=600, check=False
                )
                exit_status = str(completed.returncode)
            except subprocess.TimeoutExpired:
                exit_status = "timed out"
        seconds = time.monotonic() - clock
        lines = report.read_text(errors="replace").splitlines() if report.exists() else []
        figures = p.schemathesis_figures(lines)
        summary = p.summarize(self.recorder.between(clock))
        html_500 = self.web.log_text()[offset:].count("Internal Server Error")
        failures = (
            ", ".join(f"{name} {n}" for name, n in sorted(figures["failures"].items())) or "none"
        ) + f" ({figures['failing_cases']} failing cases)"
        five_xx = figures["five_xx"]
        details = (
            f"{figures['requests']} requests in {seconds:.0f} s, no answer {figures['no_answer']}; "
            f"failures by check and operation: {failures}; exit status {exit_status}"
        )
        key = f"{figures['requests']} requests; failures: {failures}"
        self.rows.append(["schemathesis", str(five_xx), "-", "-", key])
        self.say(
            self.style.SUCCESS(
                f"   => schemathesis: 5xx {five_xx} (server errors logged by Django {html_500}, poller 5xx "
                f"{summary.five_xx}); {details} (log: var/probe/schemathesis.log)\n"
            )
        )
