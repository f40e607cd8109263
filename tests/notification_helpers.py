"""Shared by the notification tests: ML's two body shapes, stored rows, a cache of one's own.

ML's bodies follow mercadolivre-api.md §6.2: the general model (`_id`) and the typified one
(`id` and `actions`, `user_id` often a string).
"""

import uuid
from datetime import timedelta

from django.utils import timezone

from accounts.models import Notification, NotificationStatus

APP_ID = 5503910054141466
SECRET = "test-webhook-secret-0123456789abcdef"


def use_fresh_cache(settings) -> None:
    """Give the test a cache namespace of its own (kick marks, the foreign and call counters).

    The counters are global keys of a cache shared by every test of a worker (Redis in CI):
    a new key prefix isolates them without clearing anything another test relies on.
    """
    default = settings.CACHES["default"]
    settings.CACHES = {
        **settings.CACHES,
        "default": {**default, "KEY_PREFIX": f"notif-{uuid.uuid4().hex}"},
    }


def general_body(*, user_id, topic="orders_v2", resource="/orders/2000009876543210", **extra) -> dict:
    """The general-topic model (§6.2): `_id`, numeric `user_id`."""
    body = {
        "_id": uuid.uuid4().hex,
        "resource": resource,
        "user_id": user_id,
        "topic": topic,
        "application_id": APP_ID,
        "attempts": 1,
        "sent": "2025-03-10T16:19:20.129Z",
        "received": "2025-03-10T16:19:20.106Z",
    }
    body.update(extra)
    return body


def typified_body(
    *, user_id, topic="post_purchase", resource="/post-purchase/v1/claims/5108684499", **extra
) -> dict:
    """The sub-topic ("typified") model (§6.2): `id` instead of `_id`, `actions`, `user_id` a string."""
    body = {
        "id": str(uuid.uuid4()),
        "resource": resource,
        "user_id": str(user_id),
        "topic": topic,
        "actions": ["claims"],
        "application_id": APP_ID,
        "attempts": 2,
        "sent": "2025-03-10T16:19:21.000Z",
        "received": "2025-03-10T16:19:20.500Z",
    }
    body.update(extra)
    return body


def stored(account, topic="questions", *, resource=None, ago=timedelta(0), **fields) -> Notification:
    """A notification row as the intake stores it (pending and due, unless `fields` say otherwise)."""
    arrived = timezone.now() - ago
    fields.setdefault("status", NotificationStatus.PENDING)
    if fields["status"] == NotificationStatus.PENDING:
        fields.setdefault("next_attempt_at", arrived)
    return Notification.objects.create(
        topic=topic,
        resource=resource or f"/{topic}/{uuid.uuid4().int % 10**12}",
        ml_user_id=account.ml_user_id if account is not None else 1,
        account=account,
        arrived_at=arrived,
        **fields,
    )
