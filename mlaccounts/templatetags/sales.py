"""Money, rates and changes as the sales pages show them, in the current language."""

from __future__ import annotations

import re
from decimal import Decimal

from django import template
from django.utils import formats
from django.utils.translation import gettext, ngettext

from accounts import reputation

register = template.Library()

NBSP = "\xa0"
# The symbol sellers know each currency by (ML's sites, §8); the ISO code otherwise.
SYMBOLS = {
    "BRL": "R$",
    "ARS": "$",
    "MXN": "$",
    "CLP": "$",
    "COP": "$",
    "UYU": "$U",
    "PEN": "S/",
    "USD": "US$",
    "BOB": "Bs",
    "PYG": "₲",
    "CRC": "₡",
    "GTQ": "Q",
    "HNL": "L",
    "NIO": "C$",
    "PAB": "B/.",
    "DOP": "RD$",
    "VES": "Bs.",
}
# Currencies ML prices without cents.
WHOLE = {"CLP", "COP", "PYG"}


def currency_symbol(currency: str) -> str:
    return SYMBOLS.get(currency, currency)


def money_decimals(currency: str) -> int:
    return 0 if currency in WHOLE else 2


@register.filter
def money(amount, currency: str) -> str:
    """`{{ amount|money:"BRL" }}` → "R$ 1.234,50" (pt-BR) / "R$ 1,234.50" (en); a dash for None."""
    if amount is None:
        return "—"
    number = formats.number_format(
        amount, decimal_pos=money_decimals(currency), use_l10n=True, force_grouping=True
    )
    return f"{currency_symbol(currency)}{NBSP}{number}"


@register.filter
def rate(value) -> str:
    """A rate given as a fraction (0.0166) in percent: "1,66%"; a dash for None."""
    if value is None:
        return "—"
    return formats.number_format(Decimal(value) * 100, decimal_pos=2, use_l10n=True) + "%"


@register.filter
def change(value) -> str:
    """A change in percent with its sign: "+12,5%", "−3,0%"; empty for None (no previous window)."""
    if value is None:
        return ""
    sign = "+" if value > 0 else ("−" if value < 0 else "±")
    return sign + formats.number_format(abs(value), decimal_pos=1, use_l10n=True) + "%"


@register.filter
def change_class(value) -> str:
    if value is None or value == 0:
        return "change-flat"
    return "change-up" if value > 0 else "change-down"


@register.filter
def level_colour(level_id: str) -> str:
    return reputation.level_colour(level_id or "")


_PERIOD = re.compile(r"^(\d{1,4}) days?$")


@register.filter
def period(value: str) -> str:
    """ML's reputation period in the page's language: "60 days" → "60 dias"; "historic" → "all time"."""
    found = _PERIOD.match(value or "")
    if found:
        days = int(found.group(1))
        return ngettext("%(count)d day", "%(count)d days", days) % {"count": days}
    if value == "historic":
        return gettext("all time")
    return value or "—"
