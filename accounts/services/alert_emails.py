"""Alert emails: at once (one email per member per run, with every alert waiting for them) and
the daily digest (one email per member with the day's alerts, grouped by workspace and account).

Both take their deliveries with a conditional UPDATE (`email` from waiting to `sent`, stamped
with this run's time) before sending, so two runs never send the same alert twice; a send
that fails marks its deliveries `failed` and logs, and the alert stays in the inbox. Emails
are written in the member's language (`User.language`, else LANGUAGE_CODE) and go through
Django's email backend (SMTP from EMAIL_URL; the console under `make run`). An email about
a dead grant carries a fresh reconnect link for the members who may manage the account.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from datetime import datetime, timedelta

from django.conf import settings
from django.core.mail import EmailMessage
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone, translation

from accounts import roles
from accounts.alert_messages import alert_detail, alert_text
from accounts.models import AlertDelivery, AlertKind, DeliveryEmail, Membership, User
from accounts.roles import Can
from accounts.services.reconnect import reconnect_link_for_alert

logger = logging.getLogger(__name__)

# Deliveries one run takes at most; the next run (a minute later) takes the rest.
EMAIL_BATCH = 500


def _site_url(path: str) -> str:
    return settings.SITE_URL.rstrip("/") + path


def _take(waiting: str, *, now: datetime, limit: int, before: datetime | None = None) -> dict[int, list]:
    """Mark up to `limit` deliveries waiting as `waiting` sent (stamped `now`); return them by user."""
    waiting_rows = AlertDelivery.objects.filter(email=waiting)
    if before is not None:
        waiting_rows = waiting_rows.filter(created_at__lt=before)
    ids = list(waiting_rows.order_by("id").values_list("id", flat=True)[:limit])
    if not ids:
        return {}
    AlertDelivery.objects.filter(pk__in=ids, email=waiting).update(email=DeliveryEmail.SENT, emailed_at=now)
    taken = (
        AlertDelivery.objects.filter(pk__in=ids, email=DeliveryEmail.SENT, emailed_at=now)
        .select_related("alert", "alert__workspace", "alert__account", "user")
        .order_by("alert__workspace__name", "alert__account_label", "alert__created_at", "id")
    )
    by_user: dict[int, list] = defaultdict(list)
    for delivery in taken:
        by_user[delivery.user_id].append(delivery)
    return by_user


def _manages(user: User, deliveries) -> set:
    """The workspaces (ids) among `deliveries`' where `user` may manage accounts."""
    workspace_ids = {d.alert.workspace_id for d in deliveries}
    rows = Membership.objects.filter(user=user, workspace_id__in=workspace_ids).values_list(
        "workspace_id", "role"
    )
    return {workspace_id for workspace_id, role in rows if roles.allows(role, Can.MANAGE)}


def _items(user: User, deliveries) -> list[dict]:
    managed = (
        _manages(user, deliveries) if any(d.alert.kind == AlertKind.RECONNECT for d in deliveries) else set()
    )
    items = []
    for delivery in deliveries:
        alert = delivery.alert
        item = {
            "alert": alert,
            "text": alert_text(alert),
            "detail": alert_detail(alert),
            "account_url": _site_url(reverse("dashboard:account", args=[alert.account_id]))
            if alert.account_id
            else "",
            "reconnect_url": "",
            "reconnect_expires": None,
        }
        account = alert.account
        if (
            alert.kind == AlertKind.RECONNECT
            and account is not None
            and account.status == account.Status.EXPIRED
            and alert.workspace_id in managed
        ):
            item["reconnect_url"], item["reconnect_expires"] = reconnect_link_for_alert(account=account)
        items.append(item)
    return items


def _send(user: User, deliveries, *, template: str, extra: dict) -> bool:
    with translation.override(user.language or settings.LANGUAGE_CODE):
        context = {
            "user": user,
            "items": _items(user, deliveries),
            "site_name": settings.SITE_NAME,
            "inbox_url": _site_url(reverse("dashboard:alerts")),
            "settings_url": _site_url(reverse("dashboard:alert_settings")),
            **extra,
        }
        subject = render_to_string(f"emails/{template}_subject.txt", context).strip()
        body = render_to_string(f"emails/{template}_body.txt", context)
    try:
        EmailMessage(
            settings.ACCOUNT_EMAIL_SUBJECT_PREFIX + " ".join(subject.split()),
            body,
            settings.DEFAULT_FROM_EMAIL,
            [user.email],
        ).send()
    except OSError as error:  # SMTP refused, timed out, unreachable (smtplib errors are OSErrors)
        AlertDelivery.objects.filter(pk__in=[d.pk for d in deliveries]).update(email=DeliveryEmail.FAILED)
        logger.warning(
            "alert email not sent",
            extra={
                "event": "alert_email_failed",
                "user_id": user.pk,
                "alerts": len(deliveries),
                "error": str(error),
            },
        )
        return False
    return True


def alert_emails_send(*, now: datetime | None = None, limit: int = EMAIL_BATCH) -> int:
    """Send the alerts waiting to go at once: one email per member; return how many emails went."""
    now = now or timezone.now()
    sent = 0
    for deliveries in _take(DeliveryEmail.PENDING, now=now, limit=limit).values():
        user = deliveries[0].user
        sent += _send(user, deliveries, template="alert", extra={"count": len(deliveries)})
    return sent


def alert_digests_send(*, now: datetime | None = None, limit: int = EMAIL_BATCH * 10) -> int:
    """Send each member their digest: the alerts of the last day they chose to get that way,
    grouped by workspace and account; return how many emails went."""
    now = now or timezone.now()
    sent = 0
    for deliveries in _take(DeliveryEmail.DIGEST, now=now, limit=limit, before=now).values():
        user = deliveries[0].user
        extra = {"count": len(deliveries), "since": now - timedelta(days=1)}
        sent += _send(user, deliveries, template="alert_digest", extra=extra)
    return sent
