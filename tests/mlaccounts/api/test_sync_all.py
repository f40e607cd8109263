"""POST /api/ml-accounts/sync-all and GET /api/sync-jobs/:id.

Sync-all queues one task per account (sync.ondemand.sync_all, the dashboard's rules) and
waits for them up to SYNC_ALL_TIMEOUT, or answers 202 with a job at once. Here the tasks
either run eagerly as they are queued (the answer is then complete) or are captured and
run later, or never (the deadline path). Tasks are queued on commit, so these tests
commit their rows (transaction=True).
"""

import json
import re
from datetime import timedelta

import pytest
import responses
from django.utils import timezone

from accounts.models import MLAccount, SyncJob, SyncJobItem
from mlaccounts.celery import app as celery_app
from sync import engine, ondemand, tasks
from tests.factories import MLAccountFactory
from tests.mlaccounts.api.conftest import COUNT_URLS, assert_error, assert_unauthorized, body
from tests.mlmock import orders_search

pytestmark = pytest.mark.django_db(transaction=True)

TOTALS = {
    "products": ("paging", 5),
    "orders": ("paging", 4),
    "questions": ("top", 2),
    "claims": ("paging", 1),
}
STILL_RUNNING = "Still running; the sync finishes in the background."


def _answer(kind):
    where, total = TOTALS[kind]
    if where == "top":
        return {"total": total, "questions": []}
    # ML's lists: `results` (listings, orders), `data` (claims).
    return {"paging": {"total": total}, "results": [], "data": []}


def ml_by_seller(mock, *, garbled=()):
    """ML answers the counts; sellers in `garbled` get a body that is not JSON (no retry)."""

    def callback_for(kind):
        def callback(request):
            seller = next(int(n) for n in re.findall(r"\d{6,}", request.url))
            if seller in garbled:
                return 200, {}, "<html>oops</html>"
            if kind == "orders":  # order objects, which the orders mirror counts
                return orders_search(TOTALS["orders"][1])(request)
            return 200, {}, json.dumps(_answer(kind))

        return callback

    for kind, url in COUNT_URLS.items():
        mock.add_callback(responses.GET, url, callback=callback_for(kind))


@pytest.fixture
def ml_mock():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


@pytest.fixture
def eager():
    """Tasks run in this process as they are queued (when the request's writes commit)."""
    previous = celery_app.conf.task_always_eager, celery_app.conf.task_eager_propagates
    celery_app.conf.task_always_eager = True
    celery_app.conf.task_eager_propagates = True
    yield celery_app
    celery_app.conf.task_always_eager, celery_app.conf.task_eager_propagates = previous


@pytest.fixture
def captured(monkeypatch):
    """Queued sync tasks are kept here instead of reaching a broker: (args, kwargs) each."""
    calls = []

    def apply_async(args=None, kwargs=None, **options):
        calls.append((tuple(args or ()), dict(kwargs or {})))

    monkeypatch.setattr(tasks.sync_account, "apply_async", apply_async)
    return calls


def run_captured(calls):
    for args, kwargs in calls:
        tasks.sync_account.apply(args, kwargs, throw=True)


def test_sync_all_answers_once_the_queued_syncs_end(alice, user, ml_mock, eager):
    ok = MLAccountFactory(owner=user, is_primary=True, ml_user_id=1_000_001)
    garbled = MLAccountFactory(owner=user, ml_user_id=1_000_002)
    paused = MLAccountFactory(owner=user, ml_user_id=1_000_003, status="paused", sync_enabled=False)
    expired = MLAccountFactory(owner=user, ml_user_id=1_000_004, status="expired")
    ml_by_seller(ml_mock, garbled={1_000_002})

    response = alice.post("/api/ml-accounts/sync-all")

    assert response.status_code == 200, response.content
    data = body(response)["data"]
    assert set(data) == {"results", "summary"}
    results = data["results"]
    assert [r["accountId"] for r in results] == [str(a.pk) for a in (ok, garbled, paused, expired)]
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
    assert results[2] == {
        "accountId": str(paused.pk),
        "success": False,
        "code": "ACCOUNT_PAUSED",
        "error": "Account is paused.",
    }
    assert (results[3]["success"], results[3]["code"]) == (False, "TOKEN_EXPIRED")
    assert data["summary"] == {"total": 4, "successful": 1, "failed": 3}

    states = {a.pk: a for a in MLAccount.objects.filter(workspace__personal_for=user)}
    assert states[ok.pk].cached_products == 5
    assert states[ok.pk].last_sync_status == "success"
    assert (states[garbled.pk].status, states[garbled.pk].last_sync_status) == ("active", "failed")
    assert (states[paused.pk].status, states[paused.pk].last_sync_status) == ("paused", "")
    # Issue 9 finding 2: the page and the API skip expired accounts alike; resume retries.
    assert (states[expired.pk].status, states[expired.pk].last_sync_status) == ("expired", "")
    assert all(state.sync_requested_at is None for state in states.values())
    for seller in ("1000003", "1000004"):
        assert not any(seller in call.request.url for call in ml_mock.calls)
    assert not any("oauth/token" in call.request.url for call in ml_mock.calls)


def test_sync_all_queues_tasks_and_runs_no_sync_in_the_request(alice, user, ml_mock, captured, settings):
    settings.SYNC_ALL_TIMEOUT = 0.01
    first = MLAccountFactory(owner=user, is_primary=True, ml_user_id=2_000_001)
    second = MLAccountFactory(owner=user, ml_user_id=2_000_002)
    ml_by_seller(ml_mock)

    response = alice.post("/api/ml-accounts/sync-all")

    # Nothing ran: every sync is reported as still running once the deadline passed.
    assert response.status_code == 200
    data = body(response)["data"]
    assert data["results"] == [
        {"accountId": str(account.pk), "success": False, "code": "TIMEOUT", "error": STILL_RUNNING}
        for account in (first, second)
    ]
    assert data["summary"] == {"total": 2, "successful": 0, "failed": 2}
    assert len(ml_mock.calls) == 0
    job = SyncJob.objects.get(owner=user)
    assert captured == [((str(account.pk),), {"job_id": str(job.pk)}) for account in (first, second)]
    assert all(
        a.sync_requested_at is not None for a in MLAccount.objects.filter(workspace__personal_for=user)
    )

    # The worker runs them later: they record their outcome on the account and the job.
    run_captured(captured)
    assert {a.last_sync_status for a in MLAccount.objects.filter(workspace__personal_for=user)} == {"success"}
    assert list(SyncJobItem.objects.filter(job=job).values_list("success", flat=True)) == [True, True]


def test_sync_all_touches_only_the_users_accounts(alice, user, other_user, ml_mock, eager):
    mine = MLAccountFactory(owner=user, is_primary=True, ml_user_id=3_000_001)
    theirs = MLAccountFactory(owner=other_user, ml_user_id=3_000_002)
    ml_by_seller(ml_mock)

    data = body(alice.post("/api/ml-accounts/sync-all/"))["data"]

    assert [r["accountId"] for r in data["results"]] == [str(mine.pk)]
    assert MLAccount.objects.get(pk=theirs.pk).last_sync_status == ""
    assert not any("3000002" in call.request.url for call in ml_mock.calls)


def test_sync_all_without_accounts(alice, ml_mock):
    response = alice.post("/api/ml-accounts/sync-all")

    assert body(response) == {
        "success": True,
        "data": {"results": [], "summary": {"total": 0, "successful": 0, "failed": 0}},
    }


def test_sync_all_is_not_taken_for_an_account_id(alice, ml_mock):
    assert_error(alice.get("/api/ml-accounts/sync-all"), 405, "METHOD_NOT_ALLOWED")
    assert_error(alice.delete("/api/ml-accounts/sync-all"), 405, "METHOD_NOT_ALLOWED")


def test_sync_all_anonymous_is_unauthorized(api_client, ml_account, ml_mock, captured):
    assert_unauthorized(api_client.post("/api/ml-accounts/sync-all"))
    assert_unauthorized(api_client.post("/api/ml-accounts/sync-all", headers={"Prefer": "respond-async"}))
    assert captured == []
    assert not SyncJob.objects.exists()


def test_sync_all_reports_an_unexpected_error_of_one_account_without_failing_the_rest(
    alice, user, ml_mock, monkeypatch, eager
):
    # As in the worker: a task's exception is logged there, never raised into the request.
    eager.conf.task_eager_propagates = False
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
    assert MLAccount.objects.get(pk=broken.pk).sync_requested_at is None


# --- the asynchronous form -------------------------------------------------------------------


def test_respond_async_answers_202_with_a_job_to_poll(alice, user, ml_mock, captured):
    account = MLAccountFactory(owner=user, is_primary=True, ml_user_id=5_000_001)
    paused = MLAccountFactory(owner=user, ml_user_id=5_000_002, status="paused", sync_enabled=False)
    ml_by_seller(ml_mock)

    response = alice.post("/api/ml-accounts/sync-all", headers={"Prefer": "wait=5, respond-async"})

    assert response.status_code == 202, response.content
    data = body(response)["data"]
    job = SyncJob.objects.get(owner=user)
    assert response["Location"] == f"/api/sync-jobs/{job.pk}"
    assert response["Preference-Applied"] == "respond-async"
    assert (data["jobId"], data["status"]) == (str(job.pk), "running")
    assert data["results"] == [
        {"accountId": str(account.pk), "success": False, "code": "PENDING", "error": STILL_RUNNING},
        {
            "accountId": str(paused.pk),
            "success": False,
            "code": "ACCOUNT_PAUSED",
            "error": "Account is paused.",
        },
    ]
    assert data["summary"] == {"total": 2, "successful": 0, "failed": 1, "pending": 1}

    run_captured(captured)
    polled = alice.get(response["Location"])

    assert polled.status_code == 200
    data = body(polled)["data"]
    assert data["status"] == "done"
    assert data["results"][0]["success"] is True and data["results"][0]["data"]["products"] == 5
    assert data["summary"] == {"total": 2, "successful": 1, "failed": 1, "pending": 0}


def test_a_sync_job_is_only_its_owners(alice, charlie, other_user, ml_mock, captured, api_client):
    MLAccountFactory(owner=other_user, is_primary=True, ml_user_id=6_000_001)
    theirs = charlie.post("/api/ml-accounts/sync-all", headers={"Prefer": "respond-async"})
    assert theirs.status_code == 202
    url = theirs["Location"]

    assert_error(alice.get(url), 404, "NOT_FOUND")
    assert_error(alice.get(url + "/"), 404, "NOT_FOUND")
    assert_error(alice.get("/api/sync-jobs/not-a-uuid"), 404, "NOT_FOUND")
    assert_unauthorized(api_client.get(url))
    assert charlie.get(url).status_code == 200


def test_sync_jobs_are_purged_after_a_day_by_the_cleanup_job(user, ml_mock, captured):
    account = MLAccountFactory(owner=user, is_primary=True)
    old = ondemand.sync_all(user=user, with_job=True).job
    SyncJob.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(hours=25))
    recent = ondemand.sync_all(user=user, with_job=True).job

    tasks.cleanup_events()

    assert list(SyncJob.objects.values_list("pk", flat=True)) == [recent.pk]
    assert SyncJobItem.objects.filter(account=account).count() == 1
