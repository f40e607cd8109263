"""Server-side SVG charts: bars (revenue, orders per day) and lines (counts, reputation rates).

Pure Python and no dependency: `bar_chart()` and `line_chart()` compute every coordinate, label
and sentence of a chart, in the language active when they are called (a view's, under
LocaleMiddleware), and return a `Chart`; templates/_partials/_chart.html draws it:

    # the view
    from mlaccounts import charts
    context["revenue"] = charts.bar_chart(
        chart_id="revenue-chart",
        title=_("Revenue per day"),
        points=[(day.date, day.revenue) for day in days],  # date, Decimal
        value_format=charts.money_format("R$"),
    )

    {# the template #}
    {% load charts %}
    {% chart revenue %}

What the page gets: a <figure> with the title as its <figcaption>; an <svg role="img"> named by
its <title> and described by a one-sentence <desc> (first and last label, total, lowest,
highest, latest); a native tooltip (<title>) on every bar or point ("05/12: R$ 1.234,50"); a
<details> "Show the data" with the same data as a table (the last 100 rows when there are
more); "No data yet" instead of the chart when there is nothing to draw.

The Content-Security-Policy allows no inline style and no script: the SVG carries geometry only
(x, y, width, points…) and classes; the colours are the .chart-* rules of static/css/app.css.
The viewBox is WIDTH units wide and the SVG takes its container's width, so its 12-unit text
reads at about 11 CSS px or more in a 390 px wide phone, even inside a .panel.

The formatters (numbers, money, rates, days in the current language) are
mlaccounts.chart_formats'; `money_format`, `percent_format` and `compact_number` are reachable
from here too.

Values may be int, float or Decimal (None is a gap; negative values are drawn as 0, NaN as a
gap); the formatters receive the values as given, so money keeps its Decimal cents.
"""

import datetime
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from itertools import pairwise

from django.utils import formats
from django.utils.translation import gettext as _

from mlaccounts.chart_formats import (
    MISSING,
    Label,
    LabelFormat,
    Number,
    ValueFormat,
    as_decimal,
    default_label_format,
    default_value_format,
)
from mlaccounts.chart_formats import compact_number as compact_number
from mlaccounts.chart_formats import money_format as money_format
from mlaccounts.chart_formats import percent_format as percent_format

# The viewBox. At 390 px the content of a .panel is about 320 px wide: 12 units of text are
# 11.3 px there; wider containers use smaller units (the container queries of app.css).
WIDTH = 340
HEIGHT = 200
FONT_SIZE = 12
# Generous widths (in em) of characters of system-ui fonts, to keep labels apart without a browser.
NARROW, WIDE = frozenset(" .,:;'|!ilIjft()/-\xa0"), frozenset("%MWmw@—–")
PAD_TOP = 16  # room for the top tick's label and for a limit's label above its line
PAD_RIGHT = 6
PAD_BOTTOM = 22  # the x labels
X_LABEL_GAP = 12  # the least room between two x labels
EDGE = 2  # labels keep this far from the viewBox's sides
MAX_POINTS = 400  # longer line series are bucketed down to this many points
MAX_TABLE_ROWS = 100  # the data table shows the last rows only beyond this
MAX_SERIES = 4
DOTS_UP_TO = 40  # lines with this many points or fewer mark each one with a dot
MAX_BAR_WIDTH = 40
ID_PATTERN = re.compile(r"^[A-Za-z][A-Za-z0-9_-]*$")

# --- what the template draws --------------------------------------------------------------------


@dataclass(frozen=True)
class Plot:
    """The plot area inside the viewBox: x0 left, x1 right, y0 top, y1 bottom (the zero line)."""

    x0: float
    y0: float
    x1: float
    y1: float

    @property
    def width(self) -> float:
        return self.x1 - self.x0

    @property
    def height(self) -> float:
        return self.y1 - self.y0


@dataclass(frozen=True)
class Tick:
    """A y-axis tick: its value, its grid line's y and its label (drawn right-aligned at label_x)."""

    value: float
    y: float
    label: str
    label_x: float
    label_y: float


@dataclass(frozen=True)
class XLabel:
    """A label under the plot; `anchor` is the SVG text-anchor (start/end at the sides)."""

    x: float
    y: float
    text: str
    anchor: str = "middle"


@dataclass(frozen=True)
class Bar:
    """One bar and its column: the column (hit_x, hit_width, the plot's height) carries the
    tooltip, so even a zero bar has one. `height` is None for a missing value (no bar drawn)."""

    x: float
    y: float
    width: float
    height: float | None
    title: str
    hit_x: float
    hit_width: float
    value: float | None


@dataclass(frozen=True)
class Column:
    """The hover column of one x position of a line chart, with every series' value in its title."""

    x: float
    width: float
    title: str


@dataclass(frozen=True)
class Dot:
    x: float
    y: float


@dataclass(frozen=True)
class Segment:
    """An unbroken run of a line (None values break a line into segments)."""

    points: tuple[tuple[float, float], ...]

    @property
    def attr(self) -> str:
        """The SVG `points` attribute: "x,y x,y …"."""
        return " ".join(f"{_n(x)},{_n(y)}" for x, y in self.points)


@dataclass(frozen=True)
class Line:
    name: str
    css_class: str
    segments: tuple[Segment, ...]
    dots: tuple[Dot, ...]


@dataclass(frozen=True)
class Limit:
    """A dashed horizontal line across the plot at `y`, its label right-aligned above it."""

    value: float
    y: float
    x1: float
    x2: float
    label: str
    label_x: float
    label_y: float
    title: str
    label_width: float = 0.0  # about: the box behind the label, that keeps lines off it

    @property
    def box_x(self) -> float:
        return _r(self.label_x - self.label_width - 3)

    @property
    def box_y(self) -> float:
        return _r(self.label_y - FONT_SIZE + 1)

    @property
    def box_width(self) -> float:
        return _r(self.label_width + 6)

    @property
    def box_height(self) -> float:
        return FONT_SIZE + 3


@dataclass(frozen=True)
class LegendItem:
    name: str
    css_class: str


@dataclass(frozen=True)
class Row:
    """A row of the data table: the label (a row header) and one formatted cell per series."""

    label: str
    cells: tuple[str, ...]


@dataclass
class Chart:
    """Everything _partials/_chart.html draws, computed beforehand (all coordinates in viewBox
    units, all text formatted in the language active when the chart was built).

    `empty` charts draw `empty_message` (or "No data yet") instead of an SVG and a table.
    """

    kind: str  # "bar" or "line"
    chart_id: str
    title: str
    empty: bool = False
    empty_message: str = ""
    summary: str = ""
    width: int = WIDTH
    height: int = HEIGHT
    plot: Plot | None = None
    y_ticks: list[Tick] = field(default_factory=list)
    x_labels: list[XLabel] = field(default_factory=list)
    bars: list[Bar] = field(default_factory=list)
    lines: list[Line] = field(default_factory=list)
    columns: list[Column] = field(default_factory=list)
    limits: list[Limit] = field(default_factory=list)
    legend: list[LegendItem] = field(default_factory=list)
    table_headers: list[str] = field(default_factory=list)
    table_rows: list[Row] = field(default_factory=list)
    table_total: int = 0  # the rows of the whole data (table_rows holds the last 100 at most)
    table_note: str = ""  # says so when table_rows is not every row

    @property
    def title_id(self) -> str:
        return f"{self.chart_id}-title"

    @property
    def desc_id(self) -> str:
        return f"{self.chart_id}-desc"

    @property
    def view_box(self) -> str:
        return f"0 0 {self.width} {self.height}"


# --- the charts ---------------------------------------------------------------------------------


def bar_chart(
    *,
    chart_id: str,
    title: str,
    points: Sequence[tuple[Label, Number | None]],
    value_format: ValueFormat = default_value_format,
    label_format: LabelFormat = default_label_format,
    axis_format: ValueFormat = compact_number,
    value_title: str | None = None,
    label_title: str | None = None,
    empty_message: str = "",
) -> Chart:
    """Bars from zero, one per point, in the order given (revenue or orders per day).

    `points` are (label, value): a date, datetime or str and an int, float or Decimal (None
    draws no bar). `value_format` writes values in tooltips, the summary and the table
    (money_format("R$") for money); `label_format` the labels; `axis_format` the y ticks.
    The table's headers are `label_title` ("Day", "Time" for datetimes) and `value_title`
    (the title). Meant for up to ~400 bars: aggregate longer data (weeks, months) first.
    """
    chart = Chart(kind="bar", chart_id=_checked_id(chart_id), title=title, empty_message=empty_message)
    if not points:
        chart.empty = True
        return chart
    labels = [label for label, _value in points]
    values = [value for _label, value in points]
    numbers = [_as_float(value) for value in values]
    texts = [label_format(label) for label in labels]

    ticks = nice_ticks(max((n for n in numbers if n is not None), default=0.0), integer=_integers(values))
    plot, chart.y_ticks = _frame(ticks, axis_format)
    top = ticks[-1]
    band = plot.width / len(points)
    bar_width = min(band * 0.7, MAX_BAR_WIDTH)
    centres = [plot.x0 + band * (i + 0.5) for i in range(len(points))]
    for centre, number, value, text in zip(centres, numbers, values, texts, strict=True):
        height = None if number is None else _r(plot.height * number / top)
        chart.bars.append(
            Bar(
                x=_r(centre - bar_width / 2),
                y=_r(plot.y1 - (height or 0)),
                width=_r(bar_width),
                height=height,
                title=f"{text}: {value_format(value) if number is not None else MISSING}",
                hit_x=_r(centre - band / 2),
                hit_width=_r(band),
                value=number,
            )
        )
    chart.plot = plot
    chart.x_labels = _x_labels(centres, texts, plot)
    chart.summary = _bar_summary(texts, values, numbers, value_format)
    chart.table_headers = [label_title or _default_label_title(labels), value_title or title]
    rows = [
        Row(text, (value_format(value) if number is not None else MISSING,))
        for text, value, number in zip(texts, values, numbers, strict=True)
    ]
    _table(chart, rows)
    return chart


def line_chart(
    *,
    chart_id: str,
    title: str,
    labels: Sequence[Label],
    series: Sequence[tuple[str, Sequence[Number | None]]],
    value_format: ValueFormat = default_value_format,
    label_format: LabelFormat = default_label_format,
    axis_format: ValueFormat = compact_number,
    limits: Sequence[tuple[str, Number]] = (),
    label_title: str | None = None,
    empty_message: str = "",
) -> Chart:
    """Lines over `labels`, one per (name, values) of `series` (1 to 4; a legend from 2), values
    aligned with the labels; None breaks a line (a lone value between gaps is a dot).

    `limits` are (name, value): a dashed horizontal line each, labelled "name: value", and the
    y axis reaches them (the 3 % claims limit). More than MAX_POINTS labels are bucketed down
    to MAX_POINTS points, each bucket's highest value at its last label; the table keeps the
    data as given (its last 100 rows).
    """
    chart = Chart(kind="line", chart_id=_checked_id(chart_id), title=title, empty_message=empty_message)
    if len(series) > MAX_SERIES:
        raise ValueError(f"line_chart draws at most {MAX_SERIES} series, not {len(series)}")
    for name, values in series:
        if len(values) != len(labels):
            raise ValueError(f"series {name!r} has {len(values)} values for {len(labels)} labels")
    numbers = [[_as_float(value) for value in values] for _name, values in series]
    if not labels or all(n is None for row in numbers for n in row):
        chart.empty = True
        return chart
    texts = [label_format(label) for label in labels]
    limit_numbers = [(name, value, _as_float(value) or 0.0) for name, value in limits]

    highest = max([n for row in numbers for n in row if n is not None] + [n for *_, n in limit_numbers])
    integer = _integers([v for _name, values in series for v in values]) and _integers(
        [v for _name, v in limits]
    )
    ticks = nice_ticks(highest, integer=integer)
    plot, chart.y_ticks = _frame(ticks, axis_format)
    top = ticks[-1]

    def y_of(number: float) -> float:
        return _r(plot.y1 - plot.height * number / top)

    buckets = _buckets(len(labels), MAX_POINTS)
    count = len(buckets)
    step = plot.width / (count - 1) if count > 1 else 0.0
    xs = [_r(plot.x0 + step * i) if count > 1 else _r(plot.x0 + plot.width / 2) for i in range(count)]
    peaks = [
        [_peak(row, values, bucket) for bucket in buckets]
        for row, (_name, values) in zip(numbers, series, strict=True)
    ]

    for index, ((name, _values), row_peaks) in enumerate(zip(series, peaks, strict=True), start=1):
        runs: list[list[tuple[float, float]]] = [[]]
        for x, peak in zip(xs, row_peaks, strict=True):
            if peak is None:
                if runs[-1]:
                    runs.append([])
            else:
                runs[-1].append((x, y_of(peak[0])))
        runs = [run for run in runs if run]
        dots = [Dot(*point) for run in runs for point in run if count <= DOTS_UP_TO or len(run) == 1]
        chart.lines.append(
            Line(
                name=name,
                css_class=f"chart-series-{index}",
                segments=tuple(Segment(tuple(run)) for run in runs if len(run) > 1),
                dots=tuple(dots),
            )
        )

    axis_texts = [texts[b.stop - 1] for b in buckets]
    for i, bucket in enumerate(buckets):
        left = plot.x0 if i == 0 else (xs[i - 1] + xs[i]) / 2
        right = plot.x1 if i == count - 1 else (xs[i] + xs[i + 1]) / 2
        first, last = texts[bucket.start], texts[bucket.stop - 1]
        when = first if len(bucket) == 1 else f"{first} – {last}"
        shown = [value_format(p[1]) if p is not None else MISSING for p in (row[i] for row in peaks)]
        if len(series) == 1:
            tip = f"{when}: {shown[0]}"
        else:
            tip = f"{when} — " + "; ".join(
                f"{name}: {text}" for (name, _values), text in zip(series, shown, strict=True)
            )
        chart.columns.append(Column(x=_r(left), width=_r(right - left), title=tip))

    for name, value, number in limit_numbers:
        y = y_of(number)
        text = f"{name}: {value_format(value)}"
        chart.limits.append(
            Limit(
                value=number,
                y=y,
                x1=plot.x0,
                x2=plot.x1,
                label=text,
                label_x=plot.x1,
                label_y=_r(y - 4),
                title=text,
                label_width=_r(text_width(text)),
            )
        )

    if len(series) > 1:
        chart.legend = [LegendItem(line.name, line.css_class) for line in chart.lines]
    chart.plot = plot
    chart.x_labels = _x_labels(xs, axis_texts, plot)
    chart.summary = _line_summary(texts, series, numbers, limit_numbers, value_format)
    chart.table_headers = [label_title or _default_label_title(labels), *(name for name, _values in series)]
    rows = [
        Row(
            text,
            tuple(
                value_format(values[i]) if row[i] is not None else MISSING
                for (_name, values), row in zip(series, numbers, strict=True)
            ),
        )
        for i, text in enumerate(texts)
    ]
    _table(chart, rows)
    return chart


# --- geometry -----------------------------------------------------------------------------------


def nice_ticks(maximum: float, *, integer: bool = False) -> list[float]:
    """3 to 5 evenly spaced round values from 0 to at least `maximum`: 0, 250, 500, 750, 1000
    for 900. Steps are 1, 2, 2.5 or 5 times a power of ten; whole steps for whole numbers
    (counts): 0, 1, 2 for 1. Nothing above zero counts as 1."""
    if not maximum > 0 or not math.isfinite(maximum):
        maximum = 1.0
    highest = Decimal(repr(maximum))
    raw = highest / 4
    magnitude = Decimal(10) ** (raw.adjusted())
    candidates = [f * magnitude for f in (Decimal(1), Decimal(2), Decimal("2.5"), Decimal(5), Decimal(10))]
    candidates.append(magnitude * 20)
    if integer:
        candidates = [c for c in candidates if c >= 1 and c == c.to_integral_value()] or [Decimal(1)]
    step = next((c for c in candidates if c >= raw), candidates[-1])
    count = max(math.ceil(highest / step), 2)
    return [float(step * i) for i in range(count + 1)]


def _frame(ticks: list[float], axis_format: ValueFormat) -> tuple[Plot, list[Tick]]:
    """The plot area (left of it, room for the widest tick label) and the y ticks."""
    labels = [axis_format(as_decimal(value)) for value in ticks]
    left = _r(EDGE + max(text_width(label) for label in labels) + 6)
    plot = Plot(x0=left, y0=PAD_TOP, x1=WIDTH - PAD_RIGHT, y1=HEIGHT - PAD_BOTTOM)
    top = ticks[-1]
    result = []
    for value, label in zip(ticks, labels, strict=True):
        y = _r(plot.y1 - plot.height * value / top)
        result.append(Tick(value=value, y=y, label=label, label_x=_r(left - 6), label_y=_r(y + 4)))
    return plot, result


def text_width(text: str) -> float:
    """About how wide `text` is at FONT_SIZE, in viewBox units (rather more than less)."""
    ems = sum(0.36 if c in NARROW else 0.95 if c in WIDE else 0.72 if c.isupper() else 0.6 for c in text)
    return ems * FONT_SIZE


def _x_labels(positions: Sequence[float], texts: Sequence[str], plot: Plot) -> list[XLabel]:
    """Every Nth label (counted back from the last), N the smallest that keeps them apart.

    A label that would leave the viewBox is aligned on its side instead of centred."""
    count = len(positions)
    widths = [text_width(text) for text in texts]
    y = _r(plot.y1 + 16)
    for step in range(1, count + 1):
        chosen = [i for i in range(count) if (count - 1 - i) % step == 0]
        boxes = []
        for i in chosen:
            left = min(max(positions[i] - widths[i] / 2, EDGE), WIDTH - EDGE - widths[i])
            boxes.append((left, left + widths[i]))
        if all(b[0] >= a[1] + X_LABEL_GAP for a, b in pairwise(boxes)):
            break
    result = []
    for i in chosen:
        if positions[i] - widths[i] / 2 < EDGE:
            result.append(XLabel(x=EDGE, y=y, text=texts[i], anchor="start"))
        elif positions[i] + widths[i] / 2 > WIDTH - EDGE:
            result.append(XLabel(x=WIDTH - EDGE, y=y, text=texts[i], anchor="end"))
        else:
            result.append(XLabel(x=_r(positions[i]), y=y, text=texts[i]))
    return result


def _buckets(count: int, most: int) -> list[range]:
    """`count` indexes in at most `most` consecutive runs of equal size (the last may be shorter)."""
    size = max(1, math.ceil(count / most))
    return [range(start, min(start + size, count)) for start in range(0, count, size)]


def _peak(numbers: Sequence[float | None], values: Sequence[Number | None], bucket: range):
    """The highest value of a bucket as (float, value as given), or None when it has none."""
    present = [(numbers[i], values[i]) for i in bucket if numbers[i] is not None]
    return max(present, key=lambda pair: pair[0]) if present else None


def downsample(values: Sequence[Number | None], most: int = MAX_POINTS) -> list[Number | None]:
    """The highest value of each of at most `most` buckets (None when a bucket has none): what
    line_chart draws of a longer series."""
    result: list[Number | None] = []
    for bucket in _buckets(len(values), most):
        present = [values[i] for i in bucket if _as_float(values[i]) is not None]
        result.append(max(present, key=_as_float) if present else None)
    return result


# --- words --------------------------------------------------------------------------------------


def _bar_summary(
    texts: list[str], values: list[Number | None], numbers: list[float | None], value_format: ValueFormat
) -> str:
    present = [(t, v, n) for t, v, n in zip(texts, values, numbers, strict=True) if n is not None]
    if not present:
        return _("From %(first)s to %(last)s: no values.") % {"first": texts[0], "last": texts[-1]}
    if len(texts) == 1:
        return f"{texts[0]}: {value_format(present[0][1])}."
    lowest = min(present, key=lambda p: p[2])
    highest = max(present, key=lambda p: p[2])
    return _(
        "From %(first)s to %(last)s: total %(total)s, lowest %(lowest)s on %(lowest_at)s, "
        "highest %(highest)s on %(highest_at)s, latest %(latest)s."
    ) % {
        "first": texts[0],
        "last": texts[-1],
        "total": value_format(_total([v for _t, v, _n in present])),
        "lowest": value_format(lowest[1]),
        "lowest_at": lowest[0],
        "highest": value_format(highest[1]),
        "highest_at": highest[0],
        "latest": value_format(present[-1][1]),
    }


def _line_summary(
    texts: list[str],
    series: Sequence[tuple[str, Sequence[Number | None]]],
    numbers: list[list[float | None]],
    limits: list[tuple[str, Number, float]],
    value_format: ValueFormat,
) -> str:
    if len(texts) == 1:
        sentences = [_("On %(first)s.") % {"first": texts[0]}]
    else:
        sentences = [_("From %(first)s to %(last)s.") % {"first": texts[0], "last": texts[-1]}]
    for (name, values), row in zip(series, numbers, strict=True):
        present = [(v, n) for v, n in zip(values, row, strict=True) if n is not None]
        if not present:
            sentences.append(_("%(name)s: no values.") % {"name": name})
            continue
        sentences.append(
            _("%(name)s: lowest %(lowest)s, highest %(highest)s, latest %(latest)s.")
            % {
                "name": name,
                "lowest": value_format(min(present, key=lambda p: p[1])[0]),
                "highest": value_format(max(present, key=lambda p: p[1])[0]),
                "latest": value_format(present[-1][0]),
            }
        )
    for name, value, _number in limits:
        sentences.append(_("%(name)s: %(value)s.") % {"name": name, "value": value_format(value)})
    return " ".join(sentences)


def _table(chart: Chart, rows: list[Row]) -> None:
    chart.table_total = len(rows)
    chart.table_rows = rows[-MAX_TABLE_ROWS:]
    if len(rows) > MAX_TABLE_ROWS:
        chart.table_note = _("The last %(shown)s of %(total)s rows.") % {
            "shown": formats.number_format(MAX_TABLE_ROWS, use_l10n=True, force_grouping=True),
            "total": formats.number_format(len(rows), use_l10n=True, force_grouping=True),
        }


def _default_label_title(labels: Sequence[Label]) -> str:
    if labels and isinstance(labels[0], datetime.datetime):
        return _("Time")
    if labels and isinstance(labels[0], datetime.date):
        return _("Day")
    return _("Period")


# --- small helpers ------------------------------------------------------------------------------


def _checked_id(chart_id: str) -> str:
    if not ID_PATTERN.match(chart_id):
        raise ValueError(f"chart_id must be a letter then letters, digits, - or _: {chart_id!r}")
    return chart_id


def _as_float(value: Number | None) -> float | None:
    """The value for drawing: a float from 0 up, None for None and NaN."""
    if value is None:
        return None
    number = float(value)
    if not math.isfinite(number):
        return None
    return max(number, 0.0)


def _integers(values: Sequence[Number | None]) -> bool:
    """Whether every value is a whole number type (counts): their axis steps by whole numbers."""
    return all(isinstance(v, int) for v in values if v is not None)


def _total(values: list[Number]) -> Number:
    if any(isinstance(v, float) for v in values):
        return math.fsum(float(v) for v in values)
    return sum(values, start=0)


def _r(value: float) -> float:
    """A coordinate, rounded to 2 decimals (enough at any screen size, and short HTML)."""
    return round(value, 2)


def _n(value: float) -> str:
    """A coordinate as SVG writes it, whatever the language: 12.5, 40."""
    return f"{value:.2f}".rstrip("0").rstrip(".")
