"""The sandbox's orders (§4.2, §11.3) and reputation (§11.2): a schedule in absolute time.

Exercised over real HTTP like the app's orders mirror uses them. The sandbox's data clock
(``state.clock``) is frozen at a busy evening hour and moved by hand, so nothing here depends
on the machine's speed or on the hour the tests run at: every expectation is computed for the
moment set.
"""

import re
from datetime import UTC, date, datetime, time, timedelta, timezone

import pytest
import requests

from accounts.mercadolivre.sandbox import DEMO_SELLERS, start_sandbox
from accounts.mercadolivre.sandbox.orders import (
    DAY_MS,
    HOUR_MS,
    RETENTION_DAYS,
    OrderFilter,
    SellerOrders,
    local_day,
)
from accounts.mercadolivre.sandbox.sellers import (
    REPUTATION_LIMITS,
    STANDING_STATUSES,
    seller_reputation,
    standing_orders,
)

TIMEOUT = 10
HOUR = 3600
DAY = 86400
STANDING = ",".join(STANDING_STATUSES)
DATE_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}-03:00$")
SAO_PAULO = timezone(timedelta(hours=-3))
ORDER_NOT_FOUND = {"message": "Order not found", "error": "order_not_found", "status": 404, "cause": []}


def _seller(nickname):
    return next(seller for seller in DEMO_SELLERS if seller.nickname == nickname)


ANA = _seller("CASA_DA_ANA")  # MLB, 58 orders a month
BIG = _seller("MEGASTORE_BR")  # MLB, 12 640
NEW = _seller("LOJA_NOVA_TESTE")  # no orders at all
MODA = _seller("MODA_PAULISTA")  # MLB, 312
BAIRES = _seller("TECNO_BAIRES")  # MLA (ARS), 930, under protection
GIGA = _seller("GIGA_OUTLET")  # MLB, 2 104, claims near the green limit


class Clock:
    """The sandbox's data clock, set by hand: ``clock.at`` is the current epoch second."""

    def __init__(self, at):
        self.at = at

    def __call__(self):
        return self.at


@pytest.fixture
def clock():
    """Yesterday at 21:30 in São Paulo: a busy hour, so the last hour's orders are many."""
    yesterday = datetime.now(SAO_PAULO).date() - timedelta(days=1)
    return Clock(datetime.combine(yesterday, time(21, 30), SAO_PAULO).timestamp())


@pytest.fixture
def sandbox(clock):
    server = start_sandbox(port=0)
    server.state.clock = clock
    yield server
    server.stop()


def _token(sandbox, seller):
    return sandbox.state.mint(seller.id)["access_token"]


def _get(sandbox, path, token, **params):
    return requests.get(
        f"{sandbox.url}{path}", params=params, headers={"Authorization": f"Bearer {token}"}, timeout=TIMEOUT
    )


def _stamp(moment):
    """An order date filter as the app sends it (UTC), with minutes the sandbox must cut."""
    return datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%dT%H:%M:%S.000-00:00")


def _hour(moment):
    return moment // HOUR * HOUR


def _parse(value):
    return datetime.fromisoformat(value).timestamp()


def _search(sandbox, token, seller, **params):
    response = _get(sandbox, "/orders/search", token, seller=seller.id, **params)
    assert response.status_code == 200, response.text
    return response.json()


def _all_orders(sandbox, token, seller, sort="date_asc", **params):
    """Every order the search lists, page by page (limit 51); checks the totals on the way."""
    orders, total = [], None
    while total is None or len(orders) < total:
        body = _search(sandbox, token, seller, sort=sort, offset=len(orders), limit=51, **params)
        assert total in (None, body["paging"]["total"])
        total = body["paging"]["total"]
        if not body["results"]:
            break
        orders += body["results"]
    assert len(orders) == total
    return orders


# --- Stable orders in absolute time -------------------------------------------------------------


def test_orders_keep_their_ids_and_dates_as_time_passes(sandbox, clock):
    token = _token(sandbox, MODA)
    then = clock.at
    window = {"order.date_created.from": _stamp(then - 3 * DAY), "order.date_created.to": _stamp(then - HOUR)}

    first = _all_orders(sandbox, token, MODA, **window)
    again = _all_orders(sandbox, token, MODA, **window)
    clock.at = then + HOUR
    later = _all_orders(sandbox, token, MODA, **window)
    clock.at = then + 3 * DAY
    much_later = _all_orders(sandbox, token, MODA, **window)

    assert first, "a seller with 312 sales a month sold something in three days"
    assert first == again
    for orders in (later, much_later):
        assert [(o["id"], o["date_created"], o["order_items"]) for o in orders] == [
            (o["id"], o["date_created"], o["order_items"]) for o in first
        ]
    assert all(DATE_RE.match(o["date_created"]) and DATE_RE.match(o["date_last_updated"]) for o in first)


def test_new_orders_appear_as_time_passes_and_older_ones_stay(sandbox, clock):
    token = _token(sandbox, BIG)
    then = clock.at
    since = {"order.date_created.from": _stamp(then - 2 * HOUR)}

    before = _all_orders(sandbox, token, BIG, **since)
    clock.at = then + 2 * HOUR
    after = _all_orders(sandbox, token, BIG, **since)

    assert {o["id"] for o in before} < {o["id"] for o in after}
    assert all(_parse(o["date_created"]) <= then + 0.001 for o in before)
    assert any(_parse(o["date_created"]) > then for o in after)


def test_the_30_day_count_is_the_schedules_standing_sales(sandbox, clock):
    for seller in (ANA, BIG, NEW, BAIRES):
        token = _token(sandbox, seller)
        body = _search(
            sandbox,
            token,
            seller,
            limit=1,
            **{"order.status": STANDING, "order.date_created.from": _stamp(clock.at - 30 * DAY)},
        )
        expected = standing_orders(seller, since=clock.at - 30 * DAY, now=clock.at)
        assert body["paging"]["total"] == expected == sandbox.state.standing_orders(seller.id)
        assert sandbox.state.seller(seller.id).orders == expected
        # `orders` is the seller's volume: about that many standing sales in any 30 days.
        assert abs(expected - seller.orders) <= 10 + seller.orders // 8


def test_a_year_of_orders_with_a_daily_rhythm(clock):
    now = int(clock.at * 1000)
    orders = SellerOrders(BIG, 2, now)
    today = local_day(now)
    a_year_ago = orders.count(OrderFilter(created_from=now - 365 * DAY_MS, created_to=now - 364 * DAY_MS))
    too_old = orders.count(OrderFilter(created_to=now - (RETENTION_DAYS + 2) * DAY_MS))
    # São Paulo's evenings (20h-22h) against its small hours (3h-5h), over a week.
    evening = night = 0
    for day in range(today - 8, today - 1):
        start = day * DAY_MS + 3 * HOUR_MS  # local midnight
        evening += orders.count(
            OrderFilter(created_from=start + 20 * HOUR_MS, created_to=start + 22 * HOUR_MS - 1)
        )
        night += orders.count(
            OrderFilter(created_from=start + 3 * HOUR_MS, created_to=start + 5 * HOUR_MS - 1)
        )

    assert a_year_ago > 0
    assert too_old == 0
    assert evening > 4 * night > 0


# --- Filters, sorting and paging --------------------------------------------------------------------


def test_pages_cover_every_order_once_in_date_order_both_ways(sandbox, clock):
    token = _token(sandbox, BIG)
    window = {"order.date_created.from": _stamp(clock.at - 2 * DAY), "order.status": "paid,cancelled,invalid"}

    ascending = _all_orders(sandbox, token, BIG, **window)
    descending = _all_orders(sandbox, token, BIG, sort="date_desc", **window)

    ids = [o["id"] for o in ascending]
    assert len(ids) == len(set(ids)) > 300
    assert [o["id"] for o in descending] == ids[::-1]
    keys = [(_parse(o["date_created"]), o["id"]) for o in ascending]
    assert keys == sorted(keys)
    assert {o["status"] for o in ascending} <= {"paid", "cancelled", "invalid"}
    by_status = {
        status: _search(sandbox, token, BIG, limit=0, **{**window, "order.status": status})["paging"]["total"]
        for status in ("paid", "cancelled", "invalid")
    }
    assert sum(by_status.values()) == len(ids)
    assert [o["status"] for o in ascending].count("cancelled") == by_status["cancelled"]


def test_date_last_updated_from_lists_exactly_the_orders_updated_since_the_hour(sandbox, clock):
    token = _token(sandbox, GIGA)
    since = clock.at - 2 * DAY - 17 * 60  # the sandbox cuts it to the hour, like ML
    # Every history ends within 4 days, so nothing created earlier than this changed since.
    everything = _all_orders(sandbox, token, GIGA, **{"order.date_created.from": _stamp(since - 5 * DAY)})

    updated = _all_orders(sandbox, token, GIGA, **{"order.date_last_updated.from": _stamp(since)})

    expected = [o for o in everything if _parse(o["date_last_updated"]) >= _hour(since)]
    assert [o["id"] for o in updated] == [o["id"] for o in expected]
    assert updated == expected
    assert len(expected) < len(everything)
    # And the bound the other way: `.to` keeps the rest (bounds are inclusive, cut to the hour).
    before = _all_orders(sandbox, token, GIGA, **{"order.date_last_updated.to": _stamp(_hour(since) + 59)})
    both = {o["id"] for o in before} & {o["id"] for o in updated}
    assert all(_parse(o["date_last_updated"]) == _hour(since) for o in everything if o["id"] in both)
    assert {o["id"] for o in everything} <= {o["id"] for o in before} | {o["id"] for o in updated}


def test_an_order_that_changes_status_shows_in_the_updated_window_with_its_new_status(sandbox, clock):
    token = _token(sandbox, GIGA)
    then = clock.at
    created = {"order.date_created.from": _stamp(then - DAY)}
    snapshot = {o["id"]: o for o in _all_orders(sandbox, token, GIGA, **created)}

    clock.at = then + 2 * DAY
    now = {o["id"]: o for o in _all_orders(sandbox, token, GIGA, **created)}
    updated = {
        o["id"]: o
        for o in _all_orders(sandbox, token, GIGA, **{"order.date_last_updated.from": _stamp(then)})
    }

    changed = [i for i, o in snapshot.items() if now[i]["status"] != o["status"]]
    assert changed, "a day of sales holds some that get paid, cancelled or voided later"
    for order_id in changed:
        assert updated[order_id] == now[order_id]
        assert _parse(now[order_id]["date_last_updated"]) > then
    # Whatever changed (a status, a delivery) is in the window a re-read asks for.
    moved = {i for i, o in snapshot.items() if now[i]["date_last_updated"] != o["date_last_updated"]}
    assert moved <= set(updated)
    assert {now[i]["status"] for i in changed} & {"paid", "cancelled", "invalid", "pending_cancel"}
    # The single order reads the same.
    first = changed[0]
    assert _get(sandbox, f"/orders/{first}", token).json() == now[first]


def test_history_walks_from_payment_to_its_fate(sandbox, clock):
    token = _token(sandbox, BIG)
    then = clock.at
    fresh = _all_orders(sandbox, token, BIG, **{"order.date_created.from": _stamp(then - HOUR)})
    waiting = [o for o in fresh if o["status"] in {"payment_in_process", "payment_required"}]

    clock.at = then + 5 * DAY
    later = {o["id"]: _get(sandbox, f"/orders/{o['id']}", token).json() for o in waiting}

    assert waiting, "orders of the last hour still wait for their payment"
    assert all(o["date_closed"] is None and o["paid_amount"] == 0 for o in waiting)
    statuses = {order["status"] for order in later.values()}
    assert statuses <= set(STANDING_STATUSES) | {"cancelled", "invalid"}
    for order in later.values():
        if order["status"] == "paid":
            assert order["date_closed"] is not None and order["paid_amount"] == order["total_amount"]
            assert "delivered" in order["tags"] and order["fulfilled"] is True
            assert (
                _parse(order["date_created"])
                < _parse(order["date_closed"])
                <= _parse(order["date_last_updated"])
            )


def test_date_filters_are_cut_to_the_hour(sandbox, clock):
    token = _token(sandbox, BIG)
    hour = _hour(clock.at) - 5 * HOUR

    exact = _search(sandbox, token, BIG, limit=0, **{"order.date_created.from": _stamp(hour)})
    minutes = _search(sandbox, token, BIG, limit=0, **{"order.date_created.from": _stamp(hour + 59 * 60)})

    assert exact["paging"]["total"] == minutes["paging"]["total"] > 0


def test_invalid_filters_are_refused(sandbox):
    token = _token(sandbox, ANA)

    assert _get(sandbox, "/orders/search", token, seller=ANA.id, sort="price").status_code == 400
    bad_date = _get(sandbox, "/orders/search", token, seller=ANA.id, **{"order.date_last_updated.from": "x"})
    assert bad_date.status_code == 400
    assert _get(sandbox, "/orders/search", token, seller=BIG.id).status_code == 403
    assert _search(sandbox, token, ANA, limit=500)["paging"]["limit"] == 51


# --- The order objects ---------------------------------------------------------------------------------


def test_orders_are_full_objects_whose_totals_are_their_lines(sandbox, clock):
    for seller, currency in ((BIG, "BRL"), (BAIRES, "ARS")):
        token = _token(sandbox, seller)
        orders = _search(
            sandbox, token, seller, limit=51, **{"order.date_created.from": _stamp(clock.at - DAY)}
        )["results"]
        assert orders
        for order in orders:
            lines = order["order_items"]
            assert 1 <= len(lines) <= 3
            assert order["seller"] == {"id": seller.id, "nickname": seller.nickname}
            assert 100_000_000 <= order["buyer"]["id"] < 1_000_000_000
            assert order["currency_id"] == currency
            assert {line["currency_id"] for line in lines} == {currency}
            assert all(1 <= line["quantity"] <= 3 for line in lines)
            assert all(re.fullmatch(rf"{seller.site_id}\d+", line["item"]["id"]) for line in lines)
            total = sum(line["unit_price"] * line["quantity"] for line in lines)
            assert order["total_amount"] == pytest.approx(total, abs=0.005)
            assert round(order["total_amount"], 2) == order["total_amount"]
            for line in lines:
                assert 0.105 <= line["sale_fee"] / line["unit_price"] <= 0.165
                assert round(line["sale_fee"], 2) == line["sale_fee"]
            if order["status"] in {"paid", "partially_refunded", "pending_cancel"}:
                assert order["paid_amount"] == order["total_amount"]
                assert order["date_closed"] is not None
                assert order["payments"][0]["status"] == "approved"
            elif order["status"] in {"cancelled", "invalid", "payment_required", "confirmed"}:
                assert order["paid_amount"] == 0
            for field in (
                "shipping",
                "pack_id",
                "tags",
                "mediations",
                "feedback",
                "fulfilled",
                "last_updated",
            ):
                assert field in order
            assert order["date_last_updated"] == order["last_updated"]
            assert _parse(order["date_created"]) <= _parse(order["date_last_updated"]) <= clock.at + 0.001


def test_carts_share_a_pack_and_a_buyer(sandbox, clock):
    token = _token(sandbox, BIG)

    orders = _all_orders(sandbox, token, BIG, **{"order.date_created.from": _stamp(clock.at - DAY)})

    packs = {}
    for order in orders:
        if order["pack_id"] is not None:
            packs.setdefault(order["pack_id"], []).append(order)
    assert packs, "a day of a big seller's sales holds some carts"
    for pack_id, members in packs.items():
        assert len(members) >= 2
        assert members[0]["id"] == pack_id
        assert len({member["buyer"]["id"] for member in members}) == 1
        assert all("pack_order" in member["tags"] for member in members)
    assert sum(order["pack_id"] is None for order in orders) > len(orders) / 2


# --- GET /orders/{id} ---------------------------------------------------------------------------------


def test_get_order_answers_the_sellers_own_order_and_refuses_the_rest(sandbox, clock):
    token = _token(sandbox, ANA)
    order = _search(sandbox, token, ANA, limit=1, sort="date_desc")["results"][0]
    other = _search(sandbox, _token(sandbox, BIG), BIG, limit=1)["results"][0]

    own = _get(sandbox, f"/orders/{order['id']}", token)
    unknown = _get(sandbox, f"/orders/{order['id'] + 9_000}", token)  # past the day's last order
    foreign = _get(sandbox, f"/orders/{other['id']}", token)
    nobodys = _get(sandbox, "/orders/123", token)
    garbage = _get(sandbox, "/orders/not-a-number", token)
    anonymous = requests.get(f"{sandbox.url}/orders/{order['id']}", timeout=TIMEOUT)

    assert (own.status_code, own.json()) == (200, order)
    assert (unknown.status_code, unknown.json()) == (404, ORDER_NOT_FOUND)
    assert (nobodys.status_code, nobodys.json()) == (404, ORDER_NOT_FOUND)
    assert foreign.status_code == 403
    assert foreign.json()["error"] == "not_owned_order"
    assert foreign.json()["status"] == 403 and foreign.json()["cause"] == []
    assert garbage.status_code == 400 and garbage.json()["error"] == "invalid_order_id"
    assert anonymous.status_code == 401
    assert sandbox.state.stats()["by_kind"]["orders"] >= 7


def test_an_order_does_not_exist_before_its_moment(sandbox, clock):
    token = _token(sandbox, BIG)
    order = _search(sandbox, token, BIG, limit=1, sort="date_desc")["results"][0]

    clock.at = _parse(order["date_created"]) - 1

    assert _get(sandbox, f"/orders/{order['id']}", token).status_code == 404


# --- Activity --------------------------------------------------------------------------------------


def _activity(sandbox, seller, change=1):
    response = requests.post(
        f"{sandbox.url}/_sandbox/activity",
        json={"user_id": seller.id, "topic": "orders_v2", "change": change, "duplicates": 2},
        timeout=TIMEOUT,
    )
    assert response.status_code == 200, response.text
    return response.json()


def test_activity_creates_a_real_order_that_the_notification_names(sandbox, clock):
    # Notifications go straight to the missed feeds: their bodies, no receiver needed.
    sandbox.state.configure(notifications_url="http://127.0.0.1:9/hook/", drop_notifications=10)
    token = _token(sandbox, ANA)
    thirty_days = {"order.status": STANDING, "order.date_created.from": _stamp(clock.at - 30 * DAY)}
    before = _search(sandbox, token, ANA, limit=0, **thirty_days)["paging"]["total"]

    answer = _activity(sandbox, ANA)

    resource = answer["resource"]
    assert re.fullmatch(r"/orders/\d+", resource)
    assert [body["resource"] for body in answer["notifications"]] == [resource, resource]
    assert {body["topic"] for body in answer["notifications"]} == {"orders_v2"}
    order = _get(sandbox, resource, token).json()
    assert order["status"] == "paid" and order["seller"]["id"] == ANA.id
    assert _parse(order["date_created"]) == pytest.approx(clock.at, abs=0.001)
    assert order["paid_amount"] == order["total_amount"] > 0
    listed = _search(sandbox, token, ANA, sort="date_desc", limit=5, **thirty_days)
    assert order in listed["results"]
    # The answer says the count the app reads next.
    assert answer["seller"]["orders"] == listed["paging"]["total"] == before + 1
    sellers = requests.get(f"{sandbox.url}/_sandbox/sellers", timeout=TIMEOUT).json()
    assert next(s for s in sellers if s["id"] == ANA.id)["orders"] == before + 1
    # Another seller cannot read it; a later hour still lists it.
    assert _get(sandbox, resource, _token(sandbox, BIG)).status_code == 403
    clock.at += 3 * HOUR
    assert _get(sandbox, resource, token).json()["date_created"] == order["date_created"]


def test_negative_activity_cancels_the_newest_created_order(sandbox, clock):
    token = _token(sandbox, MODA)
    created = _activity(sandbox, MODA, change=2)
    clock.at += 60

    cancelled = _activity(sandbox, MODA, change=-1)

    assert cancelled["resource"] == created["resource"]
    order = _get(sandbox, cancelled["resource"], token).json()
    assert order["status"] == "cancelled" and order["paid_amount"] == 0
    assert _parse(order["date_last_updated"]) == pytest.approx(clock.at, abs=0.001)
    assert cancelled["seller"]["orders"] == created["seller"]["orders"] - 1
    updated = _search(sandbox, token, MODA, **{"order.date_last_updated.from": _stamp(clock.at)})
    assert order in updated["results"]


def test_activity_orders_survive_in_the_state_file(tmp_path, clock):
    state_file = tmp_path / "sandbox-state.json"
    with start_sandbox(port=0, state_file=state_file) as first:
        first.state.clock = clock
        resource = _activity(first, ANA)["resource"]
        order = _get(first, resource, _token(first, ANA)).json()
        reset_serial = first.state.orders.next_serial

    with start_sandbox(port=0, state_file=state_file) as second:
        second.state.clock = clock
        token = _token(second, ANA)
        assert _get(second, resource, token).json() == order
        requests.post(f"{second.url}/_sandbox/reset", timeout=TIMEOUT)
        assert _get(second, resource, _token(second, ANA)).status_code == 404
        # An id the app may have stored is never given out again.
        assert _activity(second, ANA)["resource"] != resource
        assert second.state.orders.next_serial > reset_serial


def test_new_claims_name_orders_that_exist(sandbox):
    token = _token(sandbox, GIGA)
    response = requests.post(
        f"{sandbox.url}/_sandbox/activity",
        json={"user_id": GIGA.id, "topic": "claims", "change": 3},
        timeout=TIMEOUT,
    )
    claim = _get(sandbox, response.json()["resource"], token).json()

    order = _get(sandbox, f"/orders/{claim['resource_id']}", token)

    assert order.status_code == 200
    complainant = next(player for player in claim["players"] if player["role"] == "complainant")
    assert complainant["user_id"] == order.json()["buyer"]["id"]


# --- Reputation ------------------------------------------------------------------------------------


def test_reputation_changes_from_day_to_day(sandbox, clock):
    token = _token(sandbox, MODA)

    today = _get(sandbox, "/users/me", token).json()["seller_reputation"]
    clock.at += 3 * DAY
    later = _get(sandbox, f"/users/{MODA.id}", token).json()["seller_reputation"]

    assert today["metrics"] != later["metrics"]
    for reputation in (today, later):
        for name in REPUTATION_LIMITS:
            metric = reputation["metrics"][name]
            assert metric["period"] == "60 days"
            assert metric["value"] == round(metric["rate"] * reputation["metrics"]["sales"]["completed"])
        assert reputation["level_id"] in {"5_green", "4_light_green", "3_yellow"}
    clock.at -= 3 * DAY
    assert _get(sandbox, "/users/me", token).json()["seller_reputation"] == today  # a day's is fixed


def test_reputation_levels_follow_the_rates_over_months():
    days = [date(2026, 1, 1) + timedelta(days=n) for n in range(120)]
    giga = [seller_reputation(GIGA, day) for day in days]
    moda = [seller_reputation(MODA, day) for day in days]
    big = [seller_reputation(BIG, day) for day in days]

    # GIGA_OUTLET's claims come close to the green limit (3 %) and stay under it.
    claims = [reputation["metrics"]["claims"]["rate"] for reputation in giga]
    assert max(claims) < 0.03 < max(claims) + 0.002
    assert {reputation["level_id"] for reputation in giga} == {"5_green"}
    assert {reputation["power_seller_status"] for reputation in giga} == {"gold"}
    # MODA_PAULISTA's cross it now and then: its level moves.
    assert {reputation["level_id"] for reputation in moda} == {"5_green", "4_light_green"}
    assert {(reputation["level_id"], reputation["power_seller_status"]) for reputation in big} == {
        ("5_green", "platinum")
    }
    new = seller_reputation(NEW, days[0])
    assert (new["level_id"], new["power_seller_status"]) == (None, None)


def test_the_protected_seller_shows_its_real_level_and_numbers(sandbox, clock):
    token = _token(sandbox, BAIRES)

    reputation = _get(sandbox, "/users/me", token).json()["seller_reputation"]

    assert reputation["level_id"] == "5_green"
    assert reputation["real_level"] == "yellow"
    end = reputation["protection_end_date"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT00:00:00\.000-03:00", end)
    assert 13 <= (datetime.fromisoformat(end) - datetime.fromtimestamp(clock.at, UTC)).days <= 42
    for name in REPUTATION_LIMITS:
        metric = reputation["metrics"][name]
        assert metric["excluded"]["real_value"] > metric["value"]
        assert metric["excluded"]["real_rate"] > metric["rate"]
    others = [
        _get(sandbox, "/users/me", _token(sandbox, seller)).json()["seller_reputation"]
        for seller in (ANA, BIG)
    ]
    assert all("real_level" not in other and "protection_end_date" not in other for other in others)
