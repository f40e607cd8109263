"""Reads of sales and history: figures per window and currency, daily series, reputation, counts.

Through the access helper like every read: figures cover the accounts the user can see
(`mlaccount_visible_to`), one account is `mlaccount_get_for_user` (404 for anybody else).
Everything is aggregated in the database, one query per figure set whatever the number of
accounts and orders. Money is summed per currency only: a workspace with BRL and ARS stores
gets one line per currency, never a mixed total.

A window of N days is the last N × 24 hours up to now; the one before it, for comparison,
the N × 24 hours before that. Revenue is the sum of `total_amount` of the `paid` orders
created in the window, fees the sum of their `sale_fees`, cancelled the orders created in
the window that are `cancelled` now. Days (the daily series) are the installation's time
zone's (settings.TIME_ZONE).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db.models import Count, DecimalField, OuterRef, Q, QuerySet, Subquery, Sum, Value
from django.db.models.functions import Coalesce, TruncDate
from django.utils import timezone

from accounts.models import CountSnapshot, MLAccount, Order, OrderStatus, ReputationSnapshot
from accounts.selectors import _signed_in, mlaccount_get_for_user, mlaccount_visible_to

WINDOW_DAYS = (1, 7, 30, 90)  # the pages' choices ("24 h", 7, 30, 90 days)
MAX_WINDOW_DAYS = 90  # the orders mirror's first import reaches this far back
# The currency each ML site sells in (§8): an account without orders in a window still shows one.
SITE_CURRENCIES = {
    "MLB": "BRL",
    "MLA": "ARS",
    "MLM": "MXN",
    "MLC": "CLP",
    "MCO": "COP",
    "MLU": "UYU",
    "MPE": "PEN",
    "MEC": "USD",
    "MLV": "VES",
    "MBO": "BOB",
    "MPY": "PYG",
    "MCR": "CRC",
    "MGT": "GTQ",
    "MHN": "HNL",
    "MNI": "NIO",
    "MPA": "PAB",
    "MSV": "USD",
    "MRD": "DOP",
}
_ZERO = Decimal("0.00")
_MONEY = DecimalField(max_digits=20, decimal_places=2)


@dataclass(frozen=True)
class Window:
    days: int
    start: datetime
    end: datetime

    @property
    def previous_start(self) -> datetime:
        return self.start - (self.end - self.start)


def sales_window(days: int, *, now: datetime | None = None) -> Window:
    """The last `days` × 24 hours up to `now`."""
    if not 1 <= days <= MAX_WINDOW_DAYS:
        raise ValueError(f"days must be from 1 to {MAX_WINDOW_DAYS}")
    end = now or timezone.now()
    return Window(days=days, start=end - timedelta(days=days), end=end)


@dataclass(frozen=True)
class Figures:
    revenue: Decimal = _ZERO
    orders: int = 0
    cancelled: int = 0
    fees: Decimal = _ZERO

    @property
    def average_ticket(self) -> Decimal | None:
        return (self.revenue / self.orders).quantize(Decimal("0.01")) if self.orders else None

    @property
    def net(self) -> Decimal:
        return self.revenue - self.fees


@dataclass(frozen=True)
class CurrencyFigures:
    """A window's figures in one currency, beside the window before it."""

    currency: str
    current: Figures = field(default_factory=Figures)
    previous: Figures = field(default_factory=Figures)

    @property
    def revenue_change(self) -> Decimal | None:
        """The revenue's change on the previous window, in percent (None without a previous one)."""
        if not self.previous.revenue:
            return None
        return ((self.current.revenue - self.previous.revenue) * 100 / self.previous.revenue).quantize(
            Decimal("0.1")
        )


def _sum(name: str, condition: Q):
    return Coalesce(Sum(name, filter=condition), Value(_ZERO), output_field=_MONEY)


def _figures(orders: QuerySet[Order], window: Window, *group: str) -> QuerySet:
    current = Q(date_created__gte=window.start)
    previous = Q(date_created__lt=window.start)
    paid = Q(status=OrderStatus.PAID)
    cancelled = Q(status=OrderStatus.CANCELLED)
    return (
        orders.filter(date_created__gte=window.previous_start, date_created__lt=window.end)
        .values(*group, "currency")
        .annotate(
            revenue=_sum("total_amount", current & paid),
            orders=Count("pk", filter=current & paid),
            cancelled=Count("pk", filter=current & cancelled),
            fees=_sum("sale_fees", current & paid),
            previous_revenue=_sum("total_amount", previous & paid),
            previous_orders=Count("pk", filter=previous & paid),
            previous_cancelled=Count("pk", filter=previous & cancelled),
            previous_fees=_sum("sale_fees", previous & paid),
        )
        .order_by(*group, "currency")
    )


def _currency_figures(row: dict) -> CurrencyFigures:
    return CurrencyFigures(
        currency=row["currency"],
        current=Figures(row["revenue"], row["orders"], row["cancelled"], row["fees"]),
        previous=Figures(
            row["previous_revenue"], row["previous_orders"], row["previous_cancelled"], row["previous_fees"]
        ),
    )


def _by_revenue(figures: list[CurrencyFigures]) -> list[CurrencyFigures]:
    return sorted(figures, key=lambda f: (-f.current.orders, -f.current.revenue, f.currency))


def sales_summary(*, accounts: QuerySet[MLAccount], window: Window) -> list[CurrencyFigures]:
    """The figures of `accounts` in `window`, one line per currency, busiest first (one query)."""
    orders = Order.objects.filter(account__in=accounts.values("pk"))
    return _by_revenue([_currency_figures(row) for row in _figures(orders, window)])


def sales_by_account(*, account_ids, window: Window) -> dict:
    """Each account's figures in `window` per currency (one query for the whole page of accounts)."""
    found: dict = {pk: [] for pk in account_ids}
    for row in _figures(Order.objects.filter(account_id__in=list(found)), window, "account_id"):
        found[row["account_id"]].append(_currency_figures(row))
    return {pk: _by_revenue(figures) for pk, figures in found.items()}


@dataclass(frozen=True)
class DayPoint:
    day: date
    revenue: Decimal
    orders: int


def _zone() -> ZoneInfo:
    return ZoneInfo(settings.TIME_ZONE)


def sales_daily(*, accounts: QuerySet[MLAccount], window: Window) -> dict[str, list[DayPoint]]:
    """Revenue and paid orders per day of the installation's time zone, per currency (one query).

    The days are the `window.days` calendar days ending today, each present (zero when
    nothing sold), oldest first.
    """
    zone = _zone()
    today = timezone.localdate(window.end, zone)
    first = today - timedelta(days=window.days - 1)
    since = datetime.combine(first, datetime.min.time(), tzinfo=zone)
    rows = (
        Order.objects.filter(
            account__in=accounts.values("pk"),
            status=OrderStatus.PAID,
            date_created__gte=since,
            date_created__lt=window.end,
        )
        .annotate(day=TruncDate("date_created", tzinfo=zone))
        .values("currency", "day")
        .annotate(revenue=_sum("total_amount", Q()), orders=Count("pk"))
        .order_by("currency", "day")
    )
    series: dict[str, dict[date, DayPoint]] = {}
    for row in rows:
        point = DayPoint(row["day"], row["revenue"], row["orders"])
        series.setdefault(row["currency"], {})[point.day] = point
    days = [first + timedelta(days=n) for n in range(window.days)]
    return {
        currency: [points.get(day) or DayPoint(day, _ZERO, 0) for day in days]
        for currency, points in series.items()
    }


def account_currency(account: MLAccount, figures: list[CurrencyFigures]) -> str:
    """The currency an account's figures are shown in: its site's (an ML site sells in one
    currency), unless it sold only in others in the window, then the busiest of those."""
    site = SITE_CURRENCIES.get(account.site_id)
    if not figures or any(f.currency == site for f in figures):
        return site or "BRL"
    return figures[0].currency


def reputation_latest(*, account_ids) -> dict:
    """Each account's newest reputation snapshot (one query; `account_ids` a list or a queryset)."""
    if not isinstance(account_ids, QuerySet):
        account_ids = list(account_ids)
    newest = (
        ReputationSnapshot.objects.filter(account_id=OuterRef("account_id")).order_by("-day").values("pk")[:1]
    )
    snapshots = ReputationSnapshot.objects.filter(account_id__in=account_ids, pk=Subquery(newest))
    return {snapshot.account_id: snapshot for snapshot in snapshots}


def reputation_history(
    *, account: MLAccount, days: int, now: datetime | None = None
) -> list[ReputationSnapshot]:
    """The account's daily reputation snapshots of the last `days` days, oldest first."""
    since = timezone.localdate(now or timezone.now(), _zone()) - timedelta(days=days - 1)
    return list(ReputationSnapshot.objects.filter(account=account, day__gte=since).order_by("day"))


def count_history(*, account: MLAccount, days: int, now: datetime | None = None) -> list[CountSnapshot]:
    """The account's hourly count snapshots of the last `days` days, oldest first."""
    since = (now or timezone.now()) - timedelta(days=days)
    return list(CountSnapshot.objects.filter(account=account, hour__gte=since).order_by("hour"))


@dataclass(frozen=True)
class CountPoint:
    """The four counts of many accounts added up, in one hour."""

    hour: datetime
    products: int
    orders: int
    questions: int
    claims: int


def count_history_totals(*, accounts: QuerySet[MLAccount], days: int, now: datetime | None = None) -> list:
    """The four counts of `accounts` added up per hour over the last `days` days (one query)."""
    since = (now or timezone.now()) - timedelta(days=days)
    rows = (
        CountSnapshot.objects.filter(account__in=accounts.values("pk"), hour__gte=since)
        .values("hour")
        .annotate(
            products=Coalesce(Sum("products"), 0),
            orders=Coalesce(Sum("orders"), 0),
            questions=Coalesce(Sum("questions"), 0),
            claims=Coalesce(Sum("claims"), 0),
        )
        .order_by("hour")
    )
    return [CountPoint(**row) for row in rows]


# The reputation colours a workspace's chart groups its accounts by (level_id → group).
LEVEL_GROUPS = {
    "5_green": "green",
    "4_light_green": "green",
    "3_yellow": "yellow",
    "2_orange": "red",
    "1_red": "red",
}


def reputation_levels_by_day(
    *, accounts: QuerySet[MLAccount], days: int, now: datetime | None = None
) -> list:
    """Per day of the last `days`, how many of `accounts` were green (or light green), yellow,
    and orange or red: [(day, {"green": n, "yellow": n, "red": n})], oldest first (one query)."""
    since = timezone.localdate(now or timezone.now(), _zone()) - timedelta(days=days - 1)
    rows = (
        ReputationSnapshot.objects.filter(account__in=accounts.values("pk"), day__gte=since)
        .values("day", "level_id")
        .annotate(n=Count("pk"))
        .order_by("day")
    )
    by_day: dict[date, dict[str, int]] = {}
    for row in rows:
        group = LEVEL_GROUPS.get(row["level_id"])
        if group:
            counts = by_day.setdefault(row["day"], {"green": 0, "yellow": 0, "red": 0})
            counts[group] += row["n"]
    return sorted(by_day.items())


@dataclass
class AccountMetrics:
    """What the account page's charts and `GET /api/ml-accounts/:id/metrics` show."""

    account: MLAccount
    window: Window
    currency: str
    figures: CurrencyFigures
    daily: list[DayPoint]
    reputation: ReputationSnapshot | None


def account_metrics_for_user(*, user, account_id, days: int, now: datetime | None = None) -> AccountMetrics:
    """One account's figures in its own currency, its daily series and its newest reputation.

    Through the access helper: a 404 for an account the user cannot see. Four queries.
    """
    account = mlaccount_get_for_user(user=user, account_id=account_id)
    return account_metrics(account=account, days=days, now=now)


def account_metrics(*, account: MLAccount, days: int, now: datetime | None = None) -> AccountMetrics:
    """`account_metrics_for_user` of an account the caller already read through the access helper."""
    window = sales_window(days, now=now)
    accounts = MLAccount.objects.filter(pk=account.pk)
    figures = sales_summary(accounts=accounts, window=window)
    currency = account_currency(account, figures)
    daily = sales_daily(accounts=accounts, window=window).get(currency)
    if daily is None:
        first = timezone.localdate(window.end, _zone()) - timedelta(days=days - 1)
        daily = [DayPoint(first + timedelta(days=n), _ZERO, 0) for n in range(days)]
    return AccountMetrics(
        account=account,
        window=window,
        currency=currency,
        figures=next((f for f in figures if f.currency == currency), CurrencyFigures(currency)),
        daily=daily,
        reputation=reputation_latest(account_ids=[account.pk]).get(account.pk),
    )


def sales_accounts_for_user(*, user, workspace=None) -> QuerySet[MLAccount]:
    """The accounts whose sales the user sees (in `workspace`, or all), by name."""
    if not _signed_in(user):
        return MLAccount.objects.none()
    accounts = mlaccount_visible_to(user=user).defer(*MLAccount.SECRET_FIELDS)
    if workspace is not None:
        accounts = accounts.filter(workspace=workspace)
    return accounts.order_by("account_name", "id")
