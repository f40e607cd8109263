"""Reads of alerts: a member's inbox, their channels, and whether emails wait to go."""

from __future__ import annotations

from django.db.models import Exists, OuterRef, QuerySet

from accounts.models import (
    AlertDelivery,
    AlertKind,
    AlertSubscription,
    DeliveryEmail,
    Membership,
    default_channel,
)


def alert_inbox(*, user, unread_only: bool = False) -> QuerySet[AlertDelivery]:
    """The user's inbox entries, newest first, with their alert (page it).

    Only alerts of workspaces the user still belongs to: a member who left (or was removed)
    no longer reads about that workspace's accounts.
    """
    entries = (
        AlertDelivery.objects.filter(user=user)
        .filter(Exists(Membership.objects.filter(user=user, workspace=OuterRef("alert__workspace_id"))))
        .select_related("alert", "alert__workspace")
        .order_by("-created_at", "-id")
    )
    if unread_only:
        entries = entries.filter(read_at__isnull=True)
    return entries


def alert_channels(*, membership: Membership) -> dict[str, str]:
    """The member's channel for every kind: their choice, else their role's default."""
    chosen = dict(AlertSubscription.objects.filter(membership=membership).values_list("kind", "channel"))
    default = default_channel(membership.role)
    return {kind: chosen.get(kind, default) for kind in AlertKind.values}


def alert_emails_waiting() -> bool:
    """Whether some alert email waits to go at once."""
    return AlertDelivery.objects.filter(email=DeliveryEmail.PENDING).exists()
