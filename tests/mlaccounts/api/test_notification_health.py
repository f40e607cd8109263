"""GET /api/notifications/health: are ML's notifications arriving for the caller's accounts?

Rows are made directly (the intake is tested in tests/sync/test_notifications.py): the
numbers are computed from them, over the accounts the caller can see and no others.
"""

from datetime import datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.models import COUNT_BITS
from tests.factories import MLAccountFactory, UserFactory, WorkspaceFactory, member
from tests.mlaccounts.api.conftest import assert_error, assert_unauthorized, body, client_for
from tests.notification_helpers import SECRET, stored

pytestmark = pytest.mark.django_db

URL = "/api/notifications/health"
QUESTIONS = COUNT_BITS["cached_questions"]


@pytest.fixture(autouse=True)
def _health_settings(settings):
    settings.ML_WEBHOOK_SECRET = SECRET
    settings.ML_NOTIFICATIONS_SILENT_AFTER = 2 * 3600


def health(client, **params) -> dict:
    response = client.get(URL, params)
    assert response.status_code == 200, response.content
    payload = body(response)
    assert payload["success"] is True
    return payload["data"]


def _busy_hour(account):
    """A last hour of notifications whose numbers the tests know."""
    now = timezone.now()
    for n in range(1, 21):  # twenty done: lags 0.1 s .. 2.0 s
        stored(
            account, "questions", ago=timedelta(minutes=30), status="done", processed_at=now, lag_ms=100 * n
        )
    stored(account, "payments", ago=timedelta(minutes=20), status="ignored", processed_at=now, lag_ms=50_000)
    stored(account, "items", ago=timedelta(minutes=10), status="failed", processed_at=now, reason="boom")
    stored(account, "orders_v2", ago=timedelta(minutes=1))  # pending
    # Earlier: not in the last hour's numbers.
    stored(
        account,
        "questions",
        ago=timedelta(hours=3),
        status="done",
        processed_at=now - timedelta(hours=2),
        lag_ms=99_999,
    )
    stored(account, "items", ago=timedelta(hours=3), status="failed", processed_at=now - timedelta(hours=2))


# --- access ------------------------------------------------------------------------------------------


def test_anonymous_is_refused(api_client):
    assert_unauthorized(api_client.get(URL))


def test_an_outsider_sees_none_of_alices_notifications(charlie, other_user, ml_account):
    _busy_hour(ml_account)
    MLAccountFactory(owner=UserFactory(), last_poll_change_at=timezone.now(), poll_change_mask=QUESTIONS)

    data = health(charlie)

    assert data == {
        "configured": True,
        "lastReceivedAt": None,
        "receivedLastHour": 0,
        "processedLastHour": 0,
        "failedLastHour": 0,
        "lagP95Seconds": None,
        "silentTopics": [],
        "warning": False,
        "accounts": [],
        "total": 0,
    }


def test_an_outsider_sees_only_their_own(charlie, other_user, ml_account):
    _busy_hour(ml_account)
    theirs = MLAccountFactory(owner=other_user, account_name="Loja do Charlie")
    stored(
        theirs, "questions", ago=timedelta(minutes=5), status="done", processed_at=timezone.now(), lag_ms=700
    )

    data = health(charlie)

    assert (data["receivedLastHour"], data["processedLastHour"], data["failedLastHour"]) == (1, 1, 0)
    assert data["lagP95Seconds"] == 0.7
    assert [a["accountId"] for a in data["accounts"]] == [str(theirs.pk)]
    assert data["total"] == 1


def test_a_scoped_member_sees_only_the_accounts_of_their_scope():
    workspace = WorkspaceFactory()
    inside = MLAccountFactory(workspace=workspace, account_name="A inside")
    outside = MLAccountFactory(workspace=workspace, account_name="B outside")
    bob = UserFactory(email="bob@example.com")
    member(workspace, bob, "operator", accounts=[inside])
    stored(inside, "questions", ago=timedelta(minutes=5))
    stored(outside, "questions", ago=timedelta(minutes=5))
    stored(outside, "items", ago=timedelta(minutes=5), status="failed", processed_at=timezone.now())
    outside.__class__.objects.filter(pk=outside.pk).update(
        last_poll_change_at=timezone.now(), poll_change_mask=QUESTIONS | COUNT_BITS["cached_claims"]
    )

    data = health(client_for(bob))

    assert (data["receivedLastHour"], data["failedLastHour"]) == (1, 0)
    assert [a["accountId"] for a in data["accounts"]] == [str(inside.pk)]
    assert data["total"] == 1
    assert data["silentTopics"] == []

    manager = UserFactory(email="dave@example.com")
    member(workspace, manager, "manager")
    data = health(client_for(manager))
    assert (data["receivedLastHour"], data["failedLastHour"], data["total"]) == (3, 1, 2)
    # The questions changed and their notifications came; the claims changed unannounced.
    assert data["silentTopics"] == ["post_purchase"]


# --- the numbers -------------------------------------------------------------------------------------


def test_the_last_hours_numbers(alice, ml_account):
    _busy_hour(ml_account)
    last = stored(ml_account, "orders_v2", ago=timedelta(seconds=5))

    data = health(alice)

    assert data["receivedLastHour"] == 20 + 1 + 1 + 1 + 1
    assert data["processedLastHour"] == 20 + 1  # done and ignored
    assert data["failedLastHour"] == 1
    # Nearest rank over the twenty done: the 19th smallest lag.
    assert data["lagP95Seconds"] == 1.9
    assert datetime.fromisoformat(data["lastReceivedAt"]) == last.arrived_at
    assert data["configured"] is True


@pytest.mark.parametrize(("lags", "p95"), [([1234], 1.234), (list(range(1000, 101_000, 1000)), 95.0)])
def test_lag_p95_is_the_nearest_rank(alice, ml_account, lags, p95):
    for lag in lags:
        stored(ml_account, "questions", status="done", processed_at=timezone.now(), lag_ms=lag)

    assert health(alice)["lagP95Seconds"] == p95


def test_nothing_yet(alice, ml_account, settings):
    settings.ML_WEBHOOK_SECRET = ""

    data = health(alice)

    assert (data["configured"], data["lastReceivedAt"], data["lagP95Seconds"], data["warning"]) == (
        False,
        None,
        None,
        False,
    )
    assert data["accounts"] == [
        {
            "accountId": str(ml_account.pk),
            "accountName": "Loja da Alice",
            "nickname": "LOJA_ALICE",
            "lastNotificationAt": None,
        }
    ]


def test_a_topic_polling_found_changed_without_its_notification_is_silent(alice, ml_account):
    ml_account.__class__.objects.filter(pk=ml_account.pk).update(
        last_poll_change_at=timezone.now() - timedelta(minutes=10), poll_change_mask=QUESTIONS
    )
    stored(ml_account, "orders_v2", ago=timedelta(minutes=1))  # other topics arrive
    stored(ml_account, "questions", ago=timedelta(hours=3))  # too long ago to count

    data = health(alice)
    assert (data["silentTopics"], data["warning"]) == (["questions"], True)

    stored(ml_account, "questions", ago=timedelta(minutes=1))
    data = health(alice)
    assert (data["silentTopics"], data["warning"]) == ([], False)


def test_a_notification_recovered_from_the_missed_feeds_does_not_end_the_silence(alice, ml_account):
    # ML could not deliver it: the callback URL or its topics are still wrong.
    ml_account.__class__.objects.filter(pk=ml_account.pk).update(
        last_poll_change_at=timezone.now() - timedelta(minutes=10), poll_change_mask=QUESTIONS
    )
    stored(ml_account, "questions", ago=timedelta(minutes=1), source="missed_feeds")

    assert health(alice)["silentTopics"] == ["questions"]


def test_an_old_poll_change_is_no_warning(alice, ml_account):
    ml_account.__class__.objects.filter(pk=ml_account.pk).update(
        last_poll_change_at=timezone.now() - timedelta(hours=3), poll_change_mask=QUESTIONS
    )

    assert health(alice)["silentTopics"] == []


def test_silent_topics_follow_the_count_each_topic_moves(alice, ml_account):
    # Claims and listings changed; a legacy `claims` notification covers post_purchase's count.
    ml_account.__class__.objects.filter(pk=ml_account.pk).update(
        last_poll_change_at=timezone.now(),
        poll_change_mask=COUNT_BITS["cached_claims"] | COUNT_BITS["cached_products"],
    )
    stored(ml_account, "claims", ago=timedelta(minutes=1))

    data = health(alice)

    assert data["silentTopics"] == ["items"]


def test_each_account_shows_its_last_notification(alice, user, ml_account):
    at = timezone.now() - timedelta(minutes=3)
    ml_account.__class__.objects.filter(pk=ml_account.pk).update(last_notification_at=at)
    other = MLAccountFactory(owner=user, account_name="Z last", nickname="ZZ")

    accounts = health(alice)["accounts"]

    assert [a["accountId"] for a in accounts] == [str(ml_account.pk), str(other.pk)]
    assert datetime.fromisoformat(accounts[0]["lastNotificationAt"]) == at
    assert accounts[1]["lastNotificationAt"] is None


# --- paging ------------------------------------------------------------------------------------------


def test_accounts_come_50_a_page_by_name(alice, user):
    names = [f"Loja {n:03d}" for n in range(120)]
    for name in reversed(names):
        MLAccountFactory(owner=user, account_name=name)

    first = health(alice)
    third = health(alice, page=3)
    beyond = health(alice, page=99)
    zero = health(alice, page=0)

    assert first["total"] == third["total"] == 120
    assert [a["accountName"] for a in first["accounts"]] == names[:50]
    assert [a["accountName"] for a in health(alice, page=2)["accounts"]] == names[50:100]
    assert [a["accountName"] for a in third["accounts"]] == names[100:]
    assert beyond["accounts"] == third["accounts"]  # past the end: the last page
    assert zero["accounts"] == first["accounts"]


@pytest.mark.parametrize("page", ["abc", "1.5", "", "2e3"])
def test_a_page_that_is_not_a_whole_number_is_refused(alice, ml_account, page):
    payload = assert_error(alice.get(URL, {"page": page}), 400, "VALIDATION_ERROR")
    assert "page" in str(payload)


def _queries(client) -> int:
    with CaptureQueriesContext(connection) as captured:
        health(client)
    return len(captured.captured_queries)


def test_the_query_count_does_not_grow_with_the_accounts(alice, user, django_assert_num_queries):
    for n in range(2):
        account = MLAccountFactory(owner=user, account_name=f"Loja {n:03d}")
        stored(account, "questions", status="done", processed_at=timezone.now(), lag_ms=100)
    # A poll change, so the silent-topic check runs in full.
    account.__class__.objects.filter(pk=account.pk).update(
        last_poll_change_at=timezone.now(), poll_change_mask=QUESTIONS
    )
    few = _queries(alice)
    for n in range(2, 120):
        account = MLAccountFactory(
            owner=user,
            account_name=f"Loja {n:03d}",
            last_poll_change_at=timezone.now(),
            poll_change_mask=n % 16,
        )
        stored(account, "questions", status="done", processed_at=timezone.now(), lag_ms=100 + n)

    with django_assert_num_queries(few):
        data = health(alice)

    assert data["total"] == 120 and len(data["accounts"]) == 50
    assert data["receivedLastHour"] == 120
    assert data["silentTopics"] == ["orders_v2", "items", "post_purchase"]
    # The user (token), the last hour's numbers, the counts polling found changed, the
    # topics heard, the total, the page and the lag's percentile: none per account.
    assert few == 7
