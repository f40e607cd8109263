"""The sales figures of `make bench` (manage.py bench): phase 7, issue 15's "Must show".

7. The "Vendas" page (`GET /sales/`, mlaccounts.views.sales) of a workspace with N accounts
   (100: 80 MLB in BRL, 20 MLA in ARS) and M orders (100,000) spread over the last 90 days,
   mostly paid, ~15 % cancelled, a few in other statuses, a reputation snapshot per account
   for today: the server time (Django's test client in this process, every middleware, the
   view and the template; one warm-up, then `REQUESTS` timed requests: p50 and p95) of the
   page at ?days=30 and ?days=90, and its SQL queries. The same page of a second workspace
   a tenth the size (10 accounts, 10,000 orders) must make exactly as many queries: the page
   aggregates in the database, so its query count does not grow with the accounts or the
   orders; a difference stops the bench (CommandError).

   Then the ML calls of a first import of about 5,000 orders: a sandbox seller of its own
   (an in-process sandbox whose data clock is frozen at the start, so that the count to
   compare with does not move meanwhile) sized so that its last 90 days hold ~5,000 orders
   (the sandbox's `/orders/search` with `order.date_created.from` = now − 90 days says how
   many), an account connected with a minted token, and `sync.engine.sync_account` run until
   the mirror's first import ended (`MLAccount.orders_synced_at`): the sandbox's `orders`
   requests per sync, in all, and per order; the mirror must then hold exactly the
   sandbox's total (CommandError otherwise).

The rows are made with bulk_create, not through ML: `seed` and `measure_page` are what
tests/sync/test_bench_sales.py runs at a tiny size. The leading underscore keeps Django
from taking this module for a command.
"""

from __future__ import annotations

import random
import statistics
import time
import uuid
import warnings
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from unittest import mock

from django.conf import settings
from django.core.management.base import CommandError
from django.db import connection, transaction
from django.db.models import Max
from django.test import Client
from django.test.utils import CaptureQueriesContext, override_settings
from django.urls import reverse
from django.utils import timezone

from accounts import services
from accounts.mercadolivre import sales as ml_sales
from accounts.mercadolivre import sandbox
from accounts.models import ORDERS_HISTORY_DAYS, MLAccount, Order, OrderStatus, ReputationSnapshot, User
from mlaccounts.views.sales import ACCOUNTS_PER_PAGE
from sync import engine, mirrors
from sync.management.commands import _bench_metrics

# ML user ids are unique installation-wide: the bench's other phases use 7,000,000,000 up
# (bench.BENCH_USER_IDS) and the demo sellers' ids; the page's accounts start here.
PAGE_USER_IDS = 8_000_000_000
IMPORT_USER_ID = 6_500_000_001  # the first import's sandbox seller
# The seeded orders' ids: above the sandbox's (2e15 to 9e15), whose first import runs in the
# same database.
ORDER_IDS = 9_100_000_000_000_000
BATCH = 5000
REQUESTS = 20  # timed requests per window
WINDOWS = (30, 90)
SMALL_SHARE = 10  # the second workspace: a tenth of the accounts and of the orders
IMPORT_ORDERS = 5000
# Per 20 accounts: 16 in Brazil, 4 in Argentina (80 / 20 at 100 accounts).
SITES = (("MLB", "BRL", Decimal(1)),) * 16 + (("MLA", "ARS", Decimal(250)),) * 4
# Per 20 orders: 14 paid, 3 cancelled (15 %), one each of three other statuses.
STATUSES = (
    (OrderStatus.PAID,) * 14
    + (OrderStatus.CANCELLED,) * 3
    + (OrderStatus.CONFIRMED, OrderStatus.PAYMENT_IN_PROCESS, OrderStatus.PARTIALLY_REFUNDED)
)
_CENT = Decimal("0.01")


# --- seeding -----------------------------------------------------------------------------------------


@dataclass
class Seeded:
    user: User
    workspace: object
    accounts: int
    orders: int
    seconds: float


def _next_id(queryset, column: str, floor: int) -> int:
    top = queryset.filter(**{f"{column}__gte": floor}).aggregate(top=Max(column))["top"]
    return floor if top is None else top + 1


def seed(*, accounts: int, orders: int, now: datetime | None = None, seed_value: int = 15) -> Seeded:
    """One workspace (its owner signed in to it) with `accounts` accounts and `orders` orders.

    Orders are spread over the last ORDERS_HISTORY_DAYS days, unevenly between the accounts
    (the busiest ten times the quietest), in the currency of each account's site; every
    account has today's reputation snapshot, one in ten near a limit (the page's warnings).
    """
    clock = time.monotonic()
    now = now or timezone.now()
    rng = random.Random(seed_value)  # noqa: S311 - a spread, not security
    first_user = _next_id(MLAccount.objects, "ml_user_id", PAGE_USER_IDS)
    first_order = _next_id(Order.objects, "id", ORDER_IDS)
    far = now + timedelta(days=365)  # nothing of theirs falls due during the bench
    with transaction.atomic():
        user = User.objects.create_user(f"bench-sales-{uuid.uuid4().hex}@example.invalid", None)
        workspace = services.workspace_personal(user=user)
        services.workspace_switch(user=user, workspace=workspace)
        rows = []
        for n in range(accounts):
            site, _, _ = SITES[n % len(SITES)]
            rows.append(
                MLAccount(
                    workspace=workspace,
                    ml_user_id=first_user + n,
                    nickname=f"BENCH_SALES_{first_user + n}",
                    account_name=f"Bench sales {n:03d}",
                    site_id=site,
                    access_token=f"bench-access-{n}",
                    refresh_token=f"bench-refresh-{n}",
                    token_expires_at=far,
                    token_obtained_at=now,
                    next_sync=far,
                    last_sync=now,
                    last_sync_status="success",
                    orders_synced_at=now,
                    reputation_day=timezone.localdate(now),
                )
            )
        MLAccount.objects.bulk_create(rows, batch_size=BATCH)
        made = list(
            MLAccount.objects.filter(workspace=workspace).order_by("ml_user_id").values_list("pk", "site_id")
        )
        currency = {site: (code, factor) for site, code, factor in SITES}
        weights = [1 + 9 * ((n * 37) % accounts) / max(accounts - 1, 1) for n in range(accounts)]
        owners = rng.choices(range(accounts), weights=weights, k=orders)
        span = ORDERS_HISTORY_DAYS * 86400 - 120
        batch = []
        for n, owner in enumerate(owners):
            pk, site = made[owner]
            code, factor = currency[site]
            status = STATUSES[n % len(STATUSES)]
            created = now - timedelta(seconds=60 + rng.random() * span)
            units = 1 + (n % 7 == 0) + (n % 19 == 0)
            total = (Decimal(rng.randrange(1990, 50000)) / 100 * factor * units).quantize(_CENT)
            fees = (total * Decimal(rng.randrange(11, 17)) / 100).quantize(_CENT)
            paid = status in (OrderStatus.PAID, OrderStatus.PARTIALLY_REFUNDED)
            batch.append(
                Order(
                    id=first_order + n,
                    account_id=pk,
                    status=status,
                    total_amount=total,
                    paid_amount=total if paid else Decimal("0.00"),
                    currency=code,
                    date_created=created,
                    date_closed=created + timedelta(minutes=5) if paid else None,
                    date_last_updated=created + timedelta(hours=1),
                    pack_id=None,
                    items=units,
                    sale_fees=fees,
                    stored_at=now,
                )
            )
            if len(batch) == BATCH:
                Order.objects.bulk_create(batch, batch_size=BATCH)
                batch = []
        if batch:
            Order.objects.bulk_create(batch, batch_size=BATCH)
        ReputationSnapshot.objects.bulk_create(
            [
                ReputationSnapshot(
                    account_id=pk,
                    day=timezone.localdate(now),
                    taken_at=now,
                    level_id="5_green" if n % 5 else "4_light_green",
                    power_seller_status="platinum" if n % 3 == 0 else "",
                    period="60 days",
                    transactions_total=1000,
                    transactions_completed=950,
                    transactions_canceled=50,
                    claims_rate=Decimal("0.0280") if n % 10 == 0 else Decimal("0.0100"),
                    claims_value=28 if n % 10 == 0 else 10,
                    delayed_handling_rate=Decimal("0.0500"),
                    delayed_handling_value=50,
                    cancellations_rate=Decimal("0.0050"),
                    cancellations_value=5,
                )
                for n, (pk, _) in enumerate(made)
            ],
            batch_size=BATCH,
        )
    if connection.vendor == "postgresql":
        # What autovacuum does shortly after a bulk load: the planner's statistics.
        with connection.cursor() as cursor:
            cursor.execute(f"ANALYZE {Order._meta.db_table}")
    user.refresh_from_db()
    return Seeded(user, workspace, accounts, orders, time.monotonic() - clock)


# --- the page ------------------------------------------------------------------------------------------


@dataclass
class PageMeasure:
    days: int
    status: int
    queries: int
    times_ms: list[float] = field(default_factory=list)
    size: int = 0
    sql: list[str] = field(default_factory=list)

    @property
    def p50(self) -> float:
        return _percentile(self.times_ms, 50)

    @property
    def p95(self) -> float:
        return _percentile(self.times_ms, 95)


def _percentile(values: list[float], percent: int) -> float:
    if len(values) < 2:
        return values[0] if values else float("nan")
    return statistics.quantiles(values, n=100, method="inclusive")[percent - 1]


def client_for(user: User) -> Client:
    """A test client signed in as `user`, on a host the settings allow (as bench_overview's)."""
    host = next((h.lstrip(".") for h in settings.ALLOWED_HOSTS if h != "*"), "localhost")
    client = Client(HTTP_HOST=host)
    client.force_login(user)
    return client


def measure_page(user: User, *, days: int, requests: int = REQUESTS, warmup: int = 1) -> PageMeasure:
    """`GET /sales/?days=…` (page 1) as `user`: `warmup` untimed requests, `requests` timed
    ones, then one more with its queries captured (not timed: the capture costs time)."""
    client = client_for(user)
    url = f"{reverse('dashboard:sales')}?days={days}&page=1"

    def get():
        return client.get(url, secure=settings.SECURE_SSL_REDIRECT)

    with warnings.catch_warnings():
        # WhiteNoise's "No directory at: …/staticfiles/" (collectstatic not run): not ours to say.
        warnings.filterwarnings("ignore", message="No directory at", category=UserWarning)
        for _ in range(warmup):
            get()
    times = []
    for _ in range(requests):
        started = time.perf_counter()
        get()
        times.append((time.perf_counter() - started) * 1000)
    with CaptureQueriesContext(connection) as captured:
        response = get()
    return PageMeasure(
        days=days,
        status=response.status_code,
        queries=len(captured.captured_queries),
        times_ms=times,
        size=len(response.content),
        sql=[query["sql"] for query in captured.captured_queries],
    )


# --- the first import ----------------------------------------------------------------------------------


@dataclass
class ImportRun:
    orders_calls: list[int]  # the sandbox's `orders` requests per sync
    pages: list[int]  # of which the import's pages (the rest: the count read while it runs)
    ml_calls: list[int]  # every ML call of each sync
    mirrored: int
    sandbox_total: int
    volume: int  # the seller's DemoSeller.orders
    seconds: float
    # GET /metrics just before the first sync and just after the last (with `scrape`).
    scraped: tuple[_bench_metrics.Scrape, _bench_metrics.Scrape] | None = None

    @property
    def calls(self) -> int:
        return sum(self.orders_calls)


def _total_since(token: str, seller_id: int, since: datetime) -> int:
    """The sandbox's count of the seller's orders created since `since` (cut to the hour)."""
    return ml_sales.search_orders(token, seller_id, created_from=since, limit=1).total


def _seller(volume: int) -> sandbox.DemoSeller:
    return sandbox.DemoSeller(
        IMPORT_USER_ID,
        "BENCH_CINCO_MIL",
        "cinco.mil@testuser.com",
        "Cinco",
        "Mil",
        "MLB",
        listings=300,
        orders=volume,
        questions=0,
        claims=0,
    )


def _sized_sandbox(target: int, frozen: float):
    """A sandbox whose seller's last 90 days hold about `target` orders: (server, state, seller).

    `DemoSeller.orders` is about the standing sales of 30 days; with the cancelled and invalid
    ones a day holds about 1.25/30 of it. The first guess is corrected by what the sandbox's
    own search says, twice at most (the schedule's noise is a few per cent).
    """
    volume = round(target / (ORDERS_HISTORY_DAYS / 30 * 1.25))
    since = datetime.fromtimestamp(frozen, tz=UTC) - timedelta(days=ORDERS_HISTORY_DAYS)
    for attempt in range(3):
        seller = _seller(volume)
        state = sandbox.SandboxState(sellers=[seller])
        state.clock = lambda: frozen
        server = sandbox.start_sandbox(port=0, state=state)
        token = state.mint(seller.id)["access_token"]
        with override_settings(ML_API_URL=server.url, ML_AUTH_URL=server.url):
            total = _total_since(token, seller.id, since)
        if abs(total - target) <= target // 100 or attempt == 2:
            return server, state, seller
        server.stop()
        volume = max(1, round(volume * target / max(total, 1)))
    raise AssertionError("unreachable")


def first_import(*, target: int = IMPORT_ORDERS, max_syncs: int = 50, scrape: bool = False) -> ImportRun:
    """Sync a fresh account of a ~`target`-order sandbox seller until its first import ended.

    With `scrape`, GET /metrics is read just before the first sync and after the last."""
    clock = time.monotonic()
    frozen = time.time()
    server, state, seller = _sized_sandbox(target, frozen)
    try:
        # The budget off: the syncs run back to back here, where a real one is minutes from
        # the next and finds the budget refilled (the import's further pages only use a token
        # free at that moment, ratelimit.spare): with a budget, back to back, they would stop
        # after the bucket's first second and the figure would measure the bench's pace.
        with override_settings(ML_API_URL=server.url, ML_AUTH_URL=server.url, ML_REQUESTS_PER_SECOND=0):
            user = User.objects.create_user(f"bench-sales-import-{uuid.uuid4().hex}@example.invalid", None)
            workspace = services.workspace_personal(user=user)
            pair = state.mint(seller.id)
            now = timezone.now()
            account = MLAccount.objects.create(
                workspace=workspace,
                ml_user_id=seller.id,
                nickname=seller.nickname,
                account_name=seller.nickname,
                site_id=seller.site_id,
                access_token=pair["access_token"],
                refresh_token=pair["refresh_token"],
                token_expires_at=now + timedelta(seconds=pair["expires_in"]),
                token_obtained_at=now,
                next_sync=now + timedelta(days=365),
            )
            pages = []
            search = ml_sales.search_orders

            def counted(*args, **kwargs):
                pages.append(1)
                return search(*args, **kwargs)

            orders_calls, page_calls, ml_calls = [], [], []
            before = _bench_metrics.scrape() if scrape else None
            with mock.patch.object(mirrors.ml_sales, "search_orders", side_effect=counted):
                while True:
                    state.reset_stats()
                    pages.clear()
                    result = engine.sync_account(account.pk)
                    if not result.ok:
                        raise CommandError(f"a sync of the import failed: {result.error!r}")
                    orders_calls.append(state.stats()["by_kind"]["orders"])
                    page_calls.append(len(pages))
                    ml_calls.append(result.ml_calls)
                    account.refresh_from_db()
                    if account.orders_synced_at is not None:
                        break
                    if len(orders_calls) >= max_syncs:
                        raise CommandError(f"the first import had not ended after {max_syncs} syncs")
            scraped = (before, _bench_metrics.scrape()) if before is not None else None
            mirrored = Order.objects.filter(account=account).count()
            since = account.orders_synced_at - timedelta(days=ORDERS_HISTORY_DAYS)
            total = _total_since(pair["access_token"], seller.id, since)
    finally:
        server.stop()
    return ImportRun(
        orders_calls=orders_calls,
        pages=page_calls,
        ml_calls=ml_calls,
        mirrored=mirrored,
        sandbox_total=total,
        volume=seller.orders,
        seconds=time.monotonic() - clock,
        scraped=scraped,
    )


# --- the phase -----------------------------------------------------------------------------------------


def _stores() -> str:
    return "PostgreSQL" if connection.vendor == "postgresql" else "SQLite"


def run(command, *, accounts: int, orders: int, import_orders: int = IMPORT_ORDERS) -> None:
    """Phase 7, printing as `command` does (its stdout and style)."""
    out, style = command.stdout, command.style
    small_accounts, small_orders = max(1, accounts // SMALL_SHARE), max(1, orders // SMALL_SHARE)
    out.write(
        f"\n7. Sales page: GET /sales/ (page 1, {ACCOUNTS_PER_PAGE} accounts a page) of a workspace "
        f"with {accounts:,} accounts and {orders:,} orders over the last {ORDERS_HISTORY_DAYS} days, "
        f"against one with {small_accounts:,} and {small_orders:,}; {_stores()}, DEBUG off, Django's "
        f"test client in this process, 1 warm-up and {REQUESTS} timed requests per window; then the "
        f"ML calls of a first import of ~{import_orders:,} orders from the sandbox"
    )
    big = seed(accounts=accounts, orders=orders)
    small = seed(accounts=small_accounts, orders=small_orders, seed_value=16)
    out.write(
        f"   seeded with bulk_create ({BATCH:,} a batch): {big.orders:,} orders in {big.seconds:.1f} s, "
        f"{small.orders:,} in {small.seconds:.1f} s"
    )
    counts, mismatched = {}, []
    for days in WINDOWS:
        large = measure_page(big.user, days=days)
        little = measure_page(small.user, days=days)
        for measured in (large, little):
            if measured.status != 200:
                raise CommandError(f"GET /sales/?days={days} answered {measured.status}")
        out.write(
            style.SUCCESS(
                f"   Sales page, {days} days, {accounts} accounts / {orders:,} orders: "
                f"p50 {large.p50:.0f} ms, p95 {large.p95:.0f} ms, {large.queries} queries"
            )
            + f" ({large.size // 1024} KiB); {small_accounts} accounts / {small_orders:,} orders: "
            f"p50 {little.p50:.0f} ms, p95 {little.p95:.0f} ms, {little.queries} queries"
        )
        counts[days] = (large.queries, little.queries)
        if large.queries != little.queries:
            mismatched.append((days, large, little))
    for days, large, little in mismatched:
        out.write(f"   queries at {days} days, {accounts} accounts:")
        for sql in large.sql:
            out.write(f"     {sql[:200]}")
        out.write(f"   queries at {days} days, {small_accounts} accounts:")
        for sql in little.sql:
            out.write(f"     {sql[:200]}")
    if mismatched:
        raise CommandError(
            "the sales page's query count grows with the data: "
            + "; ".join(f"{d} days: {a.queries} vs {b.queries}" for d, a, b in mismatched)
        )
    out.write(
        style.SUCCESS(
            "   Constant queries: "
            + ", ".join(f"{days} days {n} = {m}" for days, (n, m) in counts.items())
            + f" (at {accounts} accounts / {orders:,} orders = at {small_accounts} / {small_orders:,})"
        )
    )

    imported = first_import(target=import_orders, scrape=True)
    pages = sum(imported.pages)
    count_reads = imported.calls - pages
    out.write(
        f"   first import: a sandbox seller of volume {imported.volume:,} (DemoSeller.orders), its data "
        f"clock frozen at the start; orders calls per sync: {', '.join(map(str, imported.orders_calls))} "
        f"({pages} pages of {ml_sales.ORDERS_PAGE}, {mirrors.ORDER_PAGES_PER_RUN} a sync at most, and "
        f"{count_reads} reads of the 30-day count while the import ran); every ML call per sync: "
        f"{', '.join(map(str, imported.ml_calls))}; {imported.seconds:.1f} s"
    )
    if imported.mirrored != imported.sandbox_total:
        raise CommandError(
            f"the orders mirror holds {imported.mirrored:,} orders, the sandbox lists "
            f"{imported.sandbox_total:,}"
        )
    out.write(
        style.SUCCESS(
            f"   Budget: first import of {imported.mirrored:,} orders: {imported.calls} orders calls over "
            f"{len(imported.orders_calls)} syncs ({mirrors.ORDER_PAGES_PER_RUN} pages a sync at most), "
            f"{imported.mirrored / max(imported.calls, 1):.1f} orders per call"
        )
        + f"; the mirror holds {imported.mirrored:,} = the sandbox's {imported.sandbox_total:,}"
    )
    before, after = imported.scraped
    _bench_metrics.report(
        command,
        "7. first import",
        before,
        [
            ("syncs success (the import)", _bench_metrics.SYNCS, {"outcome": "success"}, len(imported.pages)),
            ("ML requests (the syncs' own count)", _bench_metrics.ML_REQUESTS, {}, sum(imported.ml_calls)),
        ],
        after=after,
    )
