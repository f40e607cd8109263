"""`migrate` alone installs the periodic jobs, and never undoes an admin's change (issue 9, 5)."""

import pytest
from django.core.management import call_command
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from sync import schedule

pytestmark = pytest.mark.django_db

JOB_NAMES = {job.name for job in schedule.JOBS}


def test_the_test_database_migrate_installed_the_four_jobs():
    # Nothing but pytest-django's `migrate` ran on this database.
    jobs = {task.name: task for task in PeriodicTask.objects.all()}
    assert set(jobs) == JOB_NAMES
    assert all(task.enabled for task in jobs.values())
    assert jobs["dispatch due syncs"].interval.every == schedule.DISPATCH_PERIOD_SECONDS
    assert jobs["cleanup events"].crontab.hour == "3"


def test_another_migrate_keeps_an_admins_changes_and_restores_a_deleted_job():
    ten_minutes = IntervalSchedule.objects.create(every=600, period=IntervalSchedule.SECONDS)
    PeriodicTask.objects.filter(name="dispatch due syncs").update(interval=ten_minutes)
    PeriodicTask.objects.filter(name="health check").update(enabled=False)
    PeriodicTask.objects.filter(name="cleanup events").delete()
    before = {t["name"]: t for t in PeriodicTask.objects.values("name", "interval_id", "enabled", "task")}

    call_command("migrate", verbosity=0)

    after = {t["name"]: t for t in PeriodicTask.objects.values("name", "interval_id", "enabled", "task")}
    assert set(after) == JOB_NAMES
    assert after["dispatch due syncs"] == before["dispatch due syncs"]
    assert after["dispatch due syncs"]["interval_id"] == ten_minutes.pk
    assert after["health check"]["enabled"] is False
    assert after["cleanup events"]["task"] == "sync.tasks.cleanup_events"


def test_installing_missing_jobs_only_reports_kept_rows():
    PeriodicTask.objects.filter(name="health check").delete()
    results = dict(schedule.install(only_missing=True))
    assert results == {
        "dispatch due syncs": "kept",
        "refresh expiring tokens": "kept",
        "snapshot counts": "kept",
        "health check": "created",
        "process notifications": "kept",
        "recover missed notifications": "kept",
        "cleanup events": "kept",
        "evaluate alerts": "kept",
        "send alert digests": "kept",
    }
