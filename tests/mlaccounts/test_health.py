from unittest import mock

import pytest
from django.conf import settings
from django.core.cache import cache
from django.db import DatabaseError
from django.utils import timezone

from sync import schedule

pytestmark = pytest.mark.django_db


def _redis() -> str:
    # "unused" without REDIS_URL (make run, the SQLite test run): nothing to be down.
    return "ok" if settings.REDIS_URL else "unused"


def test_anonymous_gets_ok_and_no_heartbeat_before_the_first_check(client):
    cache.delete(schedule.HEARTBEAT_CACHE_KEY)
    response = client.get("/health/")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok", "redis": _redis(), "lastHeartbeat": None}


def test_reports_the_last_heartbeat_and_nothing_about_accounts(client, user, ml_account):
    client.force_login(user)  # a signed-in user sees exactly the same
    at = timezone.now()
    schedule.heartbeat_write(at=at, status_counts={"active": 1})
    body = client.get("/health/").json()
    assert body == {"status": "ok", "database": "ok", "redis": _redis(), "lastHeartbeat": at.isoformat()}
    assert "status_counts" not in str(body)


def test_database_failure_answers_503(client):
    cache.delete(schedule.HEARTBEAT_CACHE_KEY)
    with mock.patch("mlaccounts.views.accounts.connection.cursor", side_effect=DatabaseError("down")):
        response = client.get("/health/")
    assert response.status_code == 503
    assert response.json() == {
        "status": "error",
        "database": "unavailable",
        "redis": _redis(),
        "lastHeartbeat": None,
    }


def test_only_get(client):
    assert client.post("/health/").status_code == 405
