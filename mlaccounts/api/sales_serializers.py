"""The serializers of sales and reputation (issue 15, mlaccounts/api/sales.py).

Amounts and rates are decimal strings (coerce_to_string), money always beside its currency.
"""

from rest_framework import serializers

from mlaccounts.api.serializers import NullIfBlankCharField


def _money(help_text: str = "", **options):
    return serializers.DecimalField(
        max_digits=20, decimal_places=2, read_only=True, coerce_to_string=True, help_text=help_text, **options
    )


def _rate(source: str):
    return serializers.DecimalField(
        source=source,
        max_digits=7,
        decimal_places=5,
        read_only=True,
        allow_null=True,
        coerce_to_string=True,
        help_text="A fraction of the period's sales (0.01660 = 1.66 %); null when ML gives none.",
    )


class FiguresSerializer(serializers.Serializer):
    """A window's sales figures in one currency (accounts.selectors.sales.Figures)."""

    revenue = _money("The sum of `total_amount` of the paid orders created in the window.")
    orders = serializers.IntegerField(read_only=True, help_text="Paid orders created in the window.")
    averageTicket = serializers.DecimalField(
        source="average_ticket",
        max_digits=20,
        decimal_places=2,
        read_only=True,
        allow_null=True,
        coerce_to_string=True,
        help_text="revenue / orders; null without orders.",
    )
    cancelled = serializers.IntegerField(
        read_only=True, help_text="Orders created in the window that are cancelled now."
    )
    fees = _money("Mercado Livre's fees of those paid orders (Σ sale_fee × quantity).")
    netRevenue = _money("revenue − fees.", source="net")


class CurrencyFiguresSerializer(FiguresSerializer):
    """The figures in `currency`, with the window before it under `previous`."""

    currency = serializers.CharField(read_only=True, help_text="ISO 4217 (BRL, ARS, MXN…).")
    previous = FiguresSerializer(read_only=True, help_text="The same figures for the window before.")

    def to_representation(self, instance):
        data = FiguresSerializer(instance.current).data
        return {
            "currency": instance.currency,
            **data,
            "previous": FiguresSerializer(instance.previous).data,
        }


class DayPointSerializer(serializers.Serializer):
    date = serializers.DateField(
        source="day", read_only=True, help_text="A day in this installation's time zone (TIME_ZONE)."
    )
    revenue = _money()
    orders = serializers.IntegerField(read_only=True)


class ReputationSerializer(serializers.Serializer):
    """The account's newest daily reputation snapshot (`seller_reputation`, §11.2)."""

    day = serializers.DateField(read_only=True, help_text="The day of the snapshot.")
    levelId = NullIfBlankCharField(
        source="level_id", allow_null=True, read_only=True, help_text="5_green … 1_red; null for new sellers."
    )
    realLevel = NullIfBlankCharField(
        source="real_level",
        allow_null=True,
        read_only=True,
        help_text="While ML protects the seller: the real colour behind `levelId`.",
    )
    powerSellerStatus = NullIfBlankCharField(
        source="power_seller_status",
        allow_null=True,
        read_only=True,
        help_text="MercadoLíder: silver, gold, platinum or null.",
    )
    claimsRate = _rate("claims_rate")
    delayedHandlingRate = _rate("delayed_handling_rate")
    cancellationsRate = _rate("cancellations_rate")
    protectionEndDate = serializers.DateTimeField(
        source="protection_end_date", read_only=True, allow_null=True, help_text="null unless protected."
    )


class AccountMetricsSerializer(serializers.Serializer):
    """`GET /api/ml-accounts/:id/metrics` (accounts.selectors.sales.AccountMetrics)."""

    days = serializers.IntegerField(read_only=True)
    currency = serializers.CharField(read_only=True)
    revenue = _money()
    orders = serializers.IntegerField(read_only=True)
    averageTicket = serializers.DecimalField(
        max_digits=20, decimal_places=2, read_only=True, allow_null=True, coerce_to_string=True
    )
    cancelled = serializers.IntegerField(read_only=True)
    fees = _money()
    netRevenue = _money()
    previous = FiguresSerializer(read_only=True)
    daily = DayPointSerializer(many=True, read_only=True)
    reputation = ReputationSerializer(read_only=True, allow_null=True)

    def to_representation(self, metrics):
        figures = metrics.figures
        return {
            "days": metrics.window.days,
            "currency": metrics.currency,
            **FiguresSerializer(figures.current).data,
            "previous": FiguresSerializer(figures.previous).data,
            "daily": DayPointSerializer(metrics.daily, many=True).data,
            "reputation": ReputationSerializer(metrics.reputation).data if metrics.reputation else None,
        }


class MetricsSummarySerializer(serializers.Serializer):
    """`GET /api/metrics/summary`: totals per currency across the accounts the caller sees."""

    days = serializers.IntegerField(read_only=True)
    accounts = serializers.IntegerField(read_only=True, help_text="How many accounts the totals cover.")
    totals = CurrencyFiguresSerializer(many=True, read_only=True)
