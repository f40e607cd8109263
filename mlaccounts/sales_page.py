"""What the sales pages show (issue 15): the window's choices, the charts, the reputation panel.

Used by the "Vendas" page (mlaccounts.views.sales) and the account page's sales section
(mlaccounts.views.accounts). Everything is read from the local mirrors through
accounts.selectors (the access helper), aggregated in the database; no Mercado Livre call.
Charts are server-side SVG (mlaccounts.charts), each with its data table; money is shown per
currency, never summed across currencies.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from django.utils.translation import gettext as _

from accounts import reputation, selectors
from accounts.selectors.sales import WINDOW_DAYS, CurrencyFigures
from mlaccounts import charts
from mlaccounts.templatetags.sales import currency_symbol, money_decimals

DEFAULT_DAYS = 30
WARNED_SHOWN = 20  # the accounts the "near a limit" list shows; it says how many more
HISTORY_DAYS = 30  # the account page's counts and reputation charts


def window_days(request) -> int:
    """`?days=` of the pages: one of WINDOW_DAYS (30 otherwise)."""
    raw = request.GET.get("days", "")
    return int(raw) if raw.isascii() and raw.isdigit() and int(raw) in WINDOW_DAYS else DEFAULT_DAYS


def window_choices(days: int) -> list[dict]:
    labels = {1: _("24 hours"), 7: _("7 days"), 30: _("30 days"), 90: _("90 days")}
    return [{"days": n, "label": labels[n], "current": n == days} for n in WINDOW_DAYS]


def _money(currency: str) -> charts.ValueFormat:
    return charts.money_format(currency_symbol(currency), money_decimals(currency))


def _sold(daily: list) -> bool:
    """Whether any day sold: a window without a sale shows its message, not a row of zeros."""
    return any(point.orders for point in daily)


def revenue_chart(chart_id: str, currency: str, daily: list) -> charts.Chart:
    return charts.bar_chart(
        chart_id=chart_id,
        title=_("Revenue per day (%(currency)s)") % {"currency": currency},
        points=[(point.day, point.revenue) for point in daily] if _sold(daily) else [],
        value_format=_money(currency),
        value_title=_("Revenue"),
        empty_message=_("No sales in this period yet."),
    )


def orders_chart(chart_id: str, daily: list) -> charts.Chart:
    return charts.bar_chart(
        chart_id=chart_id,
        title=_("Paid orders per day"),
        points=[(point.day, point.orders) for point in daily] if _sold(daily) else [],
        value_title=_("Orders"),
        empty_message=_("No sales in this period yet."),
    )


def count_charts(history: list, *, prefix: str = "counts") -> list[charts.Chart]:
    """Counts over time, one point an hour (CountSnapshot rows, or the CountPoint sums of a
    workspace): listings and orders in one chart, questions and claims (much smaller
    numbers) in another."""
    hours = [snapshot.hour for snapshot in history]
    empty = _("The history starts with the first sync; one point an hour.")
    return [
        charts.line_chart(
            chart_id=f"{prefix}-sales-chart",
            title=_("Active listings and orders (30 days), hourly"),
            labels=hours,
            series=[
                (_("Active listings"), [s.products for s in history]),
                (_("Orders (30 days)"), [s.orders for s in history]),
            ],
            label_title=_("Hour"),
            empty_message=empty,
        ),
        charts.line_chart(
            chart_id=f"{prefix}-desk-chart",
            title=_("Unanswered questions and open claims, hourly"),
            labels=hours,
            series=[
                (_("Unanswered questions"), [s.questions for s in history]),
                (_("Open claims"), [s.claims for s in history]),
            ],
            label_title=_("Hour"),
            empty_message=empty,
        ),
    ]


def _percent(rate: Decimal | None) -> Decimal | None:
    return None if rate is None else rate * 100


def reputation_chart(account, *, days: int, latest) -> charts.Chart:
    """The three rates of the daily snapshots, in percent, with the limits of the current colour."""
    history = selectors.reputation_history(account=account, days=days)
    level_limits = reputation.limits().get(latest.level_id if latest else "", {})
    return charts.line_chart(
        chart_id="reputation-chart",
        title=_("Reputation rates, daily"),
        labels=[snapshot.day for snapshot in history],
        series=[
            (_("Claims"), [_percent(s.claims_rate) for s in history]),
            (_("Late shipments"), [_percent(s.delayed_handling_rate) for s in history]),
            (_("Cancellations"), [_percent(s.cancellations_rate) for s in history]),
        ],
        value_format=charts.percent_format(2),
        axis_format=charts.percent_format(None),
        limits=[
            (_("%(metric)s limit") % {"metric": reputation.METRIC_LABELS[metric]}, limit * 100)
            for metric, limit in sorted(level_limits.items(), key=lambda item: item[1])
            if metric in ("claims", "delayed_handling")
        ],
        empty_message=_("The history starts with the first sync; one snapshot a day."),
    )


def levels_chart(days: list) -> charts.Chart:
    """How many accounts were of each reputation colour, per day (selectors.reputation_levels_by_day)."""
    return charts.line_chart(
        chart_id="levels-chart",
        title=_("Accounts per reputation colour, daily"),
        labels=[day for day, _counts in days],
        series=[
            (_("Green"), [counts["green"] for _day, counts in days]),
            (_("Yellow"), [counts["yellow"] for _day, counts in days]),
            (_("Orange or red"), [counts["red"] for _day, counts in days]),
        ],
        empty_message=_("The history starts with the first sync; one snapshot a day."),
    )


@dataclass
class ReputationView:
    """What a page shows of an account's newest reputation snapshot."""

    snapshot: object
    warnings: list

    steps = ("red", "orange", "yellow", "light-green", "green")  # the thermometer, worst first

    @property
    def over(self) -> bool:
        """Whether a rate is past its limit already (not only near it)."""
        return any(warning.over for warning in self.warnings)

    @property
    def colour(self) -> str:
        return reputation.level_colour(self.snapshot.level_id) if self.snapshot else ""

    @property
    def label(self) -> str:
        return reputation.level_label(self.snapshot.level_id) if self.snapshot else ""

    @property
    def leader(self) -> str:
        return (
            str(reputation.POWER_SELLER.get(self.snapshot.power_seller_status, "")) if self.snapshot else ""
        )

    @property
    def real_label(self) -> str:
        if not self.snapshot or not self.snapshot.real_level:
            return ""
        # ML names the real level by its colour ("yellow", "light_green"), not by its id.
        colour = self.snapshot.real_level.replace("_", "-")
        level = next((k for k, v in reputation.LEVELS.items() if v[0] == colour), "")
        return reputation.level_label(level) if level else self.snapshot.real_level

    @property
    def rates(self) -> list[dict]:
        if not self.snapshot:
            return []
        limits = reputation.limits().get(self.snapshot.level_id, {})
        warned = {w.metric: w for w in self.warnings}
        values = {
            "claims": self.snapshot.claims_value,
            "delayed_handling": self.snapshot.delayed_handling_value,
            "cancellations": self.snapshot.cancellations_value,
        }
        return [
            {
                "metric": metric,
                "label": reputation.METRIC_LABELS[metric],
                "rate": rate,
                "value": values[metric],
                "limit": limits.get(metric),
                "warning": warned.get(metric),
            }
            for metric, rate in reputation.rates_of(self.snapshot).items()
        ]


def reputation_view(snapshot, *, margin_percent: int) -> ReputationView:
    return ReputationView(snapshot, reputation.warnings(snapshot, margin_percent=margin_percent))


def account_sales_context(request, account) -> dict:
    """The account page's sales section: the window's figures, charts and reputation."""
    days = window_days(request)
    # `account` came through the access helper (the page's own read).
    metrics = selectors.account_metrics(account=account, days=days)
    rep = reputation_view(metrics.reputation, margin_percent=account.workspace.reputation_margin_percent)
    return {
        "sales": metrics,
        "sales_days": days,
        "windows": window_choices(days),
        "sales_charts": [
            revenue_chart("revenue-chart", metrics.currency, metrics.daily),
            orders_chart("orders-chart", metrics.daily),
        ],
        "reputation": rep,
        "reputation_chart": reputation_chart(account, days=HISTORY_DAYS, latest=metrics.reputation),
        "count_charts": count_charts(selectors.count_history(account=account, days=HISTORY_DAYS)),
    }


@dataclass
class AccountRow:
    account: object
    figures: list[CurrencyFigures]
    reputation: ReputationView


def warned(accounts) -> list[AccountRow]:
    """Every account of `accounts` whose newest reputation nears a limit, those over a limit
    first (two queries). The page shows the first WARNED_SHOWN."""
    latest = selectors.reputation_latest(account_ids=accounts.values("pk"))
    if not latest:
        return []
    warned = []
    for account in accounts.filter(pk__in=list(latest)).select_related("workspace"):
        view = reputation_view(latest[account.pk], margin_percent=account.workspace.reputation_margin_percent)
        if view.warnings:
            warned.append(AccountRow(account=account, figures=[], reputation=view))
    warned.sort(key=lambda row: (not row.reputation.over, row.account.account_name))
    return warned
