"""Mercado Livre's notifications as they arrived (mercadolivre-api.md §6), and what each topic moves."""

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from accounts.models.core import MLAccount

# The four counts, by the column that caches them, and the bit each has in
# MLAccount.poll_change_mask.
COUNT_BITS = {"cached_products": 1, "cached_orders": 2, "cached_questions": 4, "cached_claims": 8}

# The notification topics (mercadolivre-api.md §6.3, §11.1) and the count each one moves.
# One sale can arrive on several order topics, and claims on the legacy `claims` and the
# current `post_purchase` topic: they all land on the same count, which is re-read once.
TOPIC_COUNTS = {
    "questions": "cached_questions",
    "orders_v2": "cached_orders",
    "orders": "cached_orders",
    "created_orders": "cached_orders",
    "items": "cached_products",
    "claims": "cached_claims",
    "claims_actions": "cached_claims",
    "post_purchase": "cached_claims",
}
# The topics an application subscribes to for this app: the ones missed feeds are asked for.
SUBSCRIBED_TOPICS = ("questions", "orders_v2", "items", "post_purchase")


class NotificationStatus(models.TextChoices):
    PENDING = "pending", _("pending")
    PROCESSING = "processing", _("processing")
    DONE = "done", _("done")
    IGNORED = "ignored", _("ignored")
    FAILED = "failed", _("failed")


class NotificationSource(models.TextChoices):
    WEBHOOK = "webhook", _("webhook")
    MISSED_FEEDS = "missed_feeds", _("missed feeds")


class Notification(models.Model):
    """One notification from Mercado Livre, stored raw as it arrived (§6.2).

    Stored by the webhook in one short INSERT and processed by a Celery task
    (sync/notifications.py): pending ones of one account are merged per count, the count is
    re-read from ML once, and each ends `done`, `ignored` or `failed` with its `reason`.
    `ml_id` (ML's `_id` or `id`) is unique, so a delivery retried by ML and the same message
    recovered from the missed feeds are stored once.
    """

    Status = NotificationStatus
    Source = NotificationSource

    # NULL, not "": the unique constraint holds only among notifications that have an id.
    ml_id = models.CharField(_("ML id"), max_length=64, null=True, blank=True)  # noqa: DJ001
    topic = models.CharField(_("topic"), max_length=64)
    resource = models.CharField(_("resource"), max_length=255)
    ml_user_id = models.BigIntegerField(_("Mercado Livre user id"))
    application_id = models.BigIntegerField(_("application id"), null=True, blank=True)
    attempts = models.PositiveIntegerField(_("ML delivery attempts"), default=1)
    sent_at = models.DateTimeField(_("sent by ML"), null=True, blank=True)
    received_at = models.DateTimeField(_("received by ML"), null=True, blank=True)
    arrived_at = models.DateTimeField(_("arrived"), db_index=True)
    source = models.CharField(_("source"), max_length=16, choices=Source.choices, default=Source.WEBHOOK)
    account = models.ForeignKey(
        MLAccount,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="notifications",
        verbose_name=_("account"),
    )
    status = models.CharField(_("status"), max_length=16, choices=Status.choices, default=Status.PENDING)
    reason = models.CharField(_("reason"), max_length=255, blank=True, default="")
    tries = models.PositiveSmallIntegerField(_("processing tries"), default=0)
    next_attempt_at = models.DateTimeField(_("next try"), null=True, blank=True)
    # The processing task's claim (a conditional UPDATE): who holds it, since when.
    claim = models.UUIDField(null=True, blank=True, editable=False)
    claimed_at = models.DateTimeField(null=True, blank=True, editable=False)
    processed_at = models.DateTimeField(_("processed"), null=True, blank=True)
    # From ML's `received` (or our arrival) to processed, in milliseconds.
    lag_ms = models.PositiveIntegerField(_("lag (ms)"), null=True, blank=True)
    body = models.JSONField(_("body"), default=dict)

    class Meta:
        verbose_name = _("Mercado Livre notification")
        verbose_name_plural = _("Mercado Livre notifications")
        ordering = ["-arrived_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["ml_id"], condition=Q(ml_id__isnull=False), name="notification_ml_id_unique"
            ),
            models.CheckConstraint(
                condition=Q(status__in=NotificationStatus.values), name="notification_status_valid"
            ),
        ]
        indexes = [
            # The processing task: pending ones of an account, due now.
            models.Index(
                fields=["account", "next_attempt_at"],
                condition=Q(status__in=["pending", "processing"]),
                name="notification_open_idx",
            ),
            models.Index(fields=["account", "-arrived_at"], name="notification_account_idx"),
            models.Index(fields=["status", "processed_at"], name="notification_processed_idx"),
            models.Index(fields=["topic", "-arrived_at"], name="notification_topic_idx"),
        ]

    def __str__(self):
        return f"{self.topic} {self.resource} ({self.status})"

    @property
    def count_field(self) -> str | None:
        """The MLAccount count this notification moves, or None for a topic the app does not use."""
        return TOPIC_COUNTS.get(self.topic)
