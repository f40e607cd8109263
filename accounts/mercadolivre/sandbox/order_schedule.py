"""The sandbox's order schedule (§4.2): which orders each seller has, when, and how each one's
status moves, as pure functions of the seller and the clock (the sandbox's ``orders`` module
searches them and renders them as ML's order objects; its docstring tells the whole story).

- ``orders_before`` / ``day_plan``: how many orders a seller has before a moment, and a day's;
- ``hour_records``: the orders of one hour, each an ``OrderRecord`` with its timed
  ``transitions`` to its fate (``FATES``);
- the ids: ``ORDER_ID_BASE + slot × SLOT_SPAN + (day − EPOCH_DAY) × DAY_SPAN + j``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import lru_cache

from .sellers import (
    DEMO_SELLERS,
    ORDER_STATUSES,
)

HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS
# America/Sao_Paulo has been UTC−3 all year since 2019: local day D starts at 03:00 UTC.
LOCAL_SHIFT_MS = 3 * HOUR_MS
EPOCH_DAY = 18262  # 2020-01-01, the first local day an order id can name
RETENTION_DAYS = 400  # ML keeps orders about twelve months (§4.2); the sandbox a bit longer
MAX_SETTLE_MS = 96 * HOUR_MS  # every history ends within this of the order's creation
ORDER_ID_BASE = 2_000_000_000_000_000  # ML order ids look like 2000003508419013 (§0)
SLOT_SPAN = 100_000_000
SLOTS = 69_999_999  # slot 1..SLOTS, so that every id stays below 2^53 (JavaScript-safe)
DAY_SPAN = 10_000  # at most this many orders a seller a day
MAX_ACTIVITY_ORDERS = 10_000  # one activity call creates or cancels at most this many
# Orders a day, per standing order of 30 days: a fifth more cancelled, a twentieth invalid.
_ALL_PER_STANDING = 25 / 20
_HASH_MASK = (1 << 64) - 1

# The final status of order j of a day is FATES[(phase + j) % 25]: 20 standing sales (13 paid,
# 2 confirmed, one of each other standing status), 4 cancelled and 1 invalid.
FATES = (
    "paid",
    "paid",
    "cancelled",
    "confirmed",
    "paid",
    "paid",
    "payment_in_process",
    "paid",
    "cancelled",
    "paid",
    "partially_refunded",
    "paid",
    "paid",
    "invalid",
    "confirmed",
    "paid",
    "cancelled",
    "payment_required",
    "paid",
    "paid",
    "pending_cancel",
    "paid",
    "cancelled",
    "partially_paid",
    "paid",
)
_CYCLE = len(FATES)
_STATUS_INDEX = {status: index for index, status in enumerate(ORDER_STATUSES)}
# Per status: how many of FATES[:x] have it, for x in 0..25.
_FATE_PREFIX = tuple(
    tuple(sum(1 for fate in FATES[:x] if fate == status) for x in range(_CYCLE + 1))
    for status in ORDER_STATUSES
)
# Share of a day's orders in each local hour (0h..23h): quiet nights, a lunch bump, busy evenings.
_RHYTHM = (
    0.35, 0.22, 0.15, 0.10, 0.10, 0.15, 0.30, 0.55, 0.80, 1.00, 1.10, 1.15,
    1.20, 1.15, 1.10, 1.10, 1.15, 1.20, 1.30, 1.50, 1.70, 1.75, 1.50, 0.90,
)  # fmt: skip
_CUMULATIVE = (*(sum(_RHYTHM[:hour]) / sum(_RHYTHM) for hour in range(24)), 1.0)
_DEMO_IDS = frozenset(seller.id for seller in DEMO_SELLERS)


def _mix(*values: int) -> int:
    """A 64-bit hash of integers (splitmix64 rounds): the sandbox's only source of "chance"."""
    x = 0x9E3779B97F4A7C15
    for value in values:
        x = ((x ^ (value & _HASH_MASK)) * 0xBF58476D1CE4E5B9) & _HASH_MASK
        x ^= x >> 31
        x = (x * 0x94D049BB133111EB) & _HASH_MASK
        x ^= x >> 29
    return x


def _unit(value: int) -> float:
    """A hash as a number in [0, 1)."""
    return (value >> 11) / 9007199254740992


def local_day(ms: int) -> int:
    """The São Paulo day (days since 1970-01-01) of a UTC instant in milliseconds."""
    return (ms - LOCAL_SHIFT_MS) // DAY_MS


def day_start(day: int) -> int:
    """The UTC instant (ms) at which São Paulo day ``day`` begins."""
    return day * DAY_MS + LOCAL_SHIFT_MS


def order_slot(seller_id: int) -> int:
    """The seller's slot in the order ids (1..SLOTS; slot 0 is for orders activity created)."""
    return 1 + seller_id % SLOTS


def truncate_to_hour(ms: int) -> int:
    return ms // HOUR_MS * HOUR_MS


def _fate_count(status: int, start: int, stop: int) -> int:
    """How many of the fates at cycle positions [start, stop) are ``ORDER_STATUSES[status]``."""
    prefix = _FATE_PREFIX[status]

    def upto(x: int) -> int:
        return x // _CYCLE * prefix[_CYCLE] + prefix[x % _CYCLE]

    return upto(stop) - upto(start)


# --- The schedule ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DayPlan:
    """One seller's orders of one local day: how many, where each hour's begin, and their fates.

    Order ``j`` of the day falls in the local hour ``h`` with ``starts[h] <= j <
    starts[h + 1]``; it is the seller's order number ``first + j`` since 1970 and its fate is
    ``FATES[(offset + first + j) % 25]``, so the pattern runs on from one day to the next.
    """

    day: int
    first: int  # the seller's orders before this day, counted from 1970 (with its offset)
    count: int
    starts: tuple[int, ...]  # 25 entries: starts[0] == 0, starts[24] == count

    def count_between(self, statuses: Sequence[int], first_hour: int, last_hour: int) -> int:
        """Orders of the local hours [first_hour, last_hour) whose fate is one of ``statuses``."""
        return _fates(statuses, self.first + self.starts[first_hour], self.first + self.starts[last_hour])


def _fates(statuses: Sequence[int], start: int, stop: int) -> int:
    """How many of the orders at positions [start, stop) have one of the fates ``statuses``."""
    if len(statuses) == len(ORDER_STATUSES):
        return stop - start
    return sum(_fate_count(status, start, stop) for status in statuses)


# Sales by weekday (Monday first; they add up to 7): slower Fridays and Saturdays.
_WEEK = (1.04, 1.06, 1.02, 1.00, 0.96, 0.88, 1.04)
# Σ of _WEEK over the first r days of a week that starts on a Monday (1970-01-01 was a Thursday).
_WEEK_SUMS = tuple(sum(_WEEK[(k + 3) % 7] for k in range(r)) for r in range(8))
_NOISE = 0.1  # a day's sales differ from its weekday's by up to ±2 × this


def _seed(seller_id: int) -> int:
    return _mix(seller_id, 0x5EED)


def orders_before(seller_id: int, target: int, day: int) -> int:
    """The seller's orders (cancelled and invalid included) before local day ``day``, since 1970.

    The cumulative ``mean × (Σ weekday weights + g(day))``, cut to whole orders once: ``g``
    is hash noise within ±``_NOISE`` whose differences make the days uneven, and since it does
    not add up, any run of days holds ``mean`` a day within a few tenths of a day's sales.
    The seller's fate pattern is shifted by its seed (``(seed % 25)`` more than this).
    """
    if target <= 0:
        return 0
    seed = _seed(seller_id)
    mean = target * _ALL_PER_STANDING / 30
    weeks, rest = divmod(day, 7)
    noise = _NOISE * (2 * _unit(_mix(seed, day, 1)) - 1)
    return int(_unit(_mix(seed, 2)) + mean * (7 * weeks + _WEEK_SUMS[rest] + noise)) + seed % _CYCLE


@lru_cache(maxsize=16384)
def day_plan(seller_id: int, target: int, day: int) -> DayPlan:
    """The seller's orders on local day ``day`` for a target of ``target`` standing sales in 30 days."""
    if target <= 0 or day < EPOCH_DAY:
        return DayPlan(day, 0, 0, (0,) * 25)
    first = orders_before(seller_id, target, day)
    count = min(orders_before(seller_id, target, day + 1) - first, DAY_SPAN)
    # Split by the daily rhythm, cut once with the day's own shift.
    shift = _unit(_mix(_seed(seller_id), day, 3))
    starts = tuple(min(int(shift + count * share), count) for share in _CUMULATIVE)
    return DayPlan(day, first, count, starts)


# --- One order ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OrderRecord:
    """One order as the schedule (or activity) made it: its moments, not yet its JSON.

    ``transitions`` are ``(ms, status, event)``, oldest first; the first is the creation.
    At a moment ``now`` the order shows the last transition at or before ``now``.
    """

    id: int
    created: int
    transitions: tuple[tuple[int, str, str], ...]
    buyer_id: int
    key: int  # the hash its lines, payments and shipping come from
    pack_id: int | None = None
    shipping_id: int = 0

    @property
    def fate(self) -> str:
        return self.transitions[-1][1]

    def at(self, now: int) -> tuple[int, str, str]:
        """The transition showing at ``now`` (the creation if ``now`` comes before the rest)."""
        shown = self.transitions[0]
        for transition in self.transitions[1:]:
            if transition[0] > now:
                break
            shown = transition
        return shown


def _history(fate: str, created: int, key: int) -> tuple[tuple[int, str, str], ...]:
    """The timed transitions an order goes through to reach ``fate`` (see the module docstring)."""
    u = [_unit(_mix(key, n)) for n in range(4)]
    start = "payment_required" if u[0] < 0.3 else "payment_in_process"
    paid_at = created + 60_000 + int(u[1] * 40 * 60_000)
    delivered_at = paid_at + 20 * HOUR_MS + int(u[2] * 40 * HOUR_MS)
    later = paid_at + 2 * HOUR_MS + int(u[3] * 38 * HOUR_MS)  # a cancellation or a dispute
    paid = ((created, start, "created"), (paid_at, "paid", "paid"))
    if fate == "paid":
        return (*paid, (delivered_at, "paid", "delivered"))
    if fate in {"confirmed", "payment_required", "payment_in_process"}:
        return ((created, fate, "created"),)
    if fate == "partially_paid":
        return ((created, "payment_in_process", "created"), (paid_at, "partially_paid", "partially_paid"))
    if fate == "partially_refunded":
        refunded_at = delivered_at + 6 * HOUR_MS + int(u[3] * 24 * HOUR_MS)
        return (*paid, (delivered_at, "paid", "delivered"), (refunded_at, fate, "refunded"))
    if fate == "pending_cancel":
        return (*paid, (later, fate, "cancel_requested"))
    if fate == "invalid":
        voided_at = created + 10 * 60_000 + int(u[3] * 350 * 60_000)
        return ((created, "payment_in_process", "created"), (voided_at, fate, "voided"))
    # cancelled: two in five were never paid; the others were paid, then cancelled and refunded.
    if u[0] < 0.4:
        cancelled_at = created + HOUR_MS + int(u[3] * 47 * HOUR_MS)
        return ((created, "payment_required", "created"), (cancelled_at, fate, "cancelled"))
    return (*paid, (later, fate, "cancelled"))


def _buyer(seller_id: int, target: int, key: int) -> int:
    """A buyer from the seller's pool (about twice its monthly sales: some buy again)."""
    pool = max(20, 2 * target)
    buyer = 100_000_000 + _mix(seller_id, key % pool, 9) % 899_999_999
    return buyer + 1 if buyer in _DEMO_IDS else buyer


def _shipping_id(key: int) -> int:
    return 40_000_000_000 + key % 9_000_000_000


@lru_cache(maxsize=8192)
def hour_records(seller_id: int, target: int, hour: int) -> tuple[OrderRecord, ...]:
    """The seller's scheduled orders created in the absolute hour ``hour`` (UTC epoch hours), by date."""
    day, local_hour = divmod(hour - LOCAL_SHIFT_MS // HOUR_MS, 24)
    plan = day_plan(seller_id, target, day)
    first, stop = plan.starts[local_hour], plan.starts[local_hour + 1]
    count = stop - first
    if not count:
        return ()
    seed = _seed(seller_id)
    base = ORDER_ID_BASE + order_slot(seller_id) * SLOT_SPAN + (day - EPOCH_DAY) * DAY_SPAN
    hour_start = hour * HOUR_MS
    width = HOUR_MS / count
    step = max(1, min(250, int(width) // 2))  # the orders of a cart come a moment apart
    records: list[OrderRecord] = []
    run = 0  # orders in the current cart so far
    for i in range(count):
        j = first + i
        key = _mix(seed, day, j)
        joins = i > 0 and run < 4 and key % 6 == 0
        pack_id = None
        if joins:
            leader = records[-run]
            if leader.pack_id is None:
                # A cart: every order in it carries the first one's id as its pack id.
                leader = records[-run] = replace(leader, pack_id=leader.id)
            created = leader.created + run * step
            buyer, shipping, pack_id = leader.buyer_id, leader.shipping_id, leader.id
            run += 1
        else:
            created = hour_start + int((i + 0.05 + 0.9 * _unit(_mix(key, 5))) * width)
            buyer, shipping = _buyer(seller_id, target, key), _shipping_id(key)
            run = 1
        fate = FATES[(plan.first + j) % _CYCLE]
        record = OrderRecord(
            id=base + j,
            created=created,
            transitions=_history(fate, created, key),
            buyer_id=buyer,
            key=key,
            pack_id=pack_id,
            shipping_id=shipping,
        )
        records.append(record)
    return tuple(records)
