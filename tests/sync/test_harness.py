"""sync/harness.py (the bench's and the worker tests' processes) and the bench's isolation."""

import os
import subprocess
import sys

import pytest
from django.core.management import call_command

from sync import harness
from sync.management.commands import bench


def test_procfile_command_runs_the_procfiles_worker_with_this_interpreter():
    command = harness.procfile_command("worker")

    assert command[:5] == [sys.executable, "-m", "celery", "-A", "mlaccounts"]
    assert "worker" in command


def test_procfile_command_refuses_an_unknown_process():
    with pytest.raises(LookupError):
        harness.procfile_command("nosuchprocess")


def test_environment_drops_the_real_ml_variables(monkeypatch):
    monkeypatch.setenv("ML_CLIENT_ID", "123")
    monkeypatch.setenv("ML_API_URL", "https://api.mercadolibre.com")

    env = harness.environment(CELERY_WORKER_CONCURRENCY=4)

    assert "ML_CLIENT_ID" not in env and "ML_API_URL" not in env
    assert env["CELERY_WORKER_CONCURRENCY"] == "4"


def test_process_tree_cpu_counts_children_that_exited():
    """A child's CPU is counted once its parent reaped it (as the postmaster reaps backends)."""
    parent = subprocess.Popen(  # a shell that runs a busy child to its end, then waits
        ["/bin/sh", "-c", f'{sys.executable} -c "sum(range(30_000_000))"; read line'],
        stdin=subprocess.PIPE,
    )
    try:
        harness.wait_for(
            lambda: (harness.process_tree_cpu_seconds(parent.pid) or 0) > 0.2,
            timeout=60,
            what="the child's CPU to be counted",
        )
    finally:
        parent.communicate(b"\n", timeout=10)
    assert harness.process_tree_cpu_seconds(parent.pid) is None  # gone


def test_process_tree_cpu_is_none_for_no_such_process():
    assert harness.process_tree_cpu_seconds(2**22 + 12345) is None


def test_wait_for_times_out_with_what_it_waited_for():
    with pytest.raises(TimeoutError, match="the impossible"):
        harness.wait_for(lambda: False, timeout=0.05, interval=0.01, what="the impossible")


def test_bench_uses_the_redis_database_of_redis_url_with_a_queue_of_its_own(settings, monkeypatch, tmp_path):
    """It used to switch to database 15, which may be anyone's."""
    url = "redis://127.0.0.1:6379/7"
    monkeypatch.setenv("REDIS_URL", url)
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.delenv(bench.INNER_FLAG, raising=False)
    settings.BASE_DIR = tmp_path  # var/bench/ under it
    runs = []
    monkeypatch.setattr(
        bench.subprocess,
        "run",
        lambda argv, **kwargs: runs.append(kwargs["env"]) or subprocess.CompletedProcess(argv, 0),
    )

    call_command("bench", "--skip-legacy", "--skip-budget")

    [env] = runs
    assert env["REDIS_URL"] == url
    assert env["CELERY_QUEUE"] == f"bench-{os.getpid()}"
    assert env["CACHE_KEY_PREFIX"] == "mlaccounts-bench"


def test_random_keys_pass_the_production_key_check():
    # The bench and the probe run their processes with DEBUG off, where settings refuse
    # short, repetitive or published keys (a fixed "bench-salt" stopped the bench).
    from mlaccounts.env import check_key_strength

    keys = [harness.random_key() for _ in range(5)]
    check_key_strength("SECRET_KEY", keys)
    check_key_strength("SALT_KEY", keys)
    assert len(set(keys)) == 5 and not any("," in key for key in keys)
