"""The "Vendas" page (issue 15): a workspace's sales per currency, by day and per account.

Read from the local mirrors through accounts.selectors, aggregated in the database: a
constant number of queries whatever the number of accounts and orders. What the charts and
the reputation panel show is mlaccounts.sales_page's.
"""

from __future__ import annotations

from django.core.paginator import Paginator
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET

from accounts import selectors
from mlaccounts import sales_page
from mlaccounts.views.accounts import current_workspace, dashboard_login_required

ACCOUNTS_PER_PAGE = 25


@require_GET
@dashboard_login_required
def sales(request):
    """The "Vendas" page: the current workspace's sales per currency, by day, and per account."""
    workspace = current_workspace(request)
    days = sales_page.window_days(request)
    window = selectors.sales_window(days, now=timezone.now())
    accounts = selectors.sales_accounts_for_user(user=request.user, workspace=workspace)
    totals = selectors.sales_summary(accounts=accounts, window=window)
    daily = selectors.sales_daily(accounts=accounts, window=window)
    page = Paginator(accounts.select_related("workspace"), ACCOUNTS_PER_PAGE).get_page(
        request.GET.get("page")
    )
    ids = [account.pk for account in page.object_list]
    figures = selectors.sales_by_account(account_ids=ids, window=window)
    latest = selectors.reputation_latest(account_ids=ids)
    rows = [
        sales_page.AccountRow(
            account=account,
            figures=figures.get(account.pk, []),
            reputation=sales_page.reputation_view(
                latest.get(account.pk), margin_percent=account.workspace.reputation_margin_percent
            ),
        )
        for account in page.object_list
    ]
    warned = sales_page.warned(accounts)
    currency_charts = []
    for line in totals:
        points = daily.get(line.currency, [])
        slug = line.currency.lower()
        currency_charts.append(
            {
                "currency": line.currency,
                "charts": [
                    sales_page.revenue_chart(f"revenue-{slug}-chart", line.currency, points),
                    sales_page.orders_chart(f"orders-{slug}-chart", points),
                ],
            }
        )
    context = {
        "workspace": workspace,
        "days": days,
        "window": window,
        "windows": sales_page.window_choices(days),
        "totals": totals,
        "currency_charts": currency_charts,
        "rows": rows,
        "page": page,
        "prev_url": f"?days={days}&page={page.previous_page_number()}" if page.has_previous() else "",
        "next_url": f"?days={days}&page={page.next_page_number()}" if page.has_next() else "",
        "warned": warned[: sales_page.WARNED_SHOWN],
        "warned_more": max(0, len(warned) - sales_page.WARNED_SHOWN),
        "history_charts": [
            *sales_page.count_charts(
                selectors.count_history_totals(accounts=accounts, days=sales_page.HISTORY_DAYS),
                prefix="workspace-counts",
            ),
            sales_page.levels_chart(
                selectors.reputation_levels_by_day(accounts=accounts, days=sales_page.HISTORY_DAYS)
            ),
        ],
        # Accounts whose orders mirror has not finished its first import: partial figures.
        "importing": accounts.filter(orders_synced_at__isnull=True).exclude(cached_at=None).count(),
    }
    return render(request, "sales/sales.html", context)
