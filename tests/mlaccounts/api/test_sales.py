"""Sales and reputation through the API (issue 15): one account's metrics and the totals.

Alice owns a Brazilian and an Argentine store; Charlie is the outsider. Orders are stored in
the mirror as the sync would store them (services.order_mirror_store), with fixed dates
around a frozen `now`.
"""

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts import services
from accounts.mercadolivre import sales as ml_sales
from accounts.models import ReputationSnapshot
from tests.factories import MLAccountFactory, UserFactory, WorkspaceFactory, member
from tests.mlaccounts.api.conftest import assert_error, assert_unauthorized, body, client_for
from tests.mlmock import order_json

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 20, 15, 0, tzinfo=UTC)
FIGURES = {"revenue", "orders", "averageTicket", "cancelled", "fees", "netRevenue"}
# The user (bearer token), the access check, then the figures, the days and the reputation.
METRICS_QUERIES = 5
# The user, the totals, the account count.
SUMMARY_QUERIES = 3


@pytest.fixture(autouse=True)
def frozen_now(monkeypatch):
    monkeypatch.setattr(timezone, "now", lambda: NOW)


def sell(account, n, *, amount, currency="BRL", status="paid", ago=timedelta(hours=5), fee="0"):
    body = order_json(n, status=status) | {
        "id": 9_100_000 + n,
        "total_amount": amount,
        "currency_id": currency,
        "date_created": (NOW - ago).isoformat(),
        "order_items": [{"quantity": 1, "unit_price": amount, "sale_fee": fee}],
    }
    services.order_mirror_store(account_id=account.pk, orders=[ml_sales.parse_order(body)])


@pytest.fixture
def stores(user):
    brazil = MLAccountFactory(owner=user, site_id="MLB", account_name="Loja BR")
    argentina = MLAccountFactory(
        owner=user, workspace=brazil.workspace, site_id="MLA", account_name="Tienda AR"
    )
    sell(brazil, 1, amount="120.00", fee="14.40")
    sell(brazil, 2, amount="80.00", fee="9.60", ago=timedelta(days=3))
    sell(brazil, 3, amount="999.00", status="cancelled")
    sell(brazil, 4, amount="50.00", ago=timedelta(days=40))  # the previous 30 days
    sell(argentina, 5, amount="45000.00", currency="ARS")
    return brazil, argentina


def metrics(client, account, **params):
    return client.get(f"/api/ml-accounts/{account.pk}/metrics", params)


def test_an_accounts_metrics_are_decimal_strings_in_its_currency(user, stores):
    brazil, _ = stores
    ReputationSnapshot.objects.create(
        account=brazil,
        day=date(2026, 11, 20),
        taken_at=NOW,
        level_id="5_green",
        power_seller_status="gold",
        claims_rate=Decimal("0.0166"),
        delayed_handling_rate=Decimal("0.0877"),
        cancellations_rate=Decimal("0"),
    )

    response = metrics(client_for(user), brazil)

    assert response.status_code == 200
    data = body(response)["data"]
    assert set(data) == {"days", "currency", *FIGURES, "previous", "daily", "reputation"}
    assert (data["days"], data["currency"]) == (30, "BRL")
    assert (data["revenue"], data["orders"], data["averageTicket"]) == ("200.00", 2, "100.00")
    assert (data["cancelled"], data["fees"], data["netRevenue"]) == (1, "24.00", "176.00")
    assert data["previous"] == {
        "revenue": "50.00",
        "orders": 1,
        "averageTicket": "50.00",
        "cancelled": 0,
        "fees": "0.00",
        "netRevenue": "50.00",
    }
    assert len(data["daily"]) == 30
    assert data["daily"][-1] == {"date": "2026-11-20", "revenue": "120.00", "orders": 1}
    assert data["daily"][-4] == {"date": "2026-11-17", "revenue": "80.00", "orders": 1}
    assert data["reputation"] == {
        "day": "2026-11-20",
        "levelId": "5_green",
        "realLevel": None,
        "powerSellerStatus": "gold",
        "claimsRate": "0.01660",
        "delayedHandlingRate": "0.08770",
        "cancellationsRate": "0.00000",
        "protectionEndDate": None,
    }


def test_a_window_of_one_day_and_an_account_without_sales(user, stores):
    _, argentina = stores
    empty = MLAccountFactory(owner=user, workspace=argentina.workspace, site_id="MLM")

    data = body(metrics(client_for(user), argentina, days=1))["data"]
    assert (data["currency"], data["revenue"], data["orders"], len(data["daily"])) == (
        "ARS",
        "45000.00",
        1,
        1,
    )

    data = body(metrics(client_for(user), empty, days=7))["data"]
    assert (data["currency"], data["revenue"], data["averageTicket"], data["reputation"]) == (
        "MXN",
        "0.00",
        None,
        None,
    )
    assert [d["orders"] for d in data["daily"]] == [0] * 7


@pytest.mark.parametrize("days", ["0", "91", "-1", "abc", "1.5", " 7", "٧", "9" * 30, ""])
def test_days_out_of_range_or_not_a_number_is_a_validation_error(user, stores, days):
    brazil, _ = stores
    client = client_for(user)
    error = assert_error(metrics(client, brazil, days=days), 400, "VALIDATION_ERROR")
    assert "days" in error["errors"]
    assert_error(client.get("/api/metrics/summary", {"days": days}), 400, "VALIDATION_ERROR")


def test_anonymous_callers_are_refused(stores, api_client):
    brazil, _ = stores
    assert_unauthorized(api_client.get(f"/api/ml-accounts/{brazil.pk}/metrics"))
    assert_unauthorized(api_client.get("/api/metrics/summary"))


@pytest.mark.parametrize("account_id", ["theirs", "not-a-uuid", "00000000-0000-0000-0000-000000000000"])
def test_outsiders_and_malformed_ids_get_404(stores, other_user, account_id):
    brazil, _ = stores
    target = brazil.pk if account_id == "theirs" else account_id
    assert_error(client_for(other_user).get(f"/api/ml-accounts/{target}/metrics"), 404, "NOT_FOUND")


def test_the_summary_gives_one_total_per_currency_and_only_what_the_caller_sees(user, stores, other_user):
    data = body(client_for(user).get("/api/metrics/summary", {"days": 30}))["data"]

    assert (data["days"], data["accounts"]) == (30, 2)
    assert [(t["currency"], t["revenue"], t["orders"]) for t in data["totals"]] == [
        ("BRL", "200.00", 2),
        ("ARS", "45000.00", 1),
    ]
    assert data["totals"][0]["previous"]["revenue"] == "50.00"
    assert set(data["totals"][0]) == {"currency", *FIGURES, "previous"}

    outsider = body(client_for(other_user).get("/api/metrics/summary"))["data"]
    assert outsider == {"days": 30, "accounts": 0, "totals": []}


def test_the_summary_of_one_workspace_and_of_one_the_caller_is_not_in(user, stores, other_user):
    brazil, _ = stores
    elsewhere = WorkspaceFactory(name="Outra")
    member(elsewhere, user, "viewer")
    sell(MLAccountFactory(workspace=elsewhere), 6, amount="10.00")
    client = client_for(user)

    data = body(client.get("/api/metrics/summary", {"workspaceId": str(elsewhere.pk)}))["data"]
    assert [(t["currency"], t["revenue"]) for t in data["totals"]] == [("BRL", "10.00")]
    assert body(client.get("/api/metrics/summary"))["data"]["accounts"] == 3

    assert_error(
        client_for(other_user).get("/api/metrics/summary", {"workspaceId": str(brazil.workspace_id)}),
        404,
        "NOT_FOUND",
    )
    assert_error(client.get("/api/metrics/summary", {"workspaceId": "nope"}), 404, "NOT_FOUND")


@pytest.mark.parametrize("accounts", [2, 40])
def test_the_query_count_does_not_grow_with_accounts_or_orders(user, accounts):
    workspace = WorkspaceFactory()
    member(workspace, user, "owner")
    first = None
    for n in range(accounts):
        account = MLAccountFactory(workspace=workspace)
        first = first or account
        for k in range(3):
            sell(account, n * 10 + k, amount="10.00", ago=timedelta(days=k * 20, hours=1))
    client = client_for(user)

    with CaptureQueriesContext(connection) as queries:
        assert metrics(client, first).status_code == 200
    assert len(queries.captured_queries) == METRICS_QUERIES
    with CaptureQueriesContext(connection) as queries:
        response = client.get("/api/metrics/summary")
    assert len(queries.captured_queries) == SUMMARY_QUERIES
    assert body(response)["data"]["totals"][0]["orders"] == accounts * 2


def test_a_viewer_reads_the_metrics_of_the_accounts_in_scope(stores):
    brazil, _ = stores
    victor = UserFactory(email="victor@example.com")
    member(brazil.workspace, victor, "viewer")

    assert metrics(client_for(victor), brazil).status_code == 200
