"""The Mercado Livre notifications callback: POST /webhooks/mercadolivre/<ML_WEBHOOK_SECRET>/.

ML signs nothing (mercadolivre-api.md §6.1), so the secret path segment is the credential:
a wrong one is a 404, as if nothing were here. The view parses, stores and answers; it never
calls ML and takes no lock (sync.notifications.receive). Its answers are small JSON, not
pages: no template, no session, no user is loaded.
"""

import hmac
import logging

from django.conf import settings
from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt

from accounts.models import Notification
from sync import notifications

logger = logging.getLogger(__name__)


def _secret_matches(secret: str) -> bool:
    expected = settings.ML_WEBHOOK_SECRET
    return bool(expected) and hmac.compare_digest(secret.encode(), expected.encode())


def _answer(body: dict, status: int = 200) -> JsonResponse:
    response = JsonResponse(body, status=status)
    # Django logs every 4xx with its path, and the path holds the secret: this view says
    # in its own log lines what went wrong, without the path.
    response._has_been_logged = True
    return response


@csrf_exempt
def mercadolivre_notification(request, secret: str):
    """Store one ML notification and answer 200 (400 for a body that is not one; 404, wrong secret)."""
    if not _secret_matches(secret):
        return _answer({"error": "not_found"}, 404)
    if request.method != "POST":
        response = _answer({"error": "method_not_allowed"}, 405)
        response["Allow"] = "POST"
        return response
    length = request.META.get("CONTENT_LENGTH") or "0"
    if not length.isdigit() or int(length) > notifications.MAX_BODY_BYTES:
        notifications.RECEIVED.labels(Notification.Source.WEBHOOK, "invalid").inc()
        return _answer({"error": "bad_request", "message": "the body is too large"}, 400)
    try:
        receipt = notifications.receive(notifications.decode(request.body))
    except notifications.InvalidNotification as error:
        notifications.RECEIVED.labels(Notification.Source.WEBHOOK, "invalid").inc()
        logger.info("notification refused", extra={"event": "notification_invalid", "error": str(error)})
        return _answer({"error": "bad_request", "message": str(error)}, 400)
    return _answer({"status": receipt.outcome})
