"""POST /webhooks/mercadolivre/<secret>/: ML's notifications callback (mlaccounts/views/webhooks.py).

No login: the secret path segment is the credential. ML is the root `ml` mock with nothing
registered, so any call to ML from the request fails the test; the processing task is
recorded, never sent.
"""

import json

import pytest
from django.test import Client

from accounts.models import Notification
from accounts.services.notifications import UNKNOWN_USER
from tests.factories import MLAccountFactory
from tests.notification_helpers import APP_ID, SECRET, general_body, typified_body, use_fresh_cache

pytestmark = pytest.mark.django_db

URL = f"/webhooks/mercadolivre/{SECRET}/"
# One SELECT for the seller's account, one INSERT: no session, no user, no lock.
VALID_POST_QUERIES = 2


@pytest.fixture(autouse=True)
def _webhook_settings(settings):
    use_fresh_cache(settings)
    settings.ML_WEBHOOK_SECRET = SECRET
    settings.ML_APPLICATION_ID = APP_ID
    settings.ML_NOTIFICATION_MERGE_SECONDS = 1.0


def post(client, payload, url=URL):
    data = payload if isinstance(payload, bytes | str) else json.dumps(payload)
    return client.post(url, data=data, content_type="application/json")


def assert_bad_request(response):
    assert response.status_code == 400, response.content
    assert response["Content-Type"] == "application/json"
    payload = response.json()
    assert payload["error"] == "bad_request" and payload["message"]


# --- who may post ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "secret", ["wrong-secret-0123456789abcdef", SECRET[:-1], SECRET + "x", SECRET.upper(), "x"]
)
def test_a_wrong_secret_is_a_404_and_stores_nothing(client, ml, ml_account, kicked, secret):
    response = post(
        client, general_body(user_id=ml_account.ml_user_id), url=f"/webhooks/mercadolivre/{secret}/"
    )

    assert response.status_code == 404
    assert response.json() == {"error": "not_found"}
    assert not Notification.objects.exists()
    assert kicked == []


def test_without_a_configured_secret_every_secret_is_a_404(client, ml, ml_account, settings):
    settings.ML_WEBHOOK_SECRET = ""

    for url in (URL, "/webhooks/mercadolivre/anything-at-all-123456/", "/webhooks/mercadolivre/%20/"):
        response = post(client, general_body(user_id=ml_account.ml_user_id), url=url)
        assert response.status_code == 404, url
    assert not Notification.objects.exists()


def test_get_with_the_right_secret_is_a_405(client, ml):
    response = client.get(URL)

    assert response.status_code == 405
    assert response["Allow"] == "POST"
    assert client.get("/webhooks/mercadolivre/wrong-secret-0123456789/").status_code == 404


@pytest.mark.parametrize("url", [URL, URL.rstrip("/")])
def test_the_trailing_slash_is_optional(client, ml, ml_account, kicked, url):
    response = post(client, general_body(user_id=ml_account.ml_user_id), url=url)

    assert response.status_code == 200
    assert Notification.objects.count() == 1


def test_the_csrf_check_does_not_apply(ml, ml_account, kicked):
    client = Client(enforce_csrf_checks=True)

    response = post(client, general_body(user_id=ml_account.ml_user_id))

    assert response.status_code == 200
    assert Notification.objects.count() == 1


# --- what is refused ----------------------------------------------------------------------------------


def _nested(depth: int) -> str:
    return "[" * depth + "]" * depth


@pytest.mark.parametrize(
    "payload",
    [
        b"",
        b"topic=orders_v2&resource=/orders/1",
        b"{not json",
        b"\xff\xfe\x00",
        b"[]",
        b'[{"topic": "orders_v2", "resource": "/orders/1", "user_id": 1}]',
        b'"orders_v2"',
        b"42",
        b"null",
        {"resource": "/orders/1", "user_id": 1},
        {"topic": "orders_v2", "user_id": 1},
        {"topic": "orders_v2", "resource": "/orders/1"},
        {"topic": "orders_v2", "resource": "/orders/1", "user_id": 0},
        {"topic": "orders_v2", "resource": "/orders/1", "user_id": -5},
        {"topic": "orders_v2", "resource": "/orders/1", "user_id": "-5"},
        {"topic": "orders_v2", "resource": "/orders/1", "user_id": "seller"},
        {"topic": "orders_v2", "resource": "/orders/1", "user_id": 1.5},
        {"topic": "orders_v2", "resource": "/orders/1", "user_id": None},
        {"topic": "orders_v2", "resource": "/orders/1", "user_id": 2**64},
        _nested(5000).encode(),
        (
            '{"topic": "orders_v2", "resource": "/orders/1", "user_id": 1, "x": ' + _nested(3000) + "}"
        ).encode(),
    ],
    ids=lambda p: repr(p)[:40],
)
def test_what_is_not_a_notification_is_a_400_and_stores_nothing(client, ml, ml_account, kicked, payload):
    response = post(client, payload)

    assert_bad_request(response)
    assert not Notification.objects.exists()
    assert kicked == []


def test_a_body_over_16_kib_is_a_400(client, ml, ml_account, kicked):
    payload = general_body(user_id=ml_account.ml_user_id, padding="x" * (16 * 1024))
    assert len(json.dumps(payload)) > 16 * 1024

    response = post(client, payload)

    assert_bad_request(response)
    assert "large" in response.json()["message"]
    assert not Notification.objects.exists()


def test_a_body_of_just_16_kib_is_taken(client, ml, ml_account, kicked):
    payload = general_body(user_id=ml_account.ml_user_id, padding="")
    payload["padding"] = "x" * (16 * 1024 - len(json.dumps(payload)))
    assert len(json.dumps(payload)) == 16 * 1024

    assert post(client, payload).status_code == 200
    assert Notification.objects.get().body["padding"] == payload["padding"]


@pytest.mark.parametrize("depth", [50, 200, 400, 700, 900, 990])
def test_nesting_inside_a_notification_never_causes_a_500(client, ml, ml_account, kicked, depth):
    raw = json.dumps(general_body(user_id=ml_account.ml_user_id))[:-1] + ', "extra": ' + _nested(depth) + "}"

    response = post(client, raw.encode())

    # Stored (the extra field kept as it came) or refused as not JSON: never a server error.
    assert response.status_code in (200, 400), response.status_code
    assert Notification.objects.count() == (1 if response.status_code == 200 else 0)


@pytest.mark.parametrize("character", ["\u0000", "\ud800"], ids=["nul", "lone-surrogate"])
@pytest.mark.parametrize("field", ["resource", "topic", "_id", "extra"])
def test_text_the_database_cannot_store_is_never_a_500(client, ml, ml_account, kicked, field, character):
    # Valid JSON (`\u0000`, `\ud800` escapes), but PostgreSQL refuses NUL in text and jsonb,
    # and neither database can encode a lone surrogate as UTF-8.
    body = general_body(user_id=ml_account.ml_user_id)
    body[field] = body.get(field, "x") + character
    client.raise_request_exception = False

    response = post(client, body)

    assert response.status_code in (200, 400), response.status_code
    assert Notification.objects.count() == (1 if response.status_code == 200 else 0)


# --- what is taken -------------------------------------------------------------------------------------


def test_another_applications_notification_is_answered_and_dropped(client, ml, ml_account, kicked):
    response = post(client, general_body(user_id=ml_account.ml_user_id, application_id=APP_ID + 1))

    assert response.status_code == 200
    assert response.json() == {"status": "foreign"}
    assert not Notification.objects.exists()
    assert kicked == []


def test_an_unknown_sellers_notification_is_answered_and_stored_ignored(
    client, ml, ml_account, kicked, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = post(client, general_body(user_id=987_654_321))

    assert response.status_code == 200
    assert response.json() == {"status": "ignored"}
    row = Notification.objects.get()
    assert (row.status, row.reason, row.account_id, row.ml_user_id) == (
        "ignored",
        UNKNOWN_USER,
        None,
        987_654_321,
    )
    assert kicked == []


def test_the_general_model_is_stored_pending_and_processing_queued_once(
    client, ml, ml_account, kicked, django_capture_on_commit_callbacks
):
    body = general_body(user_id=ml_account.ml_user_id, resource="/orders/2000009876543210")

    with django_capture_on_commit_callbacks(execute=True):
        response = post(client, body)
    with django_capture_on_commit_callbacks(execute=True):
        burst = [post(client, general_body(user_id=ml_account.ml_user_id)) for _ in range(4)]

    assert response.status_code == 200
    assert response.json() == {"status": "stored"}
    assert {r.status_code for r in burst} == {200}
    row = Notification.objects.get(ml_id=body["_id"])
    assert (row.status, row.source, row.account_id) == ("pending", "webhook", ml_account.pk)
    assert (row.topic, row.resource, row.ml_user_id, row.application_id, row.attempts) == (
        "orders_v2",
        "/orders/2000009876543210",
        ml_account.ml_user_id,
        APP_ID,
        1,
    )
    assert row.received_at.isoformat() == "2025-03-10T16:19:20.106000+00:00"
    assert row.sent_at.isoformat() == "2025-03-10T16:19:20.129000+00:00"
    assert row.body == body
    assert Notification.objects.filter(status="pending").count() == 5
    # One processing task for the burst, a merge window ahead.
    assert kicked == [((str(ml_account.pk),), {"countdown": 1.0})]


def test_the_typified_model_is_stored_pending(
    client, ml, ml_account, kicked, django_capture_on_commit_callbacks
):
    body = typified_body(user_id=ml_account.ml_user_id)

    with django_capture_on_commit_callbacks(execute=True):
        response = post(client, body)

    assert response.status_code == 200 and response.json() == {"status": "stored"}
    row = Notification.objects.get()
    assert (row.ml_id, row.topic, row.ml_user_id, row.attempts) == (
        body["id"],
        "post_purchase",
        ml_account.ml_user_id,
        2,
    )
    assert row.body["actions"] == ["claims"]
    assert row.status == "pending"
    assert kicked == [((str(ml_account.pk),), {"countdown": 1.0})]


def test_a_retried_delivery_is_answered_and_stored_once(client, ml, ml_account, kicked):
    body = general_body(user_id=ml_account.ml_user_id)

    first = post(client, body)
    again = post(client, {**body, "attempts": 2})

    assert (first.status_code, again.status_code) == (200, 200)
    assert Notification.objects.get().attempts == 1


@pytest.mark.parametrize("accounts", [1, 50])
def test_a_valid_post_costs_the_same_queries_however_many_accounts(
    client, ml, user, kicked, django_assert_num_queries, accounts
):
    sellers = MLAccountFactory.create_batch(accounts, owner=user)

    with django_assert_num_queries(VALID_POST_QUERIES) as captured:
        response = post(client, general_body(user_id=sellers[-1].ml_user_id))

    assert response.status_code == 200
    sql = " ".join(query["sql"].upper() for query in captured.captured_queries)
    assert "FOR UPDATE" not in sql
    assert Notification.objects.get().account_id == sellers[-1].pk


def test_no_log_line_carries_the_secret(client, ml_account, kicked, caplog):
    caplog.set_level("DEBUG")

    post(client, general_body(user_id=ml_account.ml_user_id))
    client.post(URL, data=b"{not json", content_type="application/json")
    client.get(URL)
    post(client, general_body(user_id=ml_account.ml_user_id, application_id=APP_ID + 1))

    assert caplog.records  # the refusals and the foreign notification are logged…
    assert all(SECRET not in record.getMessage() for record in caplog.records)  # …without the path
    assert all(SECRET not in str(record.__dict__) for record in caplog.records)
