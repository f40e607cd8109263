"""Redis down (issue 10.3): logins and the API keep working with the rate limits lifted,
/health/ answers 503 naming Redis, and what truly needs Redis answers 503, never a 500.

"Down" is the cache and REDIS_URL pointed at a port nobody listens on: every call is
refused at once, as when Redis is stopped.
"""

import logging
import socket
from unittest import mock

import pytest
import redis
from django.core.cache import cache
from django.core.cache.backends.redis import RedisCacheClient
from django.urls import reverse
from kombu.exceptions import OperationalError
from rest_framework.test import APIClient

from accounts.models import MLAccount
from mlaccounts import outages
from mlaccounts.settings import redis_cache
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db

LOGIN = reverse("account_login")


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def redis_down(settings, monkeypatch):
    url = f"redis://127.0.0.1:{_closed_port()}/0"
    settings.REDIS_URL = url
    settings.CACHES = {"default": redis_cache(url)}
    # A fresh warning budget and pause, so that this test sees its own, and no other
    # test inherits a paused cache.
    monkeypatch.setattr(outages, "_cache_warning", outages._Throttled(outages.WARNING_INTERVAL))
    monkeypatch.setattr(outages, "_cache_pause", outages._Pause(outages.RETRY_INTERVAL))
    return url


def _cache_warnings(caplog) -> list[logging.LogRecord]:
    return [r for r in caplog.records if getattr(r, "event", None) == "cache_unavailable"]


def test_the_cache_fails_open_and_warns_once_a_minute(redis_down, caplog):
    caplog.set_level(logging.WARNING, logger="mlaccounts.outages")
    assert cache.get("key", "default") == "default"
    assert cache.add("lock", True) is True  # allauth's lock: taken, not refused forever
    cache.set("key", "value")
    assert cache.get_many(["a", "b"]) == {}
    assert cache.delete("key") is False

    assert len(_cache_warnings(caplog)) == 1


def test_after_a_failure_the_cache_does_not_ask_redis_for_a_few_seconds(redis_down):
    with mock.patch.object(RedisCacheClient, "get", side_effect=redis.ConnectionError("down")) as get:
        assert cache.get("a") is None
        assert cache.get("b", 7) == 7
    assert get.call_count == 1  # a hung Redis costs one timeout, not one per call


def test_api_login_and_list_work_while_redis_is_down(redis_down, user, ml_account, caplog):
    caplog.set_level(logging.WARNING, logger="mlaccounts.outages")
    client = APIClient()

    login = client.post("/api/auth/login", {"email": user.email, "password": PASSWORD}, format="json")
    assert login.status_code == 200, login.content
    token = login.json()["data"]["token"]
    listing = client.get("/api/ml-accounts", headers={"Authorization": f"Bearer {token}"})

    assert listing.status_code == 200, listing.content
    assert [item["id"] for item in listing.json()["data"]["accounts"]] == [str(ml_account.pk)]
    assert _cache_warnings(caplog)  # the lifted limits are logged


def test_api_wrong_password_is_still_an_invalid_credentials_answer(redis_down, user):
    response = APIClient().post("/api/auth/login", {"email": user.email, "password": "wrong"}, format="json")
    assert response.status_code == 401
    assert response.json()["code"] == "INVALID_CREDENTIALS"


def test_dashboard_login_page_and_sign_in_work_while_redis_is_down(redis_down, client, user):
    assert client.get(LOGIN).status_code == 200

    wrong = client.post(LOGIN, {"login": user.email, "password": "wrong"})
    assert wrong.status_code == 200  # the form again, with its error
    right = client.post(LOGIN, {"login": user.email, "password": PASSWORD})
    assert (right.status_code, right["Location"]) == (302, reverse("dashboard:overview"))
    assert client.get(reverse("dashboard:overview")).status_code == 200


def test_health_answers_503_naming_redis(redis_down, client):
    response = client.get("/health/")
    assert response.status_code == 503
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert body == {"status": "error", "database": "ok", "redis": "unavailable", "lastHeartbeat": None}


@pytest.mark.parametrize("error", [OperationalError("broker down"), redis.ConnectionError("down")])
def test_api_answers_503_in_its_envelope_when_redis_is_needed_and_down(user, ml_account, error):
    client = APIClient()
    client.force_authenticate(user)
    with mock.patch("accounts.services.mlaccount_pause", side_effect=error):
        response = client.post(f"/api/ml-accounts/{ml_account.pk}/pause")
    assert response.status_code == 503
    assert response["Retry-After"] == "30"
    body = response.json()
    assert (body["success"], body["code"]) == (False, "SERVICE_UNAVAILABLE")
    assert MLAccount.objects.get(pk=ml_account.pk).status == "active"


def test_dashboard_answers_a_plain_503_page_when_redis_is_needed_and_down(client_user, ml_account):
    with mock.patch("accounts.services.mlaccount_pause", side_effect=OperationalError("broker down")):
        response = client_user.post(reverse("dashboard:account_pause", args=[ml_account.pk]))
    assert response.status_code == 503
    assert response["Content-Type"].startswith("text/html")
    assert "ML Accounts" in response.content.decode()
    assert response["Retry-After"] == "30"


@pytest.mark.parametrize(
    ("template", "heading"),
    [("500.html", "Something went wrong on our side"), ("503.html", "ML Accounts is briefly unavailable")],
)
def test_the_error_pages_render_without_a_request_or_a_database(template, heading):
    from django.template.loader import render_to_string
    from django.utils import translation

    with translation.override("en"):
        html = render_to_string(template)
    assert f"<h1>{heading}</h1>" in html
    assert 'href="/"' in html
