"""The orders mirror, reputation and count snapshots (issue 15), with ML at the HTTP boundary.

`FakeOrders` is one seller's orders as ML keeps them: the search filters by creation and
last-update date the way ML does (cut to the hour, §4.2), sorts by creation date and pages
by offset; `GET /orders/{id}` reads one.
"""

import json
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from urllib.parse import parse_qs, urlsplit

import pytest
import responses
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts import selectors, services
from accounts.mercadolivre import deadline as ml_deadline
from accounts.mercadolivre import ratelimit
from accounts.mercadolivre import sales as ml_sales
from accounts.mercadolivre.errors import MLUnavailable
from accounts.models import CountSnapshot, MLAccount, Order, ReputationSnapshot
from sync import engine, mirrors, notifications, tasks
from tests.factories import MLAccountFactory
from tests.mlmock import API, COUNT_URLS, add_counts, add_reputation, order_json
from tests.notification_helpers import stored

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("ml_settings")]

T0 = datetime(2026, 11, 20, 13, 20, tzinfo=UTC)  # a read that begins at 13:20 UTC


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds")


def _hour(raw: str) -> datetime:
    # ML ignores minutes and seconds in order date filters (§4.2).
    return datetime.fromisoformat(raw.replace("-00:00", "+00:00")).replace(minute=0, second=0, microsecond=0)


class FakeOrders:
    """One seller's orders at ML (`orders`: id → JSON), searched and read like ML does."""

    def __init__(self, ml, *, page_limit=50):
        self.orders: dict[int, dict] = {}
        self.queries: list[dict] = []
        self.page_limit = page_limit
        self.fail_from: int | None = None  # searches from this many on answer 503
        ml.add_callback(responses.GET, COUNT_URLS["orders"], callback=self._search)
        ml.add_callback(
            responses.GET, re.compile(re.escape(API) + r"/orders/(\d+)(\?.*)?$"), callback=self._one
        )

    def add(self, n: int, *, created: datetime, updated: datetime | None = None, **changes) -> dict:
        body = order_json(n, **changes)
        body.update(
            date_created=_iso(created),
            date_last_updated=_iso(updated or created + timedelta(minutes=1)),
        )
        self.orders[body["id"]] = body
        return body

    def change(self, order_id: int, *, updated: datetime, **changes) -> None:
        self.orders[order_id].update(date_last_updated=_iso(updated), **changes)

    def _search(self, request):
        query = {k: v[0] for k, v in parse_qs(urlsplit(request.url).query).items()}
        if self.fail_from is not None and len(self.queries) >= self.fail_from:
            return 503, {}, '{"message":"unavailable","error":"service_unavailable","status":503,"cause":[]}'
        self.queries.append(query)
        found = list(self.orders.values())
        if "order.date_created.from" in query:
            since = _hour(query["order.date_created.from"])
            found = [o for o in found if datetime.fromisoformat(o["date_created"]) >= since]
        if "order.date_last_updated.from" in query:
            since = _hour(query["order.date_last_updated.from"])
            found = [o for o in found if datetime.fromisoformat(o["date_last_updated"]) >= since]
        if "order.status" in query:
            found = [o for o in found if o["status"] in query["order.status"].split(",")]
        found.sort(key=lambda o: (o["date_created"], o["id"]), reverse=query.get("sort") == "date_desc")
        offset, limit = int(query.get("offset", 0)), min(int(query.get("limit", 50)), self.page_limit)
        body = {
            "query": None,
            "results": found[offset : offset + limit],
            "paging": {"total": len(found), "offset": offset, "limit": limit},
        }
        return 200, {}, json.dumps(body)

    def _one(self, request):
        order_id = int(re.search(r"/orders/(\d+)", request.url).group(1))
        if order_id not in self.orders:
            return 404, {}, '{"message":"Order not found","error":"order_not_found","status":404,"cause":[]}'
        return 200, {}, json.dumps(self.orders[order_id])


def _read(account, *, now=T0) -> bool:
    account = MLAccount.objects.get(pk=account.pk)
    return mirrors.refresh_orders("APP_USR-token", account, now=now)


def _calls(ml, pattern=r"/orders/"):
    return [c for c in ml.calls if re.search(pattern, urlsplit(c.request.url).path)]


# --- the incremental window ----------------------------------------------------------------------


def test_the_first_read_imports_the_last_90_days_and_stores_money_as_decimals(ml_account, ml):
    fake = FakeOrders(ml)
    fake.add(0, created=T0 - timedelta(days=2))
    fake.add(1, created=T0 - timedelta(days=89, hours=23))
    fake.add(2, created=T0 - timedelta(days=91))  # older than the import reaches
    fake.add(
        3,
        created=T0 - timedelta(hours=3),
        total_amount=129.95,
        paid_amount=129.95,
        pack_id=2000000000123,
        order_items=[
            {
                "item": {"id": "MLB1"},
                "quantity": 3,
                "unit_price": 10.0,
                "sale_fee": 1.15,
                "currency_id": "BRL",
            },
            {
                "item": {"id": "MLB2"},
                "quantity": 1,
                "unit_price": 99.95,
                "sale_fee": 12.99,
                "currency_id": "BRL",
            },
        ],
    )

    assert _read(ml_account) is True

    [query] = fake.queries
    assert query["order.date_created.from"] == "2026-08-22T13:00:00.000-00:00"  # T0 - 90 days, on the hour
    assert "order.date_last_updated.from" not in query
    assert (query["seller"], query["sort"], query["offset"]) == (str(ml_account.ml_user_id), "date_desc", "0")
    assert set(Order.objects.values_list("id", flat=True)) == {fake_id(0), fake_id(1), fake_id(3)}
    order = Order.objects.get(pk=fake_id(3))
    assert order.total_amount == Decimal("129.95") and isinstance(order.total_amount, Decimal)
    assert (order.items, order.sale_fees) == (4, Decimal("16.44"))  # 3 × 1.15 + 1 × 12.99
    assert (order.currency, order.pack_id, order.account_id) == ("BRL", 2000000000123, ml_account.pk)
    account = MLAccount.objects.get(pk=ml_account.pk)
    assert (account.orders_synced_at, account.orders_read_started_at) == (T0, None)


def fake_id(n: int) -> int:
    return order_json(n)["id"]


def test_later_reads_ask_for_what_changed_since_the_last_began_less_an_hour(ml_account, ml):
    fake = FakeOrders(ml)
    fake.add(0, created=T0 - timedelta(days=3))
    _read(ml_account)

    # Stored at ML 40 minutes before the first read began, but listed only now (ML's search
    # lags; ML also cuts the filter to the hour): the hour of overlap catches it.
    late = fake.add(1, created=T0 - timedelta(minutes=45), updated=T0 - timedelta(minutes=40))
    # Changed since: paid → cancelled.
    fake.change(fake_id(0), updated=T0 + timedelta(minutes=30), status="cancelled")
    # Not changed since long before the first read: not asked for again.
    fake.add(2, created=T0 - timedelta(days=5), updated=T0 - timedelta(days=4))

    assert _read(ml_account, now=T0 + timedelta(hours=1)) is True

    second = fake.queries[-1]
    assert (
        second["order.date_last_updated.from"] == "2026-11-20T12:00:00.000-00:00"
    )  # 13:20 − 1 h, on the hour
    assert "order.date_created.from" not in second
    assert Order.objects.get(pk=late["id"]).status == "paid"
    assert not Order.objects.filter(pk=fake_id(2)).exists()
    # Upserted, not duplicated: the changed order has its new status and date.
    assert Order.objects.filter(pk=fake_id(0)).count() == 1
    changed = Order.objects.get(pk=fake_id(0))
    assert changed.status == "cancelled"
    assert changed.date_last_updated == T0 + timedelta(minutes=30)
    assert MLAccount.objects.get(pk=ml_account.pk).orders_synced_at == T0 + timedelta(hours=1)


def test_a_read_older_than_what_the_mirror_holds_changes_nothing(ml_account):
    newer = ml_sales.parse_order(order_json(0, status="cancelled") | {"date_last_updated": _iso(T0)})
    older = ml_sales.parse_order(order_json(0) | {"date_last_updated": _iso(T0 - timedelta(hours=2))})
    services.order_mirror_store(account_id=ml_account.pk, orders=[newer])

    assert services.order_mirror_store(account_id=ml_account.pk, orders=[older]) == 0

    assert Order.objects.get(pk=newer.id).status == "cancelled"


def test_unreadable_orders_are_skipped_and_paging_still_counts_them(ml_account, ml):
    fake = FakeOrders(ml)
    fake.add(0, created=T0 - timedelta(days=1))
    fake.add(1, created=T0 - timedelta(days=1, hours=1), total_amount="lots")
    fake.add(2, created=T0 - timedelta(days=1, hours=2), currency_id=None)
    fake.add(3, created=T0 - timedelta(days=1, hours=3), total_amount=-5)

    assert _read(ml_account) is True

    assert list(Order.objects.values_list("id", flat=True)) == [fake_id(0)]


def test_a_long_import_goes_on_over_the_next_syncs_from_its_offset(ml_account, ml, capsys):
    """A first import of 5,000 orders: 50 a call, 20 calls a sync; print what it cost."""
    fake = FakeOrders(ml)
    for n in range(5000):
        fake.add(n, created=T0 - timedelta(minutes=20 * (n + 1)))  # 69 days of orders

    runs = []
    for run in range(10):
        before = len(fake.queries)
        done = _read(ml_account, now=T0 + timedelta(minutes=5 * run))
        runs.append(len(fake.queries) - before)
        if done:
            break

    calls = sum(runs)
    print(f"first import of 5,000 orders: {calls} ML calls over {len(runs)} syncs ({runs})")
    assert runs == [20, 20, 20, 20, 20]
    assert Order.objects.filter(account=ml_account).count() == 5000
    # Every page after the first sync's went on from where the last stopped, on the same
    # query (the import's start: its window does not move while it runs).
    offsets = [int(q["offset"]) for q in fake.queries]
    assert offsets == list(range(0, 5000, 50))
    assert {q["order.date_created.from"] for q in fake.queries} == {"2026-08-22T13:00:00.000-00:00"}
    account = MLAccount.objects.get(pk=ml_account.pk)
    # Done: mirrored up to when the import began, so the next read starts an hour before.
    assert (account.orders_synced_at, account.orders_read_started_at, account.orders_offset) == (T0, None, 0)
    assert "100 ML calls over 5 syncs" in capsys.readouterr().out


def test_a_call_failing_mid_import_keeps_the_pages_read_before_it(ml_account, ml):
    fake = FakeOrders(ml)
    for n in range(200):
        fake.add(n, created=T0 - timedelta(minutes=20 * (n + 1)))
    fake.fail_from = 2  # the third page fails, however often it is retried

    with pytest.raises(MLUnavailable):
        _read(ml_account)

    account = MLAccount.objects.get(pk=ml_account.pk)
    assert (account.orders_read_started_at, account.orders_offset) == (T0, 100)
    assert Order.objects.filter(account=ml_account).count() == 100

    fake.fail_from = None
    assert _read(ml_account, now=T0 + timedelta(minutes=5)) is True
    assert Order.objects.filter(account=ml_account).count() == 200
    assert [q.get("offset") for q in fake.queries[-2:]] == ["100", "150"]


def test_a_long_read_stops_before_the_syncs_deadline_and_goes_on_next_time(ml_account, ml):
    """Near the deadline (a web request's "sync now"), one page, then the desk's calls."""
    fake = FakeOrders(ml)
    for n in range(300):
        fake.add(n, created=T0 - timedelta(minutes=20 * (n + 1)))

    with ml_deadline.within(mirrors.ORDERS_RESERVE_SECONDS - 1):
        assert _read(ml_account) is False
    assert len(fake.queries) == 1
    assert MLAccount.objects.get(pk=ml_account.pk).orders_offset == 50

    with ml_deadline.within(mirrors.ORDERS_RESERVE_SECONDS * 3):
        assert _read(ml_account, now=T0 + timedelta(minutes=5)) is True
    assert Order.objects.filter(account=ml_account).count() == 300


def test_while_the_import_runs_the_count_is_read_at_ml_and_then_from_the_mirror(ml_account, ml, monkeypatch):
    monkeypatch.setattr(mirrors, "ORDER_PAGES_PER_RUN", 1)
    fake = FakeOrders(ml, page_limit=2)
    monkeypatch.setattr(ml_sales, "ORDERS_PAGE", 2)
    for n in range(3):
        fake.add(n, created=timezone.now() - timedelta(days=n + 1))
    add_counts(ml, orders=None)

    first = engine.sync_account(ml_account.pk)
    assert first.ok and first.counts.orders == 3
    count_calls = [q for q in fake.queries if q.get("limit") == "1"]
    assert len(count_calls) == 1  # the import is not done: ML counted

    second = engine.sync_account(ml_account.pk)
    assert second.ok and second.counts.orders == 3
    assert len([q for q in fake.queries if q.get("limit") == "1"]) == 1  # the mirror counted


def test_an_account_importing_its_orders_keeps_its_interval_though_notified(
    ml_account, ml, monkeypatch, settings
):
    """Fed by notifications, an account is polled hourly; not while its import goes on."""
    monkeypatch.setattr(mirrors, "ORDER_PAGES_PER_RUN", 1)
    MLAccount.objects.filter(pk=ml_account.pk).update(last_notification_at=timezone.now(), sync_interval=300)
    fake = FakeOrders(ml)
    for n in range(60):
        fake.add(n, created=timezone.now() - timedelta(hours=n + 1))
    add_counts(ml, orders=None)

    first = engine.sync_account(ml_account.pk)
    account = MLAccount.objects.get(pk=ml_account.pk)
    assert account.orders_read_started_at is not None  # one page of two read
    assert account.next_sync == first.synced_at + timedelta(seconds=300)

    second = engine.sync_account(ml_account.pk)
    account = MLAccount.objects.get(pk=ml_account.pk)
    assert account.orders_synced_at is not None
    assert account.next_sync == second.synced_at + timedelta(seconds=settings.ML_RECONCILE_INTERVAL)


def test_the_mirror_counts_what_mls_count_would(ml_account):
    """The dashboard's orders: created in the last 30 days (ML cuts the hour), not cancelled or invalid."""
    now = datetime(2026, 11, 20, 13, 20, tzinfo=UTC)
    kept = [
        ml_sales.parse_order(order_json(0, now=now)),
        ml_sales.parse_order(order_json(1, status="payment_in_process", now=now)),
        # 30 days and 20 minutes ago: inside, since ML starts the window on the hour.
        ml_sales.parse_order(
            order_json(0, now=now) | {"id": 7, "date_created": _iso(now - timedelta(days=30, minutes=20))}
        ),
    ]
    left_out = [
        ml_sales.parse_order(order_json(2, status="cancelled", now=now)),
        ml_sales.parse_order(order_json(3, status="invalid", now=now)),
        ml_sales.parse_order(
            order_json(0, now=now) | {"id": 8, "date_created": _iso(now - timedelta(days=30, hours=2))}
        ),
    ]
    services.order_mirror_store(account_id=ml_account.pk, orders=kept + left_out)

    assert mirrors.recent_orders(ml_account.pk, now=now) == len(kept)


# --- notifications --------------------------------------------------------------------------------


def test_an_order_notification_reads_the_order_into_the_mirror_and_counts_it_there(ml_account, ml):
    fake = FakeOrders(ml)
    fake.add(0, created=timezone.now() - timedelta(days=1))
    add_counts(ml, orders=None)
    assert engine.sync_account(ml_account.pk).ok
    before = len(ml.calls)
    sold = fake.add(1, created=timezone.now() - timedelta(minutes=2))
    fake.change(fake_id(0), updated=timezone.now(), status="cancelled")
    for n in range(3):  # ML sends several per sale (§11.1)
        stored(ml_account, "orders_v2", resource=f"/orders/{sold['id']}", ago=timedelta(seconds=n))
    stored(ml_account, "orders_v2", resource=f"/orders/{fake_id(0)}")

    result = notifications.process_account(ml_account.pk)

    assert result.ml_calls == 2  # each order once; the mirror counts them (no count call)
    paths = sorted(urlsplit(c.request.url).path for c in ml.calls[before:])
    assert paths == sorted([f"/orders/{sold['id']}", f"/orders/{fake_id(0)}"])
    assert Order.objects.get(pk=sold["id"]).status == "paid"
    assert Order.objects.get(pk=fake_id(0)).status == "cancelled"
    assert MLAccount.objects.get(pk=ml_account.pk).cached_orders == 1  # the new sale; the other cancelled


# --- sales figures ---------------------------------------------------------------------------------


def _store(account, *specs):
    """Orders from (n, status, amount, created, currency[, fee per unit]) tuples."""
    orders = []
    for n, status, amount, created, currency, *fee in specs:
        body = order_json(n, status=status) | {
            "id": 7_000_000 + n,
            "total_amount": amount,
            "currency_id": currency,
            "date_created": _iso(created),
            "order_items": [{"quantity": 1, "unit_price": amount, "sale_fee": fee[0] if fee else 0}],
        }
        orders.append(ml_sales.parse_order(body))
    services.order_mirror_store(account_id=account.pk, orders=orders)


def test_revenue_counts_paid_orders_only_and_cancelled_ones_apart(ml_account, user):
    now = datetime(2026, 11, 20, 15, 0, tzinfo=UTC)
    day = timedelta(days=1)
    _store(
        ml_account,
        (1, "paid", "100.00", now - 2 * day, "BRL", "11.00"),
        (2, "paid", "50.50", now - 3 * day, "BRL", "5.05"),
        (3, "cancelled", "999.00", now - 2 * day, "BRL", "99.00"),
        (4, "payment_in_process", "70.00", now - day, "BRL"),
        (5, "paid", "10.00", now - 8 * day, "BRL", "1.00"),  # the previous 7 days
        (6, "cancelled", "10.00", now - 9 * day, "BRL"),
        (7, "paid", "500.00", now - 15 * day, "BRL"),  # before both windows
    )
    window = selectors.sales_window(7, now=now)

    [brl] = selectors.sales_summary(accounts=MLAccount.objects.filter(pk=ml_account.pk), window=window)

    assert brl.currency == "BRL"
    assert (brl.current.revenue, brl.current.orders, brl.current.cancelled) == (Decimal("150.50"), 2, 1)
    assert (brl.current.fees, brl.current.net) == (Decimal("16.05"), Decimal("134.45"))
    assert brl.current.average_ticket == Decimal("75.25")
    assert (brl.previous.revenue, brl.previous.orders, brl.previous.cancelled) == (Decimal("10.00"), 1, 1)
    assert brl.revenue_change == Decimal("1405.0")


def test_money_is_never_added_across_currencies(user):
    now = datetime(2026, 11, 20, 15, 0, tzinfo=UTC)
    brazil = MLAccountFactory(owner=user, site_id="MLB")
    argentina = MLAccountFactory(owner=user, workspace=brazil.workspace, site_id="MLA")
    _store(brazil, (1, "paid", "100.00", now - timedelta(hours=5), "BRL"))
    _store(
        argentina,
        (2, "paid", "25000.00", now - timedelta(hours=5), "ARS"),
        (3, "paid", "5000.00", now - timedelta(hours=4), "ARS"),
    )
    window = selectors.sales_window(1, now=now)

    lines = selectors.sales_summary(accounts=selectors.sales_accounts_for_user(user=user), window=window)

    assert [(f.currency, f.current.revenue, f.current.orders) for f in lines] == [
        ("ARS", Decimal("30000.00"), 2),
        ("BRL", Decimal("100.00"), 1),
    ]
    per_account = selectors.sales_by_account(account_ids=[brazil.pk, argentina.pk], window=window)
    assert [f.currency for f in per_account[brazil.pk]] == ["BRL"]
    assert [f.current.revenue for f in per_account[argentina.pk]] == [Decimal("30000.00")]


@pytest.mark.parametrize("zone", ["America/Sao_Paulo"])
def test_days_are_counted_in_the_installations_time_zone(ml_account, settings, zone):
    settings.TIME_ZONE = zone  # São Paulo is UTC−3 all year
    now = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)  # 09:00 on the 21st in São Paulo
    _store(
        ml_account,
        (1, "paid", "10.00", datetime(2026, 11, 21, 2, 59, tzinfo=UTC), "BRL"),  # 23:59 on the 20th
        (2, "paid", "20.00", datetime(2026, 11, 21, 3, 0, tzinfo=UTC), "BRL"),  # 00:00 on the 21st
        (3, "paid", "40.00", datetime(2026, 11, 20, 3, 0, tzinfo=UTC), "BRL"),  # 00:00 on the 20th
        (4, "paid", "80.00", datetime(2026, 11, 20, 2, 59, tzinfo=UTC), "BRL"),  # 23:59 on the 19th: out
    )
    window = selectors.sales_window(2, now=now)

    daily = selectors.sales_daily(accounts=MLAccount.objects.filter(pk=ml_account.pk), window=window)

    assert [(p.day.isoformat(), p.revenue, p.orders) for p in daily["BRL"]] == [
        ("2026-11-20", Decimal("50.00"), 2),
        ("2026-11-21", Decimal("20.00"), 1),
    ]


# --- reputation and count snapshots -----------------------------------------------------------------


def test_the_reputation_is_taken_once_a_day_in_the_installations_time_zone(ml_account, ml, settings):
    settings.TIME_ZONE = "America/Sao_Paulo"
    add_reputation(
        ml,
        level_id="4_light_green",
        real_level="yellow",
        protection_end_date="2026-12-27T00:00:00.000-04:00",
        metrics={
            "sales": {"period": "60 days", "completed": 244},
            "claims": {"period": "60 days", "rate": 0.0166, "value": 4},
            "delayed_handling_time": {"period": "60 days", "rate": 0.0877, "value": 20},
            "cancellations": {"period": "60 days", "rate": 0, "value": 1},
        },
    )
    account = MLAccount.objects.get(pk=ml_account.pk)
    evening = datetime(2026, 11, 21, 2, 30, tzinfo=UTC)  # 23:30 on the 20th in São Paulo

    assert mirrors.refresh_reputation("token", account, now=evening) is True
    assert mirrors.refresh_reputation("token", account, now=evening + timedelta(minutes=20)) is False
    assert (
        mirrors.refresh_reputation("token", account, now=evening + timedelta(minutes=40)) is True
    )  # the 21st

    snapshots = list(ReputationSnapshot.objects.filter(account=ml_account).order_by("day"))
    assert [s.day.isoformat() for s in snapshots] == ["2026-11-20", "2026-11-21"]
    first = snapshots[0]
    assert (first.level_id, first.real_level, first.period) == ("4_light_green", "yellow", "60 days")
    assert first.protection_end_date == datetime(2026, 12, 27, 4, 0, tzinfo=UTC)
    assert (first.claims_rate, first.claims_value) == (Decimal("0.01660"), 4)
    assert (first.delayed_handling_rate, first.cancellations_rate, first.sales_completed) == (
        Decimal("0.08770"),
        Decimal("0.00000"),
        244,
    )
    assert len(_calls(ml, r"/users/")) == 2


def test_a_refused_reputation_does_not_fail_the_sync_and_is_tried_again(ml_account, ml):
    add_counts(ml, reputation=False)
    ml.add(
        responses.GET,
        re.compile(re.escape(API) + r"/users/\d+$"),
        status=403,
        json={"message": "forbidden", "error": "forbidden", "status": 403, "cause": []},
    )

    assert engine.sync_account(ml_account.pk).ok
    assert engine.sync_account(ml_account.pk).ok

    assert not ReputationSnapshot.objects.exists()
    assert len(_calls(ml, r"/users/\d+$")) == 2


def test_counts_are_kept_once_an_hour_not_once_a_sync(ml_account, ml):
    add_counts(ml, products=10, orders=2, questions=0, claims=0)
    for _ in range(3):
        assert engine.sync_account(ml_account.pk).ok

    [snapshot] = CountSnapshot.objects.filter(account=ml_account)
    assert (snapshot.products, snapshot.orders, snapshot.questions, snapshot.claims) == (10, 2, 0, 0)
    assert snapshot.hour == timezone.now().replace(minute=0, second=0, microsecond=0)


def test_the_hourly_job_gives_every_synced_account_its_point_and_cleanup_keeps_90_days(user):
    now = timezone.now()
    synced = MLAccountFactory(
        owner=user, cached_products=5, cached_orders=1, cached_questions=2, cached_claims=0, cached_at=now
    )
    MLAccountFactory(owner=user, workspace=synced.workspace)  # never synced: no point to give
    old = CountSnapshot.objects.create(account=synced, hour=now - timedelta(days=91), products=1)
    kept = CountSnapshot.objects.create(account=synced, hour=now - timedelta(days=89), products=2)

    assert tasks.snapshot_counts() == 1
    assert tasks.snapshot_counts() == 0  # once an hour

    hours = CountSnapshot.objects.filter(account=synced).order_by("hour")
    assert [s.products for s in hours] == [1, 2, 5]
    tasks.cleanup_events()
    assert not CountSnapshot.objects.filter(pk=old.pk).exists()
    assert CountSnapshot.objects.filter(pk=kept.pk).exists()


def test_database_cost_of_a_page_of_orders(ml_account):
    orders = [ml_sales.parse_order(order_json(n)) for n in range(50)]
    with CaptureQueriesContext(connection) as queries:
        services.order_mirror_store(account_id=ml_account.pk, orders=orders)
    assert len(queries.captured_queries) == 2  # what the mirror holds of them, then one upsert


@pytest.fixture
def fresh_budget(settings):
    settings.REDIS_URL = ""  # this process's own bucket, which no other test draws from
    ratelimit.reset()
    yield
    ratelimit.reset()


def test_an_import_reads_its_further_pages_only_on_budget_the_syncs_leave(
    ml_account, ml, settings, fresh_budget
):
    """The first page takes its token like any call; the next ones only a token free now (or
    within ratelimit.SPARE_WAIT)."""
    settings.ML_REQUESTS_PER_SECOND = 0.01  # a bucket of one token, the next in 100 s
    fake = FakeOrders(ml)
    for n in range(300):
        fake.add(n, created=T0 - timedelta(minutes=20 * (n + 1)))

    assert _read(ml_account) is False

    assert len(fake.queries) == 1  # the first page spent the only token
    assert MLAccount.objects.get(pk=ml_account.pk).orders_offset == 50
    settings.ML_REQUESTS_PER_SECOND = 0  # the budget off: every page
    assert _read(ml_account, now=T0 + timedelta(minutes=5)) is True
    assert Order.objects.filter(account=ml_account).count() == 300
