"""pause, resume, token-info, refresh-token and sync of one account.

Mercado Livre is mocked at the HTTP boundary only (`responses`): the engine, the token
refresh, the HTTP client and its error mapping all run for real.
"""

from datetime import timedelta
from urllib.parse import parse_qs

import pytest
from django.utils import timezone

from accounts.models import AccountEvent, MLAccount
from tests.factories import MLAccountFactory
from tests.mlaccounts.api.conftest import (
    COUNT_URLS,
    TOKEN_URL,
    assert_error,
    assert_unauthorized,
    body,
    ml_counts,
    ml_counts_fail,
    ml_token_dead,
    token_answer,
)

pytestmark = pytest.mark.django_db

MALFORMED = "not-a-uuid"


def _url(account, suffix):
    return f"/api/ml-accounts/{getattr(account, 'pk', account)}/{suffix}"


# --- pause / resume -----------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["put", "post"])
def test_pause_stops_scheduled_syncs(alice, ml_account, method):
    response = getattr(alice, method)(_url(ml_account, "pause"))

    assert response.status_code == 200
    data = body(response)["data"]
    assert (data["status"], data["syncEnabled"], data["nextSync"]) == ("paused", False, None)
    ml_account.refresh_from_db()
    assert (ml_account.status, ml_account.sync_enabled, ml_account.next_sync) == ("paused", False, None)


@pytest.mark.parametrize("method", ["put", "post"])
@pytest.mark.parametrize("status", ["paused", "expired", "error"])
def test_resume_from_any_status_makes_the_next_sync_due_now(alice, user, method, status):
    account = MLAccountFactory(
        owner=user, status=status, sync_enabled=status != "paused", next_sync=None, error_count=7
    )
    before = timezone.now()

    response = getattr(alice, method)(_url(account, "resume/"))

    assert response.status_code == 200
    data = body(response)["data"]
    assert (data["status"], data["syncEnabled"], data["errorCount"]) == ("active", True, 0)
    account.refresh_from_db()
    assert account.status == "active"
    assert before <= account.next_sync <= timezone.now()


@pytest.mark.parametrize("action", ["pause", "resume"])
def test_pause_and_resume_of_another_users_account_are_not_found(charlie, ml_account, action):
    assert_error(charlie.put(_url(ml_account, action)), 404, "NOT_FOUND")
    assert_error(charlie.post(_url(ml_account, action)), 404, "NOT_FOUND")
    assert MLAccount.objects.get(pk=ml_account.pk).status == "active"


@pytest.mark.parametrize("action", ["pause", "resume"])
def test_pause_and_resume_of_a_malformed_id_are_not_found(alice, action):
    assert_error(alice.put(_url(MALFORMED, action)), 404, "NOT_FOUND")


@pytest.mark.parametrize("action", ["pause", "resume"])
def test_pause_and_resume_anonymous_are_unauthorized(api_client, ml_account, action):
    assert_unauthorized(api_client.put(_url(ml_account, action)))
    assert MLAccount.objects.get(pk=ml_account.pk).status == "active"


@pytest.mark.parametrize("action", ["pause", "resume", "refresh-token"])
def test_actions_refuse_other_methods(alice, ml_account, action):
    response = alice.get(_url(ml_account, action))

    assert_error(response, 405, "METHOD_NOT_ALLOWED")
    assert "PUT" in response["Allow"] and "POST" in response["Allow"]


# --- token-info ---------------------------------------------------------------------------------


def test_token_info_reports_the_token_health(alice, user):
    now = timezone.now()
    account = MLAccountFactory(
        owner=user,
        token_expires_at=now + timedelta(minutes=30),
        token_obtained_at=now - timedelta(hours=5, minutes=30),
    )

    response = alice.get(_url(account, "token-info"))

    assert response.status_code == 200
    data = body(response)["data"]
    assert data["accountId"] == str(account.pk)
    assert data["status"] == "active"
    info = data["tokenInfo"]
    assert set(info) == {
        "accountId",
        "mlUserId",
        "tokenExpiry",
        "timeToExpiry",
        "healthPercent",
        "isExpired",
        "needsRefresh",
        "lastTokenRefresh",
    }
    assert info["accountId"] == str(account.pk)
    assert info["mlUserId"] == str(account.ml_user_id)
    assert 1700 <= info["timeToExpiry"] <= 1800
    assert info["healthPercent"] == 8
    assert (info["isExpired"], info["needsRefresh"]) == (False, True)


def test_token_info_of_an_expired_token(alice, user):
    account = MLAccountFactory(owner=user, token_expires_at=timezone.now() - timedelta(minutes=1))

    info = body(alice.get(_url(account, "token-info")))["data"]["tokenInfo"]

    assert info["timeToExpiry"] < 0
    assert (info["healthPercent"], info["isExpired"]) == (0, True)


def test_token_info_of_another_users_account_is_not_found(charlie, ml_account):
    assert_error(charlie.get(_url(ml_account, "token-info")), 404, "NOT_FOUND")


def test_token_info_of_a_malformed_id_is_not_found(alice):
    assert_error(alice.get(_url(MALFORMED, "token-info")), 404, "NOT_FOUND")


def test_token_info_anonymous_is_unauthorized(api_client, ml_account):
    assert_unauthorized(api_client.get(_url(ml_account, "token-info")))


# --- refresh-token ------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["put", "post"])
def test_refresh_token_renews_the_pair(alice, ml_account, ml, method):
    old_refresh = ml_account.refresh_token
    ml.post(TOKEN_URL, json=token_answer(1))

    response = getattr(alice, method)(_url(ml_account, "refresh-token"))

    assert response.status_code == 200, response.content
    data = body(response)["data"]
    assert data["accountId"] == str(ml_account.pk)
    assert data["status"] == "active"
    assert data["tokenInfo"]["healthPercent"] == 100
    assert data["tokenInfo"]["lastTokenRefresh"] is not None
    assert data["tokenExpiresAt"] == data["tokenInfo"]["tokenExpiry"]
    account = MLAccount.objects.get(pk=ml_account.pk)
    assert account.access_token == "APP_USR-NEW-0001-secretaccess"
    assert account.refresh_token == "TG-NEW-0001-secretrefresh"
    # What went to ML: our refresh token, form-encoded, once.
    assert len(ml.calls) == 1
    sent = parse_qs(ml.calls[0].request.body)
    assert sent["grant_type"] == ["refresh_token"]
    assert sent["refresh_token"] == [old_refresh]


def test_refresh_token_refused_by_ml_is_token_refresh_failed_and_expires_the_account(alice, ml_account, ml):
    ml.post(
        TOKEN_URL, status=400, json={"error": "invalid_grant", "error_description": "expired", "status": 400}
    )

    response = alice.put(_url(ml_account, "refresh-token"))

    assert_error(response, 401, "TOKEN_REFRESH_FAILED")
    account = MLAccount.objects.get(pk=ml_account.pk)
    assert account.status == "expired"
    # Tokens are kept for diagnosis.
    assert account.refresh_token == ml_account.refresh_token
    assert AccountEvent.objects.filter(account=account, kind="auth").exists()


@pytest.mark.parametrize("status", [500, 503])
def test_refresh_token_with_ml_down_is_ml_unavailable_and_changes_nothing(alice, ml_account, ml, status):
    ml.post(TOKEN_URL, status=status, json={"message": "down", "error": "internal_error", "status": status})

    response = alice.put(_url(ml_account, "refresh-token"))

    assert_error(response, 502, "ML_UNAVAILABLE")
    account = MLAccount.objects.get(pk=ml_account.pk)
    assert account.status == "active"
    assert (account.access_token, account.refresh_token) == (
        ml_account.access_token,
        ml_account.refresh_token,
    )
    # A token POST is never replayed: the refresh token is single-use.
    assert len(ml.calls) == 1


def test_refresh_token_rate_limited_by_ml_answers_429_with_retry_after(alice, ml_account, ml):
    ml.post(TOKEN_URL, status=429, json={"error": "too_many_requests"}, headers={"Retry-After": "17"})

    response = alice.put(_url(ml_account, "refresh-token"))

    assert_error(response, 429, "ML_RATE_LIMITED")
    assert response["Retry-After"] == "17"
    assert MLAccount.objects.get(pk=ml_account.pk).status == "active"


def test_refresh_token_without_a_refresh_token_is_no_refresh_token(alice, user, ml):
    account = MLAccountFactory(owner=user, refresh_token=None)

    response = alice.post(_url(account, "refresh-token"))

    assert_error(response, 400, "NO_REFRESH_TOKEN")
    assert len(ml.calls) == 0


def test_refresh_token_of_another_users_account_is_not_found(charlie, ml_account, ml):
    assert_error(charlie.put(_url(ml_account, "refresh-token")), 404, "NOT_FOUND")
    assert len(ml.calls) == 0


def test_refresh_token_of_a_malformed_id_is_not_found(alice, ml):
    assert_error(alice.post(_url(MALFORMED, "refresh-token")), 404, "NOT_FOUND")


def test_refresh_token_anonymous_is_unauthorized(api_client, ml_account, ml):
    assert_unauthorized(api_client.put(_url(ml_account, "refresh-token")))
    assert len(ml.calls) == 0


# --- sync ---------------------------------------------------------------------------------------


def test_sync_fetches_and_stores_the_counts(alice, ml_account, ml):
    ml_counts(ml, products=12, orders=7, questions=3, claims=1)

    response = alice.post(_url(ml_account, "sync"))

    assert response.status_code == 200, response.content
    data = body(response)["data"]
    assert data["accountId"] == str(ml_account.pk)
    assert data["data"]["products"] == 12
    assert data["data"]["issues"] == 4
    assert data["data"]["lastUpdated"] == data["syncedAt"]
    account = MLAccount.objects.get(pk=ml_account.pk)
    assert (
        account.cached_products,
        account.cached_orders,
        account.cached_questions,
        account.cached_claims,
    ) == (
        12,
        7,
        3,
        1,
    )
    assert account.last_sync_status == "success"
    assert account.sync_started_at is None
    # The seller's token went to ML in the header, never in the URL.
    for call in ml.calls:
        assert call.request.headers["Authorization"] == f"Bearer {ml_account.access_token}"
        assert "secretaccess" not in call.request.url


def test_sync_with_a_dead_token_is_token_expired_and_expires_the_account(alice, ml_account, ml):
    ml_token_dead(ml)

    response = alice.post(_url(ml_account, "sync"))

    assert_error(response, 401, "TOKEN_EXPIRED")
    account = MLAccount.objects.get(pk=ml_account.pk)
    assert account.status == "expired"
    assert account.last_sync_status == "failed"
    assert sum(1 for call in ml.calls if call.request.url == TOKEN_URL) == 1


def test_sync_with_ml_down_is_ml_unavailable_and_does_not_expire(alice, ml_account, ml):
    ml_counts_fail(ml, 503)

    response = alice.post(_url(ml_account, "sync"))

    assert_error(response, 502, "ML_UNAVAILABLE")
    account = MLAccount.objects.get(pk=ml_account.pk)
    assert account.status == "active"
    assert (account.last_sync_status, account.error_count) == ("failed", 1)
    assert account.access_token == ml_account.access_token
    # Under the request's deadline a 5xx is not retried: a retry, its back-off and its fresh
    # timeout could run past the deadline (the worker's syncs still retry).
    assert len(ml.calls) == 1


def test_sync_with_a_bad_answer_from_ml_is_ml_unavailable(alice, ml_account, ml):
    ml.get(COUNT_URLS["products"], body="<html>gateway</html>", status=200)

    response = alice.post(_url(ml_account, "sync"))

    assert_error(response, 502, "ML_UNAVAILABLE")
    assert MLAccount.objects.get(pk=ml_account.pk).status == "active"


@pytest.mark.parametrize(("header", "expected"), [({"Retry-After": "30"}, "30"), ({}, "60")])
def test_sync_rate_limited_by_ml_answers_429_with_retry_after(alice, ml_account, ml, header, expected):
    ml_counts_fail(
        ml, 429, headers=header, payload={"error": "too_many_requests", "message": "Too Many Requests"}
    )

    response = alice.post(_url(ml_account, "sync"))

    assert_error(response, 429, "ML_RATE_LIMITED")
    assert response["Retry-After"] == expected
    assert MLAccount.objects.get(pk=ml_account.pk).status == "active"


def test_sync_of_an_account_another_sync_holds_is_sync_in_progress(alice, ml_account, ml):
    MLAccount.objects.filter(pk=ml_account.pk).update(
        sync_started_at=timezone.now(), last_sync_status="in_progress"
    )

    response = alice.post(_url(ml_account, "sync"))

    assert_error(response, 409, "SYNC_IN_PROGRESS")
    assert len(ml.calls) == 0


def test_sync_of_another_users_account_is_not_found(charlie, ml_account, ml):
    assert_error(charlie.post(_url(ml_account, "sync")), 404, "NOT_FOUND")
    assert len(ml.calls) == 0
    assert MLAccount.objects.get(pk=ml_account.pk).last_sync_status == ""


def test_sync_of_a_malformed_id_is_not_found(alice, ml):
    assert_error(alice.post(_url(MALFORMED, "sync")), 404, "NOT_FOUND")


def test_sync_anonymous_is_unauthorized(api_client, ml_account, ml):
    assert_unauthorized(api_client.post(_url(ml_account, "sync")))
    assert len(ml.calls) == 0


def test_ml_actions_are_throttled_per_user(alice, charlie, user, other_user, ml, settings):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], "ml_action": "2/min"},
    }
    ml_counts(ml)
    mine = MLAccountFactory(owner=user)
    theirs = MLAccountFactory(owner=other_user)
    for _ in range(2):
        assert alice.post(_url(mine, "sync")).status_code == 200

    response = alice.post(_url(mine, "sync"))

    assert_error(response, 429, "RATE_LIMITED")
    assert int(response["Retry-After"]) >= 1
    assert charlie.post(_url(theirs, "sync")).status_code == 200
    # Reads are not ML actions.
    assert alice.get(_url(mine, "token-info")).status_code == 200
