"""ML notifications without a web request: intake, processing, recovery (sync/notifications.py).

ML is the root conftest's `ml` mock (nothing registered: any ML call fails the test); the
processing task is recorded, never sent.
"""

import json
import uuid
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
import responses
from django.utils import timezone

from accounts import services
from accounts.models import MLAccount, Notification
from accounts.services.notifications import (
    CLAIM_LEASE_SECONDS,
    UNKNOWN_USER,
    UNSUPPORTED_TOPIC,
    retry_delay_seconds,
)
from sync import notifications, tasks
from sync.notifications import InvalidNotification
from tests.factories import MLAccountFactory
from tests.mlmock import API, COUNT_URLS, TOKEN_URL, RotatingTokenEndpoint
from tests.notification_helpers import APP_ID, general_body, stored, typified_body, use_fresh_cache
from tests.threads import run_together

pytestmark = pytest.mark.django_db

MISSED_FEEDS_URL = API + "/missed_feeds"
COUNT_ENDPOINT = {  # topic -> (mock URL key, column, answer body of a total)
    "questions": ("questions", "cached_questions", lambda n: {"total": n, "questions": []}),
    "orders_v2": ("orders", "cached_orders", lambda n: {"paging": {"total": n}, "results": []}),
    "items": ("products", "cached_products", lambda n: {"paging": {"total": n}, "results": []}),
    "post_purchase": ("claims", "cached_claims", lambda n: {"paging": {"total": n}, "data": []}),
}


@pytest.fixture(autouse=True)
def _notification_settings(settings):
    use_fresh_cache(settings)
    settings.ML_APPLICATION_ID = APP_ID
    settings.ML_NOTIFICATION_MERGE_SECONDS = 1.0
    settings.ML_NOTIFICATION_MAX_TRIES = 8


def answer(ml, topic, total, *, status=200, headers=None):
    key, _, shape = COUNT_ENDPOINT[topic]
    if status == 200:
        ml.add(responses.GET, COUNT_URLS[key], json=shape(total))
    else:
        error = {"message": "error", "error": "error", "status": status, "cause": []}
        ml.add(responses.GET, COUNT_URLS[key], json=error, status=status, headers=headers or {})


def query_of(call) -> dict:
    return {key: values[0] for key, values in parse_qs(urlsplit(call.request.url).query).items()}


def statuses(account) -> list[str]:
    return list(Notification.objects.filter(account=account).values_list("status", flat=True))


# --- parse and decode ------------------------------------------------------------------------------


def test_parse_reads_the_general_model():
    body = general_body(user_id=468424240, resource="/orders/2000009876543210")

    incoming = notifications.parse(body)

    assert incoming.ml_id == body["_id"]
    assert (incoming.topic, incoming.resource, incoming.ml_user_id) == (
        "orders_v2",
        "/orders/2000009876543210",
        468424240,
    )
    assert (incoming.application_id, incoming.attempts) == (APP_ID, 1)
    assert incoming.sent_at == datetime(2025, 3, 10, 16, 19, 20, 129000, tzinfo=UTC)
    assert incoming.received_at == datetime(2025, 3, 10, 16, 19, 20, 106000, tzinfo=UTC)
    assert incoming.body == body


def test_parse_reads_the_typified_model_with_id_actions_and_a_string_user_id():
    body = typified_body(user_id=123456789)

    incoming = notifications.parse(body)

    assert incoming.ml_id == body["id"]
    assert (incoming.topic, incoming.ml_user_id, incoming.attempts) == ("post_purchase", 123456789, 2)
    assert incoming.body["actions"] == ["claims"]
    assert incoming.received_at == datetime(2025, 3, 10, 16, 19, 20, 500000, tzinfo=UTC)


def test_parse_reads_the_misspelt_recieved_and_prefers_received():
    body = general_body(user_id=1)
    del body["received"]
    body["recieved"] = "2025-03-11T10:00:00.000Z"
    assert notifications.parse(body).received_at == datetime(2025, 3, 11, 10, tzinfo=UTC)

    body["received"] = "2025-03-11T09:00:00.000Z"
    assert notifications.parse(body).received_at == datetime(2025, 3, 11, 9, tzinfo=UTC)


@pytest.mark.parametrize(
    "moment",
    [
        "yesterday",
        "2025-13-45T99:00:00Z",  # the pattern matches, the calendar does not
        "2025-03-10T16:19:20",  # no offset: whose clock?
        "2025-03-10T16:19:20.129Z" + " " * 40,
        1741623560,
        None,
        ["2025-03-10T16:19:20Z"],
    ],
)
def test_parse_drops_a_bad_date_and_keeps_the_notification(moment):
    incoming = notifications.parse(general_body(user_id=7, sent=moment, received=moment))

    assert (incoming.sent_at, incoming.received_at) == (None, None)
    assert incoming.ml_user_id == 7


@pytest.mark.parametrize(
    ("attempts", "expected"),
    [(5, 5), (9999, 9999), (0, 1), (-3, 1), (10_000, 1), (True, 1), ("3", 1), (2.5, 1), (None, 1)],
)
def test_parse_keeps_a_plausible_attempts_count_only(attempts, expected):
    assert notifications.parse(general_body(user_id=7, attempts=attempts)).attempts == expected


def test_parse_without_an_id_or_application_keeps_them_unknown():
    body = general_body(user_id=7)
    del body["_id"], body["application_id"]

    incoming = notifications.parse(body)

    assert (incoming.ml_id, incoming.application_id) == (None, None)


def test_parse_keeps_only_plausible_keys_of_the_body():
    body = {"topic": "questions", "resource": "/questions/1", "user_id": 7}
    body.update({f"k{n}": n for n in range(40)})
    body["x" * 65] = "too long a key"

    kept = notifications.parse(body).body

    assert len(kept) == 30
    assert list(kept)[:3] == ["topic", "resource", "user_id"]
    assert "x" * 65 not in kept


@pytest.mark.parametrize(
    "data",
    [
        None,
        [],
        [general_body(user_id=7)],
        "orders_v2",
        42,
        {},
        {"resource": "/orders/1", "user_id": 7},
        {"topic": "orders_v2", "user_id": 7},
        {"topic": "  ", "resource": "/orders/1", "user_id": 7},
        {"topic": "orders_v2", "resource": "", "user_id": 7},
        {"topic": "orders_v2", "resource": "/orders/1"},
        {"topic": "orders_v2", "resource": "/orders/1", "user_id": 0},
        {"topic": "orders_v2", "resource": "/orders/1", "user_id": -7},
        {"topic": "orders_v2", "resource": "/orders/1", "user_id": "-7"},
        {"topic": "orders_v2", "resource": "/orders/1", "user_id": "abc"},
        {"topic": "orders_v2", "resource": "/orders/1", "user_id": "12a"},
        {"topic": "orders_v2", "resource": "/orders/1", "user_id": 7.5},
        {"topic": "orders_v2", "resource": "/orders/1", "user_id": True},
        {"topic": "orders_v2", "resource": "/orders/1", "user_id": 2**63},
        {"topic": "orders_v2", "resource": "/orders/1", "user_id": None},
        {"topic": ["orders_v2"], "resource": "/orders/1", "user_id": 7},
    ],
)
def test_parse_refuses_what_is_not_a_notification(data):
    with pytest.raises(InvalidNotification):
        notifications.parse(data)


def test_decode_refuses_a_large_body_not_json_and_deep_nesting():
    with pytest.raises(InvalidNotification, match="larger"):
        notifications.decode(b" " * (notifications.MAX_BODY_BYTES + 1))
    with pytest.raises(InvalidNotification, match="not JSON"):
        notifications.decode(b"topic=orders_v2")
    with pytest.raises(InvalidNotification, match="not JSON"):
        notifications.decode(b"\xff\xfe{}")
    with pytest.raises(InvalidNotification, match="not JSON"):
        notifications.decode(b"[" * 8000 + b"]" * 8000)

    assert notifications.decode(json.dumps(general_body(user_id=7)).encode())["user_id"] == 7


# --- receive ---------------------------------------------------------------------------------------


def test_receive_stores_a_pending_notification_and_queues_processing_once(
    ml_account, kicked, django_capture_on_commit_callbacks
):
    body = general_body(user_id=ml_account.ml_user_id)

    with django_capture_on_commit_callbacks(execute=True):
        receipt = notifications.receive(body)
        again = notifications.receive(general_body(user_id=ml_account.ml_user_id))

    assert (receipt.outcome, again.outcome) == ("stored", "stored")
    row = Notification.objects.get(ml_id=body["_id"])
    assert (row.status, row.account_id, row.source, row.reason) == ("pending", ml_account.pk, "webhook", "")
    assert (row.topic, row.resource, row.ml_user_id, row.application_id) == (
        "orders_v2",
        body["resource"],
        ml_account.ml_user_id,
        APP_ID,
    )
    assert row.next_attempt_at == row.arrived_at and row.processed_at is None
    assert row.body == body
    # One task for the burst, a merge window ahead.
    assert kicked == [((str(ml_account.pk),), {"countdown": 1.0})]


def test_receive_drops_and_counts_another_applications_notification(ml_account, kicked):
    before = notifications.foreign_count()

    first = notifications.receive(general_body(user_id=ml_account.ml_user_id, application_id=APP_ID + 1))
    second = notifications.receive(
        typified_body(user_id=ml_account.ml_user_id, application_id=str(APP_ID - 1))
    )

    assert (first.outcome, first.notification, second.outcome) == ("foreign", None, "foreign")
    assert notifications.foreign_count() == before + 2
    assert not Notification.objects.exists()
    assert kicked == []


def test_receive_keeps_every_application_when_ours_is_unknown(ml_account, settings):
    settings.ML_APPLICATION_ID = None

    receipt = notifications.receive(general_body(user_id=ml_account.ml_user_id, application_id=999))

    assert receipt.outcome == "stored"
    assert Notification.objects.get().application_id == 999


def test_receive_stores_an_unknown_sellers_notification_as_ignored(
    ml_account, kicked, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        receipt = notifications.receive(general_body(user_id=999_999_999))

    assert receipt.outcome == "ignored"
    row = Notification.objects.get()
    assert (row.status, row.reason, row.account_id, row.ml_user_id) == (
        "ignored",
        UNKNOWN_USER,
        None,
        999_999_999,
    )
    assert row.processed_at is not None and row.next_attempt_at is None
    assert kicked == []


def test_receive_stores_an_unsupported_topic_as_ignored(
    ml_account, kicked, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        receipt = notifications.receive(
            general_body(user_id=ml_account.ml_user_id, topic="payments", resource="/collections/3043111111")
        )

    assert receipt.outcome == "ignored"
    row = Notification.objects.get()
    assert (row.status, row.reason, row.account_id, row.topic) == (
        "ignored",
        UNSUPPORTED_TOPIC,
        ml_account.pk,
        "payments",
    )
    assert kicked == []


@pytest.mark.parametrize("shape", [general_body, typified_body])
def test_receive_stores_a_retried_delivery_once(ml_account, shape):
    body = shape(user_id=ml_account.ml_user_id)
    retried = {**body, "attempts": 2}

    notifications.receive(body)
    notifications.receive(retried)

    row = Notification.objects.get()
    assert (row.ml_id, row.attempts) == (body.get("_id") or body["id"], body["attempts"])


def test_receive_refuses_an_invalid_body_and_stores_nothing(ml_account):
    with pytest.raises(InvalidNotification):
        notifications.receive({"topic": "orders_v2", "user_id": ml_account.ml_user_id})
    assert not Notification.objects.exists()


# --- process_account ---------------------------------------------------------------------------------


def test_five_notifications_of_one_order_cost_one_ml_call(ml_account, ml):
    answer(ml, "orders_v2", 41)
    received = timezone.now() - timedelta(seconds=3)
    rows = [
        stored(
            ml_account,
            "orders_v2",
            resource="/orders/2000009876543210",
            received_at=received,
            ago=timedelta(seconds=n),
        )
        for n in range(5)
    ]

    result = notifications.process_account(ml_account.pk)

    assert (result.claimed, result.ml_calls, dict(result.outcomes)) == (5, 1, {"done": 5})
    assert len(ml.calls) == 1
    query = query_of(ml.calls[0])
    assert query["seller"] == str(ml_account.ml_user_id)
    assert query["limit"] == "1"
    assert "cancelled" not in query["order.status"].split(",") and "paid" in query["order.status"].split(",")
    assert query["order.date_created.from"].endswith(":00:00.000-00:00")
    assert ml.calls[0].request.headers["Authorization"] == f"Bearer {ml_account.access_token}"
    ml_account.refresh_from_db()
    assert ml_account.cached_orders == 41
    assert ml_account.last_notification_at == max(row.arrived_at for row in rows)
    for row in Notification.objects.filter(pk__in=[r.pk for r in rows]):
        assert (row.status, row.reason, row.claim, row.next_attempt_at) == ("done", "", None, None)
        assert row.processed_at is not None
        # From ML's `received`, three seconds before we stored them.
        assert row.lag_ms >= 3000


def test_each_topic_rereads_its_own_count_once(ml_account, ml):
    for n, topic in enumerate(COUNT_ENDPOINT):
        answer(ml, topic, 100 + n)
        stored(ml_account, topic)
        stored(ml_account, topic)
    stored(ml_account, "orders")  # legacy topic of the same count: merged with orders_v2
    stored(ml_account, "claims")  # legacy topic of the claims count

    result = notifications.process_account(ml_account.pk)

    assert (result.claimed, result.ml_calls, dict(result.outcomes)) == (10, 4, {"done": 10})
    assert len(ml.calls) == 4
    hit = sorted(urlsplit(call.request.url).path for call in ml.calls)
    assert hit == sorted(
        [
            "/questions/search",
            "/orders/search",
            f"/users/{ml_account.ml_user_id}/items/search",
            "/post-purchase/v1/claims/search",
        ]
    )
    ml_account.refresh_from_db()
    assert (
        ml_account.cached_questions,
        ml_account.cached_orders,
        ml_account.cached_products,
        ml_account.cached_claims,
    ) == (100, 101, 102, 103)
    assert ml_account.last_notification_at is not None and ml_account.cached_at is not None
    assert set(statuses(ml_account)) == {"done"}


def test_a_topic_the_app_stopped_using_is_ignored_without_a_call(ml_account, ml):
    stored(ml_account, "payments")

    result = notifications.process_account(ml_account.pk)

    assert (dict(result.outcomes), result.ml_calls, len(ml.calls)) == ({"ignored": 1}, 0, 0)
    row = Notification.objects.get()
    assert (row.status, row.reason) == ("ignored", UNSUPPORTED_TOPIC)


@pytest.mark.parametrize(
    ("fields", "reason_part"),
    [
        ({"status": "paused"}, "paused"),
        ({"sync_enabled": False}, "paused"),
        ({"status": "expired"}, "reconnecting"),
    ],
)
def test_an_account_not_synced_ignores_its_notifications_without_a_call(user, ml, fields, reason_part):
    account = MLAccountFactory(owner=user, cached_questions=3, **fields)
    stored(account, "questions")
    stored(account, "orders_v2")

    result = notifications.process_account(account.pk)

    assert (dict(result.outcomes), result.ml_calls, len(ml.calls)) == ({"ignored": 2}, 0, 0)
    for row in Notification.objects.all():
        assert row.status == "ignored" and reason_part in row.reason
        assert row.processed_at is not None
    account.refresh_from_db()
    assert account.cached_questions == 3
    assert account.last_notification_at is not None  # they did arrive


def test_rate_limited_count_goes_back_to_pending_after_mls_retry_after(ml_account, ml):
    answer(ml, "questions", 0, status=429, headers={"Retry-After": "120"})
    row = stored(ml_account, "questions")
    other = stored(ml_account, "orders_v2")  # not asked yet: waits with it
    before = timezone.now()

    result = notifications.process_account(ml_account.pk)

    assert len(ml.calls) == 1
    assert result.outcomes["retry"] == 2
    for waiting in Notification.objects.filter(pk__in=[row.pk, other.pk]):
        assert (waiting.status, waiting.tries, waiting.claim) == ("pending", 1, None)
        assert "MLRateLimited" in waiting.reason
        assert waiting.next_attempt_at >= before + timedelta(seconds=120)
        assert waiting.processed_at is None
    # Not due yet: a run now takes nothing.
    assert notifications.process_account(ml_account.pk).claimed == 0
    assert len(ml.calls) == 1


def test_unavailable_ml_backs_off_at_least_the_base_delay(ml_account, ml):
    # The HTTP layer retries a 5xx GET twice: three 503s are one failed try.
    for _ in range(3):
        answer(ml, "questions", 0, status=503)
    row = stored(ml_account, "questions")
    before = timezone.now()

    notifications.process_account(ml_account.pk)

    assert len(ml.calls) == 3
    row.refresh_from_db()
    assert (row.status, row.tries) == ("pending", 1)
    assert "MLUnavailable" in row.reason
    assert row.next_attempt_at >= before + timedelta(seconds=retry_delay_seconds(1))


def test_a_short_retry_after_does_not_shorten_the_back_off(ml_account, ml):
    answer(ml, "questions", 0, status=429, headers={"Retry-After": "1"})
    row = stored(ml_account, "questions", tries=3)
    before = timezone.now()

    notifications.process_account(ml_account.pk)

    row.refresh_from_db()
    assert row.tries == 4
    assert row.next_attempt_at >= before + timedelta(seconds=retry_delay_seconds(4))


def test_a_notification_fails_after_the_last_try(ml_account, ml, settings):
    settings.ML_NOTIFICATION_MAX_TRIES = 2
    answer(ml, "questions", 0, status=429)
    row = stored(ml_account, "questions")

    notifications.process_account(ml_account.pk)
    row.refresh_from_db()
    assert (row.status, row.tries) == ("pending", 1)
    Notification.objects.filter(pk=row.pk).update(next_attempt_at=timezone.now())  # its back-off ended

    result = notifications.process_account(ml_account.pk)

    assert result.outcomes["failed"] == 1
    assert len(ml.calls) == 2
    row.refresh_from_db()
    assert (row.status, row.tries, row.next_attempt_at) == ("failed", 2, None)
    assert "MLRateLimited" in row.reason
    assert row.processed_at is not None
    assert notifications.process_account(ml_account.pk).claimed == 0  # never again by itself


def test_a_refused_token_is_renewed_once_then_the_count_is_read(ml_account, ml):
    endpoint = RotatingTokenEndpoint(user_id=ml_account.ml_user_id, current_refresh=ml_account.refresh_token)
    endpoint.install(ml)
    old_token = ml_account.access_token
    answer(ml, "questions", 0, status=401)
    answer(ml, "questions", 9)
    stored(ml_account, "questions")

    result = notifications.process_account(ml_account.pk)

    assert dict(result.outcomes) == {"done": 1}
    assert (endpoint.calls, endpoint.issued) == (1, 1)
    asked = [call for call in ml.calls if call.request.url.startswith(COUNT_URLS["questions"])]
    assert [call.request.headers["Authorization"] for call in asked] == [
        f"Bearer {old_token}",
        f"Bearer {endpoint.last_access}",
    ]
    ml_account.refresh_from_db()
    assert ml_account.access_token == endpoint.last_access
    assert ml_account.refresh_token == endpoint.current
    assert ml_account.cached_questions == 9
    assert statuses(ml_account) == ["done"]


def test_a_refused_token_is_renewed_once_for_every_count_of_the_run(ml_account, ml):
    """ML refuses the old token everywhere; after one renewal every count is read with the new one."""
    endpoint = RotatingTokenEndpoint(user_id=ml_account.ml_user_id, current_refresh=ml_account.refresh_token)
    endpoint.install(ml)
    old_token = ml_account.access_token

    def count_endpoint(shape):
        def reply(request):
            if request.headers["Authorization"] == f"Bearer {old_token}":
                refused = {"message": "invalid_token", "error": "not_found", "status": 401, "cause": []}
                return 401, {}, json.dumps(refused)
            return 200, {}, json.dumps(shape(5))

        return reply

    for topic in ("questions", "orders_v2"):
        key, _, shape = COUNT_ENDPOINT[topic]
        ml.add_callback(responses.GET, COUNT_URLS[key], callback=count_endpoint(shape))
        stored(ml_account, topic)

    result = notifications.process_account(ml_account.pk)

    assert dict(result.outcomes) == {"done": 2}
    # One renewal answers the whole run: the second count must not be refused again.
    assert endpoint.calls == 1
    assert len(ml.calls) == 1 + 1 + 1 + 1  # 401, the renewal, the count again, the other count
    ml_account.refresh_from_db()
    assert (ml_account.cached_questions, ml_account.cached_orders) == (5, 5)


def test_a_dead_grant_fails_the_notifications_and_marks_the_account_expired(ml_account, ml):
    MLAccount.objects.filter(pk=ml_account.pk).update(token_expires_at=timezone.now() - timedelta(minutes=1))
    ml.add(
        responses.POST,
        TOKEN_URL,
        json={"error": "invalid_grant", "error_description": "invalid refresh token", "status": 400},
        status=400,
    )
    stored(ml_account, "questions")
    stored(ml_account, "items")

    result = notifications.process_account(ml_account.pk)

    assert dict(result.outcomes) == {"failed": 2}
    assert [call.request.url for call in ml.calls] == [TOKEN_URL]  # no count asked with a dead token
    for row in Notification.objects.all():
        assert row.status == "failed" and "reconnect" in row.reason
        assert row.processed_at is not None
    ml_account.refresh_from_db()
    assert ml_account.status == "expired"
    assert ml_account.disconnected_at is not None


def test_a_refused_token_whose_renewal_is_refused_fails_and_marks_expired(ml_account, ml):
    answer(ml, "questions", 0, status=401)
    ml.add(
        responses.POST,
        TOKEN_URL,
        json={"error": "invalid_grant", "error_description": "used", "status": 400},
        status=400,
    )
    stored(ml_account, "questions")

    result = notifications.process_account(ml_account.pk)

    assert dict(result.outcomes) == {"failed": 1}
    assert len(ml.calls) == 2
    row = Notification.objects.get()
    assert row.status == "failed" and "reconnect" in row.reason
    ml_account.refresh_from_db()
    assert ml_account.status == "expired"


def test_an_unusable_answer_fails_only_its_own_count(ml_account, ml):
    ml.add(responses.GET, COUNT_URLS["questions"], json={"questions": []})  # no total
    answer(ml, "orders_v2", 8)
    bad = stored(ml_account, "questions")
    good = stored(ml_account, "orders_v2")

    result = notifications.process_account(ml_account.pk)

    assert dict(result.outcomes) == {"failed": 1, "done": 1}
    bad.refresh_from_db()
    good.refresh_from_db()
    assert bad.status == "failed" and bad.reason.startswith("Mercado Livre")
    assert good.status == "done"


def test_a_second_run_right_after_claims_nothing_and_calls_nothing(ml_account, ml):
    answer(ml, "questions", 4)
    stored(ml_account, "questions")

    first = notifications.process_account(ml_account.pk)
    second = notifications.process_account(ml_account.pk)

    assert (first.claimed, second.claimed, second.ml_calls) == (1, 0, 0)
    assert len(ml.calls) == 1


def test_a_live_claim_is_left_alone_and_an_abandoned_one_is_taken_over(ml_account, ml):
    answer(ml, "questions", 6)
    live = stored(ml_account, "questions")
    abandoned = stored(ml_account, "questions")
    now = timezone.now()
    Notification.objects.filter(pk=live.pk).update(status="processing", claim=uuid.uuid4(), claimed_at=now)
    Notification.objects.filter(pk=abandoned.pk).update(
        status="processing",
        claim=uuid.uuid4(),
        claimed_at=now - timedelta(seconds=CLAIM_LEASE_SECONDS + 5),
    )

    result = notifications.process_account(ml_account.pk)

    assert (result.claimed, dict(result.outcomes)) == (1, {"done": 1})
    assert len(ml.calls) == 1
    live.refresh_from_db()
    abandoned.refresh_from_db()
    assert (live.status, abandoned.status) == ("processing", "done")
    ml_account.refresh_from_db()
    assert ml_account.cached_questions == 6


def test_a_worker_that_lost_its_claim_does_not_overwrite_the_new_owners_outcome(ml_account):
    row = stored(ml_account, "questions")
    [mine] = services.notification_claim(account_id=ml_account.pk)
    later = timezone.now() + timedelta(seconds=CLAIM_LEASE_SECONDS + 1)
    [theirs] = services.notification_claim(account_id=ml_account.pk, now=later)

    assert services.notification_finish(notifications=[mine], status="failed", reason="late") == 0
    assert services.notification_finish(notifications=[theirs], status="done") == 1
    row.refresh_from_db()
    assert (row.status, row.reason) == ("done", "")


def test_retry_failed_sends_failed_notifications_through_processing_again(user, ml_account):
    other = MLAccountFactory(owner=user)
    failed = stored(
        ml_account, "questions", status="failed", reason="Mercado Livre: boom", tries=8, lag_ms=10
    )
    failed_elsewhere = stored(other, "items", status="failed", reason="boom", tries=3)
    done = stored(ml_account, "questions", status="done", lag_ms=5)
    orphan = stored(None, "questions", status="failed", reason="no account")

    assert services.notification_retry_failed(ids=[failed.pk]) == [str(ml_account.pk)]
    failed.refresh_from_db()
    assert (failed.status, failed.tries, failed.reason, failed.lag_ms, failed.processed_at) == (
        "pending",
        0,
        "",
        None,
        None,
    )
    assert failed.next_attempt_at is not None
    failed_elsewhere.refresh_from_db()
    assert failed_elsewhere.status == "failed"

    assert services.notification_retry_failed() == [str(other.pk)]
    failed_elsewhere.refresh_from_db()
    done.refresh_from_db()
    orphan.refresh_from_db()
    assert (failed_elsewhere.status, done.status, orphan.status) == ("pending", "done", "failed")
    assert sorted(services.notification_accounts_due()) == sorted([str(ml_account.pk), str(other.pk)])


# --- queueing: process_due and kick -------------------------------------------------------------------


def test_process_due_queues_each_account_with_due_notifications_once(
    user, kicked, django_capture_on_commit_callbacks
):
    due, also_due, abandoned, waiting, finished = MLAccountFactory.create_batch(5, owner=user)
    stored(due, "questions")
    stored(due, "orders_v2")
    stored(also_due, "items", next_attempt_at=timezone.now() - timedelta(minutes=5))
    stored(
        abandoned,
        "questions",
        status="processing",
        claim=uuid.uuid4(),
        claimed_at=timezone.now() - timedelta(seconds=CLAIM_LEASE_SECONDS + 1),
    )
    stored(waiting, "questions", next_attempt_at=timezone.now() + timedelta(minutes=5), tries=1)
    stored(finished, "questions", status="done")
    stored(None, "questions", status="ignored", reason=UNKNOWN_USER)

    with django_capture_on_commit_callbacks(execute=True):
        assert notifications.process_due() == 3
        assert kicked == []  # sent on commit only

    assert sorted(args[0] for args, _ in kicked) == sorted(str(a.pk) for a in (due, also_due, abandoned))


def test_the_minute_job_is_process_due(user, kicked, django_capture_on_commit_callbacks):
    account = MLAccountFactory(owner=user)
    stored(account, "questions")

    with django_capture_on_commit_callbacks(execute=True):
        assert tasks.process_notifications() == 1

    assert [args for args, _ in kicked] == [(str(account.pk),)]


def test_kick_queues_once_per_merge_window_and_again_once_processing_started(
    ml_account, ml, kicked, django_capture_on_commit_callbacks, settings
):
    settings.ML_NOTIFICATION_MERGE_SECONDS = 2.5

    with django_capture_on_commit_callbacks(execute=True):
        notifications.kick(ml_account.pk)
        notifications.kick(ml_account.pk)
    assert kicked == [((str(ml_account.pk),), {"countdown": 2.5})]

    notifications.process_account(ml_account.pk)  # the task clears the mark when it starts
    with django_capture_on_commit_callbacks(execute=True):
        notifications.kick(ml_account.pk)

    assert len(kicked) == 2
    assert len(ml.calls) == 0


def test_kicks_of_two_accounts_are_independent(user, kicked, django_capture_on_commit_callbacks):
    first, second = MLAccountFactory.create_batch(2, owner=user)

    with django_capture_on_commit_callbacks(execute=True):
        for account in (first, second, first, second):
            notifications.kick(account.pk)

    assert [args for args, _ in kicked] == [(str(first.pk),), (str(second.pk),)]


def test_the_processing_task_reports_its_run(ml_account, ml):
    answer(ml, "items", 30)
    stored(ml_account, "items")

    assert tasks.process_account_notifications(str(ml_account.pk)) == {"claimed": 1, "ml_calls": 1, "done": 1}


# --- recover_missed_feeds ------------------------------------------------------------------------------


class MissedFeeds:
    """GET /missed_feeds answering from `pages[(topic, site_id)]`, a list of messages, by offset."""

    def __init__(self, pages):
        self.pages = pages
        self.asked = []

    def __call__(self, request):
        query = {key: values[0] for key, values in parse_qs(urlsplit(request.url).query).items()}
        self.asked.append(query)
        messages = self.pages.get((query["topic"], query.get("site_id")), [])
        offset, limit = int(query["offset"]), int(query["limit"])
        return 200, {}, json.dumps({"messages": messages[offset : offset + limit]})

    def offsets(self, topic, site=None) -> list[int]:
        return [int(q["offset"]) for q in self.asked if q["topic"] == topic and q.get("site_id") == site]


def _message(account_id, topic="questions", **extra):
    return general_body(
        user_id=account_id, topic=topic, resource=f"/{topic}/{uuid.uuid4().int % 10**10}", **extra
    )


def test_recovery_pages_each_topic_until_a_short_page_and_items_once_per_site(user, ml, settings):
    brazil = MLAccountFactory(owner=user, site_id="MLB")
    also_brazil = MLAccountFactory(owner=user, site_id="MLB")
    argentina = MLAccountFactory(owner=user, site_id="MLA")
    questions = [_message(brazil.ml_user_id) for _ in range(413)]
    known = questions[7]
    stored(brazil, "questions", ml_id=known["_id"], status="done")
    questions[300] = dict(questions[299])  # ML lists one message twice
    foreign = _message(argentina.ml_user_id, "orders_v2", application_id=APP_ID + 1)
    pages = {
        ("questions", None): questions,
        ("orders_v2", None): [foreign, _message(argentina.ml_user_id, "orders_v2")],
        ("items", "MLB"): [_message(brazil.ml_user_id, "items")],
        ("items", "MLA"): [_message(argentina.ml_user_id, "items", attempts=5)],
        ("post_purchase", None): [],
    }
    feeds = MissedFeeds(pages)
    ml.add_callback(responses.GET, MISSED_FEEDS_URL, callback=feeds)

    report = notifications.recover_missed_feeds()

    assert feeds.offsets("questions") == [0, 200, 400]
    assert feeds.offsets("orders_v2") == [0]
    assert feeds.offsets("post_purchase") == [0]
    assert feeds.offsets("items", "MLB") == [0] and feeds.offsets("items", "MLA") == [0]
    assert feeds.offsets("items") == []  # never without a site (ML answers 400)
    assert all(q["app_id"] == str(APP_ID) and q["limit"] == "200" for q in feeds.asked)
    assert len(ml.calls) == len(feeds.asked) == 3 + 1 + 1 + 2
    # One connected seller's token asks for all (§11.1): no token per message.
    [authorization] = {call.request.headers["Authorization"] for call in ml.calls}
    assert authorization in {f"Bearer {a.access_token}" for a in (brazil, also_brazil, argentina)}
    assert (report.fetched, report.duplicates, report.foreign, report.invalid) == (417, 2, 1, 0)
    assert report.stored == 417 - 2 - 1
    assert (report.ml_calls, report.skipped, report.errors) == (7, "", [])
    # Stored once each, from the missed feeds, and the known one left as it was.
    recovered = Notification.objects.filter(source="missed_feeds")
    assert recovered.count() == report.stored
    assert Notification.objects.count() == report.stored + 1
    assert Notification.objects.get(ml_id=known["_id"]).source == "webhook"
    assert not Notification.objects.filter(ml_id=foreign["_id"]).exists()
    assert set(recovered.values_list("status", flat=True)) == {"pending"}
    assert recovered.get(topic="items", account=argentina).attempts == 5


def test_recovery_is_skipped_without_a_numeric_application_id(ml_account, ml, settings):
    settings.ML_APPLICATION_ID = None

    report = notifications.recover_missed_feeds()

    assert report.skipped and report.fetched == 0
    assert len(ml.calls) == 0


def test_recovery_is_skipped_without_a_connected_account(user, ml):
    MLAccountFactory(owner=user, status="expired")

    report = notifications.recover_missed_feeds()

    assert report.skipped and len(ml.calls) == 0


def test_recovery_goes_on_after_one_topic_fails(ml_account, ml):
    feeds = MissedFeeds({("orders_v2", None): [_message(ml_account.ml_user_id, "orders_v2")]})
    error = {"message": "bad", "error": "bad_request", "status": 400, "cause": []}
    ml.add(responses.GET, MISSED_FEEDS_URL, json=error, status=400)  # the first topic, questions
    ml.add_callback(responses.GET, MISSED_FEEDS_URL, callback=feeds)

    report = notifications.recover_missed_feeds()

    assert report.errors and report.errors[0].startswith("questions")
    assert report.stored == 1
    assert Notification.objects.get().topic == "orders_v2"


def test_a_missed_message_without_an_id_is_stored_once_across_recovery_runs(ml_account, ml):
    message = _message(ml_account.ml_user_id, received="2026-12-06T10:00:00.000Z")
    del message["_id"]
    feeds = MissedFeeds({("questions", None): [message]})
    ml.add_callback(responses.GET, MISSED_FEEDS_URL, callback=feeds)

    first = notifications.recover_missed_feeds()
    second = notifications.recover_missed_feeds()

    assert (first.stored, first.duplicates) == (1, 0)
    assert (second.stored, second.duplicates) == (0, 1)
    note = Notification.objects.get()
    assert note.ml_id.startswith("mf-") and note.resource == message["resource"]


# --- cleanup and the call counter ---------------------------------------------------------------------


def test_cleanup_deletes_old_finished_notifications_and_keeps_open_ones(ml_account, settings):
    settings.ML_NOTIFICATION_RETENTION_DAYS = 7
    old = timedelta(days=8)
    gone = [
        stored(ml_account, "questions", ago=old, status=status) for status in ("done", "ignored", "failed")
    ]
    kept = [
        stored(ml_account, "questions", ago=old),
        stored(
            ml_account,
            "questions",
            ago=old,
            status="processing",
            claim=uuid.uuid4(),
            claimed_at=timezone.now(),
        ),
        stored(ml_account, "questions", ago=timedelta(days=6), status="done"),
    ]

    assert services.notification_cleanup() == 3

    assert not Notification.objects.filter(pk__in=[n.pk for n in gone]).exists()
    assert Notification.objects.filter(pk__in=[n.pk for n in kept]).count() == 3


def test_the_open_notifications_of_a_removed_account_are_not_kept_forever(user, settings, kicked):
    settings.ML_NOTIFICATION_RETENTION_DAYS = 7
    account = MLAccountFactory(owner=user)
    waiting = stored(account, "questions", ago=timedelta(days=8), tries=3)
    claimed = stored(account, "items", ago=timedelta(days=8), status="processing", claim=uuid.uuid4())
    services.mlaccount_remove(account=account)  # the rows lose their account (SET NULL)

    # Nothing will ever process them (no account to claim them for) ...
    assert notifications.process_due() == 0
    # ... so the retention cleanup is their end.
    services.notification_cleanup()

    assert not Notification.objects.filter(pk__in=[waiting.pk, claimed.pk]).exists()


def test_the_daily_cleanup_job_deletes_old_notifications(ml_account, settings):
    settings.ML_NOTIFICATION_RETENTION_DAYS = 7
    stored(ml_account, "questions", ago=timedelta(days=8), status="done")
    recent = stored(ml_account, "questions", status="done")

    tasks.cleanup_events()

    assert list(Notification.objects.values_list("pk", flat=True)) == [recent.pk]


def test_calls_per_minute_averages_the_last_five_whole_minutes():
    now = 1_700_000_030.0  # half a minute into a minute
    notifications.record_calls(10, now=now - 60)
    notifications.record_calls(5, now=now - 60)
    notifications.record_calls(20, now=now - 300)  # five minutes back: still counted
    notifications.record_calls(100, now=now - 360)  # six: out of the window
    notifications.record_calls(7, now=now)  # this minute is not over: not counted yet
    notifications.record_calls(0, now=now - 120)
    notifications.record_calls(-4, now=now - 120)

    assert notifications.calls_per_minute(now=now) == (10 + 5 + 20) / 5
    assert notifications.calls_per_minute(now=now + 60) == (7 + 10 + 5) / 5
    assert notifications.calls_per_minute(now=now - 3600) == 0.0


def test_processing_counts_its_calls_for_the_dispatcher(ml_account, ml):
    answer(ml, "questions", 1)
    answer(ml, "items", 1)
    stored(ml_account, "questions")
    stored(ml_account, "items")
    started = timezone.now().timestamp()

    notifications.process_account(ml_account.pk)

    # Whichever minute the run fell in, the next minutes' average includes its two calls.
    later = started + 120
    assert notifications.calls_per_minute(now=later) == pytest.approx(2 / 5)


def test_dispatch_leaves_the_budget_notifications_use(
    user, settings, enqueued, django_capture_on_commit_callbacks
):
    settings.ML_REQUESTS_PER_SECOND = 1  # 57 calls a minute at 95 %: 14 syncs of 4 calls
    settings.SYNC_BUDGET_SHARE = 0.95
    for _ in range(20):
        MLAccountFactory(owner=user, next_sync=timezone.now() - timedelta(seconds=5))
    now = timezone.now().timestamp()
    # 160 calls over the last few minutes: 32 a minute on average, the calls of 8 syncs.
    for back in range(1, 5):
        notifications.record_calls(40, now=now - 60 * back)
    assert notifications.calls_per_minute() == 32

    with django_capture_on_commit_callbacks(execute=True):
        sent = tasks.dispatch_due_syncs()

    assert sent == 14 - 8
    assert len(enqueued.args_of("sync.tasks.sync_account")) == 6


def test_dispatch_without_notification_calls_keeps_the_whole_budget(
    user, settings, enqueued, django_capture_on_commit_callbacks
):
    settings.ML_REQUESTS_PER_SECOND = 1
    settings.SYNC_BUDGET_SHARE = 0.95
    for _ in range(20):
        MLAccountFactory(owner=user, next_sync=timezone.now() - timedelta(seconds=5))

    with django_capture_on_commit_callbacks(execute=True):
        assert tasks.dispatch_due_syncs() == 14


# --- nothing processed twice (PostgreSQL: real concurrent claims) ---------------------------------------


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_claims_hand_each_notification_to_one_run(user):
    account = MLAccountFactory(owner=user)
    rows = {stored(account, "questions").pk for _ in range(30)}

    results, errors = run_together(
        [lambda: [n.pk for n in services.notification_claim(account_id=account.pk)]] * 4, timeout=30
    )

    assert errors == []
    claimed = [pk for result in results for pk in result]
    assert sorted(claimed) == sorted(rows)


def test_recovered_notifications_do_not_count_as_arriving(ml_account, ml):
    # A notification read from the missed feeds is one ML failed to deliver: it updates the
    # count, but says nothing good about delivery, so the account keeps being polled.
    answer(ml, "questions", 7)
    stored(ml_account, "questions", source="missed_feeds")

    result = notifications.process_account(ml_account.pk)

    assert dict(result.outcomes) == {"done": 1}
    ml_account.refresh_from_db()
    assert (ml_account.cached_questions, ml_account.last_notification_at) == (7, None)
