"""Template filters of the overview: the links that change its filters, sort and page.

Each returns a query string (without the "?") built by mlaccounts.overview.OverviewQuery,
so every link keeps the rest of the view as it is and leaves defaults out of the URL.
"""

from django import template

register = template.Library()


@register.filter
def status_link(query, status: str) -> str:
    """Only the accounts in `status` ("" for every account), in the current sort."""
    return query.status_link(status or None)


@register.filter
def has_link(query, what: str) -> str:
    """The accounts with unanswered questions (or open claims), the most first."""
    return query.has_link(what)


@register.filter
def sorted_by(query, sort: str) -> str:
    """Every account, sorted by `sort` (the totals' links: they count every account)."""
    return type(query)(sort=sort).params()


@register.filter
def page_link(query, number) -> str:
    return query.params(page=str(number))


@register.filter
def aria_sort(query, column: str) -> str:
    """The `aria-sort` of a column header: how the table is sorted by it, if it is."""
    if query.sort == column:
        return "ascending"
    if query.sort == f"-{column}":
        return "descending"
    return "none"
