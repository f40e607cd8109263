"""Real processes for the benchmark and the worker tests: one harness for both.

`manage.py bench` and tests/sync/test_worker.py start the Procfile's worker command (and
the bench a sandbox) as subprocesses, wait for them, read their JSON logs, stop them,
and measure what they cost. Both use this module, so the worker they exercise is started
the same way `make run` and compose start it.

The CPU figures read /proc (Linux): a process's own user+system time plus that of its
children it has reaped, summed over the live process tree. PostgreSQL's server is found
through our own backend's parent (the postmaster); Redis reports its own (INFO cpu).
Where a server is not on this machine its figure is None.

The bench's notification phases also start the web process (the Procfile's runserver, or
gunicorn with gunicorn.conf.py: `Web`) and beat (`Beat`) the same way.
"""

from __future__ import annotations

import json
import os
import secrets
import shlex
import signal
import socket
import string
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import redis
from django.conf import settings
from kombu import Connection

# Variables that would point a subprocess at a real ML application instead of the sandbox.
ML_VARIABLES = ("ML_CLIENT_ID", "ML_CLIENT_SECRET", "ML_API_URL", "ML_AUTH_URL", "ML_SANDBOX_URL")

T = TypeVar("T")


def procfile_command(name: str, *, procfile: Path | None = None) -> list[str]:
    """The Procfile's command for process `name`, run with this interpreter (`-m celery`)."""
    procfile = procfile or Path(settings.BASE_DIR) / "Procfile"
    for line in procfile.read_text().splitlines():
        if line.startswith(f"{name}:"):
            words = shlex.split(line.split(":", 1)[1])
            return [sys.executable, "-m", Path(words[0]).name, *words[1:]]
    raise LookupError(f"no '{name}:' line in {procfile}")


KEY_ALPHABET = string.ascii_letters + string.digits + "!#%*+-=?@^_"


def random_key(length: int = 50) -> str:
    """A random SECRET_KEY / SALT_KEY for a process run with DEBUG off (no comma: they are lists).

    With DEBUG off settings refuse short, repetitive or published keys, so a fixed
    benchmark key would not start; a fresh random one per run is also what production needs.
    """
    return "".join(secrets.choice(KEY_ALPHABET) for _ in range(length))


def environment(**overrides: Any) -> dict[str, str]:
    """This process's environment without the real-ML variables, with `overrides` (as strings)."""
    env = {key: value for key, value in os.environ.items() if key not in ML_VARIABLES}
    env.update({key: str(value) for key, value in overrides.items()})
    return env


def free_port(preferred: int | None = None) -> int:
    """A TCP port free on 127.0.0.1: `preferred` when it is, any otherwise."""
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", preferred or 0))
        except OSError:
            probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for(
    predicate: Callable[[], T], *, timeout: float, interval: float = 0.1, what: str = "condition"
) -> T:
    """Poll `predicate` until it returns something truthy; raise TimeoutError after `timeout` s."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


def _stop_group(process: subprocess.Popen, *, timeout: float) -> None:
    """SIGTERM the process group (started with start_new_session); SIGKILL it if it lingers."""
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


# --- CPU time ------------------------------------------------------------------------------------

_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _proc_stat(pid: int) -> tuple[int, float] | None:
    """(parent pid, CPU seconds of the process and its reaped children), or None if gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may hold spaces: the fields after it follow its ')'.
    fields = raw[raw.rindex(")") + 2 :].split()
    # state, ppid, …; utime, stime, cutime, cstime are fields 14-17 (1-based, so 11-14 here).
    return int(fields[1]), sum(int(value) for value in fields[11:15]) / _TICKS


def process_tree_cpu_seconds(pid: int) -> float | None:
    """CPU seconds (user + system) used so far by `pid` and every process under it, or None.

    Children that exited count once their parent has reaped them (its cutime/cstime):
    PostgreSQL's postmaster reaps each backend, so short-lived sessions are counted too.
    """
    stats: dict[int, tuple[int, float]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (stat := _proc_stat(int(entry.name))) is not None:
            stats[int(entry.name)] = stat
    if pid not in stats:
        return None
    children: dict[int, list[int]] = {}
    for child, (parent, _) in stats.items():
        children.setdefault(parent, []).append(child)
    total, todo = 0.0, [pid]
    while todo:
        current = todo.pop()
        total += stats[current][1]
        todo.extend(children.get(current, ()))
    return total


def postgres_server_pid(connection) -> int | None:
    """The postmaster's pid: the parent of this connection's backend, if it runs here."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        backend = cursor.fetchone()[0]
    stat = _proc_stat(backend)
    return stat[0] if stat is not None else None


def redis_cpu_seconds(url: str) -> float:
    """CPU seconds the Redis server has used (its own figures: INFO cpu)."""
    info = redis.Redis.from_url(url).info("cpu")
    return sum(
        float(info.get(key, 0))
        for key in ("used_cpu_user", "used_cpu_sys", "used_cpu_user_children", "used_cpu_sys_children")
    )


# --- processes -------------------------------------------------------------------------------------


class Worker:
    """The Procfile's worker command as a subprocess (its own process group), logging to a file.

    `env` is its whole environment (see `environment()`); `queue` names the worker after its
    queue (`-n queue@host`) and, with `broker_url`, lets `send` enqueue there.
    """

    def __init__(self, *, env: dict, log_path: Path, queue: str | None = None, broker_url: str | None = None):
        self.queue = queue
        self.broker_url = broker_url
        self.log_path = log_path
        self._log = open(log_path, "ab")  # noqa: SIM115 - closed in stop()
        command = procfile_command("worker")
        if queue:
            command += ["-n", f"{queue}@%h"]
        self.process = subprocess.Popen(  # noqa: S603 - the Procfile's command
            command,
            cwd=settings.BASE_DIR,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, to stop it whole
        )
        wait_for(
            lambda: "ready." in self.log() or self.process.poll() is not None, timeout=60, what="the worker"
        )
        if self.process.poll() is not None:
            self._log.close()
            raise RuntimeError(f"the worker did not start:\n{self.log()[-3000:]}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def events(self, event: str) -> list[dict]:
        """The JSON log lines with this `event` (sync, sync_retry, job, …)."""
        lines = []
        for raw in self.log().splitlines():
            if raw.startswith("{"):
                line = json.loads(raw)
                if line.get("event") == event:
                    lines.append(line)
        return lines

    def cpu_seconds(self) -> float | None:
        """CPU seconds the worker (all its processes) has used so far."""
        return process_tree_cpu_seconds(self.process.pid)

    def send(self, task, *args) -> None:
        """Enqueue `task` on this worker's queue through its broker."""
        with Connection(self.broker_url) as broker:
            task.apply_async(args, queue=self.queue, connection=broker)

    def kill(self) -> None:
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        _stop_group(self.process, timeout=30)
        self._log.close()


class SandboxControl:
    """The sandbox's /_sandbox/* controls (knobs, stats) at `self.url`."""

    url: str

    def call(self, method: str, name: str, body: dict | None = None) -> dict:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(  # noqa: S310 - our own sandbox on 127.0.0.1
            f"{self.url}/_sandbox/{name}",
            data=data,
            method=method,
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            return json.loads(response.read())

    def configure(self, **knobs) -> None:
        self.call("POST", "config", knobs)


class Sandbox(SandboxControl):
    """`manage.py ml_sandbox` in a process of its own (it needs a core of its own), memory only."""

    def __init__(self, *, env: dict, log_path: Path, notifications_url: str = ""):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._log = open(log_path, "ab")  # noqa: SIM115 - closed in stop()
        # No demo activity, and notifications only where asked: a developer's .env turns
        # both on for `make run`, and they would move the numbers a measurement reads.
        env = {**env, "ML_SANDBOX_ACTIVITY_SECONDS": "0", "ML_SANDBOX_NOTIFICATIONS_URL": notifications_url}
        self.process = subprocess.Popen(  # noqa: S603 - our own interpreter and manage.py
            [sys.executable, "manage.py", "ml_sandbox", "--port", str(self.port), "--state-file", ""],
            cwd=settings.BASE_DIR,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        wait_for(self._answers, timeout=30, what=f"the sandbox (log: {log_path})")
        if self.process.poll() is not None:
            raise RuntimeError(f"the sandbox did not start (log: {log_path})")

    def _answers(self) -> bool:
        try:
            self.call("GET", "config")
        except OSError:
            return self.process.poll() is not None
        return True

    def stats(self) -> dict:
        return self.call("GET", "stats")

    def stop(self) -> None:
        _stop_group(self.process, timeout=10)
        self._log.close()


class PrivateRedis:
    """A redis-server of our own, on its own port, that a test may stop and restart.

    With `persistent` it keeps its data across a restart (an append-only file), like
    compose's Redis: the unacknowledged messages a worker holds are still there after.
    """

    def __init__(self, tmp_path: Path, *, persistent: bool = False):
        self.port = free_port(6390)
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.tmp_path = tmp_path
        self.persistent = persistent
        self.process = None

    def start(self) -> None:
        command = ["redis-server", "--bind", "127.0.0.1", "--port", str(self.port), "--save", ""]
        if self.persistent:
            command += ["--appendonly", "yes", "--appendfsync", "always", "--dir", str(self.tmp_path)]
        else:
            command += ["--appendonly", "no"]
        self.process = subprocess.Popen(  # noqa: S603 - fixed arguments, no input
            command,
            cwd=self.tmp_path,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for(self._answers, timeout=10, what="redis-server")

    def _answers(self) -> bool:
        try:
            return redis.Redis.from_url(self.url, socket_timeout=0.5).ping()
        except redis.RedisError:
            return False

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)


def forget_queue(redis_url: str, queue: str) -> None:
    """Delete a queue's keys, and messages of a killed worker parked in `unacked`."""
    client = redis.Redis.from_url(redis_url)
    try:
        keys = list(client.scan_iter(f"*{queue}*"))  # the queue and its kombu bindings
        if keys:
            client.delete(*keys)
        for tag, payload in client.hgetall("unacked").items():
            if queue.encode() in payload:
                client.hdel("unacked", tag)
                client.zrem("unacked_index", tag)
    except redis.RedisError:
        pass  # a private Redis that is already gone


# --- the web process and beat (the bench's notification phases) ------------------------------------


def procfile_web_command(port: int, *, procfile: Path | None = None) -> list[str]:
    """The Procfile's web command (runserver) with this interpreter, on 127.0.0.1:`port`.

    The Procfile runs `.venv/bin/python manage.py runserver 127.0.0.1:8000 --noreload`: a
    script, not a module, so the `-m python` procfile_command would make is dropped, and
    the address is swapped for one that is free (a developer's `make run` may hold 8000).
    """
    command = procfile_command("web", procfile=procfile)
    if command[1:3] == ["-m", "python"]:
        command = [command[0], *command[3:]]
    at = command.index("runserver") + 1
    if at < len(command) and not command[at].startswith("-"):
        command[at] = f"127.0.0.1:{port}"
    else:
        command.insert(at, f"127.0.0.1:{port}")
    return command


class Service:
    """A long-running command as a subprocess (its own process group) logging to a file.

    `ready` is polled until it is true (or the process ends: a RuntimeError with the log's
    tail). Worker predates this class and keeps its own constructor.
    """

    def __init__(
        self, *, command: list[str], env: dict, log_path: Path, ready: Callable[[], bool], what: str
    ):
        self.command = command
        self.log_path = log_path
        self._log = open(log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(  # noqa: S603 - our own interpreter and fixed arguments
            command,
            cwd=settings.BASE_DIR,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        wait_for(lambda: self.process.poll() is not None or ready(), timeout=60, what=what)
        if self.process.poll() is not None:
            self._log.close()
            raise RuntimeError(f"{what} did not start:\n{self.log()[-3000:]}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def cpu_seconds(self) -> float | None:
        """CPU seconds the process (all its processes) has used so far."""
        return process_tree_cpu_seconds(self.process.pid)

    def stop(self) -> None:
        _stop_group(self.process, timeout=30)
        self._log.close()


class Web(Service):
    """The web process on a free port of 127.0.0.1, answering once GET /health/ does.

    `server="runserver"`: the Procfile's command (what `make run` starts);
    `server="gunicorn"`: `gunicorn --config gunicorn.conf.py` (the Dockerfile's CMD, the
    production server), bound through GUNICORN_BIND.
    """

    def __init__(self, *, env: dict, log_path: Path, server: str = "runserver"):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        if server == "gunicorn":
            command = [sys.executable, "-m", "gunicorn", "--config", "gunicorn.conf.py"]
            env = {**env, "GUNICORN_BIND": f"127.0.0.1:{self.port}"}
        elif server == "runserver":
            command = procfile_web_command(self.port)
        else:
            raise ValueError(f"unknown web server {server!r}")
        super().__init__(command=command, env=env, log_path=log_path, ready=self._answers, what=server)

    def _answers(self) -> bool:
        request = urllib.request.Request(  # noqa: S310 - our own server on 127.0.0.1
            f"{self.url}/health/", headers={"X-Forwarded-Proto": "https"}
        )
        try:
            with urllib.request.urlopen(request, timeout=5):  # noqa: S310
                return True
        except urllib.error.HTTPError:
            return True  # it answers (a 503 names a dependency that is down)
        except OSError:
            return False


class Beat(Service):
    """The Procfile's beat command (django-celery-beat's database scheduler)."""

    def __init__(self, *, env: dict, log_path: Path):
        super().__init__(
            command=procfile_command("beat"),
            env=env,
            log_path=log_path,
            ready=lambda: "beat: Starting" in self.log(),
            what="beat",
        )
