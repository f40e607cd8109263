"""`make bench` scrapes GET /metrics (sync/management/commands/_bench_metrics.py): the counters'
deltas must equal the bench's own counts, phase by phase.

The comparison's pieces here; then `manage.py bench` itself, run small with real processes (a
worker, gunicorn, runserver, beat, the sandbox) in multiprocess mode: every phase it runs must
print that /metrics matches, and the command must succeed. Counts are compared, never times.
"""

import io
import subprocess
import sys

import pytest
from django.conf import settings
from django.core.management.base import CommandError
from django.core.management.color import no_style

from accounts.mercadolivre.sandbox import state as sandbox_state
from accounts.mercadolivre.sandbox.notifications import _Outcome
from sync import harness
from sync.management.commands import _bench_metrics as bench_metrics

SYNCS = bench_metrics.SYNCS


def _scrape(**samples) -> bench_metrics.Scrape:
    """A Scrape of `mlaccounts_syncs_total` by outcome."""
    return bench_metrics.Scrape(
        {(SYNCS, (("outcome", outcome),)): value for outcome, value in samples.items()}
    )


class _Command:
    def __init__(self):
        self.stdout = io.StringIO()
        self.style = no_style()


def test_a_total_sums_the_samples_with_the_labels_asked_for():
    scrape = _scrape(success=5, failed=2, skipped=1)

    assert scrape.total(SYNCS) == 8
    assert scrape.total(SYNCS, outcome="failed") == 2
    assert scrape.total(SYNCS, outcome=("success", "skipped")) == 6
    assert scrape.total(SYNCS, outcome="timeout") == 0


def test_equal_counts_print_side_by_side():
    command = _Command()
    rows = bench_metrics.sync_rows([{"outcome": "success"}] * 3 + [{"outcome": "failed"}], retries=1)

    bench_metrics.report(
        command, "1. capacity", _scrape(success=2), rows, after=_scrape(success=5, failed=1, retry=1)
    )

    out = command.stdout.getvalue()
    assert "syncs success (worker log): /metrics 3, bench 3" in out
    assert "syncs failed (worker log): /metrics 1, bench 1" in out
    assert "sync retries (worker log): /metrics 1, bench 1" in out
    assert "/metrics matches the bench's 3 counts" in out


def test_a_difference_stops_the_bench_and_says_where():
    command = _Command()

    with pytest.raises(CommandError, match=r"2\. previous algorithm: .*syncs success .*/metrics 1 ≠ 2"):
        bench_metrics.report(
            command,
            "2. previous algorithm",
            _scrape(success=0),
            bench_metrics.sync_rows([{"outcome": "success"}] * 2),
            after=_scrape(success=1),
        )
    assert "MISMATCH" in command.stdout.getvalue()


def test_the_sandbox_counts_every_post_it_made_answered_or_not():
    state = sandbox_state.SandboxState()
    before = state.stats()["notifications_posted"]
    postman = state.notifications
    delivery = type("D", (), {"tries": 1, "http_code": None, "status": "pending"})()
    with postman._cond:  # as the postman thread holds it
        postman._settle(delivery, b"{}", _Outcome(200, 900, "", {}), 500)  # late: retried
        postman._settle(delivery, b"{}", _Outcome(0, 600, "", {}), 500)  # no answer at all
    assert state.stats()["notifications_posted"] == before + 2


@pytest.mark.worker
@pytest.mark.timeout(900)
def test_the_bench_run_small_finds_metrics_equal_to_its_own_counts():
    # The bench isolates itself (a database of its own, var/bench/, a queue and cache prefix
    # of its own on REDIS_URL's Redis, a fresh multiprocess directory and METRICS_TOKEN).
    command = [
        *[sys.executable, "manage.py", "bench"],
        *["--accounts", "4", "--legacy-sample", "3", "--budget-seconds", "4"],
        *["--ingestion-requests", "40", "--ingestion-clients", "2"],
        *["--latency-events", "4", "--capacity-seconds", "4", "--skip-sales"],
    ]
    completed = subprocess.run(
        command, cwd=settings.BASE_DIR, env=harness.environment(), capture_output=True, text=True, timeout=880
    )

    out = completed.stdout
    assert completed.returncode == 0, out[-4000:] + completed.stderr[-4000:]
    for phase in ("1. Capacity", "2. Previous algorithm", "3. Budget", "4. Notification ingestion"):
        assert phase in out
    assert "5. Event-to-count latency" in out and "validation, 4 s" in out
    # Phases 1 to 6 each compared /metrics with their own counts, and found them equal.
    assert out.count("/metrics matches the bench's") == 6, out[-4000:]
    assert "MISMATCH" not in out
    assert "syncs success (worker log): /metrics 4, bench 4" in out  # phase 1: every account once
