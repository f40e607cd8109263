"""Helpers of `manage.py probe_faults`: figures from HTTP answers and logs, and the processes.

The pure functions (classify, summarize, count_worker_timeouts, schemathesis_figures,
table, random_key) are tested in tests/sync/test_probe_faults.py; the process classes
start and stop real programs on loopback addresses only. The leading underscore keeps
Django from taking this module for a command.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import redis

from sync.harness import SandboxControl, free_port

# --- figures -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Hit:
    """One HTTP answer the probe received (status 0: no answer, the connection failed)."""

    at: float  # time.monotonic() when the request was sent
    label: str
    status: int
    seconds: float
    content_type: str = ""
    code: str = ""  # the envelope's "code", when the body is one
    retry_after: bool = False


def classify(hit: Hit) -> str:
    """'ok' (<500), 'html500' (a 500 page), 'envelope5xx' (a 5xx in the API's JSON envelope),
    'other5xx' (any other 5xx, e.g. /health/'s own JSON) or 'noanswer' (connection failed)."""
    if hit.status == 0:
        return "noanswer"
    if hit.status < 500:
        return "ok"
    if hit.status == 500 and "html" in hit.content_type:
        return "html500"
    if hit.code:
        return "envelope5xx"
    return "other5xx"


@dataclass
class Summary:
    requests: int = 0
    statuses: Counter = field(default_factory=Counter)
    kinds: Counter = field(default_factory=Counter)
    codes: Counter = field(default_factory=Counter)
    max_seconds: float = 0.0
    retry_after_429: int = 0
    # Each 5xx as "<status> <envelope code>", or "<status> html" / "<status> <content type>".
    errors: Counter = field(default_factory=Counter)

    @property
    def five_xx(self) -> int:
        return sum(n for status, n in self.statuses.items() if status >= 500)

    def errors_text(self) -> str:
        return ", ".join(f"{kind} ×{n}" for kind, n in sorted(self.errors.items())) or "-"

    def statuses_text(self) -> str:
        return " ".join(f"{status}×{n}" for status, n in sorted(self.statuses.items())) or "-"


def summarize(hits: list[Hit]) -> Summary:
    """Counts over `hits`: statuses, kinds (see classify), envelope codes, slowest answer."""
    summary = Summary()
    for hit in hits:
        summary.requests += 1
        summary.statuses[hit.status] += 1
        summary.kinds[classify(hit)] += 1
        if hit.code:
            summary.codes[hit.code] += 1
        summary.max_seconds = max(summary.max_seconds, hit.seconds)
        if hit.status >= 500:
            kind = hit.code or ("html" if "html" in hit.content_type else hit.content_type or "no body")
            summary.errors[f"{hit.status} {kind}"] += 1
        if hit.status == 429 and hit.retry_after:
            summary.retry_after_429 += 1
    return summary


def count_worker_timeouts(gunicorn_log: str) -> int:
    """How many times gunicorn's arbiter killed a worker for running past --timeout."""
    return gunicorn_log.count("WORKER TIMEOUT")


def schemathesis_figures(ndjson_lines: list[str]) -> dict:
    """Requests sent, answers by kind and failures by check, from schemathesis's NDJSON report.

    The format is schemathesis 4's: each ScenarioFinished event carries its recorder, with
    the interactions (request and response, None when no answer came) and the results of
    every check per test case. A failure counts once per check and operation, as
    schemathesis's own "unique failures" does; `failing_cases` counts every failing case.
    """
    requests = five_xx = no_answer = failing_cases = 0
    unique: set[tuple[str, str]] = set()
    for line in ndjson_lines:
        finished = json.loads(line).get("ScenarioFinished") if line.strip() else None
        if not finished:
            continue
        recorder = finished.get("recorder") or {}
        for interaction in (recorder.get("interactions") or {}).values():
            requests += 1
            response = interaction.get("response")
            if response is None:
                no_answer += 1
            elif response.get("status_code", 0) >= 500:
                five_xx += 1
        for checks in (recorder.get("checks") or {}).values():
            for check in checks:
                if check.get("status") != "failure":
                    continue
                failing_cases += 1
                failure = (check.get("failure_info") or {}).get("failure") or {}
                unique.add((check["name"], failure.get("operation", recorder.get("label", ""))))
    return {
        "requests": requests,
        "five_xx": five_xx,
        "no_answer": no_answer,
        "failing_cases": failing_cases,
        "failures": dict(Counter(name for name, _ in unique)),
    }


def table(headers: list[str], rows: list[list[str]]) -> str:
    """A plain-text table, columns padded to their widest cell."""
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows, strict=True)]

    def line(cells):
        return "  ".join(str(cell).ljust(width) for cell, width in zip(cells, widths, strict=True)).rstrip()

    return "\n".join([line(headers), line(["-" * width for width in widths]), *(line(row) for row in rows)])


def seconds_text(value: float | None, bound: float) -> str:
    """'12.3 s', or '> bound s' when it did not happen within the bound."""
    return f"{value:.1f} s" if value is not None else f"> {bound:.0f} s (not recovered)"


# --- HTTP ----------------------------------------------------------------------------------------


def http(
    method: str,
    url: str,
    *,
    label: str = "",
    headers: dict | None = None,
    body: bytes | None = None,
    timeout: float = 70,
    opener: urllib.request.OpenerDirector | None = None,
) -> tuple[Hit, bytes]:
    """One request; never raises for an HTTP status or a failed connection (status 0)."""
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})  # noqa: S310
    open_ = (opener or urllib.request.build_opener(_NoRedirect)).open
    sent = time.monotonic()
    try:
        with open_(request, timeout=timeout) as response:
            status, reply_headers, data = response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        status, reply_headers, data = error.code, error.headers, error.read()
    except OSError:
        return Hit(sent, label or url, 0, time.monotonic() - sent), b""
    content_type = reply_headers.get("Content-Type", "")
    code = ""
    if "json" in content_type:
        try:
            payload = json.loads(data)
            if isinstance(payload, dict) and payload.get("success") is False:
                code = str(payload.get("code", ""))
        except ValueError:
            pass
    hit = Hit(
        sent,
        label or url,
        status,
        time.monotonic() - sent,
        content_type=content_type,
        code=code,
        retry_after="Retry-After" in reply_headers,
    )
    return hit, data


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Report a redirect as the answer it is (the dashboard's POSTs answer 302)."""

    def redirect_request(self, *args, **kwargs):
        return None


class Recorder:
    """Every Hit of the run, with a time window per scenario."""

    def __init__(self):
        self._hits: list[Hit] = []
        self._lock = threading.Lock()

    def add(self, hit: Hit) -> None:
        with self._lock:
            self._hits.append(hit)

    def between(self, start: float, end: float | None = None) -> list[Hit]:
        end = end if end is not None else float("inf")
        with self._lock:
            return [hit for hit in self._hits if start <= hit.at <= end]


class Repeater(threading.Thread):
    """Call `action` every `interval` seconds until stopped (load and polling)."""

    def __init__(self, action, interval: float):
        super().__init__(daemon=True)
        self.action = action
        self.interval = interval
        self.stopped = threading.Event()

    def run(self):
        while not self.stopped.is_set():
            self.action()
            self.stopped.wait(self.interval)

    def stop(self):
        self.stopped.set()
        self.join(timeout=120)


# --- processes -----------------------------------------------------------------------------------


def _wait(predicate, *, timeout: float, what: str, process: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline or (process is not None and process.poll() is not None):
            raise RuntimeError(f"{what} did not start")
        time.sleep(0.1)


class Process:
    """A program in a session of its own (so a signal reaches it and its children), output to a log."""

    def __init__(self, argv: list[str], *, cwd: Path, env: dict, log_path: Path):
        self.log_path = log_path
        self._log = open(log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(  # noqa: S603 - programs of this project
            argv, cwd=cwd, env=env, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True
        )

    def alive(self) -> bool:
        return self.process.poll() is None

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.alive():
            os.killpg(self.process.pid, sig)

    def stop(self, timeout: float = 20) -> None:
        if self.alive():
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        else:
            # Reap it, and any child left in its group (a SIGKILLed Celery's pool threads die with it).
            self.process.wait(timeout=10)
        self._log.close()


class PrivateRedis:
    """A redis-server of the probe's own on a free loopback port, persisting to its own folder
    (so a stop and start keeps the queue, as a production Redis with persistence does)."""

    def __init__(self, *, port: int, folder: Path):
        self.port = port
        self.folder = folder
        self.url = f"redis://127.0.0.1:{port}/0"
        self.process: Process | None = None

    def start(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        argv = ["redis-server", "--bind", "127.0.0.1", "--port", str(self.port), "--dir", str(self.folder)]
        argv += ["--save", "60 1", "--appendonly", "no", "--protected-mode", "yes"]
        self.process = Process(
            argv, cwd=self.folder, env=dict(os.environ), log_path=self.folder / "redis.log"
        )
        _wait(self.answers, timeout=15, what="redis-server", process=self.process.process)

    def answers(self) -> bool:
        try:
            return bool(redis.Redis.from_url(self.url, socket_timeout=0.5, socket_connect_timeout=0.5).ping())
        except redis.RedisError:
            return False

    def stop(self) -> None:
        """Shut down saving to disk (SHUTDOWN SAVE), as `systemctl stop redis` does."""
        if self.process is None:
            return
        if self.process.alive():
            # The connection drops as it exits: that error is the expected answer.
            with contextlib.suppress(redis.RedisError):
                redis.Redis.from_url(self.url, socket_timeout=5).shutdown(save=True)
        self.process.stop()
        self.process = None


class Sandbox(SandboxControl):
    """`manage.py ml_sandbox` on a free loopback port, its knobs set through /_sandbox/config."""

    def __init__(self, *, cwd: Path, env: dict, log_path: Path):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        argv = [sys.executable, "manage.py", "ml_sandbox", "--port", str(self.port), "--state-file", ""]
        self.process = Process(argv, cwd=cwd, env=env, log_path=log_path)
        _wait(self._answers, timeout=30, what="the sandbox", process=self.process.process)

    def _answers(self) -> bool:
        try:
            self.call("GET", "config")
            return True
        except OSError:
            return False

    def stop(self) -> None:
        self.process.stop()


def procfile_command(name: str, procfile: Path) -> list[str]:
    """The Procfile's command for process `name`, run with this interpreter (`-m celery`)."""
    for line in procfile.read_text().splitlines():
        if line.startswith(f"{name}:"):
            words = shlex.split(line.split(":", 1)[1])
            return [sys.executable, "-m", Path(words[0]).name, *words[1:]]
    raise RuntimeError(f"no '{name}:' line in {procfile}")


class Worker(Process):
    """The Procfile's Celery worker (threads pool), ready once it logs 'ready.'."""

    def __init__(self, *, cwd: Path, env: dict, log_path: Path):
        self._start_offset = log_path.stat().st_size if log_path.exists() else 0
        super().__init__(procfile_command("worker", cwd / "Procfile"), cwd=cwd, env=env, log_path=log_path)
        _wait(
            lambda: "ready." in self.log_text()[self._start_offset :],
            timeout=90,
            what="the Celery worker",
            process=self.process,
        )


class Gunicorn(Process):
    """gunicorn on a free loopback port: 3 workers, --timeout 30 unless gunicorn.conf.py sets it."""

    def __init__(self, *, cwd: Path, env: dict, log_path: Path, access_log: Path):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        argv = [sys.executable, "-m", "gunicorn", "mlaccounts.wsgi", "--bind", f"127.0.0.1:{self.port}"]
        argv += ["--workers", "3", "--access-logfile", str(access_log)]
        if (cwd / "gunicorn.conf.py").exists():
            argv += ["-c", "gunicorn.conf.py"]
        else:
            argv += ["--timeout", "30"]
        super().__init__(argv, cwd=cwd, env=env, log_path=log_path)
        _wait(self._answers, timeout=60, what="gunicorn", process=self.process)

    def _answers(self) -> bool:
        hit, _ = http("GET", f"{self.url}/health/", timeout=5)
        return hit.status != 0
