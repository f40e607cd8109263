"""The server-side SVG charts (mlaccounts/charts.py, the chart tag, _partials/_chart.html): their
geometry, their words in pt-BR and English, and HTML that the CSP allows and a screen reader reads.
"""

import datetime
import re
from decimal import Decimal
from html.parser import HTMLParser
from itertools import pairwise

import pytest
from django.conf import settings
from django.template import Context, Template
from django.utils import timezone, translation

from mlaccounts import charts

DAY = datetime.date(2024, 12, 5)


def days(count: int, last: datetime.date = DAY) -> list[datetime.date]:
    return [last - datetime.timedelta(days=count - 1 - i) for i in range(count)]


def render(*chart_objects: charts.Chart) -> str:
    return Template("{% load charts %}{% for c in cs %}{% chart c %}{% endfor %}").render(
        Context({"cs": chart_objects})
    )


class Elements(HTMLParser):
    """Every start tag of a page as (tag, attributes), and the text inside each <title>."""

    def __init__(self, html: str):
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.titles: list[str] = []
        self._in_title = False
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        self._in_title = tag == "title"
        if self._in_title:
            self.titles.append("")

    def handle_startendtag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_endtag(self, tag):
        if tag == "title":
            self._in_title = False

    def handle_data(self, data):
        if self._in_title:
            self.titles[-1] += data

    def all(self, tag: str, css_class: str | None = None) -> list[dict]:
        return [
            attrs
            for name, attrs in self.tags
            if name == tag and (css_class is None or css_class in (attrs.get("class") or "").split())
        ]


# --- geometry -------------------------------------------------------------------------------------


def test_bar_heights_are_proportional_and_the_tallest_reaches_the_top_of_the_plot():
    chart = charts.bar_chart(
        chart_id="orders", title="Orders", points=list(zip(days(4), [0, 250, 500, 1000], strict=True))
    )
    plot = chart.plot
    heights = [bar.height for bar in chart.bars]
    assert [tick.value for tick in chart.y_ticks] == [0, 250, 500, 750, 1000]
    assert heights == pytest.approx([0, plot.height / 4, plot.height / 2, plot.height], abs=0.01)
    assert chart.bars[3].y == pytest.approx(plot.y0)
    assert chart.bars[0].y == pytest.approx(plot.y1)  # zero: no height, on the zero line
    assert all(bar.y + bar.height == pytest.approx(plot.y1) for bar in chart.bars)


def test_a_maximum_between_two_ticks_is_drawn_below_the_top_tick():
    chart = charts.bar_chart(chart_id="orders", title="Orders", points=[(DAY, 900)])
    assert chart.y_ticks[-1].value == 1000
    assert chart.bars[0].height == pytest.approx(chart.plot.height * 0.9, abs=0.01)


@pytest.mark.parametrize(
    ("maximum", "integer", "expected"),
    [
        (1000, True, [0, 250, 500, 750, 1000]),
        (900, False, [0, 250, 500, 750, 1000]),
        (1234.5, False, [0, 500, 1000, 1500]),
        (3, True, [0, 1, 2, 3]),
        (1, True, [0, 1, 2]),  # counts never step by 0.25
        (0, True, [0, 1, 2]),
        (0.05, False, [0, 0.02, 0.04, 0.06]),
        (7, True, [0, 2, 4, 6, 8]),
    ],
)
def test_y_ticks_are_round_evenly_spaced_and_cover_the_maximum(maximum, integer, expected):
    ticks = charts.nice_ticks(maximum, integer=integer)
    assert ticks == pytest.approx(expected)
    assert 3 <= len(ticks) <= 5
    assert ticks[-1] >= maximum


@pytest.mark.parametrize("maximum", [0.003, 0.7, 1, 4.2, 9.99, 12, 99, 101, 4321, 98_765, 1_000_001, 3.7e9])
def test_there_are_always_three_to_five_ticks_reaching_the_maximum(maximum):
    for integer in (False, True):
        ticks = charts.nice_ticks(maximum, integer=integer)
        steps = {round(b - a, 9) for a, b in pairwise(ticks)}
        assert 3 <= len(ticks) <= 5 and ticks[0] == 0 and ticks[-1] >= maximum
        assert len(steps) == 1  # evenly spaced
        if integer:
            assert all(float(t).is_integer() for t in ticks)


def test_the_y_axis_reaches_a_limit_above_every_value_and_draws_it_dashed_at_its_height():
    with translation.override("en"):
        chart = charts.line_chart(
            chart_id="claims",
            title="Claims",
            labels=days(3),
            series=[("Claims", [0.5, 2.1, 1.2])],
            value_format=charts.percent_format(),
            limits=[("Limit", 3)],
        )
    assert chart.y_ticks[-1].value >= 3
    [limit] = chart.limits
    assert limit.y == pytest.approx(chart.plot.y1 - chart.plot.height * 3 / chart.y_ticks[-1].value, abs=0.01)
    assert chart.plot.y0 <= limit.y < chart.plot.y1
    assert (limit.x1, limit.x2) == (chart.plot.x0, chart.plot.x1)
    html = render(chart)
    assert re.search(r'<line class="chart-limit-line"[^>]* stroke-dasharray="6 4"', html)
    assert ">Limit: 3.0%</text>" in html


def test_none_breaks_a_line_into_segments_and_a_lone_value_is_a_dot():
    values = [1, 2, None, 4, 5, 6, None, 8] + [3] * 50  # 58 points: too many for a dot each
    values[-2] = None
    values[-4] = None  # 3 at index -3 stands alone
    chart = charts.line_chart(
        chart_id="counts", title="Counts", labels=days(len(values)), series=[("Q", values)]
    )
    [line] = chart.lines
    assert [len(segment.points) for segment in line.segments] == [2, 3, 47]
    assert len(line.dots) == 2  # the lone values: index -3 and the last one
    assert line.dots[0].x == pytest.approx(chart.columns[-3].x + chart.columns[-3].width / 2, abs=0.01)
    html = render(chart)
    assert html.count("<polyline") == 3
    assert html.count('class="chart-dot"') == 2


def test_a_short_line_marks_every_point_with_a_dot():
    chart = charts.line_chart(chart_id="c", title="C", labels=days(5), series=[("Q", [1, 2, None, 3, 4])])
    assert len(chart.lines[0].dots) == 4
    assert len(chart.lines[0].segments) == 2


def test_negative_values_are_drawn_at_zero_but_the_table_keeps_them():
    chart = charts.bar_chart(chart_id="c", title="C", points=[(DAY, -5), (DAY, 10)])
    assert chart.bars[0].height == 0
    assert chart.table_rows[0].cells == ("-5",)


def test_decimal_int_and_float_values_draw_the_same_bars():
    labels = days(3)
    kinds = [[Decimal("10.00"), Decimal("20.50"), Decimal("5")], [10.0, 20.5, 5.0], [10, 20.5, 5]]
    drawn = [
        [
            bar.height
            for bar in charts.bar_chart(
                chart_id="c", title="C", points=list(zip(labels, v, strict=True))
            ).bars
        ]
        for v in kinds
    ]
    assert drawn[0] == drawn[1] == drawn[2]
    with translation.override("en"):
        chart = charts.bar_chart(chart_id="c", title="C", points=list(zip(labels, kinds[2], strict=True)))
    assert "total 35.50" in chart.summary  # an int and floats add up


# --- empty, all zero, one point, many points ------------------------------------------------------


def test_no_data_says_so_instead_of_drawing_a_chart():
    with translation.override("en"):
        empty_bars = charts.bar_chart(chart_id="a", title="Revenue", points=[])
        empty_lines = charts.line_chart(
            chart_id="b", title="Rates", labels=days(3), series=[("R", [None] * 3)]
        )
        html = render(empty_bars, empty_lines)
    assert empty_bars.empty and empty_lines.empty
    assert html.count('<p class="chart-empty">No data yet</p>') == 2
    assert "<svg" not in html and "<details" not in html and "<table" not in html
    assert html.count("<figcaption") == 2


def test_an_empty_chart_can_say_something_else():
    chart = charts.bar_chart(chart_id="a", title="Revenue", points=[], empty_message="No sales in 90 days")
    assert '<p class="chart-empty">No sales in 90 days</p>' in render(chart)


def test_all_zero_values_draw_zero_bars_on_a_small_axis():
    chart = charts.bar_chart(chart_id="z", title="Orders", points=[(d, 0) for d in days(7)])
    assert not chart.empty
    assert all(bar.height == 0 for bar in chart.bars)
    assert [tick.value for tick in chart.y_ticks] == [0, 1, 2]
    assert len(Elements(render(chart)).all("rect", "chart-bar")) == 7


def test_a_single_bar_is_centred_and_not_as_wide_as_the_plot():
    with translation.override("en"):
        chart = charts.bar_chart(chart_id="one", title="Orders", points=[(DAY, 3)])
    [bar] = chart.bars
    plot = chart.plot
    assert bar.x + bar.width / 2 == pytest.approx((plot.x0 + plot.x1) / 2, abs=0.01)
    assert bar.width <= charts.MAX_BAR_WIDTH
    assert bar.y == pytest.approx(plot.y0)  # 3 is the top tick
    assert chart.summary == "5 Dec: 3."
    assert [label.text for label in chart.x_labels] == ["5 Dec"]


def test_a_single_point_of_a_line_is_a_dot_in_the_middle():
    chart = charts.line_chart(chart_id="one", title="Q", labels=[DAY], series=[("Q", [4])])
    [line] = chart.lines
    assert line.segments == ()
    [dot] = line.dots
    assert dot.x == pytest.approx((chart.plot.x0 + chart.plot.x1) / 2)
    assert len(chart.x_labels) == 1 and len(chart.columns) == 1


def test_a_long_line_is_downsampled_to_400_points_keeping_its_highest_value():
    start = timezone.make_aware(datetime.datetime(2024, 10, 1))
    hours = [start + datetime.timedelta(hours=i) for i in range(2000)]
    values = [i % 7 for i in range(2000)]
    values[1234] = 90  # one busy hour
    with translation.override("pt-br"):
        chart = charts.line_chart(chart_id="hourly", title="Questions", labels=hours, series=[("Q", values)])
    points = [point for segment in chart.lines[0].segments for point in segment.points]
    assert len(points) <= charts.MAX_POINTS and len(chart.columns) <= charts.MAX_POINTS
    top_tick = chart.y_ticks[-1].value
    assert min(y for _x, y in points) == pytest.approx(chart.plot.y1 - chart.plot.height * 90 / top_tick)
    assert any(column.title.endswith(": 90") for column in chart.columns)
    assert charts.downsample(values)[1234 // 5] == 90
    assert len(charts.downsample(values)) == 400
    # The table keeps the data as given: its last 100 rows, and says so.
    assert chart.table_total == 2000
    assert len(chart.table_rows) == 100
    assert chart.table_rows[-1].label == "23/12 07:00"  # 2,000 hours after 1 Oct, in pt-BR


def test_a_table_of_more_than_100_rows_shows_the_last_100_and_says_so():
    with translation.override("en"):
        chart = charts.bar_chart(chart_id="long", title="Orders", points=[(d, 1) for d in days(150)])
        html = render(chart)
    assert len(Elements(html).all("tr")) == 101  # the header and 100 rows
    assert "The last 100 of 150 rows." in html
    assert chart.table_rows[0].label == "28 Aug"  # 150 days to 5 Dec: the 51st
    assert len(chart.bars) == 150  # the chart draws every day


def test_x_labels_thin_out_so_they_never_overlap_and_stay_inside():
    start = timezone.make_aware(datetime.datetime(2024, 10, 1))
    hourly = [start + datetime.timedelta(hours=i) for i in range(2000)]
    for language in ("pt-br", "en"):
        with translation.override(language):
            built = [
                charts.bar_chart(chart_id="a", title="A", points=[(d, 1) for d in days(90)]),
                charts.bar_chart(chart_id="b", title="B", points=[(d, 1) for d in days(7)]),
                charts.line_chart(chart_id="c", title="C", labels=hourly, series=[("Q", [1] * 2000)]),
            ]
        for chart in built:
            boxes = []
            for label in chart.x_labels:
                width = charts.text_width(label.text)
                left = {"start": label.x, "middle": label.x - width / 2, "end": label.x - width}[label.anchor]
                boxes.append((left, left + width))
            assert 2 <= len(boxes) < 20
            assert all(b[0] >= a[1] for a, b in pairwise(boxes))
            assert boxes[0][0] >= 0 and boxes[-1][1] <= charts.WIDTH
            assert chart.x_labels[-1].text == (chart.table_rows[-1].label)  # the latest is labelled
    assert len(built[1].x_labels) >= 4  # a week shows every other day at least
    assert len(built[0].x_labels) >= 5


# --- words ----------------------------------------------------------------------------------------


def test_labels_values_and_axis_are_in_brazilian_portuguese():
    with translation.override("pt-br"):
        chart = charts.bar_chart(
            chart_id="revenue",
            title="Receita",
            points=[(DAY - datetime.timedelta(days=1), Decimal("200")), (DAY, Decimal("1234.5"))],
            value_format=charts.money_format("R$"),
        )
        html = render(chart)
    assert [bar.title for bar in chart.bars] == ["04/12: R$\xa0200,00", "05/12: R$\xa01.234,50"]
    assert [tick.label for tick in chart.y_ticks] == ["0", "500", "1\xa0mil", "1,5\xa0mil"]
    assert [label.text for label in chart.x_labels] == ["04/12", "05/12"]
    assert "total R$\xa01.434,50" in chart.summary
    assert "<title>05/12: R$\xa01.234,50</title>" in html
    assert '<td class="num">R$\xa01.234,50</td>' in html


def test_labels_values_and_axis_are_in_english():
    with translation.override("en"):
        chart = charts.bar_chart(
            chart_id="revenue",
            title="Revenue",
            points=[(DAY - datetime.timedelta(days=1), Decimal("200")), (DAY, Decimal("1234.5"))],
            value_format=charts.money_format("R$"),
        )
    # This project's English writes the day first, the month in letters (mlaccounts/formats/en).
    assert [bar.title for bar in chart.bars] == ["4 Dec: R$\xa0200.00", "5 Dec: R$\xa01,234.50"]
    assert [tick.label for tick in chart.y_ticks] == ["0", "500", "1K", "1.5K"]
    assert chart.summary == (
        "From 4 Dec to 5 Dec: total R$\xa01,434.50, lowest R$\xa0200.00 on 4 Dec, "
        "highest R$\xa01,234.50 on 5 Dec, latest R$\xa01,234.50."
    )


@pytest.mark.parametrize(
    ("language", "value", "expected"),
    [
        ("pt-br", 0, "0"),
        ("pt-br", Decimal("0.25"), "0,25"),
        ("pt-br", 1250, "1,25\xa0mil"),
        ("pt-br", 3_000_000, "3\xa0mi"),
        ("pt-br", 999_999, "1\xa0mi"),
        ("en", 750, "750"),
        ("en", 12_000, "12K"),
        ("en", 2_500_000_000, "2.5B"),
        ("es", 1500, "1,5\xa0mil"),
    ],
)
def test_compact_numbers_for_the_y_axis(language, value, expected):
    with translation.override(language):
        assert charts.compact_number(value) == expected


def test_times_of_day_are_local_and_localised():
    moment = timezone.make_aware(datetime.datetime(2024, 12, 5, 17, 0), datetime.UTC)  # 14:00 in São Paulo
    with translation.override("pt-br"):
        assert charts.default_label_format(moment) == "05/12 14:00"
    with translation.override("en"):
        assert charts.default_label_format(moment) == "5 Dec 14:00"
        assert charts.default_label_format("Week 49") == "Week 49"


def test_a_line_summary_gives_each_series_lowest_highest_latest_and_the_limits():
    with translation.override("en"):
        chart = charts.line_chart(
            chart_id="rates",
            title="Rates",
            labels=days(4),
            series=[("Claims", [1.5, None, 0.5, 1.0]), ("Delays", [None] * 4)],
            value_format=charts.percent_format(),
            limits=[("Claims limit", 3)],
        )
    assert chart.summary == (
        "From 2 Dec to 5 Dec. Claims: lowest 0.5%, highest 1.5%, latest 1.0%. "
        "Delays: no values. Claims limit: 3.0%."
    )
    assert chart.columns[0].title == "2 Dec — Claims: 1.5%; Delays: —"


# --- HTML: accessible, allowed by the CSP ---------------------------------------------------------


def sales_page() -> str:
    """Two charts on one page, as the sales pages will have them, in pt-BR."""
    with translation.override("pt-br"):
        return render(*sales_charts())


def sales_charts() -> tuple[charts.Chart, charts.Chart]:
    revenue = charts.bar_chart(
        chart_id="revenue-chart",
        title="Revenue per day",
        points=[(d, Decimal(i * 37) + Decimal("0.5")) for i, d in enumerate(days(30))],
        value_format=charts.money_format("R$"),
    )
    rates = charts.line_chart(
        chart_id="rates-chart",
        title="Reputation",
        labels=days(30),
        series=[("Claims", [round(i / 10, 1) for i in range(30)]), ("Delays", [None, *([1.0] * 29)])],
        value_format=charts.percent_format(),
        axis_format=charts.percent_format(None),
        limits=[("Claims limit", 3)],
    )
    return revenue, rates


def test_ids_are_unique_and_every_aria_reference_points_at_one():
    elements = Elements(sales_page())
    ids = [attrs["id"] for _tag, attrs in elements.tags if "id" in attrs]
    assert len(ids) == len(set(ids)) >= 6
    svgs = elements.all("svg")
    assert len(svgs) == 2
    for svg in svgs:
        assert svg["role"] == "img"
        references = svg["aria-labelledby"].split() + svg["aria-describedby"].split()
        assert references and all(reference in ids for reference in references)
    assert [attrs["id"] for attrs in elements.all("title") if "id" in attrs] == [
        "revenue-chart-title",
        "rates-chart-title",
    ]
    assert [attrs["id"] for attrs in elements.all("desc")] == ["revenue-chart-desc", "rates-chart-desc"]


def test_a_chart_id_must_be_usable_as_an_html_id():
    with pytest.raises(ValueError, match="chart_id"):
        charts.bar_chart(chart_id="2 charts", title="T", points=[(DAY, 1)])


def test_the_html_has_no_inline_style_no_script_and_no_event_handler():
    html = sales_page()
    assert "style=" not in html
    assert "<script" not in html.lower()
    assert not re.search(r"\son[a-z]+\s*=", html, re.IGNORECASE)
    assert html.count('<svg class="chart-svg') == 2


def test_coordinates_are_written_with_a_point_whatever_the_language():
    html = sales_page()  # pt-BR writes 12,5: an SVG would not
    elements = Elements(html)
    numeric = ("x", "y", "x1", "x2", "y1", "y2", "width", "height", "cx", "cy")
    values = [
        attrs[name]
        for tag in ("rect", "line", "circle", "text")
        for attrs in elements.all(tag)
        for name in numeric
        if name in attrs
    ]
    assert values and all(re.fullmatch(r"-?\d+(\.\d+)?", value) for value in values)
    for attrs in elements.all("polyline"):
        assert re.fullmatch(r"(-?[\d.]+,-?[\d.]+ ?)+", attrs["points"])
    assert elements.all("svg")[0]["viewbox"] == "0 0 340 200"


def test_every_bar_has_a_tooltip_and_the_table_holds_every_row():
    html = sales_page()
    elements = Elements(html)
    bar_titles = [t for t in elements.titles if re.fullmatch(r"\d\d/\d\d: R\$\xa0[\d.]+,\d\d", t)]
    assert len(bar_titles) == 30
    assert bar_titles[0] == "06/11: R$\xa00,50"
    assert len(elements.all("rect", "chart-bar")) == 30
    assert len(elements.all("details", "chart-data")) == 2
    # Both tables: a header row and 30 rows each; the row header is the day.
    assert len(elements.all("tr")) == 2 * 31
    assert len(elements.all("th", None)) >= 60
    assert '<th scope="row">05/12</th><td class="num">R$\xa01.073,50</td>' in html
    assert '<th scope="row">06/11</th><td class="num">0,0%</td><td class="num">—</td>' in html


def test_every_point_of_a_line_has_a_tooltip_and_several_series_have_a_legend():
    html = sales_page()
    elements = Elements(html)
    columns = elements.all("rect", "chart-hit")
    assert len(columns) == 60  # 30 bars and 30 line positions
    assert "<title>05/12 — Claims: 2,9%; Delays: 1,0%</title>" in html
    legend = re.search(r'<ul class="chart-legend">(.*?)</ul>', html, re.DOTALL).group(1)
    assert 'class="chart-swatch chart-series-1"' in legend and "Claims" in legend
    assert 'class="chart-swatch chart-series-2"' in legend and "Delays" in legend
    assert html.count('<ul class="chart-legend">') == 1  # the one-series bar chart has none


def test_more_than_four_series_or_misaligned_values_are_refused():
    with pytest.raises(ValueError, match="at most 4"):
        charts.line_chart(chart_id="c", title="C", labels=[DAY], series=[(str(i), [1]) for i in range(5)])
    with pytest.raises(ValueError, match="2 values for 1 labels"):
        charts.line_chart(chart_id="c", title="C", labels=[DAY], series=[("Q", [1, 2])])


def test_every_class_the_charts_use_has_a_rule_in_the_stylesheet():
    html = sales_page() + render(charts.bar_chart(chart_id="empty", title="E", points=[]))
    used = {name for value in re.findall(r'class="([^"]+)"', html) for name in value.split()}
    css = (settings.BASE_DIR / "static" / "css" / "app.css").read_text()
    assert {
        "chart-series-1",
        "chart-series-2",
        "chart-bar",
        "chart-line",
        "chart-limit-line",
        "chart-empty",
    } <= used
    assert sorted(name for name in used if not re.search(rf"\.{name}(?![\w-])", css)) == []
