"""prometheus-client's mode for this process: one process, or many sharing a directory.

The counters live where things are counted (the ML client, the budget, the token refresh,
the sync engine, the notifications); `GET /metrics` (mlaccounts/metrics.py) shows them. A
web server with several workers, a Celery worker and beat are separate processes, so with
PROMETHEUS_MULTIPROC_DIR set every process writes its counters to files in that directory
and the web process sums them at each scrape (prometheus-client's multiprocess mode).

The mode must be chosen before the first metric exists: settings.py calls `configure`, and
every metric is made by an app module imported after the settings. No Django import here:
gunicorn.conf.py uses `mark_process_dead` in the master.

Files are named after a process identifier, `<host>-<pid>`: compose runs web, worker and
beat in containers of their own that share the directory, and each container numbers its
processes from 1, so a pid alone would make two live processes write one file.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
from pathlib import Path

from prometheus_client import disable_created_metrics, multiprocess, values

VARIABLE = "PROMETHEUS_MULTIPROC_DIR"


def _host() -> str:
    # File names are split on "_" by the collector: keep the host to letters, digits, "." and "-".
    return re.sub(r"[^A-Za-z0-9.-]", "-", socket.gethostname())[:64] or "host"


def process_identifier(pid: int | None = None) -> str:
    """The name this process's (or `pid`'s, on this host) metric files carry."""
    return f"{_host()}-{pid if pid is not None else os.getpid()}"


def configure(path: str) -> str:
    """Choose the mode: multiprocess in `path` (created if missing), or one process when empty.

    Returns the directory ("" for one process). An empty variable is removed from the
    environment, as prometheus-client would otherwise take it for a directory ("": the
    current one), and so that the processes this one starts do not inherit it.
    """
    # The `_created` series double the output and nothing here reads them.
    disable_created_metrics()
    path = path.strip()
    if not path:
        os.environ.pop(VARIABLE, None)
        values.ValueClass = values.MutexValue
        return ""
    path = str(Path(path).resolve())
    Path(path).mkdir(parents=True, exist_ok=True)
    # prometheus-client reads the directory from the environment when it opens a file, and
    # a Celery prefork child or a subprocess must inherit it.
    os.environ[VARIABLE] = path
    host = _host()
    values.ValueClass = values.MultiProcessValue(process_identifier=lambda: f"{host}-{os.getpid()}")
    return path


def multiproc_dir() -> str:
    """The directory of multiprocess mode, or "" in one process."""
    return os.environ.get(VARIABLE, "")


def mark_process_dead(pid: int) -> None:
    """A process of this host exited (gunicorn's child_exit): drop its live gauges' files.

    Its counters stay: a counter's total must not drop when a worker is replaced.
    """
    path = multiproc_dir()
    if path:
        multiprocess.mark_process_dead(process_identifier(pid), path)


def wipe(path: str | Path) -> None:
    """Empty `path` (creating it): only when no process that writes there is running.

    Counters of processes that are still running would be lost (their files unlinked
    under them). `make run` and the bench do it before they start their processes.
    """
    path = Path(path)
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True, exist_ok=True)
