"""GET /api/notifications/health: are Mercado Livre's notifications arriving? (issue 13)"""

from django.utils.translation import gettext_lazy as _
from rest_framework import exceptions
from rest_framework.views import APIView

from accounts import selectors
from mlaccounts.api import serializers as s
from mlaccounts.api.exceptions import envelope
from mlaccounts.api.schema import PAGE, api_operation, envelope_of
from mlaccounts.api.workspaces import MAX_PAGE

NotificationHealthResponse = envelope_of("NotificationHealthResponse", s.NotificationHealthSerializer())


class NotificationHealthView(APIView):
    """Notification health over every account the caller can see; its accounts 50 a page."""

    @api_operation(
        operation_id="getNotificationHealth",
        summary="How Mercado Livre notifications are arriving for your accounts",
        description="The last hour's notifications (received, processed, failed), the 95th "
        "percentile of their lag from Mercado Livre's `received` to processed, the topics that "
        "fell silent while polling kept finding changes (`warning`), and each account's last "
        "notification, 50 accounts a page (`total` accounts), by account name.",
        tag="notifications",
        ok={200: NotificationHealthResponse},
        errors={400: ("VALIDATION_ERROR",)},
        parameters=[PAGE],
    )
    def get(self, request):
        raw = request.query_params.get("page", "1")
        try:
            page = min(max(int(raw), 1), MAX_PAGE)
        except (TypeError, ValueError):
            raise exceptions.ValidationError({"page": [_("Must be a whole number.")]}) from None
        health = selectors.notification_health(user=request.user, page=page)
        return envelope(s.NotificationHealthSerializer(health).data)
