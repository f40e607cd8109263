"""/api/ml-accounts and /api/ml-accounts/:id: list, connect, read, change, remove."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from accounts.models import MLAccount
from mlaccounts.celery import app as celery_app
from sync import ondemand
from tests.factories import MLAccountFactory, WorkspaceFactory, member
from tests.mlaccounts.api.conftest import assert_error, assert_unauthorized, body, connect_payload
from tests.mlmock import add_counts

pytestmark = pytest.mark.django_db

ACCOUNT_FIELDS = {
    "id",
    "workspaceId",  # issue 11: the account's workspace and the caller's role there
    "role",
    "mlUserId",
    "nickname",
    "email",
    "siteId",
    "accountName",
    "accountType",
    "status",
    "isPrimary",
    "syncEnabled",
    "syncInterval",
    "notificationsEnabled",
    "emailNotificationsEnabled",  # issue 16: both flags drive alerts
    "lastSync",
    "nextSync",
    "lastSyncStatus",
    "lastSyncError",
    "cachedData",
    "errorCount",
    "tokenExpiresAt",
    "lastTokenRefresh",
    "createdAt",
    "updatedAt",
}
MALFORMED_IDS = ["not-a-uuid", "123", "00000000-0000-0000-0000-00000000000g", "%20"]


def _url(account_or_id, suffix=""):
    account_id = getattr(account_or_id, "pk", account_or_id)
    return f"/api/ml-accounts/{account_id}{suffix}"


# --- list -------------------------------------------------------------------------------------


def test_list_returns_primary_first_then_oldest(alice, user, other_user):
    now = timezone.now()
    old = MLAccountFactory(owner=user, nickname="OLD")
    new = MLAccountFactory(owner=user, nickname="NEW")
    primary = MLAccountFactory(owner=user, nickname="PRIMARY", is_primary=True)
    MLAccount.objects.filter(pk=old.pk).update(created_at=now - timedelta(days=3))
    MLAccount.objects.filter(pk=new.pk).update(created_at=now - timedelta(days=1))
    MLAccountFactory(owner=other_user, nickname="NOT_MINE")

    response = alice.get("/api/ml-accounts")

    assert response.status_code == 200
    data = body(response)["data"]
    assert data["total"] == 3
    assert [a["nickname"] for a in data["accounts"]] == ["PRIMARY", "OLD", "NEW"]
    assert data["accounts"][0]["id"] == str(primary.pk)


def test_list_item_is_the_contract_account_object(alice, user):
    account = MLAccountFactory(
        owner=user,
        is_primary=True,
        ml_user_id=9_876_543_210_123,
        sync_interval=600,
        cached_products=10,
        cached_orders=4,
        cached_questions=2,
        cached_claims=1,
        cached_at=timezone.now(),
        last_sync_status="success",
    )

    item = body(alice.get("/api/ml-accounts"))["data"]["accounts"][0]

    assert set(item) == ACCOUNT_FIELDS
    assert item["id"] == str(account.pk)
    assert item["mlUserId"] == "9876543210123"
    assert item["syncInterval"] == 600_000
    assert item["lastSyncStatus"] == "success"
    assert item["lastSyncError"] is None
    assert item["cachedData"]["products"] == 10
    assert item["cachedData"]["issues"] == 3
    assert set(item["cachedData"]) == {"products", "orders", "questions", "claims", "issues", "lastUpdated"}
    # ISO 8601 with an offset.
    assert parse_datetime(item["tokenExpiresAt"]).utcoffset() is not None


def test_list_shows_never_synced_as_nulls(alice, ml_account):
    item = body(alice.get("/api/ml-accounts"))["data"]["accounts"][0]

    assert item["lastSyncStatus"] is None
    assert item["lastSync"] is None
    assert item["cachedData"] == {
        "products": None,
        "orders": None,
        "questions": None,
        "claims": None,
        "issues": None,
        "lastUpdated": None,
    }


def test_list_empty(alice):
    assert body(alice.get("/api/ml-accounts/")) == {"success": True, "data": {"accounts": [], "total": 0}}


def test_list_anonymous_is_unauthorized(api_client, ml_account):
    assert_unauthorized(api_client.get("/api/ml-accounts"))


def _queries_for_list(client) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert client.get("/api/ml-accounts").status_code == 200
    return len(queries)


def test_list_costs_the_same_queries_for_1_or_50_accounts(alice, user, django_assert_num_queries):
    MLAccountFactory(owner=user, is_primary=True)
    one = _queries_for_list(alice)
    MLAccountFactory.create_batch(49, owner=user)

    # The user (token) and the accounts: no query per row, no token decryption.
    with django_assert_num_queries(one):
        response = alice.get("/api/ml-accounts")
    assert body(response)["data"]["total"] == 50
    assert one == 2


def test_list_costs_the_same_with_many_workspaces_and_scoped_memberships(
    alice, user, django_assert_num_queries
):
    # The membership checks are subqueries of the one list query, whatever the memberships.
    MLAccountFactory(owner=user, is_primary=True)
    one = _queries_for_list(alice)
    for n in range(5):
        workspace = WorkspaceFactory()
        accounts = MLAccountFactory.create_batch(4, workspace=workspace)
        member(workspace, user, "viewer", accounts=accounts[:2] if n % 2 else None)
        MLAccountFactory.create_batch(3)  # other users' accounts, never listed

    with django_assert_num_queries(one):
        response = alice.get("/api/ml-accounts")
    assert body(response)["data"]["total"] == 1 + 3 * 4 + 2 * 2
    assert one == 2


# --- connect ----------------------------------------------------------------------------------


def test_connect_creates_the_first_account_as_primary(alice, user):
    payload = connect_payload(accountType="store", syncInterval=120_000)

    response = alice.post("/api/ml-accounts", payload)

    assert response.status_code == 201, response.content
    data = body(response)["data"]
    assert set(data) == ACCOUNT_FIELDS
    account = MLAccount.objects.get(workspace__personal_for=user)
    assert data["id"] == str(account.pk)
    assert data["mlUserId"] == "987654321012"
    assert data["accountName"] == "LOJA_NOVA"  # defaults to the nickname
    assert data["isPrimary"] is True
    assert data["syncInterval"] == 120_000
    assert data["status"] == "active"
    assert data["workspaceId"] == str(account.workspace_id) == str(user.personal_workspace.pk)
    assert data["role"] == "owner"
    assert account.sync_interval == 120
    assert account.account_type == "store"
    assert account.access_token == payload["accessToken"]
    assert account.refresh_token == payload["refreshToken"]
    assert account.ml_user_id == 987_654_321_012


def test_connect_a_second_account_is_not_primary(alice, ml_account):
    response = alice.post("/api/ml-accounts", connect_payload(accountName="Second", mlUserId=555))

    assert response.status_code == 201
    data = body(response)["data"]
    assert data["isPrimary"] is False
    assert data["accountName"] == "Second"
    assert data["mlUserId"] == "555"
    assert MLAccount.objects.get(pk=ml_account.pk).is_primary is True


def test_connect_accepts_a_sync_interval_not_in_whole_seconds(alice):
    response = alice.post("/api/ml-accounts", connect_payload(syncInterval=61_500))

    assert body(response)["data"]["syncInterval"] == 61_000
    assert MLAccount.objects.get().sync_interval == 61


def test_connect_the_same_seller_twice_is_account_exists(alice, user):
    alice.post("/api/ml-accounts", connect_payload())

    response = alice.post("/api/ml-accounts", connect_payload(accessToken="APP_USR-OTHER-secretaccess"))

    assert_error(response, 409, "ACCOUNT_EXISTS")
    assert (
        MLAccount.objects.get(workspace__personal_for=user).access_token
        == "APP_USR-CONNECT-0001-secretaccess"
    )


def test_a_seller_connected_in_another_workspace_is_refused_and_nothing_is_stored(alice, charlie, user):
    # One live grant per (application, seller) at Mercado Livre: a second row would kill the first.
    alice.post("/api/ml-accounts", connect_payload())

    response = charlie.post(
        "/api/ml-accounts", connect_payload(accessToken="APP_USR-CHARLIE", refreshToken="TG-CHARLIE")
    )

    error = assert_error(response, 409, "ACCOUNT_CONNECTED_ELSEWHERE")
    assert "workspace" in error["message"]
    assert user.personal_workspace.name not in error["message"]  # a token pair proves nothing
    account = MLAccount.objects.get(ml_user_id=987_654_321_012)
    assert account.workspace.personal_for == user
    assert account.access_token == "APP_USR-CONNECT-0001-secretaccess"
    assert not account.events.exists()


def test_connect_queues_the_first_sync(alice, user, queued, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = alice.post("/api/ml-accounts", connect_payload())

    assert response.status_code == 201
    account = MLAccount.objects.get(workspace__personal_for=user)
    assert queued == [str(account.pk)]
    assert ondemand.sync_phase(account) == "queued" and account.cached_at is None


def test_connect_shows_numbers_once_the_queued_sync_runs(alice, user, ml, django_capture_on_commit_callbacks):
    add_counts(ml, products=9, orders=4, questions=1, claims=0)
    previous = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    try:
        with django_capture_on_commit_callbacks(execute=True):
            alice.post("/api/ml-accounts", connect_payload())
    finally:
        celery_app.conf.task_always_eager = previous

    data = body(alice.get("/api/ml-accounts"))["data"]["accounts"][0]
    assert data["lastSyncStatus"] == "success" and data["lastSync"] is not None
    assert data["cachedData"]["products"] == 9


def test_connect_refused_queues_nothing(alice, charlie, queued, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        alice.post("/api/ml-accounts", connect_payload())
    queued.clear()

    with django_capture_on_commit_callbacks(execute=True):
        again = alice.post("/api/ml-accounts", connect_payload())
        elsewhere = charlie.post("/api/ml-accounts", connect_payload())
        invalid = alice.post("/api/ml-accounts", connect_payload(mlUserId="12ab"))

    assert_error(again, 409, "ACCOUNT_EXISTS")
    assert_error(elsewhere, 409, "ACCOUNT_CONNECTED_ELSEWHERE")
    assert invalid.status_code == 400
    assert queued == []


def test_connect_names_every_missing_field(alice):
    response = alice.post("/api/ml-accounts", {})

    errors = assert_error(response, 400, "VALIDATION_ERROR")["errors"]
    assert set(errors) == {"mlUserId", "nickname", "email", "accessToken", "refreshToken", "tokenExpiresAt"}
    assert not MLAccount.objects.exists()


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"mlUserId": [1]}, "mlUserId"),
        ({"mlUserId": "12a"}, "mlUserId"),
        ({"mlUserId": 0}, "mlUserId"),
        ({"mlUserId": -5}, "mlUserId"),
        ({"mlUserId": True}, "mlUserId"),
        ({"mlUserId": 10**30}, "mlUserId"),
        ({"mlUserId": "9" * 5000}, "mlUserId"),
        ({"mlUserId": 1.5}, "mlUserId"),
        ({"nickname": ""}, "nickname"),
        ({"nickname": 42}, "nickname"),
        ({"nickname": "x" * 1_000_000}, "nickname"),
        ({"nickname": "bad\x00byte"}, "nickname"),
        ({"email": "nope"}, "email"),
        ({"accessToken": ""}, "accessToken"),
        ({"accessToken": {"a": 1}}, "accessToken"),
        ({"refreshToken": None}, "refreshToken"),
        ({"tokenExpiresAt": "2026-13-45"}, "tokenExpiresAt"),
        ({"tokenExpiresAt": "9999-12-31T23:59:59-12:00"}, "tokenExpiresAt"),
        ({"tokenExpiresAt": "0001-01-01T00:00:00+14:00"}, "tokenExpiresAt"),
        ({"tokenExpiresAt": 1700000000}, "tokenExpiresAt"),
        ({"accountType": "enterprise"}, "accountType"),
        ({"accountType": ["store"]}, "accountType"),
        ({"syncInterval": 59_999}, "syncInterval"),
        ({"syncInterval": 10**30}, "syncInterval"),
        ({"syncInterval": "300000"}, "syncInterval"),
        ({"syncInterval": 300000.5}, "syncInterval"),
        ({"syncInterval": True}, "syncInterval"),
        ({"accountName": "x" * 256}, "accountName"),
        ({"siteId": "M1"}, "siteId"),
    ],
)
def test_connect_rejects_invalid_values_naming_the_field(alice, overrides, field):
    response = alice.post("/api/ml-accounts", connect_payload(**overrides))

    errors = assert_error(response, 400, "VALIDATION_ERROR")["errors"]
    assert field in errors
    assert not MLAccount.objects.exists()


@pytest.mark.parametrize("raw", ["[]", '"text"', "null", "42", "[{}]"])
def test_connect_rejects_a_body_that_is_not_an_object(alice, raw):
    response = alice.post("/api/ml-accounts", raw, content_type="application/json")

    assert_error(response, 400, "VALIDATION_ERROR")


def test_connect_accepts_a_naive_expiry_and_another_site(alice):
    response = alice.post(
        "/api/ml-accounts", connect_payload(tokenExpiresAt="2030-01-01T10:00:00", siteId="mla")
    )

    assert response.status_code == 201, response.content
    assert body(response)["data"]["siteId"] == "MLA"


def test_connect_ignores_unknown_fields(alice):
    response = alice.post("/api/ml-accounts", connect_payload(status="expired", isPrimary=False, owner=99))

    assert response.status_code == 201
    account = MLAccount.objects.get()
    assert (account.status, account.is_primary) == ("active", True)


def test_connect_anonymous_is_unauthorized(api_client):
    assert_unauthorized(api_client.post("/api/ml-accounts", connect_payload()))
    assert not MLAccount.objects.exists()


# --- read ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", ["", "/"])
def test_get_returns_the_account(alice, ml_account, suffix):
    response = alice.get(_url(ml_account, suffix))

    assert response.status_code == 200
    data = body(response)["data"]
    assert set(data) == ACCOUNT_FIELDS
    assert data["id"] == str(ml_account.pk)
    assert data["accountName"] == "Loja da Alice"


def test_get_another_users_account_is_not_found(charlie, ml_account):
    assert_error(charlie.get(_url(ml_account)), 404, "NOT_FOUND")


@pytest.mark.parametrize("account_id", [*MALFORMED_IDS, "9b2f7e0c-5d35-4a63-9a38-3c1b2f9b0c11"])
def test_get_a_malformed_or_missing_id_is_not_found(alice, ml_account, account_id):
    assert_error(alice.get(_url(account_id)), 404, "NOT_FOUND")


def test_get_anonymous_is_unauthorized(api_client, ml_account):
    assert_unauthorized(api_client.get(_url(ml_account)))


# --- change -------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["put", "patch"])
def test_update_changes_the_settings_sent(alice, ml_account, method):
    response = getattr(alice, method)(
        _url(ml_account),
        {
            "accountName": "Renamed",
            "accountType": "business",
            "syncInterval": 900_000,
            "notificationsEnabled": False,
        },
    )

    assert response.status_code == 200, response.content
    data = body(response)["data"]
    assert (data["accountName"], data["accountType"], data["syncInterval"]) == (
        "Renamed",
        "business",
        900_000,
    )
    assert data["notificationsEnabled"] is False
    ml_account.refresh_from_db()
    assert (ml_account.account_name, ml_account.account_type) == ("Renamed", "business")
    assert ml_account.sync_interval == 900
    assert ml_account.notifications_enabled is False


@pytest.mark.parametrize("method", ["put", "patch"])
def test_both_alert_flags_default_on_and_are_set_through_put_and_patch(alice, ml_account, method):
    data = body(alice.get(_url(ml_account)))["data"]
    assert (data["notificationsEnabled"], data["emailNotificationsEnabled"]) == (True, True)

    response = getattr(alice, method)(_url(ml_account), {"emailNotificationsEnabled": False})

    assert response.status_code == 200, response.content
    data = body(response)["data"]
    assert (data["notificationsEnabled"], data["emailNotificationsEnabled"]) == (True, False)
    ml_account.refresh_from_db()
    assert (ml_account.notifications_enabled, ml_account.email_notifications_enabled) == (True, False)


def test_update_touches_only_the_fields_sent(alice, ml_account):
    response = alice.patch(_url(ml_account), {"accountType": "store"})

    assert body(response)["data"]["accountName"] == "Loja da Alice"
    ml_account.refresh_from_db()
    assert (ml_account.account_name, ml_account.account_type) == ("Loja da Alice", "store")


def test_update_with_an_empty_body_changes_nothing(alice, ml_account):
    response = alice.put(_url(ml_account), {})

    assert response.status_code == 200
    assert body(response)["data"]["accountName"] == "Loja da Alice"


def test_update_is_primary_demotes_the_previous_primary(alice, user, ml_account):
    second = MLAccountFactory(owner=user)

    response = alice.put(_url(second), {"isPrimary": True})

    assert body(response)["data"]["isPrimary"] is True
    assert list(
        MLAccount.objects.filter(workspace__personal_for=user, is_primary=True).values_list("pk", flat=True)
    ) == [second.pk]
    assert body(alice.get("/api/ml-accounts"))["data"]["accounts"][0]["id"] == str(second.pk)


def test_update_is_primary_false_is_refused(alice, ml_account):
    response = alice.patch(_url(ml_account), {"isPrimary": False})

    errors = assert_error(response, 400, "VALIDATION_ERROR")["errors"]
    assert set(errors) == {"isPrimary"}
    assert MLAccount.objects.get(pk=ml_account.pk).is_primary is True


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"accountName": ""}, "accountName"),
        ({"accountName": None}, "accountName"),
        ({"accountName": 12}, "accountName"),
        ({"accountName": "x" * 1_000_000}, "accountName"),
        ({"accountType": "other"}, "accountType"),
        ({"syncInterval": 1000}, "syncInterval"),
        ({"syncInterval": 10**30}, "syncInterval"),
        ({"syncInterval": "600000"}, "syncInterval"),
        ({"syncInterval": None}, "syncInterval"),
        ({"isPrimary": "true"}, "isPrimary"),
        ({"isPrimary": 1}, "isPrimary"),
        ({"notificationsEnabled": "no"}, "notificationsEnabled"),
        ({"notificationsEnabled": [False]}, "notificationsEnabled"),
        ({"emailNotificationsEnabled": "false"}, "emailNotificationsEnabled"),
        ({"emailNotificationsEnabled": 0}, "emailNotificationsEnabled"),
        ({"emailNotificationsEnabled": None}, "emailNotificationsEnabled"),
    ],
)
def test_update_rejects_wrong_values_naming_the_field(alice, ml_account, payload, field):
    response = alice.patch(_url(ml_account), payload)

    errors = assert_error(response, 400, "VALIDATION_ERROR")["errors"]
    assert field in errors
    ml_account.refresh_from_db()
    assert (ml_account.account_name, ml_account.sync_interval) == ("Loja da Alice", 300)


def test_update_ignores_unknown_and_read_only_fields(alice, ml_account):
    response = alice.patch(
        _url(ml_account), {"status": "expired", "mlUserId": "1", "accessToken": "x", "foo": 1}
    )

    assert response.status_code == 200
    ml_account.refresh_from_db()
    assert ml_account.status == "active"
    assert ml_account.ml_user_id != 1


@pytest.mark.parametrize("raw", ["[]", '"x"', "null"])
def test_update_rejects_a_body_that_is_not_an_object(alice, ml_account, raw):
    assert_error(alice.patch(_url(ml_account), raw, content_type="application/json"), 400, "VALIDATION_ERROR")


def test_update_another_users_account_is_not_found(charlie, ml_account):
    response = charlie.put(_url(ml_account), {"accountName": "Hijacked"})

    assert_error(response, 404, "NOT_FOUND")
    assert MLAccount.objects.get(pk=ml_account.pk).account_name == "Loja da Alice"


@pytest.mark.parametrize("account_id", MALFORMED_IDS)
def test_update_a_malformed_id_is_not_found(alice, account_id):
    assert_error(alice.patch(_url(account_id), {"accountName": "x"}), 404, "NOT_FOUND")


def test_update_anonymous_is_unauthorized(api_client, ml_account):
    assert_unauthorized(api_client.patch(_url(ml_account), {"accountName": "x"}))


# --- remove -------------------------------------------------------------------------------------


def test_delete_removes_the_account_and_promotes_the_oldest(alice, user, ml_account):
    older = MLAccountFactory(owner=user)
    newer = MLAccountFactory(owner=user)
    MLAccount.objects.filter(pk=older.pk).update(created_at=timezone.now() - timedelta(days=2))

    response = alice.delete(_url(ml_account))

    assert response.status_code == 200
    payload = body(response)
    assert payload["success"] is True
    assert isinstance(payload["message"], str) and payload["message"]
    assert not MLAccount.objects.filter(pk=ml_account.pk).exists()
    assert MLAccount.objects.get(pk=older.pk).is_primary is True
    assert MLAccount.objects.get(pk=newer.pk).is_primary is False


def test_delete_another_users_account_is_not_found(charlie, ml_account):
    assert_error(charlie.delete(_url(ml_account)), 404, "NOT_FOUND")
    assert MLAccount.objects.filter(pk=ml_account.pk).exists()


@pytest.mark.parametrize("account_id", MALFORMED_IDS)
def test_delete_a_malformed_id_is_not_found(alice, account_id):
    assert_error(alice.delete(_url(account_id)), 404, "NOT_FOUND")


def test_delete_twice_is_not_found(alice, ml_account):
    alice.delete(_url(ml_account))

    assert_error(alice.delete(_url(ml_account)), 404, "NOT_FOUND")


def test_delete_anonymous_is_unauthorized(api_client, ml_account):
    assert_unauthorized(api_client.delete(_url(ml_account)))
    assert MLAccount.objects.filter(pk=ml_account.pk).exists()
