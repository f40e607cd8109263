"""Every seller's orders (§4.2, §11.3): a fixed schedule in absolute time, each with its history.

A seller's orders are not stored: they follow from the seller (its id and its ``orders`` size,
the standing sales of 30 days) and the clock, deterministically, like ML's, which keep their id,
creation date and history forever (well, about twelve months: ``RETENTION_DAYS``).

- **When.** A seller gets about ``orders × 1.25 / 30`` orders a day (a fifth more for the
  cancelled ones, a twentieth for the invalid ones) in ``America/Sao_Paulo`` days (UTC−3, no
  DST since 2019), a little fewer on Fridays and Saturdays, ±20 % of hash noise from one day
  to the next. The count is cut from a cumulative curve (``orders_before``), so the noise
  does not add up: any 30 days hold the ``orders`` target within a few orders (a percent or
  two for a big seller; ``standing_orders`` says exactly how many). A day's orders fall in
  its hours by a daily rhythm (few at night, most in the evening), and inside an hour at
  fixed moments.
- **What.** Order ``j`` of local day ``D`` has the id ``ORDER_ID_BASE + slot × SLOT_SPAN +
  (D − EPOCH_DAY) × DAY_SPAN + j`` (``slot`` = 1 + seller id mod ``SLOTS``, so ids stay
  below 2^53 and apart between sellers unless their ids differ by a multiple of ``SLOTS``:
  no demo seller nor bench range does), 1–3 lines of the seller's active items, a buyer from
  the seller's pool of repeat buyers, and sometimes a cart (``pack_id``: the first order's
  id) with the orders just before it.
- **Fate and history.** Final statuses follow ``FATES`` in turn along the seller's orders
  (25: 13 paid, 2 confirmed, one each of the other standing statuses, 4 cancelled, 1
  invalid). Each order walks to its fate through timed transitions
  (``OrderRecord.transitions``): created ``payment_in_process`` or ``payment_required``,
  ``paid`` 1–41 minutes later, delivered 20–60 hours after that, and for some a
  cancellation, a refund or a pending cancellation hours or days later; invalid ones are
  voided within 6 hours. Every history ends within ``MAX_SETTLE_MS`` (4 days), so an older
  order's status is its fate and a search counts those by arithmetic; only the orders near
  "now" or near a ``date_last_updated`` bound are looked at one by one.
- **Activity.** Orders that ``/_sandbox/activity`` creates live in an ``OrderLedger`` (ids
  ``ORDER_ID_BASE + serial``, slot 0, which no seller's schedule uses), paid at once.

The schedule itself (when, what, fate and history) is ``order_schedule``'s. Here,
``SellerOrders`` answers the searches (``count``, ``search``) and ``get`` for one seller at
one moment; ``order_json`` renders the §4.2 order object as it stands at that moment.
"""

from __future__ import annotations

import threading
from bisect import bisect_right
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from .order_schedule import (
    _STATUS_INDEX,
    DAY_MS,
    DAY_SPAN,
    EPOCH_DAY,
    HOUR_MS,
    LOCAL_SHIFT_MS,
    MAX_SETTLE_MS,
    ORDER_ID_BASE,
    RETENTION_DAYS,
    SLOT_SPAN,
    DayPlan,
    OrderRecord,
    _buyer,
    _fates,
    _mix,
    _shipping_id,
    day_plan,
    day_start,
    hour_records,
    local_day,
    order_slot,
    orders_before,
    truncate_to_hour,
)
from .sellers import (
    CURRENCY,
    ORDER_STATUSES,
    STANDING_STATUSES,
    DemoSeller,
    iso,
    item_id,
    item_price,
    item_title,
)

# --- Orders activity created ------------------------------------------------------------------------


class OrderLedger:
    """The orders ``/_sandbox/activity`` created (topic ``orders_v2``), per seller, oldest first.

    They are paid the moment they are created; a negative change cancels the newest ones
    that still stand. The serial behind their ids is never restarted, not even by ``clear``,
    so an id the app stored is never given out again. Not thread-safe: the state's lock
    guards it, and ``dump``/``load`` carry it through the state file.
    """

    def __init__(self) -> None:
        self._records: dict[int, list[OrderRecord]] = {}
        self._owners: dict[int, int] = {}
        self.next_serial = 1

    def clear(self) -> None:
        self._records.clear()
        self._owners.clear()

    def records(self, user_id: int) -> tuple[OrderRecord, ...]:
        return tuple(self._records.get(user_id, ()))

    def owner(self, order_id: int) -> int | None:
        return self._owners.get(order_id)

    def create(self, user_id: int, count: int, now: int) -> list[OrderRecord]:
        """Create ``count`` paid orders of ``user_id`` at ``now`` (ms)."""
        created = []
        for _ in range(count):
            serial = self.next_serial
            self.next_serial += 1
            created.append(self._add(user_id, ORDER_ID_BASE + serial, now, None))
        return created

    def cancel(self, user_id: int, count: int, now: int) -> list[OrderRecord]:
        """Cancel the ``count`` newest of the seller's activity orders that still stand."""
        records = self._records.get(user_id, [])
        cancelled = []
        for index in range(len(records) - 1, -1, -1):
            if len(cancelled) == count:
                break
            record = records[index]
            if record.at(now)[1] == "paid":
                records[index] = replace(
                    record,
                    transitions=(*record.transitions, (max(now, record.created), "cancelled", "cancelled")),
                )
                cancelled.append(records[index])
        return cancelled

    def _add(self, user_id: int, order_id: int, created: int, cancelled: int | None) -> OrderRecord:
        key = _mix(order_id, 0xAC71)
        transitions: tuple[tuple[int, str, str], ...] = ((created, "paid", "created"),)
        if cancelled is not None:
            transitions += ((cancelled, "cancelled", "cancelled"),)
        record = OrderRecord(
            id=order_id,
            created=created,
            transitions=transitions,
            buyer_id=_buyer(user_id, 0, key),
            key=key,
            shipping_id=_shipping_id(key),
        )
        self._records.setdefault(user_id, []).append(record)
        self._owners[order_id] = user_id
        return record

    def dump(self) -> dict[str, Any]:
        """The ledger as the state file keeps it."""
        rows = []
        for user_id, records in self._records.items():
            for record in records:
                cancelled = record.transitions[1][0] if len(record.transitions) > 1 else None
                rows.append([record.id, user_id, record.created, cancelled])
        return {"next_serial": self.next_serial, "orders": rows}

    def load(self, data: dict[str, Any] | None) -> None:
        """Replace the orders with the state file's (keeping the serial ahead of every id seen)."""
        self._records.clear()
        self._owners.clear()
        data = data or {}
        for order_id, user_id, created, cancelled in data.get("orders", []):
            self._add(
                int(user_id), int(order_id), int(created), None if cancelled is None else int(cancelled)
            )
        self.next_serial = max(self.next_serial, int(data.get("next_serial", 1)))


# --- Searching ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class OrderFilter:
    """What ``GET /orders/search`` asks (§4.2): statuses, and instants in ms (bounds inclusive)."""

    statuses: tuple[str, ...] = ORDER_STATUSES
    created_from: int | None = None
    created_to: int | None = None
    updated_from: int | None = None
    updated_to: int | None = None


# Per (seller, target, filter, lower bound): the matching orders of the hours near "now" or a
# date bound, with the span of time each answer holds for (SellerOrders._hour_matches). The
# least recently used filters are dropped first.
_MATCHES: OrderedDict[tuple[Any, ...], dict[Any, tuple[int, int, list[OrderRecord]]]] = OrderedDict()
_MATCHES_QUERIES = 512
_MATCHES_PER_QUERY = 1000
_MATCHES_LOCK = threading.Lock()


def _kept_matches(key: tuple[Any, ...]) -> dict[Any, tuple[int, int, list[OrderRecord]]]:
    with _MATCHES_LOCK:
        kept = _MATCHES.get(key)
        if kept is None:
            kept = _MATCHES[key] = {}
            if len(_MATCHES) > _MATCHES_QUERIES:
                _MATCHES.popitem(last=False)
        else:
            _MATCHES.move_to_end(key)
        return kept


@dataclass
class _Segment:
    """A run of hours [first, stop) of the search: "simple" (counted by fate) or one complex hour."""

    first: int
    stop: int
    simple: bool
    count: int = 0
    matches: list[OrderRecord] | None = None  # a complex hour's matching orders, by date


class SellerOrders:
    """One seller's orders as they stand at ``now`` (ms): counts, search pages and lookups.

    ``seller`` is the seller as configured (its ``orders`` is the schedule's target, not the
    live count); ``number`` the sandbox's number for its item ids; ``extra`` the orders
    activity created for it.
    """

    def __init__(self, seller: DemoSeller, number: int, now: int, extra: Iterable[OrderRecord] = ()):
        self.seller = seller
        self.number = number
        self.now = now
        self.target = max(0, seller.orders)
        # The days kept (ML keeps orders about twelve months): RETENTION_DAYS before today, to today.
        self.today = local_day(now)
        self.first_day = max(EPOCH_DAY, self.today - RETENTION_DAYS)
        self.first_ms = day_start(self.first_day)
        self.extra_by_hour: dict[int, list[OrderRecord]] = {}
        for record in sorted(extra, key=lambda record: (record.created, record.id)):
            if self.first_ms <= record.created <= now:
                self.extra_by_hour.setdefault(record.created // HOUR_MS, []).append(record)

    # -- the pieces of a search

    def _segments(self, query: OrderFilter) -> list[_Segment]:
        """The hours a search looks at, by date: runs of "simple" hours and single complex ones.

        A scheduled order is last updated at most ``MAX_SETTLE_MS`` after its creation, so
        with ``updated_from`` the hours created earlier than ``updated_from − MAX_SETTLE_MS``
        are left out; orders activity created may be cancelled any time, so their hours are
        always looked at, one by one.
        """
        now = self.now
        floor = max(self.first_ms, query.created_from if query.created_from is not None else self.first_ms)
        low = floor if query.updated_from is None else max(floor, query.updated_from - MAX_SETTLE_MS)
        high = now + 1  # exclusive; an order is never updated before it was created
        for bound in (query.created_to, query.updated_to):
            if bound is not None:
                high = min(high, bound + 1)
        if floor >= high:
            return []
        first_hour, stop_hour = min(low, high) // HOUR_MS, -(-high // HOUR_MS)
        # Hours whose every order surely passes the date filters and has settled: counted by fate.
        simple_low = low if query.updated_from is None else max(low, query.updated_from)
        simple_high = min(high, now - MAX_SETTLE_MS + 1)
        if query.updated_to is not None and query.updated_to < now:
            simple_high = min(simple_high, query.updated_to - MAX_SETTLE_MS + 1)
        simple_first = max(first_hour, -(-simple_low // HOUR_MS))
        simple_stop = max(simple_first, min(stop_hour, simple_high // HOUR_MS))
        complex_hours = {*range(first_hour, simple_first), *range(simple_stop, stop_hour)}
        complex_hours |= {hour for hour in self.extra_by_hour if floor // HOUR_MS <= hour < stop_hour}
        segments = [_Segment(hour, hour + 1, False) for hour in complex_hours]
        start = simple_first
        for hour in sorted(hour for hour in complex_hours if simple_first <= hour < simple_stop):
            if start < hour:
                segments.append(_Segment(start, hour, True))
            start = hour + 1
        if start < simple_stop:
            segments.append(_Segment(start, simple_stop, True))
        return sorted(segments, key=lambda segment: segment.first)

    def _day_spans(self, first: int, stop: int) -> Iterator[tuple[int, int, int]]:
        """(day, first local hour, stop local hour) covering the absolute hours [first, stop)."""
        shift = LOCAL_SHIFT_MS // HOUR_MS
        hour = first
        while hour < stop:
            day, local_hour = divmod(hour - shift, 24)
            last = min(24, local_hour + stop - hour)
            yield day, local_hour, last
            hour += last - local_hour

    def _count_simple(self, segment: _Segment, statuses: Sequence[int]) -> int:
        total, whole = 0, []
        for day, first, stop in self._day_spans(segment.first, segment.stop):
            if first == 0 and stop == 24:
                whole.append(day)
            else:
                total += self._plan(day).count_between(statuses, first, stop)
        if whole:
            total += _fates(statuses, self._before(whole[0]), self._before(whole[-1] + 1))
        return total

    def _plan(self, day: int) -> DayPlan:
        return day_plan(self.seller.id, self.target, day)

    def _before(self, day: int) -> int:
        return orders_before(self.seller.id, self.target, day)

    def _hour_orders(self, hour: int) -> list[OrderRecord]:
        """Every order (scheduled or created by activity) created in ``hour``, by date."""
        records = list(hour_records(self.seller.id, self.target, hour))
        extra = self.extra_by_hour.get(hour)
        if extra:
            records = sorted(records + extra, key=lambda record: (record.created, record.id))
        return records

    def _matches(self, record: OrderRecord, query: OrderFilter, low: int) -> bool:
        if not low <= record.created <= self.now:
            return False
        if query.created_to is not None and record.created > query.created_to:
            return False
        moment, status, _ = record.at(self.now)
        if status not in query.statuses:
            return False
        if query.updated_from is not None and moment < query.updated_from:
            return False
        return query.updated_to is None or moment <= query.updated_to

    def _measure(self, segments: list[_Segment], query: OrderFilter) -> int:
        statuses = sorted({_STATUS_INDEX[status] for status in query.statuses})
        low = max(self.first_ms, query.created_from if query.created_from is not None else self.first_ms)
        kept = _kept_matches((self.seller.id, self.target, query, low))
        total = 0
        for segment in segments:
            if segment.simple:
                segment.count = self._count_simple(segment, statuses)
            else:
                segment.matches = self._hour_matches(kept, segment.first, query, low)
                segment.count = len(segment.matches)
            total += segment.count
        return total

    def _hour_matches(
        self, kept: dict[Any, tuple[int, int, list[OrderRecord]]], hour: int, query: OrderFilter, low: int
    ) -> list[OrderRecord]:
        """The orders of ``hour`` that match ``query`` now, looked at one by one.

        The answer holds until the next transition of one of the hour's orders, so it is kept
        with the span of time it is good for: a count repeated within minutes looks at none
        of them again.
        """
        extra = self.extra_by_hour.get(hour)
        key = hour if not extra else (hour, tuple(extra))
        now = self.now
        entry = kept.get(key)
        if entry is not None and entry[0] <= now < entry[1]:
            return entry[2]
        records = self._hour_orders(hour)
        matches = [record for record in records if self._matches(record, query, low)]
        valid_from, valid_until = -1, 1 << 62
        for record in records:
            for moment, _, _ in record.transitions:
                if moment <= now:
                    valid_from = max(valid_from, moment)
                else:
                    valid_until = min(valid_until, moment)
                    break
        if len(kept) >= _MATCHES_PER_QUERY:
            kept.clear()
        kept[key] = (valid_from, valid_until, matches)
        return matches

    def _simple_orders(
        self, segment: _Segment, query: OrderFilter, *, ascending: bool, skip: int
    ) -> Iterator[OrderRecord]:
        """The matching orders of a simple segment from its ``skip``-th on, in the search's order;
        whole days and hours are skipped by their fate counts, without building their orders."""
        statuses = sorted({_STATUS_INDEX[status] for status in query.statuses})
        spans = list(self._day_spans(segment.first, segment.stop))
        shift = LOCAL_SHIFT_MS // HOUR_MS
        for day, first, stop in spans if ascending else reversed(spans):
            plan = self._plan(day)
            in_day = plan.count_between(statuses, first, stop)
            if skip >= in_day:
                skip -= in_day
                continue
            hours = range(first, stop) if ascending else range(stop - 1, first - 1, -1)
            for local_hour in hours:
                in_hour = plan.count_between(statuses, local_hour, local_hour + 1)
                if skip >= in_hour:
                    skip -= in_hour
                    continue
                records = hour_records(self.seller.id, self.target, day * 24 + shift + local_hour)
                for record in records if ascending else reversed(records):
                    if record.fate in query.statuses:
                        if skip:
                            skip -= 1
                        else:
                            yield record

    # -- the public side

    def count(self, query: OrderFilter) -> int:
        """How many orders match ``query`` (``paging.total``)."""
        return self._measure(self._segments(query), query)

    def search(
        self, query: OrderFilter, *, ascending: bool = True, offset: int = 0, limit: int = 50
    ) -> tuple[int, list[OrderRecord]]:
        """(total, the page [offset, offset + limit)) of the matching orders by creation date."""
        segments = self._segments(query)
        total = self._measure(segments, query)
        page: list[OrderRecord] = []
        skip = offset
        for segment in segments if ascending else reversed(segments):
            if len(page) >= limit:
                break
            if skip >= segment.count:
                skip -= segment.count
                continue
            if segment.simple:
                found: Iterable[OrderRecord] = self._simple_orders(
                    segment, query, ascending=ascending, skip=skip
                )
            else:
                matches = segment.matches or []
                found = (matches if ascending else matches[::-1])[skip:]
            skip = 0
            for record in found:
                page.append(record)
                if len(page) >= limit:
                    break
        return total, page

    def standing(self, since: int | None = None) -> int:
        """Standing sales (every status but cancelled and invalid) created since ``since`` (ms,
        truncated to the hour like ML's filter; default 30 days ago): what the app counts."""
        if since is None:
            since = self.now - 30 * DAY_MS
        return self.count(OrderFilter(STANDING_STATUSES, created_from=truncate_to_hour(since)))

    def get(self, order_id: int) -> OrderRecord | None:
        """The seller's order ``order_id`` if it exists at ``now`` (scheduled or from activity)."""
        for records in self.extra_by_hour.values():
            for record in records:
                if record.id == order_id:
                    return record
        offset = order_id - ORDER_ID_BASE - order_slot(self.seller.id) * SLOT_SPAN
        if not 0 <= offset < SLOT_SPAN:
            return None
        day, j = EPOCH_DAY + offset // DAY_SPAN, offset % DAY_SPAN
        if not self.first_day <= day <= self.today:
            return None
        plan = self._plan(day)
        if j >= plan.count:
            return None
        local_hour = bisect_right(plan.starts, j) - 1
        hour = day * 24 + LOCAL_SHIFT_MS // HOUR_MS + local_hour
        record = hour_records(self.seller.id, self.target, hour)[j - plan.starts[local_hour]]
        return record if record.created <= self.now else None

    def newest(self, count: int) -> list[OrderRecord]:
        """The seller's ``count`` newest orders (any status), newest first."""
        return self.search(OrderFilter(), ascending=False, limit=count)[1]

    def newest_ids(self, count: int) -> list[int]:
        return [record.id for record in self.newest(count)]

    def to_json(self, record: OrderRecord) -> dict[str, Any]:
        return order_json(record, self.seller, self.number, self.now)


def owns_order(seller_id: int, order_id: int) -> bool:
    """Whether ``order_id`` lies in the seller's part of the scheduled ids (it may not exist)."""
    offset = order_id - ORDER_ID_BASE - order_slot(seller_id) * SLOT_SPAN
    return 0 <= offset < SLOT_SPAN


# --- The order object ------------------------------------------------------------------------------


def _lines(seller: DemoSeller, number: int, key: int) -> list[dict[str, Any]]:
    """1–3 lines of the seller's active items: quantity 1–3, the item's price, ML's fee per unit."""
    draw = _mix(key, 11)
    lines = 1 if draw % 100 < 75 else 2 if draw % 100 < 93 else 3
    items = max(seller.listings, 1)
    result = []
    for line in range(lines):
        pick = _mix(key, 12, line)
        index = (pick >> 8) % items
        quantity = 1 if pick % 10 < 7 else 2 if pick % 10 < 9 else 3
        cents = round(item_price(seller, index) * 100)
        if pick % 13 == 0:  # a promotion: 5-15 % off
            cents -= cents * (5 + (pick >> 40) % 11) // 100
        premium = index % 3 == 0
        fee_rate = 0.16 if premium else 0.11 + (index % 4) / 100
        result.append(
            {
                "index": index,
                "quantity": quantity,
                "cents": cents,
                "fee_cents": round(cents * fee_rate),
                "listing_type_id": "gold_pro" if premium else "gold_special",
            }
        )
    return result


def _money(cents: int) -> float:
    return round(cents / 100, 2)


def _payment(
    record: OrderRecord, seller: DemoSeller, status: str, total: int, approved: int | None, last: int
) -> list[dict[str, Any]]:
    """The order's payment as ML lists it under ``payments`` (none while no one tried to pay)."""
    if status == "confirmed" or (status == "payment_required" and approved is None):
        return []
    if status in {"paid", "partially_refunded", "pending_cancel", "partially_paid"}:
        pay_status, detail = "approved", "accredited"
    elif status == "payment_in_process":
        pay_status, detail = "in_process", "pending_review_manual"
    elif status == "invalid":
        pay_status, detail = "rejected", "cc_rejected_high_risk"
    elif approved is not None:
        pay_status, detail = "refunded", "refunded"
    else:
        pay_status, detail = "cancelled", "expired"
    amount = total // 2 if status == "partially_paid" else total
    paid = amount if pay_status in {"approved", "refunded"} else 0
    refunded = paid if pay_status == "refunded" else total // 3 if status == "partially_refunded" else 0
    kind = _mix(record.key, 21) % 10
    if kind < 5:
        method, payment_type = "master", "credit_card"
    else:
        method, payment_type = ("pix", "bank_transfer") if kind < 8 else ("bolbradesco", "ticket")
    return [
        {
            "id": 60_000_000_000 + record.key % 30_000_000_000,
            "order_id": record.id,
            "payer_id": record.buyer_id,
            "collector": {"id": seller.id},
            "currency_id": CURRENCY.get(seller.site_id, "BRL"),
            "status": pay_status,
            "status_detail": detail,
            "transaction_amount": _money(amount),
            "total_paid_amount": _money(paid),
            "transaction_amount_refunded": _money(refunded),
            "installments": 1 + (record.key >> 20) % 6 if payment_type == "credit_card" else 1,
            "payment_method_id": method,
            "payment_type": payment_type,
            "date_created": iso(record.created / 1000),
            "date_approved": None if approved is None else iso(approved / 1000),
            "date_last_modified": iso(last / 1000),
        }
    ]


def order_json(record: OrderRecord, seller: DemoSeller, number: int, now: int) -> dict[str, Any]:
    """The §4.2 order object of ``record`` as it stands at ``now`` (ms).

    ``status``, ``date_last_updated`` and ``last_updated`` are those of the last transition
    at or before ``now``; ``date_closed`` is when it was paid (null before); ``paid_amount``
    is the total once paid (half of it while ``partially_paid``, 0 if never paid or
    cancelled); ``total_amount`` is Σ ``unit_price`` × ``quantity`` of its lines.
    """
    moment, status, _ = record.at(now)
    shown = [transition for transition in record.transitions if transition[0] <= now] or [
        record.transitions[0]
    ]
    paid_at = next((at for at, state, _ in shown if state == "paid"), None)
    approved = next((at for at, state, _ in shown if state in {"paid", "partially_paid"}), None)
    delivered = any(event == "delivered" for _, _, event in shown)
    currency = CURRENCY.get(seller.site_id, "BRL")
    lines = _lines(seller, number, record.key)
    total = sum(line["cents"] * line["quantity"] for line in lines)
    if status in {"paid", "partially_refunded", "pending_cancel"}:
        paid_amount = total
    else:
        paid_amount = total // 2 if status == "partially_paid" else 0
    tags = []
    if status in {"paid", "partially_refunded", "pending_cancel"}:
        tags = ["paid", "delivered" if delivered else "not_delivered"]
    if record.pack_id is not None:
        tags.append("pack_order")
    buyer = record.buyer_id
    return {
        "id": record.id,
        "status": status,
        "status_detail": None,
        "date_created": iso(record.created / 1000),
        "date_closed": None if paid_at is None else iso(paid_at / 1000),
        "last_updated": iso(moment / 1000),
        "date_last_updated": iso(moment / 1000),
        "expiration_date": iso((record.created + 28 * DAY_MS) / 1000),
        "total_amount": _money(total),
        "paid_amount": _money(paid_amount),
        "currency_id": currency,
        "seller": {"id": seller.id, "nickname": seller.nickname},
        "buyer": {"id": buyer, "nickname": f"COMPRADOR{buyer % 100000:05d}"},
        "order_items": [
            {
                "item": {
                    "id": item_id(seller, number, line["index"]),
                    "title": item_title(line["index"]),
                    "category_id": f"{seller.site_id}{1000 + line['index'] % 40}",
                    "variation_id": None,
                    "seller_sku": None,
                },
                "quantity": line["quantity"],
                "unit_price": _money(line["cents"]),
                "full_unit_price": _money(line["cents"]),
                "sale_fee": _money(line["fee_cents"]),
                "listing_type_id": line["listing_type_id"],
                "currency_id": currency,
            }
            for line in lines
        ],
        "payments": _payment(record, seller, status, total, approved, moment),
        "shipping": {"id": record.shipping_id},
        "pack_id": record.pack_id,
        "tags": tags,
        "mediations": [],
        "feedback": {"sale": None, "purchase": None},
        "context": {"channel": "marketplace", "site": seller.site_id, "flows": []},
        "fulfilled": True if delivered else (False if paid_at is not None else None),
    }


def to_ms(moment: float | datetime) -> int:
    """An instant (epoch seconds or an aware datetime) in epoch milliseconds."""
    if isinstance(moment, datetime):
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        moment = moment.timestamp()
    return int(moment * 1000)
