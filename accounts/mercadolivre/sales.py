"""The seller's sales and reputation at ML: the orders search, one order, the reputation (§4.2, §11.2).

Like ``desk``: one plain function per endpoint through ``http.request_json`` (the shared
budget, timeouts, typed errors), ML's objects read leniently into small dataclasses. An
order without an id, a date or a usable amount is dropped (the page's ``size`` still counts
it, so paging goes on), never guessed. Money is ``Decimal`` from ML's JSON numbers.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from .desk import _int, _moment
from .errors import MLBadResponse
from .http import request_json

# §4.2: 50 is the default page; secondary sources say 50 or 51 is the most ML gives.
ORDERS_PAGE = 50
MAX_MONEY = Decimal("99999999999999.99")  # what the mirror's columns hold
_CENT = Decimal("0.01")


def date_filter(moment: datetime) -> str:
    """An order date filter as ML takes it (§4.2), cut to the hour as ML would cut it anyway."""
    if moment.tzinfo is None:
        raise ValueError("moment must be timezone-aware")
    hour = moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    return hour.strftime("%Y-%m-%dT%H:00:00.000-00:00")


def _money(value: Any) -> Decimal | None:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        return None
    if not amount.is_finite() or amount < 0 or amount > MAX_MONEY:
        return None
    return amount.quantize(_CENT)


def _count(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        return None
    return value


@dataclass(frozen=True)
class MLOrder:
    """What the mirror keeps of a §4.2 order object."""

    id: int
    status: str
    total_amount: Decimal
    paid_amount: Decimal
    currency: str
    date_created: datetime
    date_closed: datetime | None
    date_last_updated: datetime
    pack_id: int | None
    items: int
    sale_fees: Decimal


def parse_order(raw: Any) -> MLOrder | None:
    """A §4.2 order object, or None when it lacks what the mirror needs."""
    if not isinstance(raw, dict):
        return None
    order_id = _int(raw.get("id"))
    status = raw.get("status")
    created = _moment(raw.get("date_created"))
    total = _money(raw.get("total_amount"))
    currency = raw.get("currency_id")
    if (
        order_id is None
        or not isinstance(status, str)
        or not 0 < len(status) <= 32
        or created is None
        or total is None
        or not isinstance(currency, str)
        or len(currency) != 3
    ):
        return None
    # `date_last_updated` is what the search filters on; `last_updated` is its older cousin.
    updated = _moment(raw.get("date_last_updated")) or _moment(raw.get("last_updated")) or created
    units, fees = 0, Decimal(0)
    lines = raw.get("order_items")
    for line in lines if isinstance(lines, list) else ():
        if not isinstance(line, dict):
            continue
        quantity = _count(line.get("quantity")) or 0
        units += quantity
        fee = _money(line.get("sale_fee"))
        if fee is not None:
            # sale_fee is per unit (what ML charges for one of the line's units).
            fees += fee * quantity
    return MLOrder(
        id=order_id,
        status=status,
        total_amount=total,
        paid_amount=_money(raw.get("paid_amount")) or Decimal("0.00"),
        currency=currency.upper(),
        date_created=created,
        date_closed=_moment(raw.get("date_closed")),
        date_last_updated=updated,
        pack_id=_int(raw.get("pack_id")),
        items=min(units, 2**31 - 1),
        sale_fees=min(fees, MAX_MONEY).quantize(_CENT),
    )


@dataclass(frozen=True)
class OrdersPage:
    orders: list[MLOrder]
    total: int
    size: int  # entries ML listed, readable or not: what the next offset adds


def search_orders(
    token: str,
    seller_id: int,
    *,
    updated_from: datetime | None = None,
    created_from: datetime | None = None,
    offset: int = 0,
    limit: int = ORDERS_PAGE,
    budget: bool = True,
) -> OrdersPage:
    """One page of the seller's orders, newest first (§4.2 ``GET /orders/search``, ``date_desc``)."""
    params: dict[str, Any] = {"seller": int(seller_id), "sort": "date_desc", "offset": int(offset)}
    params["limit"] = limit
    if updated_from is not None:
        params["order.date_last_updated.from"] = date_filter(updated_from)
    if created_from is not None:
        params["order.date_created.from"] = date_filter(created_from)
    # `budget` False: the caller took the budget's token already (ratelimit.spare).
    body = request_json("GET", "/orders/search", token=token, params=params, budget=budget)
    results = body.get("results")
    paging = body.get("paging")
    total = paging.get("total") if isinstance(paging, dict) else None
    if not isinstance(results, list) or isinstance(total, bool) or not isinstance(total, int) or total < 0:
        raise MLBadResponse("/orders/search answered without 'results' or 'paging.total'")
    orders = [order for order in map(parse_order, results) if order is not None]
    return OrdersPage(orders=orders, total=total, size=len(results))


def get_order(token: str, order_id: int) -> MLOrder:
    """One order (§4.2 ``GET /orders/{id}``): a notification's resource, read again."""
    body = request_json("GET", f"/orders/{int(order_id)}", token=token)
    order = parse_order(body)
    if order is None:
        raise MLBadResponse("/orders/{id} answered without a usable order")
    return order


@dataclass(frozen=True)
class Metric:
    rate: Decimal | None
    value: int | None


@dataclass(frozen=True)
class MLReputation:
    """A seller's `seller_reputation` (§3, §11.2), as ML shows it today."""

    level_id: str
    power_seller_status: str
    real_level: str
    protection_end_date: datetime | None
    period: str
    transactions_total: int | None
    transactions_completed: int | None
    transactions_canceled: int | None
    sales_completed: int | None
    claims: Metric
    delayed_handling_time: Metric
    cancellations: Metric


def _rate(value: Any) -> Decimal | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    rate = Decimal(str(value))
    return rate.quantize(Decimal("0.00001")) if rate.is_finite() and 0 <= rate <= 1 else None


def _metric(metrics: dict[str, Any], name: str) -> Metric:
    raw = metrics.get(name)
    if not isinstance(raw, dict):
        return Metric(None, None)
    return Metric(_rate(raw.get("rate")), _count(raw.get("value")))


def _label(value: Any) -> str:
    return value[:32] if isinstance(value, str) else ""


def get_reputation(token: str, user_id: int) -> MLReputation:
    """The seller's reputation today (``GET /users/{id}`` → ``seller_reputation``).

    A 206 (a sub-block failed) is read like a 200; without a `seller_reputation` object at
    all the answer is unusable (``MLBadResponse``). New sellers have null levels and zero
    counts: stored as they come.
    """
    body = request_json("GET", f"/users/{int(user_id)}", token=token, expected=(200, 206))
    reputation = body.get("seller_reputation")
    if not isinstance(reputation, dict):
        raise MLBadResponse("/users/{id} answered without a 'seller_reputation'")
    transactions = reputation.get("transactions")
    transactions = transactions if isinstance(transactions, dict) else {}
    metrics = reputation.get("metrics")
    metrics = metrics if isinstance(metrics, dict) else {}
    sales = metrics.get("sales") if isinstance(metrics.get("sales"), dict) else {}
    periods = [m.get("period") for m in metrics.values() if isinstance(m, dict)]
    return MLReputation(
        level_id=_label(reputation.get("level_id")),
        power_seller_status=_label(reputation.get("power_seller_status")),
        real_level=_label(reputation.get("real_level")),
        protection_end_date=_moment(reputation.get("protection_end_date")),
        period=next((_label(p) for p in periods if isinstance(p, str)), ""),
        transactions_total=_count(transactions.get("total")),
        transactions_completed=_count(transactions.get("completed")),
        transactions_canceled=_count(transactions.get("canceled")),
        sales_completed=_count(sales.get("completed")),
        claims=_metric(metrics, "claims"),
        delayed_handling_time=_metric(metrics, "delayed_handling_time"),
        cancellations=_metric(metrics, "cancellations"),
    )
