"""The bench's notification phases: the capacity model and the other pure pieces (no timings)."""

import sys

import pytest

from accounts.mercadolivre.sandbox import SANDBOX_APP
from sync import harness, notifications
from sync.management.commands import _bench_load as bench_load

# The figures: one ML application at 5 requests a second, the app's 0.95 share.
BUDGET = {"requests_per_second": 5, "budget_share": 0.95, "calls_per_sync": 4}


def test_polling_every_five_minutes_keeps_what_the_dispatcher_serves():
    # 4.75 calls/s × 300 s ÷ 4 calls: 356.25 syncs per interval (the dispatcher: 71 a minute).
    assert bench_load.accounts_kept_fresh(**BUDGET, sync_interval_seconds=300) == 356


def test_notifications_with_hourly_reconciliation_keep_more_accounts_the_quieter_they_are():
    fed = [
        bench_load.accounts_kept_fresh(
            **BUDGET, sync_interval_seconds=3600, changes_per_hour=changes, calls_per_change=1.0
        )
        for changes in (2, 6, 20)
    ]

    # 17,100 calls an hour over 4 reconciliation calls plus one call per change.
    assert fed == [2850, 1710, 712]


def test_fixed_calls_come_off_the_budget_before_it_is_shared():
    fed = bench_load.accounts_kept_fresh(
        **BUDGET,
        sync_interval_seconds=3600,
        changes_per_hour=2,
        calls_per_change=1.0,
        fixed_calls_per_hour=16,
    )

    assert fed == 2847  # (17,100 − 16) ÷ 6


def test_merged_notifications_make_a_change_cheaper():
    one_call = bench_load.accounts_kept_fresh(
        **BUDGET, sync_interval_seconds=3600, changes_per_hour=6, calls_per_change=1.0
    )
    merged = bench_load.accounts_kept_fresh(
        **BUDGET, sync_interval_seconds=3600, changes_per_hour=6, calls_per_change=0.5
    )

    assert merged == 2442 > one_call  # 17,100 ÷ (4 + 3)


def test_no_budget_keeps_no_account():
    assert (
        bench_load.accounts_kept_fresh(**BUDGET, sync_interval_seconds=3600, fixed_calls_per_hour=10**6) == 0
    )


def test_an_account_that_costs_nothing_is_refused():
    with pytest.raises(ValueError):
        bench_load.accounts_kept_fresh(
            requests_per_second=5, budget_share=0.95, calls_per_sync=0, sync_interval_seconds=3600
        )


@pytest.mark.parametrize("accounts", [200, 711, 1000])
def test_changes_to_fill_is_the_models_inverse(accounts):
    model = {**BUDGET, "sync_interval_seconds": 3600, "calls_per_change": 1.0, "fixed_calls_per_hour": 16}

    changes = bench_load.changes_to_fill(accounts=accounts, **model)

    assert bench_load.accounts_kept_fresh(**model, changes_per_hour=changes) == accounts


def test_changes_to_fill_is_zero_when_the_syncs_alone_take_the_budget():
    assert (
        bench_load.changes_to_fill(accounts=10_000, **BUDGET, sync_interval_seconds=300, calls_per_change=1.0)
        == 0
    )


def test_recovery_reads_one_page_per_topic_and_site_every_quarter_hour():
    assert bench_load.recovery_calls_per_hour() == 16  # 4 queries × 4 runs
    assert bench_load.recovery_calls_per_hour(sites=2) == 20


def test_load_bodies_are_notifications_the_webhook_takes_in_both_of_mls_shapes():
    bodies = bench_load.notification_bodies([11, 22], 12, application_id=SANDBOX_APP.app_id)

    parsed = [notifications.parse(body) for body in bodies]
    assert len({incoming.ml_id for incoming in parsed}) == 12
    assert {incoming.topic for incoming in parsed} == set(bench_load.INGESTION_TOPICS)
    assert {incoming.ml_user_id for incoming in parsed} == {11, 22}
    assert {"_id", "id"} == {key for body in bodies for key in ("_id", "id") if key in body}
    assert {type(body["user_id"]) for body in bodies} == {int, str}
    assert all(incoming.application_id == SANDBOX_APP.app_id for incoming in parsed)


def test_webhook_times_are_read_from_gunicorns_access_log():
    at = "127.0.0.1 [06/Dec/2026:05:32:45 -0300]"
    log = (
        f'{at} "POST /webhooks/mercadolivre/s3cr3t/ HTTP/1.1" 200 20 46ms "-"\n'
        "[2026-12-06 05:32:47 -0300] [27898] [INFO] Booting worker with pid: 27900\n"
        f'{at} "GET /health/ HTTP/1.1" 200 80 2ms "-"\n'
        f'{at} "POST /webhooks/mercadolivre/s3cr3t/ HTTP/1.1" 200 20 3ms "-"\n'
    )

    assert bench_load.webhook_times_ms(log) == [46, 3]


def test_the_web_command_is_the_procfiles_runserver_on_the_port_asked(tmp_path):
    procfile = tmp_path / "Procfile"
    procfile.write_text(
        "web: .venv/bin/python manage.py runserver 127.0.0.1:8000 --noreload\n"
        "worker: .venv/bin/celery -A mlaccounts worker\n"
    )

    command = harness.procfile_web_command(8123, procfile=procfile)

    assert command == [sys.executable, "manage.py", "runserver", "127.0.0.1:8123", "--noreload"]
