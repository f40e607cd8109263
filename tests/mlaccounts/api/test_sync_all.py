"""POST /api/ml-accounts/sync-all: every account of the user, concurrently, within a time limit.

The syncs run in worker threads with their own database connections, so these tests
commit their rows (transaction=True) for the workers to see them.
"""

import json
import re
import threading
import time

import pytest
import responses

from accounts.models import MLAccount
from sync import engine
from tests.factories import MLAccountFactory
from tests.mlaccounts.api.conftest import COUNT_URLS, assert_error, assert_unauthorized, body

pytestmark = pytest.mark.django_db(transaction=True)

TOTALS = {
    "products": ("paging", 5),
    "orders": ("paging", 4),
    "questions": ("top", 2),
    "claims": ("paging", 1),
}


def _answer(kind):
    where, total = TOTALS[kind]
    return {"total": total} if where == "top" else {"paging": {"total": total}}


def ml_by_seller(mock, *, failing=(), dead=(), delay=0.0):
    """ML answers the counts; sellers in `failing` get 503, those in `dead` a dead token."""

    def callback_for(kind):
        def callback(request):
            if delay:
                time.sleep(delay)
            seller = next(int(n) for n in re.findall(r"\d{6,}", request.url))
            if seller in failing:
                return 503, {}, '{"message": "down", "status": 503}'
            if seller in dead:
                return 401, {}, '{"message": "invalid_token", "error": "not_found", "status": 401}'
            return 200, {}, json.dumps(_answer(kind))

        return callback

    for kind, url in COUNT_URLS.items():
        mock.add_callback(responses.GET, url, callback=callback_for(kind))
    mock.post(
        "https://api.mercadolibre.com/oauth/token",
        status=400,
        json={"error": "invalid_grant", "error_description": "dead", "status": 400},
    )


def _join_sync_threads():
    # Syncs past the time limit keep running; let them finish before the database is flushed.
    for thread in threading.enumerate():
        if thread.name.startswith("sync-all"):
            thread.join(timeout=30)


@pytest.fixture
def ml_mock():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock
        # Inside the mock: a sync still running must not reach the real network.
        _join_sync_threads()


def test_sync_all_syncs_every_account_and_summarises(alice, user, ml_mock):
    ok = MLAccountFactory(owner=user, is_primary=True, ml_user_id=1_000_001)
    down = MLAccountFactory(owner=user, ml_user_id=1_000_002)
    paused = MLAccountFactory(owner=user, ml_user_id=1_000_003, status="paused", sync_enabled=False)
    expired = MLAccountFactory(owner=user, ml_user_id=1_000_004, status="expired")
    ml_by_seller(ml_mock, failing={1_000_002}, dead={1_000_004})

    response = alice.post("/api/ml-accounts/sync-all")

    assert response.status_code == 200, response.content
    data = body(response)["data"]
    results = data["results"]
    assert [r["accountId"] for r in results] == [str(a.pk) for a in (ok, down, paused, expired)]
    assert results[0] == {
        "accountId": str(ok.pk),
        "success": True,
        "data": {
            "products": 5,
            "orders": 4,
            "questions": 2,
            "claims": 1,
            "issues": 3,
            "lastUpdated": results[0]["data"]["lastUpdated"],
        },
    }
    assert (results[1]["success"], results[1]["code"]) == (False, "ML_UNAVAILABLE")
    assert (results[2]["success"], results[2]["code"], results[2]["error"]) == (
        False,
        "ACCOUNT_PAUSED",
        "Account is paused.",
    )
    assert (results[3]["success"], results[3]["code"]) == (False, "TOKEN_EXPIRED")
    assert data["summary"] == {"total": 4, "successful": 1, "failed": 3}

    states = {a.pk: a for a in MLAccount.objects.filter(owner=user)}
    assert states[ok.pk].cached_products == 5
    assert states[ok.pk].last_sync_status == "success"
    assert (states[down.pk].status, states[down.pk].last_sync_status) == ("active", "failed")
    assert (states[paused.pk].status, states[paused.pk].last_sync_status) == ("paused", "")
    assert states[expired.pk].status == "expired"
    # The paused account was never sent to ML.
    assert not any("1000003" in call.request.url for call in ml_mock.calls)


def test_sync_all_touches_only_the_users_accounts(alice, user, other_user, ml_mock):
    mine = MLAccountFactory(owner=user, is_primary=True, ml_user_id=2_000_001)
    theirs = MLAccountFactory(owner=other_user, ml_user_id=2_000_002)
    ml_by_seller(ml_mock)

    data = body(alice.post("/api/ml-accounts/sync-all/"))["data"]

    assert [r["accountId"] for r in data["results"]] == [str(mine.pk)]
    assert MLAccount.objects.get(pk=theirs.pk).last_sync_status == ""
    assert not any("2000002" in call.request.url for call in ml_mock.calls)


def test_sync_all_reports_accounts_not_done_in_time(alice, user, ml_mock, settings):
    settings.SYNC_ALL_TIMEOUT = 0.3
    account = MLAccountFactory(owner=user, is_primary=True, ml_user_id=3_000_001)
    ml_by_seller(ml_mock, delay=0.5)

    started = time.monotonic()
    response = alice.post("/api/ml-accounts/sync-all")

    assert time.monotonic() - started < 1.5
    data = body(response)["data"]
    assert data["results"] == [
        {"accountId": str(account.pk), "success": False, "code": "TIMEOUT", "error": "Timed out."}
    ]
    assert data["summary"] == {"total": 1, "successful": 0, "failed": 1}
    _join_sync_threads()
    # The sync itself finished in the background and recorded its outcome.
    assert MLAccount.objects.get(pk=account.pk).last_sync_status == "success"


def test_sync_all_without_accounts(alice, ml_mock):
    response = alice.post("/api/ml-accounts/sync-all")

    assert body(response) == {
        "success": True,
        "data": {"results": [], "summary": {"total": 0, "successful": 0, "failed": 0}},
    }


def test_sync_all_is_not_taken_for_an_account_id(alice, ml_mock):
    assert_error(alice.get("/api/ml-accounts/sync-all"), 405, "METHOD_NOT_ALLOWED")
    assert_error(alice.delete("/api/ml-accounts/sync-all"), 405, "METHOD_NOT_ALLOWED")


def test_sync_all_anonymous_is_unauthorized(api_client, ml_account, ml_mock):
    assert_unauthorized(api_client.post("/api/ml-accounts/sync-all"))
    assert len(ml_mock.calls) == 0


def test_sync_all_reports_an_unexpected_error_of_one_account_without_failing_the_rest(
    alice, user, ml_mock, monkeypatch, caplog
):
    good = MLAccountFactory(owner=user, is_primary=True, ml_user_id=4_000_001)
    broken = MLAccountFactory(owner=user, ml_user_id=4_000_002)
    ml_by_seller(ml_mock)
    real_sync = engine.sync_account

    def sync_account(account_id, **kwargs):
        if str(account_id) == str(broken.pk):
            raise RuntimeError("secret internals")
        return real_sync(account_id, **kwargs)

    monkeypatch.setattr(engine, "sync_account", sync_account)

    response = alice.post("/api/ml-accounts/sync-all")

    assert response.status_code == 200
    results = body(response)["data"]["results"]
    assert results[0]["accountId"] == str(good.pk) and results[0]["success"] is True
    assert (results[1]["success"], results[1]["code"]) == (False, "INTERNAL_ERROR")
    assert "secret" not in response.content.decode()
    assert any(record.exc_info and record.exc_info[0] is RuntimeError for record in caplog.records)
