"""The periodic jobs' definition and installation, the budget arithmetic, and the admin."""

import logging
import uuid
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone
from django_celery_beat.models import CrontabSchedule, IntervalSchedule, PeriodicTask

from accounts import selectors, services
from accounts.models import AuditEntry, MLAccount
from sync import schedule
from sync.logging import KeyValueFormatter
from tests.factories import MLAccountFactory, UserFactory

pytestmark = pytest.mark.django_db


# --- installing the jobs -------------------------------------------------------------------------


def test_setup_periodic_tasks_installs_the_nine_jobs(capsys):
    call_command("setup_periodic_tasks")

    jobs = {task.name: task for task in PeriodicTask.objects.all()}
    assert set(jobs) == {
        "dispatch due syncs",
        "refresh expiring tokens",
        "health check",
        "process notifications",
        "recover missed notifications",
        "snapshot counts",
        "cleanup events",
        "evaluate alerts",
        "send alert digests",
    }
    assert jobs["dispatch due syncs"].task == "sync.tasks.dispatch_due_syncs"
    assert (jobs["dispatch due syncs"].interval.every, jobs["dispatch due syncs"].interval.period) == (
        60,
        "seconds",
    )
    assert jobs["refresh expiring tokens"].interval.every == 30 * 60
    assert jobs["health check"].interval.every == 15 * 60
    assert jobs["process notifications"].task == "sync.tasks.process_notifications"
    assert jobs["process notifications"].interval.every == 60
    assert jobs["recover missed notifications"].task == "sync.tasks.recover_notifications"
    assert jobs["recover missed notifications"].interval.every == 15 * 60
    cron = jobs["cleanup events"].crontab
    assert (cron.minute, cron.hour, cron.day_of_week, jobs["cleanup events"].interval) == (
        "0",
        "3",
        "*",
        None,
    )
    assert str(cron.timezone) == "America/Sao_Paulo"
    hourly = jobs["snapshot counts"].crontab
    assert jobs["snapshot counts"].task == "sync.tasks.snapshot_counts"
    assert (hourly.minute, hourly.hour) == ("0", "*")
    assert jobs["evaluate alerts"].task == "sync.tasks.evaluate_alerts"
    assert jobs["evaluate alerts"].interval.every == 60
    digest = jobs["send alert digests"].crontab
    assert jobs["send alert digests"].task == "sync.tasks.send_alert_digests"
    assert (digest.minute, digest.hour, str(digest.timezone)) == ("0", "8", "America/Sao_Paulo")
    assert all(task.enabled and task.expire_seconds for task in jobs.values())
    assert "9 periodic jobs installed" in capsys.readouterr().out


def test_setup_periodic_tasks_is_idempotent():
    call_command("setup_periodic_tasks")
    before = list(PeriodicTask.objects.order_by("name").values())

    results = schedule.install()

    assert [action for _, action in results] == ["unchanged"] * 9
    assert list(PeriodicTask.objects.order_by("name").values()) == before
    assert IntervalSchedule.objects.count() == 3 and CrontabSchedule.objects.count() == 3


def test_setup_updates_jobs_by_name_and_keeps_an_admins_off_switch():
    call_command("setup_periodic_tasks")
    five_minutes = IntervalSchedule.objects.create(every=300, period=IntervalSchedule.SECONDS)
    PeriodicTask.objects.filter(name="dispatch due syncs").update(
        interval=five_minutes, task="sync.tasks.old_name", enabled=False
    )

    results = dict(schedule.install())

    task = PeriodicTask.objects.get(name="dispatch due syncs")
    assert (task.task, task.interval.every, task.enabled) == ("sync.tasks.dispatch_due_syncs", 60, False)
    assert results["dispatch due syncs"].startswith("updated: task, interval")
    assert PeriodicTask.objects.count() == 9

    schedule.install(reset=True)

    assert PeriodicTask.objects.get(name="dispatch due syncs").enabled


# --- the budget arithmetic ----------------------------------------------------------------------------


@pytest.mark.parametrize(("rate", "capacity"), [(5, 71), (1, 14), (0.1, 1), (0, None), (-1, None)])
def test_dispatch_capacity_is_what_the_budget_serves_in_a_minute(settings, rate, capacity):
    settings.ML_REQUESTS_PER_SECOND = rate
    settings.SYNC_BUDGET_SHARE = 0.95
    assert schedule.dispatch_capacity() == capacity


def test_dispatch_capacity_leaves_room_for_the_calls_notifications_make(settings):
    settings.ML_REQUESTS_PER_SECOND = 5
    settings.SYNC_BUDGET_SHARE = 0.95
    # 285 calls a minute: 71 syncs of 4 calls; notifications making 100 of them leave 46.
    assert schedule.dispatch_capacity(reserved_calls=100) == 46
    # Never below one sync a minute: reconciliation goes on however busy notifications are.
    assert schedule.dispatch_capacity(reserved_calls=10_000) == 1


def _fleet(owner, count, **fields):
    return MLAccountFactory.create_batch(count, owner=owner, **fields)


def test_budget_cycle_is_none_while_the_budget_keeps_up(user, settings):
    settings.ML_REQUESTS_PER_SECOND = 5  # 71 syncs a minute: 355 accounts every 5 minutes
    _fleet(user, 5)
    assert schedule.budget_cycle_seconds() is None
    settings.ML_REQUESTS_PER_SECOND = 0
    assert schedule.budget_cycle_seconds() is None


def test_budget_cycle_stretches_every_account_when_the_fleet_outgrows_the_budget(settings):
    settings.ML_REQUESTS_PER_SECOND = 5
    settings.SYNC_BUDGET_SHARE = 0.95
    per_second = 5 * 0.95 / 4
    # 1,000 accounts at 5 minutes need 3.3 syncs a second; the budget serves 1.19.
    groups = [{"status": "active", "sync_interval": 300, "error_count": 0, "n": 1000}]
    assert schedule.budget_cycle_seconds(groups) == pytest.approx(1000 / per_second, abs=1)
    # Accounts with a long interval of their own keep it and leave more for the others.
    groups.append({"status": "active", "sync_interval": 86400, "error_count": 0, "n": 500})
    cycle = schedule.budget_cycle_seconds(groups)
    assert 1000 / per_second < cycle < 1500 / per_second
    assert 1000 / cycle + 500 / 86400 == pytest.approx(per_second, rel=1e-3)


def test_budget_cycle_reads_the_fleet_from_the_database(user, settings):
    settings.ML_REQUESTS_PER_SECOND = 0.05  # 0.012 syncs a second: one every 84 s
    _fleet(user, 4)
    _fleet(user, 3, status="paused")
    assert schedule.budget_cycle_seconds() == pytest.approx(4 / (0.05 * 0.95 / 4), abs=1)


def test_schedule_groups_count_the_scheduled_fleet_by_interval_and_error_streak(user):
    _fleet(user, 3, sync_interval=300)
    _fleet(user, 2, sync_interval=600)
    _fleet(user, 2, sync_interval=300, status="error", error_count=6)
    _fleet(user, 1, sync_interval=300, status="error", error_count=9)
    _fleet(user, 1, status="paused")
    _fleet(user, 1, status="expired")
    _fleet(user, 1, sync_enabled=False)
    # Notifications arrive for two (one recently, one too long ago to count).
    _fleet(user, 1, sync_interval=300, last_notification_at=timezone.now() - timedelta(minutes=5))
    _fleet(user, 1, sync_interval=300, last_notification_at=timezone.now() - timedelta(days=1))

    groups = sorted(
        selectors.mlaccount_schedule_groups(),
        key=lambda g: (g["status"], g["sync_interval"], g["error_count"], g["fed"]),
    )

    assert groups == [
        {"status": "active", "sync_interval": 300, "error_count": 0, "fed": False, "n": 4},
        {"status": "active", "sync_interval": 300, "error_count": 0, "fed": True, "n": 1},
        {"status": "active", "sync_interval": 600, "error_count": 0, "fed": False, "n": 2},
        {"status": "error", "sync_interval": 300, "error_count": 6, "fed": False, "n": 2},
        {"status": "error", "sync_interval": 300, "error_count": 9, "fed": False, "n": 1},
    ]


def test_count_due_counts_what_the_scheduler_would_sync(user):
    now = timezone.now()
    _fleet(user, 2, next_sync=now - timedelta(seconds=1))
    _fleet(user, 1, next_sync=now - timedelta(seconds=1), status="error")
    _fleet(user, 1, next_sync=now + timedelta(minutes=2))
    _fleet(user, 1, next_sync=now - timedelta(seconds=1), status="paused")

    assert selectors.mlaccount_count_due(now=now) == 3


def test_effective_interval(user):
    active = MLAccountFactory(owner=user, sync_interval=300)
    failing = MLAccountFactory(owner=user, sync_interval=300, status="error", error_count=7)
    paused = MLAccountFactory(owner=user, status="paused", sync_enabled=False)

    assert schedule.effective_interval(active, budget_cycle=None) == 300
    assert schedule.effective_interval(active, budget_cycle=842) == 842
    assert schedule.effective_interval(active, budget_cycle=120) == 300
    backoff = services.error_backoff_seconds(sync_interval=300, error_count=7)
    assert backoff == 2400
    assert schedule.effective_interval(failing, budget_cycle=842) == backoff
    assert schedule.effective_interval(paused, budget_cycle=None) is None


# --- the admin ---------------------------------------------------------------------------------------------


@pytest.fixture
def admin_client(client, settings):
    client.force_login(UserFactory(email="root@example.com", is_staff=True, is_superuser=True))
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"  # the assertions read English
    return client


def test_admin_list_shows_each_accounts_effective_interval(admin_client, user, settings):
    settings.ML_REQUESTS_PER_SECOND = 0
    MLAccountFactory(owner=user, nickname="STEADY", sync_interval=600)
    MLAccountFactory(owner=user, nickname="FAILING", status="error", error_count=6)

    response = admin_client.get(reverse("admin:accounts_mlaccount_changelist"))

    html = response.content.decode()
    assert response.status_code == 200
    # A short header ("interval", so the list fits 1366 px), the effective interval below it.
    assert "column-interval_display" in html
    assert "10 min" in html
    assert "20 min (error back-off)" in html


def test_admin_shows_the_budget_limited_interval(admin_client, user, settings):
    settings.ML_REQUESTS_PER_SECOND = 0.05
    account = MLAccountFactory(owner=user)

    response = admin_client.get(reverse("admin:accounts_mlaccount_change", args=[account.pk]))

    assert response.status_code == 200
    assert "1 min 25 s" not in response.content.decode()  # one account: the budget keeps up
    assert "5 min" in response.content.decode()


def test_admin_sync_now_enqueues_after_commit_marks_them_queued_and_audits(
    admin_client, user, enqueued, django_capture_on_commit_callbacks
):
    accounts = MLAccountFactory.create_batch(2, owner=user)
    before = list(MLAccount.objects.order_by("pk").values())

    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(
            reverse("admin:accounts_mlaccount_changelist"),
            {"action": "sync_now", "_selected_action": [str(a.pk) for a in accounts]},
            follow=True,
        )

    assert response.status_code == 200
    assert "2 accounts queued for a sync." in response.content.decode()
    assert sorted(enqueued.args_of("sync.tasks.sync_account")) == sorted(str(a.pk) for a in accounts)
    # Like the dashboard's "sync now": the accounts show "queued" until the sync ends (the
    # only column written), and the audit log names the admin who asked.
    after = list(MLAccount.objects.order_by("pk").values())
    for old, new in zip(before, after, strict=True):
        assert new["sync_requested_at"] is not None
        assert {k: v for k, v in new.items() if k != "sync_requested_at"} == {
            k: v for k, v in old.items() if k != "sync_requested_at"
        }
    entries = AuditEntry.objects.filter(action="sync_now")
    assert sorted(str(e.account_id) for e in entries) == sorted(str(a.pk) for a in accounts)


def test_admin_refresh_tokens_enqueues_a_forced_refresh(
    admin_client, ml_account, enqueued, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(
            reverse("admin:accounts_mlaccount_changelist"),
            {"action": "refresh_tokens", "_selected_action": [str(ml_account.pk)]},
            follow=True,
        )

    assert response.status_code == 200
    assert "1 token queued for renewal." in response.content.decode()
    [(name, args, kwargs, _)] = enqueued.calls
    assert (name, args, kwargs) == (
        "sync.tasks.refresh_account_token",
        (str(ml_account.pk),),
        {"force": True},
    )


def test_admin_lists_the_periodic_jobs(admin_client):
    call_command("setup_periodic_tasks")

    response = admin_client.get(reverse("admin:django_celery_beat_periodictask_changelist"))

    assert response.status_code == 200
    for name in ("dispatch due syncs", "refresh expiring tokens", "health check", "cleanup events"):
        assert name in response.content.decode()


# --- logs a person can follow ------------------------------------------------------------------------------


def test_text_log_lines_carry_the_facts_as_key_values():
    record = logging.LogRecord("sync.engine", logging.INFO, "", 0, "sync %s", ("success",), None)
    record.__dict__.update(account_id="abc", outcome="success", duration_ms=212, ml_calls=4, error=None)

    line = KeyValueFormatter("%(levelname)s %(name)s %(message)s").format(record)

    assert line == "INFO sync.engine sync success account_id=abc outcome=success duration_ms=212 ml_calls=4"


def test_json_log_lines_carry_the_facts_as_fields_and_no_token(user, settings, enqueued, capsys):
    from pythonjsonlogger.json import JsonFormatter

    account = MLAccountFactory(owner=user, next_sync=timezone.now() - timedelta(seconds=1))
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    logger = logging.getLogger("sync.tasks")
    logger.addHandler(handler)
    try:
        from sync import tasks

        settings.ML_REQUESTS_PER_SECOND = 0
        tasks.dispatch_due_syncs()
    finally:
        logger.removeHandler(handler)

    import json

    [line] = [json.loads(raw) for raw in capsys.readouterr().err.splitlines() if '"job"' in raw]
    assert (line["job"], line["outcome"], line["enqueued"]) == ("dispatch_due_syncs", "ok", 1)
    assert isinstance(line["duration_ms"], int)
    assert account.access_token not in str(line) and account.refresh_token not in str(line)


# --- the queue's share of the budget ------------------------------------------------------------------


@pytest.mark.parametrize(("queued", "capacity"), [(0, 71), (30, 41), (71, 0), (200, 0), (-1, 71)])
def test_dispatch_capacity_leaves_out_what_already_waits_in_the_queue(settings, queued, capacity):
    settings.ML_REQUESTS_PER_SECOND = 5
    settings.SYNC_BUDGET_SHARE = 0.95
    assert schedule.dispatch_capacity(queued=queued) == capacity


def test_an_unlimited_budget_has_no_cap_whatever_waits(settings):
    settings.ML_REQUESTS_PER_SECOND = 0
    assert schedule.dispatch_capacity(queued=500) is None


def _simulate_a_manual_batch(*, count_the_queue: bool, minutes: int = 20) -> dict:
    """A FIFO queue served at the budget's full rate (75 syncs a minute at 5 requests a
    second), a 200-account "sync all" queued at minute 0, 50 scheduled syncs falling due
    every minute, and dispatch each minute sending the oldest due ones within
    dispatch_capacity. Returns the longest wait of a scheduled sync from due to served,
    the longest time a scheduled message sat in the queue, the longest queue, and the
    scheduled syncs each dispatch sent."""
    served_per_minute = 75
    queue = [("manual", 0, 0)] * 200
    due: list[int] = []  # the minute each waiting scheduled sync fell due, oldest first
    longest_wait, longest_queued, longest_queue, sent = 0, 0, len(queue), []
    for minute in range(minutes):
        due += [minute] * 50
        capacity = schedule.dispatch_capacity(queued=len(queue) if count_the_queue else 0)
        dispatched, due = due[:capacity], due[capacity:]
        sent.append(len(dispatched))
        queue += [("scheduled", at, minute) for at in dispatched]
        longest_queue = max(longest_queue, len(queue))
        served, queue = queue[:served_per_minute], queue[served_per_minute:]
        for kind, at, sent_at in served:
            if kind == "scheduled":
                longest_wait = max(longest_wait, (minute + 1 - at) * 60)
                longest_queued = max(longest_queued, (minute + 1 - sent_at) * 60)
    assert not due and not queue, "the simulation ends with everything served"
    return {
        "longest_wait": longest_wait,
        "longest_queued": longest_queued,
        "longest_queue": longest_queue,
        "sent": sent,
    }


def test_scheduled_syncs_resume_soon_after_a_large_manual_batch(settings):
    settings.ML_REQUESTS_PER_SECOND = 5  # dispatch plans 71 syncs a minute
    settings.SYNC_BUDGET_SHARE = 0.95

    counted = _simulate_a_manual_batch(count_the_queue=True)
    blind = _simulate_a_manual_batch(count_the_queue=False)

    # Dispatch holds back while the batch drains (200 at 75 a minute: under 3 minutes),
    # then sends again; no scheduled message sits in the queue past its lease, where it
    # would expire unserved, and no due account waits more than a few minutes.
    assert counted["sent"][:3] == [0, 0, 21] and all(n > 0 for n in counted["sent"][2:8])
    assert counted["longest_queued"] <= settings.SYNC_LEASE_SECONDS
    assert counted["longest_wait"] <= 5 * 60
    # The queue never holds more than the batch: the scheduled work waits in the
    # database, where dispatch orders it least recently synced first, not behind it.
    assert counted["longest_queue"] == 200
    assert blind["longest_queue"] >= 200 + 50


def test_queued_syncs_counts_the_messages_waiting_in_the_broker(settings):
    from celery import current_app

    from sync import tasks

    queue = f"test-queued-{uuid.uuid4().hex[:8]}"
    settings.CELERY_TASK_DEFAULT_QUEUE = queue
    assert schedule.queued_syncs() == 0  # no such queue yet
    try:
        for n in range(3):
            tasks.sync_account.apply_async((str(n),), queue=queue)
        assert schedule.queued_syncs() == 3
    finally:
        with current_app.connection_for_write() as connection:
            connection.default_channel.queue_delete(queue)
