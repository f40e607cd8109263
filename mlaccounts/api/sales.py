"""The REST API of sales and reputation (issue 15): one account's metrics, and the totals.

Read from the local mirrors (accounts.selectors.sales), aggregated in the database; never
waits for Mercado Livre. Amounts are decimal strings with their currency beside them and
are never added across currencies (api-contract.md). An account the caller cannot see, or
a malformed id, is a 404.
"""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _
from rest_framework import exceptions
from rest_framework.views import APIView

from accounts import selectors
from accounts.selectors.sales import MAX_WINDOW_DAYS
from mlaccounts.api import sales_serializers as s
from mlaccounts.api.exceptions import envelope
from mlaccounts.api.schema import DAYS, WORKSPACE_FILTER, api_operation, envelope_of

SALES = "sales"
DEFAULT_DAYS = 30

AccountMetricsResponse = envelope_of("AccountMetricsResponse", s.AccountMetricsSerializer())
MetricsSummaryResponse = envelope_of("MetricsSummaryResponse", s.MetricsSummarySerializer())


def days_of(request) -> int:
    """`?days=`: a whole number of days from 1 to 90 (30 when absent)."""
    raw = request.query_params.get("days")
    if raw is None:
        return DEFAULT_DAYS
    # ASCII digits only (int() would also take " 5", "+5" and "٥"), and few of them.
    if raw.isascii() and raw.isdigit() and len(raw) <= 3 and 1 <= int(raw) <= MAX_WINDOW_DAYS:
        return int(raw)
    raise exceptions.ValidationError(
        {"days": [_("Must be a whole number of days from 1 to %(max)d.") % {"max": MAX_WINDOW_DAYS}]}
    )


class AccountMetricsView(APIView):
    @api_operation(
        operation_id="getAccountMetrics",
        summary="An account's sales, their trend and its reputation",
        description="The last `days` × 24 hours up to now, against the window before it. Revenue "
        "is the sum of `total_amount` of the paid orders created in the window; `cancelled` the "
        "orders created in it that are cancelled now; `fees` Mercado Livre's sale fees of the "
        "paid orders. `daily` lists each of the last `days` days (this installation's time "
        "zone, TIME_ZONE), today included. All in the account's currency. `reputation` is the "
        "newest daily snapshot, null until the first one.",
        tag=SALES,
        account_id=True,
        ok={200: AccountMetricsResponse},
        errors={400: ("VALIDATION_ERROR",), 404: ("NOT_FOUND",)},
        parameters=[DAYS],
    )
    def get(self, request, id):
        days = days_of(request)
        metrics = selectors.account_metrics_for_user(user=request.user, account_id=id, days=days)
        return envelope(s.AccountMetricsSerializer(metrics).data)


class MetricsSummaryView(APIView):
    @api_operation(
        operation_id="getMetricsSummary",
        summary="Sales totals per currency across your accounts",
        description="Every account you can see (or those of `workspaceId`), the last `days` × 24 "
        "hours against the window before it: one entry per currency, busiest first, never a "
        "total across currencies.",
        tag=SALES,
        ok={200: MetricsSummaryResponse},
        errors={400: ("VALIDATION_ERROR",), 404: ("NOT_FOUND",)},
        parameters=[DAYS, WORKSPACE_FILTER],
    )
    def get(self, request):
        days = days_of(request)
        workspace = None
        if request.query_params.get("workspaceId") not in (None, ""):
            workspace = selectors.workspace_get_for_user(
                user=request.user, workspace_id=request.query_params["workspaceId"]
            )
        accounts = selectors.sales_accounts_for_user(user=request.user, workspace=workspace)
        window = selectors.sales_window(days)
        data = {
            "days": days,
            "accounts": accounts.count(),
            "totals": selectors.sales_summary(accounts=accounts, window=window),
        }
        return envelope(s.MetricsSummarySerializer(data).data)
