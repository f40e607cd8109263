"""The chart tag: draws a mlaccounts.charts.Chart (built by the view) as an accessible SVG.

    {% load charts %}
    {% chart revenue_chart %}

It renders templates/_partials/_chart.html: a <figure> with the SVG, its legend and a
"Show the data" table, or "No data yet". Every id derives from the chart's `chart_id`.
"""

from django import template

from mlaccounts.charts import Chart

register = template.Library()


@register.inclusion_tag("_partials/_chart.html")
def chart(chart_obj: Chart) -> dict:
    """The context of the partial: the chart, whatever name the page gave it."""
    return {"chart": chart_obj}
