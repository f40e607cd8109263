"""Alerts that reach people, and the reconnect links that let a store's owner restore a grant.

- ``AlertState``: what the alert rules last saw, one row per (account, kind, subject). A rule
  fires when its condition turns on (the row appears or goes active again), never while it
  stays on: this table is what makes an alert fire once per change of state, not per sync.
- ``Alert``: one fired alert, in the workspace of its account. Its words are made from `kind`
  and `params` when shown, in each reader's language.
- ``AlertDelivery``: one alert for one member: the inbox entry (read or not) and the email,
  at once or in the daily digest.
- ``AlertSubscription``: a member's choice of channel for one kind (no row: the default of
  the member's role, ``default_channel``).
- ``ReconnectLink``: a single-use link, valid RECONNECT_LINK_DAYS, that takes a store's owner
  (no login here) through Mercado Livre's authorization to restore that very account.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from accounts.models.core import Membership, MLAccount, Role, Workspace

RECONNECT_LINK_DAYS = 7


class AlertKind(models.TextChoices):
    RECONNECT = "reconnect", _("Reconnect needed")
    FAILING = "failing", _("Failing syncs")
    QUESTION_OVERDUE = "question_overdue", _("Question past the response target")
    NEW_CLAIM = "new_claim", _("New claim")
    REPUTATION = "reputation", _("Reputation at risk")
    RECOVERED = "recovered", _("Account recovered")


class AlertChannel(models.TextChoices):
    """Where a member receives one kind of alert. Every channel but OFF fills the inbox."""

    INSTANT = "instant", _("Inbox and email at once")
    DIGEST = "digest", _("Inbox and a daily email digest")
    INBOX = "inbox", _("Inbox only")
    OFF = "off", _("Nothing")


def default_channel(role: str) -> str:
    """Owners and managers get every alert by email at once; the others, in the inbox."""
    return AlertChannel.INSTANT if role in (Role.OWNER, Role.MANAGER) else AlertChannel.INBOX


class AlertState(models.Model):
    """What a rule last saw for one subject: on (`active`) or off, and since when."""

    account = models.ForeignKey(MLAccount, on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=24, choices=AlertKind.choices)
    # What the state is about within the account: "" for the account itself, a question's or
    # a claim's id, a reputation metric's name, or a day for a reputation colour's drop.
    subject = models.CharField(max_length=64, blank=True, default="")
    active = models.BooleanField(default=True)
    changed_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["account", "kind", "subject"], name="alert_state_unique"),
        ]
        indexes = [models.Index(fields=["kind", "active"], name="alert_state_kind_idx")]

    def __str__(self):
        return f"{self.kind}:{self.subject} ({'on' if self.active else 'off'})"

    def __repr__(self):
        return f"<AlertState {self.account_id} {self.kind}:{self.subject} active={self.active}>"


class Alert(models.Model):
    """One alert as it fired; the account may be removed since (its label stays)."""

    id = models.BigAutoField(primary_key=True)
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="alerts")
    account = models.ForeignKey(MLAccount, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    account_label = models.CharField(_("account"), max_length=255)
    kind = models.CharField(_("kind"), max_length=24, choices=AlertKind.choices)
    # What the words need: counts, ids, levels, the error; JSON, never a token.
    params = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(_("time"), db_index=True)

    class Meta:
        verbose_name = _("alert")
        verbose_name_plural = _("alerts")
        ordering = ["-created_at", "-id"]

    def __str__(self):
        return f"{self.get_kind_display()}: {self.account_label}"


class DeliveryEmail(models.TextChoices):
    NONE = "", _("no email")
    PENDING = "pending", _("to send at once")
    DIGEST = "digest", _("waiting for the digest")
    SENT = "sent", _("sent")
    FAILED = "failed", _("could not be sent")


class AlertDelivery(models.Model):
    """One alert for one member: an inbox entry, and its email's progress."""

    id = models.BigAutoField(primary_key=True)
    alert = models.ForeignKey(Alert, on_delete=models.CASCADE, related_name="deliveries")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField(db_index=True)
    read_at = models.DateTimeField(null=True, blank=True)
    email = models.CharField(max_length=8, choices=DeliveryEmail.choices, blank=True, default="")
    emailed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["alert", "user"], name="alert_delivery_unique"),
        ]
        indexes = [
            models.Index(fields=["user", "read_at"], name="alert_inbox_idx"),
            models.Index(fields=["email", "created_at"], name="alert_email_idx"),
        ]
        ordering = ["-created_at", "-id"]

    def __str__(self):
        return f"{self.alert} → {self.user}"

    def __repr__(self):
        return f"<AlertDelivery alert={self.alert_id} user={self.user_id} email={self.email!r}>"


class AlertSubscription(models.Model):
    """A member's channel for one kind of alert, when it differs from the role's default."""

    membership = models.ForeignKey(Membership, on_delete=models.CASCADE, related_name="alert_subscriptions")
    kind = models.CharField(max_length=24, choices=AlertKind.choices)
    channel = models.CharField(max_length=8, choices=AlertChannel.choices)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["membership", "kind"], name="alert_subscription_unique"),
        ]

    def __str__(self):
        return f"{self.kind}: {self.channel}"

    def __repr__(self):
        return f"<AlertSubscription {self.membership_id} {self.kind}={self.channel}>"


class ReconnectLink(models.Model):
    """A single-use link to restore one account's grant, for its owner, without a login here.

    Only a hash of the token is stored. `used_at` is set once, by the callback that restored
    the account; an authorization as another seller leaves the link as it was.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    account = models.ForeignKey(MLAccount, on_delete=models.CASCADE, related_name="reconnect_links")
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(_("created"))
    expires_at = models.DateTimeField(_("expires"))
    used_at = models.DateTimeField(_("used"), null=True, blank=True)

    class Meta:
        verbose_name = _("reconnect link")
        verbose_name_plural = _("reconnect links")

    def __str__(self):
        return f"{self.account} ({self.created_at:%Y-%m-%d})"

    def __repr__(self):
        return f"<ReconnectLink account={self.account_id} used={self.used_at is not None}>"
