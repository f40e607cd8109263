"""`make bench` scrapes GET /metrics (issue 16): each phase's counters beside its own counts.

The bench reads /metrics through the real view (Django's test client in the bench process,
with METRICS_TOKEN as a scraper sends it) before and after each phase that syncs or takes
notifications in, and prints, for what the phase counts itself (the syncs its worker logged
by outcome, the ML requests the sandbox answered, the notifications stored, answered and
processed), the counters' deltas beside it. They must be equal: a difference stops the
bench (CommandError). The syncs run in a worker process, the notifications in gunicorn's
workers or runserver, so the bench runs in Prometheus's multiprocess mode: `manage.py
bench` gives its run a fresh PROMETHEUS_MULTIPROC_DIR (bench.py).

The leading underscore keeps Django from taking this module for a command.
"""

from __future__ import annotations

import warnings
from collections import Counter as Tally
from dataclasses import dataclass

from django.conf import settings
from django.core.management.base import CommandError
from django.test import Client
from prometheus_client.parser import text_string_to_metric_families

SYNCS = "mlaccounts_syncs_total"
ML_REQUESTS = "mlaccounts_ml_requests_total"
RECEIVED = "mlaccounts_notifications_received_total"
PROCESSED = "mlaccounts_notifications_processed_total"
BUDGET_TOKENS = "mlaccounts_ml_budget_tokens_total"
# The outcomes of sync.engine.SYNCS, as the worker logs them: `event=sync` lines carry the
# engine's four and the task's `timeout`; retries are `event=sync_retry` lines.
SYNC_OUTCOMES = ("success", "failed", "skipped", "missing", "timeout")
# runserver's request lines (django.server) for the webhook, as the latency phase's web logs them.


@dataclass(frozen=True)
class Scrape:
    """One answer of GET /metrics: every sample by (name, sorted labels)."""

    samples: dict[tuple[str, tuple[tuple[str, str], ...]], float]

    def total(self, name: str, **labels: str | tuple[str, ...]) -> float:
        """The sum of `name`'s samples whose labels have the values given (one, or any of a tuple)."""
        wanted = {key: (value,) if isinstance(value, str) else value for key, value in labels.items()}
        return sum(
            value
            for (sample, keys), value in self.samples.items()
            if sample == name and all(dict(keys).get(key) in values for key, values in wanted.items())
        )


def scrape() -> Scrape:
    """GET /metrics as Prometheus would: the real view, every middleware, the bearer token."""
    host = next((h.lstrip(".") for h in settings.ALLOWED_HOSTS if h != "*"), "localhost")
    with warnings.catch_warnings():
        # WhiteNoise's "No directory at: …/staticfiles/" (collectstatic not run): not ours to say.
        warnings.filterwarnings("ignore", message="No directory at", category=UserWarning)
        response = Client(HTTP_HOST=host).get(
            "/metrics", HTTP_AUTHORIZATION=f"Bearer {settings.METRICS_TOKEN}"
        )
    if response.status_code != 200:
        raise CommandError(f"GET /metrics answered {response.status_code} (is METRICS_TOKEN set?)")
    samples = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.content.decode())
        for sample in family.samples
    }
    return Scrape(samples)


# A row: what is compared, the counter (name and labels) and the bench's own count.
Row = tuple[str, str, dict[str, str | tuple[str, ...]], float]
# Notifications the intake kept (to process, or with nothing to do), not dropped or refused.
KEPT = ("stored", "ignored")


def sync_rows(events: list[dict], *, retries: int | None = None) -> list[Row]:
    """The syncs a worker logged (its `event=sync` lines), by outcome, and its retries."""
    by_outcome = Tally(event.get("outcome") for event in events)
    rows: list[Row] = [
        (f"syncs {outcome} (worker log)", SYNCS, {"outcome": outcome}, by_outcome.get(outcome, 0))
        for outcome in SYNC_OUTCOMES
        if outcome == "success" or by_outcome.get(outcome)
    ]
    if retries is not None:
        rows.append(("sync retries (worker log)", SYNCS, {"outcome": "retry"}, retries))
    return rows


def ml_rows(stats: dict) -> list[Row]:
    """The ML requests the sandbox received (its stats since its last reset), and its 429s."""
    return [
        ("ML requests (the sandbox's count)", ML_REQUESTS, {}, stats["total_requests"]),
        ("ML requests answered 429 (the sandbox's)", ML_REQUESTS, {"status": "429"}, stats["answered_429"]),
    ]


def processed_rows(by_status: dict[str, int]) -> list[Row]:
    """What processing made of the phase's notifications, by the status the rows ended in."""
    return [
        ("notifications done (rows)", PROCESSED, {"outcome": "done"}, by_status.get("done", 0)),
        ("notifications failed (rows)", PROCESSED, {"outcome": "failed"}, by_status.get("failed", 0)),
    ]


def stored_row(kept: int) -> Row:
    """The notifications the phase's webhook stored (its rows)."""
    return ("notifications stored (rows)", RECEIVED, {"source": "webhook", "outcome": KEPT}, kept)


def answered_row(answered: int, *, by: str) -> Row:
    """The POSTs the phase's webhook answered, as `by` counted them."""
    return (f"webhook POSTs answered ({by})", RECEIVED, {"source": "webhook"}, answered)


def report(command, phase: str, before: Scrape, rows: list[Row], *, after: Scrape | None = None) -> Scrape:
    """Print the counters' deltas beside the bench's counts; CommandError if any differs.

    `command` prints (its stdout and style). Returns the scrape taken after the phase.
    """
    after = after or scrape()
    command.stdout.write("   /metrics before and after (counters' deltas; the bench's own counts):")
    wrong = []
    for what, name, labels, own in rows:
        counted = after.total(name, **labels) - before.total(name, **labels)
        same = round(counted, 6) == round(float(own), 6)
        command.stdout.write(
            f"     {what}: /metrics {counted:g}, bench {float(own):g}" + ("" if same else "  MISMATCH")
        )
        if not same:
            wrong.append(f"{what}: /metrics {counted:g} ≠ {float(own):g}")
    if wrong:
        raise CommandError(f"{phase}: GET /metrics does not match the bench's counts: " + "; ".join(wrong))
    command.stdout.write(command.style.SUCCESS(f"   /metrics matches the bench's {len(rows)} counts"))
    return after


def budget_line(before: Scrape, after: Scrape, *, seconds: float, allowed: float) -> str:
    """The budget as used (tokens taken over the phase) beside what it allows."""
    taken = after.total(BUDGET_TOKENS) - before.total(BUDGET_TOKENS)
    rate = taken / max(seconds, 1e-9)
    return (
        f"   /metrics: the budget let {taken:g} requests through in {seconds:.0f} s "
        f"({rate:.2f}/s; allowed {allowed:g}/s)"
    )


def latency_rows(rows, worker, logged: dict, sandbox_stats: dict) -> list:
    """The latency phase's counts: webhook POSTs, notifications processed, syncs, ML calls.

    The sandbox delivers again what was answered late (as ML does): the same notification
    stored once, received twice. So what is received is held against every POST the sandbox
    made, retries included: runserver's request lines miss a POST whose client left before
    the answer was written, and the sandbox's answered count misses one it gave up waiting
    for (both seen in full runs: 80 received, 79 counted).
    """
    return [
        answered_row(sandbox_stats["notifications_posted"], by="the sandbox's POSTs"),
        *processed_rows(Tally(rows.values_list("status", flat=True))),
        *sync_rows(
            worker.events("sync")[logged["sync"] :],
            retries=len(worker.events("sync_retry")[logged["sync_retry"] :]),
        ),
        *ml_rows(sandbox_stats),
    ]
