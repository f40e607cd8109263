"""resources.py: /users/me and the four dashboard counts (§3, §4), and their errors (§2, §5.1)."""

from datetime import UTC, datetime, timedelta, timezone
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from accounts.mercadolivre import resources, sandbox
from accounts.mercadolivre.errors import (
    MLBadRequest,
    MLBadResponse,
    MLForbidden,
    MLRateLimited,
    MLUnauthorized,
    MLUnavailable,
)
from accounts.mercadolivre.sandbox.sellers import standing_orders
from tests.mlmock import API, load_fixture, ml_error

# Every answer registered on the `ml` mock must be asked for.
pytestmark = pytest.mark.ml_every_answer_used

# Every §4.2 order status but cancelled and invalid: the sales "orders (30 days)" counts.
NOT_CANCELLED = (
    "confirmed,payment_required,payment_in_process,partially_paid,paid,partially_refunded,pending_cancel"
)
TOKEN = "APP_USR-1234567890123456-031418-0a1b2c3d4e5f60718293a4b5c6d7e8f9-987654321"
SELLER = 987654321


def sent(call) -> tuple[str, str, dict[str, list[str]]]:
    """Return (method, path, query) of a recorded request."""
    parts = urlsplit(call.request.url)
    return call.request.method, parts.path, parse_qs(parts.query)


def assert_bearer_only(call) -> None:
    assert call.request.headers["Authorization"] == f"Bearer {TOKEN}"
    assert TOKEN not in call.request.url
    assert "access_token" not in call.request.url


# --- /users/me ----------------------------------------------------------------------------------


def test_users_me_reads_the_seller(ml):
    ml.get(f"{API}/users/me", json=load_fixture("users_me"))

    user = resources.users_me(TOKEN)

    assert user == resources.MLUser(
        id=1234567890,
        nickname="TESTSELLER123",
        email="test_user_12345678@testuser.com",
        site_id="MLA",
        first_name="Test",
        last_name="Test",
    )
    assert sent(ml.calls[0]) == ("GET", "/users/me", {})
    assert_bearer_only(ml.calls[0])


def test_users_me_accepts_a_string_id_and_partial_content(ml):
    body = {**load_fixture("users_me"), "id": "9876543210123"}
    del body["seller_reputation"]
    ml.get(f"{API}/users/me", json=body, status=206)

    user = resources.users_me(TOKEN)

    assert user.id == 9876543210123


def test_users_me_tolerates_missing_optional_fields(ml):
    ml.get(f"{API}/users/me", json={"id": 5, "nickname": "LOJA", "site_id": "MLB", "email": None})

    user = resources.users_me(TOKEN)

    assert (user.email, user.first_name, user.last_name) == ("", "", "")


@pytest.mark.parametrize(
    "change",
    [{"id": None}, {"id": "abc"}, {"id": 0}, {"id": True}, {"nickname": None}, {"site_id": 12}],
)
def test_users_me_without_usable_identity_is_a_bad_response(ml, change):
    body = {**load_fixture("users_me"), **change}
    ml.get(f"{API}/users/me", json={key: value for key, value in body.items() if value is not None})

    with pytest.raises(MLBadResponse):
        resources.users_me(TOKEN)


# --- Counts -------------------------------------------------------------------------------------


def test_count_active_listings_reads_paging_total(ml):
    ml.get(f"{API}/users/{SELLER}/items/search", json=load_fixture("items_search"))

    assert resources.count_active_listings(TOKEN, SELLER) == 1
    assert sent(ml.calls[0]) == (
        "GET",
        f"/users/{SELLER}/items/search",
        {"status": ["active"], "limit": ["1"]},
    )
    assert_bearer_only(ml.calls[0])


def test_count_recent_orders_asks_for_thirty_days_truncated_to_the_hour(ml):
    ml.get(f"{API}/orders/search", json=load_fixture("orders_search"))
    now = datetime(2025, 6, 15, 13, 47, 12, 345000, tzinfo=UTC)

    assert resources.count_recent_orders(TOKEN, SELLER, now=now) == 1
    assert sent(ml.calls[0]) == (
        "GET",
        "/orders/search",
        {
            "seller": [str(SELLER)],
            "order.status": [NOT_CANCELLED],
            "order.date_created.from": ["2025-05-16T13:00:00.000-00:00"],
            "limit": ["1"],
        },
    )
    assert_bearer_only(ml.calls[0])


def test_count_recent_orders_asks_only_for_sales_that_were_not_cancelled(ml):
    ml.get(f"{API}/orders/search", json=load_fixture("orders_search"))

    resources.count_recent_orders(TOKEN, SELLER)

    _, _, query = sent(ml.calls[0])
    # ML's search cannot exclude a status, so the count names every status it keeps.
    assert query["order.status"] == [NOT_CANCELLED]
    assert "cancelled" not in query["order.status"][0].split(",")
    assert "invalid" not in query["order.status"][0].split(",")


def test_count_recent_orders_against_the_sandbox_leaves_out_cancelled_orders(ml_settings):
    seller = next(seller for seller in sandbox.DEMO_SELLERS if seller.nickname == "CASA_DA_ANA")
    with sandbox.start_sandbox(port=0) as server:
        # The sandbox's orders stand still at `frozen`; the app's 30-day window starts from its
        # own clock, read in between `frozen` and `done` (an hour may turn meanwhile).
        frozen = datetime.now(UTC)
        server.state.clock = frozen.timestamp
        ml_settings.ML_API_URL = server.url
        token = server.state.mint(seller.id)["access_token"]
        everything = requests.get(
            f"{server.url}/orders/search",
            params={"seller": seller.id, "order.date_created.from": resources.orders_date_from(frozen, 30)},
            headers={"Authorization": f"Bearer {token}"},
            timeout=10,
        ).json()["paging"]["total"]

        count = resources.count_recent_orders(token, seller.id, now=frozen)
        counts = resources.fetch_counts(token, seller.id)
        done = datetime.now(UTC)

    def standing(moment):
        return standing_orders(seller, since=moment - timedelta(days=30), now=frozen.timestamp())

    # The sandbox, like ML, holds cancelled and invalid orders besides the seller's sales.
    assert everything > count == standing(frozen)
    assert counts.orders in {standing(frozen), standing(done)}


def test_count_recent_orders_sends_the_date_in_utc(ml):
    ml.get(f"{API}/orders/search", json=load_fixture("orders_search"))
    sao_paulo = timezone(timedelta(hours=-3))

    resources.count_recent_orders(TOKEN, SELLER, now=datetime(2025, 6, 15, 22, 30, tzinfo=sao_paulo), days=7)

    _, _, query = sent(ml.calls[0])
    assert query["order.date_created.from"] == ["2025-06-09T01:00:00.000-00:00"]


def test_count_recent_orders_defaults_to_now(ml):
    ml.get(f"{API}/orders/search", json=load_fixture("orders_search"))
    before = datetime.now(UTC)

    resources.count_recent_orders(TOKEN, SELLER)

    _, _, query = sent(ml.calls[0])
    # Two candidates in case the clock crossed an hour during the call.
    candidates = {
        (moment - timedelta(days=30)).strftime("%Y-%m-%dT%H:00:00.000-00:00")
        for moment in (before, datetime.now(UTC))
    }
    assert query["order.date_created.from"][0] in candidates


def test_orders_date_from_rejects_naive_datetimes():
    with pytest.raises(ValueError, match="timezone-aware"):
        resources.orders_date_from(datetime(2025, 6, 15, 13, 0), 30)


def test_count_unanswered_questions_reads_top_level_total(ml):
    ml.get(f"{API}/questions/search", json=load_fixture("questions_search"))

    assert resources.count_unanswered_questions(TOKEN, SELLER) == 36
    assert sent(ml.calls[0]) == (
        "GET",
        "/questions/search",
        {"seller_id": [str(SELLER)], "status": ["UNANSWERED"], "api_version": ["4"], "limit": ["1"]},
    )
    assert_bearer_only(ml.calls[0])


def test_count_open_claims_reads_paging_total(ml):
    ml.get(f"{API}/post-purchase/v1/claims/search", json=load_fixture("claims_search"))

    assert resources.count_open_claims(TOKEN, SELLER) == 316
    assert sent(ml.calls[0]) == (
        "GET",
        "/post-purchase/v1/claims/search",
        {
            "players.role": ["respondent"],
            "players.user_id": [str(SELLER)],
            "status": ["opened"],
            "limit": ["1"],
        },
    )
    assert_bearer_only(ml.calls[0])


def test_fetch_counts_calls_the_four_endpoints_in_order(ml):
    ml.get(f"{API}/users/{SELLER}/items/search", json=load_fixture("items_search"))
    ml.get(f"{API}/orders/search", json=load_fixture("orders_search"))
    ml.get(f"{API}/questions/search", json=load_fixture("questions_search"))
    ml.get(f"{API}/post-purchase/v1/claims/search", json=load_fixture("claims_search"))

    counts = resources.fetch_counts(TOKEN, SELLER)

    assert counts == resources.Counts(products=1, orders=1, questions=36, claims=316)
    assert counts.issues == 352
    assert [urlsplit(call.request.url).path for call in ml.calls] == [
        f"/users/{SELLER}/items/search",
        "/orders/search",
        "/questions/search",
        "/post-purchase/v1/claims/search",
    ]
    for call in ml.calls:
        assert_bearer_only(call)


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"paging": None},
        {"paging": {}},
        {"paging": {"total": None}},
        {"paging": {"total": -1}},
        {"paging": {"total": "3"}},
        {"paging": {"total": 1.5}},
        {"paging": {"total": True}},
        {"total": 3},
    ],
)
def test_unusable_paging_total_is_a_bad_response(ml, body):
    ml.get(f"{API}/users/{SELLER}/items/search", json=body)

    with pytest.raises(MLBadResponse, match=r"paging\.total"):
        resources.count_active_listings(TOKEN, SELLER)


@pytest.mark.parametrize("body", [{}, {"total": -2}, {"total": "36"}, {"paging": {"total": 36}}])
def test_unusable_questions_total_is_a_bad_response(ml, body):
    ml.get(f"{API}/questions/search", json=body)

    with pytest.raises(MLBadResponse, match="total"):
        resources.count_unanswered_questions(TOKEN, SELLER)


def test_zero_is_a_valid_total(ml):
    ml.get(
        f"{API}/post-purchase/v1/claims/search",
        json={"paging": {"total": 0, "offset": 0, "limit": 1}, "data": []},
    )

    assert resources.count_open_claims(TOKEN, SELLER) == 0


# --- Errors on resource calls (§2, §4.4, §5.1) --------------------------------------------------


@pytest.mark.parametrize(
    ("status", "body_name", "error_class", "code"),
    [
        (401, "invalid_token", MLUnauthorized, "not_found"),
        (403, "forbidden", MLForbidden, "forbidden"),
        (403, "policy_agent", MLForbidden, "PA_UNAUTHORIZED_RESULT_FROM_POLICIES"),
        (403, "access_denied", MLForbidden, "access_denied"),
        (400, "claims_invalid_query", MLBadRequest, "invalid_query"),
        (404, "not_found", MLBadRequest, "not_found"),
        (429, "too_many_requests", MLRateLimited, "too_many_requests"),
        (500, "internal_error", MLUnavailable, "internal_error"),
        (503, "service_unavailable", MLUnavailable, "service_unavailable"),
    ],
)
def test_resource_errors_are_typed(ml, status, body_name, error_class, code):
    ml.get(f"{API}/post-purchase/v1/claims/search", json=ml_error(body_name), status=status)

    with pytest.raises(error_class) as caught:
        resources.count_open_claims(TOKEN, SELLER)

    assert type(caught.value) is error_class
    assert caught.value.status == status
    assert caught.value.code == code
    assert caught.value.message == ml_error(body_name)["message"]


@pytest.mark.parametrize(
    "message", ["invalid_token", "Invalid token", "expired_token", "invalid access token"]
)
def test_every_401_variant_is_unauthorized(ml, message):
    ml.get(
        f"{API}/users/me",
        json={"message": message, "error": "not_found", "status": 401, "cause": []},
        status=401,
    )

    with pytest.raises(MLUnauthorized) as caught:
        resources.users_me(TOKEN)

    assert caught.value.message == message


def test_429_with_retry_after_is_rate_limited(ml):
    ml.get(
        f"{API}/orders/search", json=ml_error("too_many_requests"), status=429, headers={"Retry-After": "12"}
    )

    with pytest.raises(MLRateLimited) as caught:
        resources.count_recent_orders(TOKEN, SELLER)

    assert caught.value.retry_after == 12.0
    assert len(ml.calls) == 1


def test_429_without_retry_after_is_rate_limited(ml):
    ml.get(f"{API}/orders/search", json=ml_error("too_many_requests"), status=429)

    with pytest.raises(MLRateLimited) as caught:
        resources.count_recent_orders(TOKEN, SELLER)

    assert caught.value.retry_after is None


def test_html_error_page_is_unavailable(ml):
    ml.get(f"{API}/users/me", body="<html>502 Bad Gateway</html>", status=502, content_type="text/html")

    with pytest.raises(MLUnavailable) as caught:
        resources.users_me(TOKEN)

    assert caught.value.code == "unavailable"
    assert caught.value.status == 502


def test_timeout_is_unavailable(ml):
    ml.get(f"{API}/questions/search", body=requests.Timeout("timed out"))

    with pytest.raises(MLUnavailable, match="timed out"):
        resources.count_unanswered_questions(TOKEN, SELLER)


def test_connection_error_is_unavailable(ml):
    ml.get(f"{API}/users/{SELLER}/items/search", body=requests.ConnectionError("reset by peer"))

    with pytest.raises(MLUnavailable) as caught:
        resources.count_active_listings(TOKEN, SELLER)

    assert caught.value.code == "connection_error"
