"""How the charts write numbers, amounts, rates and days, in the current language
(mlaccounts.charts builds with these; a caller passes them as a chart's formatters).

Compact numbers ("1,25 mil", "1.25K") use CLDR's short decimal formats, kept here as locale
data like Django's format modules: they are not phrases to translate.
"""

import datetime
import math
import re
from collections.abc import Callable
from decimal import Decimal

from django.utils import formats, timezone, translation

Number = int | float | Decimal
Label = datetime.date | datetime.datetime | str
ValueFormat = Callable[[Number], str]
LabelFormat = Callable[[Label], str]

MISSING = "—"
NBSP = "\xa0"
# The compact numbers' suffixes, keyed by the language's first part; English otherwise.
COMPACT_SUFFIXES = {
    "pt": (f"{NBSP}mil", f"{NBSP}mi", f"{NBSP}bi"),
    "es": (f"{NBSP}mil", f"{NBSP}M", f"{NBSP}mil{NBSP}M"),
    "en": ("K", "M", "B"),
}


def default_value_format(value: Number | None) -> str:
    """A localised number: whole numbers as they are ("1.234"), others with 2 decimals
    ("1.234,50" in pt-BR, "1,234.50" in English); a dash for None."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return MISSING
    decimals = 0 if isinstance(value, int) else 2
    return formats.number_format(value, decimal_pos=decimals, use_l10n=True, force_grouping=True)


def money_format(symbol: str = "R$", decimals: int = 2) -> ValueFormat:
    """A formatter for amounts: money_format("R$")(Decimal("1234.5")) → "R$ 1.234,50" in pt-BR,
    "R$ 1,234.50" in English (a no-break space after the symbol)."""

    def money(value: Number | None) -> str:
        if value is None or (isinstance(value, float) and not math.isfinite(value)):
            return MISSING
        number = formats.number_format(value, decimal_pos=decimals, use_l10n=True, force_grouping=True)
        return f"{symbol}{NBSP}{number}"

    return money


def percent_format(decimals: int | None = 1) -> ValueFormat:
    """A formatter for rates given in percent (3 for 3 %): "2,5%" in pt-BR, "2.5%" in English.

    `decimals=None` drops trailing zeros ("0%", "0,5%", "1%"): the y axis's, axis_format."""

    def percent(value: Number | None) -> str:
        if value is None or (isinstance(value, float) and not math.isfinite(value)):
            return MISSING
        if decimals is None:
            return trimmed(round(as_decimal(value), 3)) + "%"
        return formats.number_format(value, decimal_pos=decimals, use_l10n=True, force_grouping=True) + "%"

    return percent


def compact_number(value: Number) -> str:
    """A short localised number for the y axis: 250, "1,25 mil", "3 mi" in pt-BR; 250, "1.25K",
    "3M" in English; "0,02" below one (at most 3 decimals, trailing zeros dropped)."""
    number = as_decimal(value)
    language = (translation.get_language() or "en").split("-")[0]
    suffixes = COMPACT_SUFFIXES.get(language, COMPACT_SUFFIXES["en"])
    power = next((p for p in (9, 6, 3) if abs(number) >= Decimal(10) ** p), 0)
    scaled = round(number.scaleb(-power), 2 if power else 3)
    if power and power < 9 and abs(scaled) >= 1000:  # 999 999 reads "1 mi", not "1.000 mil"
        power += 3
        scaled = round(number.scaleb(-power), 2)
    suffix = suffixes[power // 3 - 1] if power else ""
    return trimmed(scaled) + suffix


def default_label_format(label: Label) -> str:
    """A day as the current language writes it without its year (SHORT_DATE_FORMAT less the
    year: "05/12" in pt-BR; this project's English "5 Dec"); a datetime adds its local time
    ("05/12 14:00"); a string is kept as it is."""
    if isinstance(label, datetime.datetime):
        if timezone.is_aware(label):
            label = timezone.localtime(label)
        return f"{formats.date_format(label, day_format())} {formats.time_format(label, 'TIME_FORMAT')}"
    if isinstance(label, datetime.date):
        return formats.date_format(label, day_format())
    return str(label)


def day_format() -> str:
    """The current language's SHORT_DATE_FORMAT without the year: "d/m/Y" → "d/m", "j M Y" →
    "j M", "m/d/Y" → "m/d", "Y-m-d" → "m-d"."""
    short = formats.get_format("SHORT_DATE_FORMAT")
    day = re.sub(r"^[Yyo][^A-Za-z\\]*|[^A-Za-z\\]*[Yyo]", "", short).strip()
    return day or "d/m"


def as_decimal(value: Number) -> Decimal:
    if isinstance(value, Decimal):
        return value
    if isinstance(value, float):
        return Decimal(repr(value))
    return Decimal(value)


def trimmed(number: Decimal) -> str:
    """A localised number with no trailing zeros: 1.25 → "1,25", 1.50 → "1,5", 3.00 → "3"."""
    decimals = max(0, -number.normalize().as_tuple().exponent)
    return formats.number_format(number, decimal_pos=decimals, use_l10n=True, force_grouping=True)
