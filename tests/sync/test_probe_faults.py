"""The fault probe's pure helpers and its refusal to run outside a production-like setup.

The probe itself (manage.py probe_faults) is a measuring command, not a test: it is not
run here.
"""

import json
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from sync import harness
from sync.management.commands import _probe as p
from sync.management.commands.probe_faults import Command


def hit(status, content_type="application/json", code="", seconds=0.1, retry_after=False):
    return p.Hit(0.0, "x", status, seconds, content_type=content_type, code=code, retry_after=retry_after)


def test_classify_tells_html_500s_from_enveloped_5xx_and_failed_connections():
    assert p.classify(hit(200)) == "ok"
    assert p.classify(hit(429, code="ML_RATE_LIMITED")) == "ok"
    assert p.classify(hit(500, "text/html; charset=utf-8")) == "html500"
    assert p.classify(hit(503, code="SERVICE_UNAVAILABLE")) == "envelope5xx"
    assert p.classify(hit(500, code="INTERNAL_ERROR")) == "envelope5xx"
    assert p.classify(hit(503)) == "other5xx"  # /health/'s own JSON is no envelope
    assert p.classify(hit(0, "")) == "noanswer"


def test_summarize_counts_statuses_kinds_codes_and_the_slowest_answer():
    summary = p.summarize(
        [
            hit(200, seconds=0.2),
            hit(500, "text/html", seconds=30.5),
            hit(503, code="SERVICE_UNAVAILABLE"),
            hit(503, code="SERVICE_UNAVAILABLE"),
            hit(429, code="ML_RATE_LIMITED", retry_after=True),
            hit(429, code="THROTTLED"),
        ]
    )

    assert summary.requests == 6
    assert summary.five_xx == 3
    assert summary.kinds["html500"] == 1
    assert summary.kinds["envelope5xx"] == 2
    assert summary.codes["SERVICE_UNAVAILABLE"] == 2
    assert summary.max_seconds == 30.5
    assert summary.retry_after_429 == 1
    assert summary.statuses_text() == "200×1 429×2 500×1 503×2"
    assert summary.errors_text() == "500 html ×1, 503 SERVICE_UNAVAILABLE ×2"


def test_count_worker_timeouts_reads_gunicorns_arbiter_lines():
    log = (
        "[2026-12-01 10:00:00 +0000] [10] [CRITICAL] WORKER TIMEOUT (pid:12)\n"
        "[2026-12-01 10:00:01 +0000] [12] [ERROR] Error handling request\n"
        "[2026-12-01 10:00:40 +0000] [10] [CRITICAL] WORKER TIMEOUT (pid:13)\n"
    )

    assert p.count_worker_timeouts(log) == 2
    assert p.count_worker_timeouts("") == 0


def _scenario(label, interactions, checks):
    return json.dumps(
        {"ScenarioFinished": {"recorder": {"label": label, "interactions": interactions, "checks": checks}}}
    )


def test_schemathesis_figures_count_requests_5xx_and_unique_failures_per_check_and_operation():
    rejected = {
        "name": "positive_data_acceptance",
        "status": "failure",
        "failure_info": {"failure": {"operation": "POST /api/ml-accounts", "code": "ST202"}},
    }
    lines = [
        json.dumps({"Initialize": {"seed": 1}}),
        _scenario(
            "POST /api/ml-accounts",
            {
                "a": {"response": {"status_code": 400}},
                "b": {"response": {"status_code": 500}},
                "c": {"response": None},
            },
            {"a": [{"name": "not_a_server_error", "status": "success"}, rejected], "b": [rejected]},
        ),
        "",
        _scenario("Stateful tests", {"d": {"response": {"status_code": 201}}}, {"d": [rejected]}),
        _scenario("GET /api/auth/me", {}, None),
    ]

    figures = p.schemathesis_figures(lines)

    assert figures == {
        "requests": 4,
        "five_xx": 1,
        "no_answer": 1,
        "failing_cases": 3,
        "failures": {"positive_data_acceptance": 1},
    }


def test_table_pads_columns_and_keys_are_long_random_and_comma_free():
    assert p.table(["a", "bb"], [["xyz", "1"]]) == "a    bb\n---  --\nxyz  1"
    keys = {harness.random_key() for _ in range(5)}
    assert len(keys) == 5
    for key in keys:
        assert len(key) == 50
        assert len(set(key)) >= 10
        assert "," not in key  # SECRET_KEY and SALT_KEY are comma lists
    assert p.seconds_text(12.34, 120) == "12.3 s"
    assert p.seconds_text(None, 120) == "> 120 s (not recovered)"


def test_procfile_command_runs_the_worker_with_this_interpreter(tmp_path: Path):
    procfile = tmp_path / "Procfile"
    procfile.write_text("web: x\nworker: .venv/bin/celery -A mlaccounts worker --loglevel INFO\n")

    command = p.procfile_command("worker", procfile)

    assert command[1:] == ["-m", "celery", "-A", "mlaccounts", "worker", "--loglevel", "INFO"]
    with pytest.raises(RuntimeError):
        p.procfile_command("beat", procfile)


def test_the_probe_database_sits_beside_the_configured_one():
    probe, admin, name = Command._database_urls("postgres://postgres@127.0.0.1:5432/mlaccounts_dev")

    assert name == "mlaccounts_dev_probe"
    assert probe == "postgres://postgres@127.0.0.1:5432/mlaccounts_dev_probe"
    assert admin == "postgres://postgres@127.0.0.1:5432/postgres"


@pytest.mark.parametrize(
    "env",
    [
        {"REDIS_URL": "redis://127.0.0.1:6379/0"},
        {"DATABASE_URL": "postgres://postgres@127.0.0.1:5432/x"},
        {"DATABASE_URL": "sqlite:///x.db", "REDIS_URL": "redis://127.0.0.1:6379/0"},
    ],
)
def test_the_probe_refuses_to_run_without_postgresql_and_redis(monkeypatch, env):
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.delenv("REDIS_URL", raising=False)
    monkeypatch.delenv("MLACCOUNTS_PROBE_INNER", raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)

    with pytest.raises(CommandError, match="production-like probe"):
        call_command("probe_faults")


def test_the_probe_rejects_an_unknown_scenario():
    with pytest.raises(CommandError, match="unknown scenarios: nope"):
        call_command("probe_faults", "--scenarios", "kill,nope")
