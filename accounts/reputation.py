"""ML's reputation colours and the limits that keep them: which rate comes near losing a colour.

ML publishes no API for the limits, and they differ by site and change over time
(mercadolivre-api.md §11.2 gives the levels only). The defaults are ML's published figures
for Brazil as found in its help pages (Global Selling, 2023–2024): to stay green, claims and
cancellations at most 3 % and late shipments at most 15 % of the sales of the period; late
shipments at most 20 % for yellow and 30 % for orange (no figure found for claims and
cancellations below green: no warning for those). `settings.REPUTATION_LIMITS` replaces the
table (JSON in the environment variable of the same name).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings
from django.utils.translation import gettext_lazy as _

METRICS = ("claims", "delayed_handling", "cancellations")
METRIC_LABELS = {
    "claims": _("Claims"),
    "delayed_handling": _("Late shipments"),
    "cancellations": _("Cancellations"),
}
# level_id → (colour key, label), best first (§11.2).
LEVELS = {
    "5_green": ("green", _("Green")),
    "4_light_green": ("light-green", _("Light green")),
    "3_yellow": ("yellow", _("Yellow")),
    "2_orange": ("orange", _("Orange")),
    "1_red": ("red", _("Red")),
}
POWER_SELLER = {
    "platinum": _("MercadoLíder Platinum"),
    "gold": _("MercadoLíder Gold"),
    "silver": _("MercadoLíder"),
}
DEFAULT_LIMITS: dict[str, dict[str, str]] = {
    "5_green": {"claims": "0.03", "delayed_handling": "0.15", "cancellations": "0.03"},
    "4_light_green": {"claims": "0.03", "delayed_handling": "0.15", "cancellations": "0.03"},
    "3_yellow": {"delayed_handling": "0.20"},
    "2_orange": {"delayed_handling": "0.30"},
}


def limits() -> dict[str, dict[str, Decimal]]:
    table = getattr(settings, "REPUTATION_LIMITS", None) or DEFAULT_LIMITS
    return {level: {m: Decimal(str(v)) for m, v in metrics.items()} for level, metrics in table.items()}


def level_colour(level_id: str) -> str:
    """The CSS colour key of a level (`green`, `yellow`…), or "" for none (a new seller)."""
    return LEVELS.get(level_id, ("", ""))[0]


def level_label(level_id: str) -> str:
    return str(LEVELS.get(level_id, ("", _("No colour yet")))[1])


@dataclass(frozen=True)
class RateWarning:
    """A rate at or past `threshold` (the limit less the workspace's margin) of its `limit`."""

    metric: str
    rate: Decimal
    limit: Decimal
    threshold: Decimal

    @property
    def over(self) -> bool:
        return self.rate > self.limit

    @property
    def label(self) -> str:
        return str(METRIC_LABELS[self.metric])


def rates_of(snapshot) -> dict[str, Decimal | None]:
    """A ReputationSnapshot's three rates by metric name."""
    return {
        "claims": snapshot.claims_rate,
        "delayed_handling": snapshot.delayed_handling_rate,
        "cancellations": snapshot.cancellations_rate,
    }


def warnings(snapshot, *, margin_percent: int) -> list[RateWarning]:
    """The rates of `snapshot` within `margin_percent` of the limit that keeps its colour."""
    if snapshot is None:
        return []
    level_limits = limits().get(snapshot.level_id, {})
    share = (Decimal(100) - Decimal(margin_percent)) / Decimal(100)
    found = []
    for metric, rate in rates_of(snapshot).items():
        limit = level_limits.get(metric)
        if rate is None or limit is None:
            continue
        threshold = (limit * share).quantize(Decimal("0.00001"))
        if rate >= threshold:
            found.append(RateWarning(metric=metric, rate=rate, limit=limit, threshold=threshold))
    return found
