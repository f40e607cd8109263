"""Sales and history: the orders mirror, daily reputation snapshots and hourly count snapshots.

Mercado Livre keeps orders about twelve months and shows only today's reputation
(mercadolivre-api.md §4.2, §11.2), so the history the pages chart is what this app stored:
- ``Order``: the account's orders of the last 90 days at the first import, then every order
  the incremental sync or a notification brings; kept (they are the sales history).
- ``ReputationSnapshot``: one per account and day (the installation's time zone), the first
  sync of the day takes it.
- ``CountSnapshot``: the four dashboard counts, one row per account and hour, kept
  COUNT_HISTORY_DAYS by the cleanup job.

Money is ``Decimal`` with its currency beside it, never summed across currencies.
"""

from django.db import models
from django.utils.translation import gettext_lazy as _

from accounts.models.core import MLAccount

ORDERS_HISTORY_DAYS = 90  # the first import reaches this far back
COUNT_HISTORY_DAYS = 90
MONEY = {"max_digits": 16, "decimal_places": 2}
RATE = {"max_digits": 7, "decimal_places": 5}


class OrderStatus(models.TextChoices):
    """§4.2's order statuses. ML may add others: the mirror stores whatever it says."""

    CONFIRMED = "confirmed", _("confirmed")
    PAYMENT_REQUIRED = "payment_required", _("payment required")
    PAYMENT_IN_PROCESS = "payment_in_process", _("payment in process")
    PARTIALLY_PAID = "partially_paid", _("partially paid")
    PAID = "paid", _("paid")
    PARTIALLY_REFUNDED = "partially_refunded", _("partially refunded")
    PENDING_CANCEL = "pending_cancel", _("cancellation pending")
    CANCELLED = "cancelled", _("cancelled")
    INVALID = "invalid", _("invalid")


class Order(models.Model):
    """One of an account's orders, as ML last showed it (§4.2 order object).

    `items` is the number of units (Σ quantity) and `sale_fees` what ML charges for them
    (Σ sale_fee × quantity). `date_last_updated` is ML's: a read that is not newer than
    what is stored does not overwrite it.
    """

    Status = OrderStatus

    id = models.BigIntegerField(_("ML order id"), primary_key=True)
    account = models.ForeignKey(
        MLAccount, on_delete=models.CASCADE, related_name="orders", verbose_name=_("account")
    )
    status = models.CharField(_("status"), max_length=32)
    total_amount = models.DecimalField(_("total"), **MONEY)
    paid_amount = models.DecimalField(_("paid"), **MONEY, default=0)
    currency = models.CharField(_("currency"), max_length=3)
    date_created = models.DateTimeField(_("created at"))
    date_closed = models.DateTimeField(_("closed at"), null=True, blank=True)
    date_last_updated = models.DateTimeField(_("updated at ML"))
    pack_id = models.BigIntegerField(_("pack"), null=True, blank=True)
    items = models.PositiveIntegerField(_("units"), default=0)
    sale_fees = models.DecimalField(_("ML fees"), **MONEY, default=0)
    stored_at = models.DateTimeField(_("stored at"))

    class Meta:
        verbose_name = _("order")
        verbose_name_plural = _("orders")
        ordering = ["-date_created", "-id"]
        indexes = [
            # Every figure is a window of one or many accounts' orders by creation date.
            models.Index(fields=["account", "date_created"], name="order_account_created_idx"),
        ]

    def __str__(self):
        return f"{self.id} ({self.status})"


class ReputationSnapshot(models.Model):
    """An account's `seller_reputation` on one day (§11.2): ML keeps no history.

    Rates are fractions (0.0166 = 1.66 %) over `period` ("60 days", "365 days"). While ML
    protects a seller, `level_id` is the protected colour and `real_level` the real one,
    until `protection_end_date`.
    """

    account = models.ForeignKey(
        MLAccount, on_delete=models.CASCADE, related_name="reputation_snapshots", verbose_name=_("account")
    )
    day = models.DateField(_("day"))
    taken_at = models.DateTimeField(_("taken at"))
    level_id = models.CharField(_("level"), max_length=32, blank=True, default="")
    power_seller_status = models.CharField(_("MercadoLíder"), max_length=32, blank=True, default="")
    real_level = models.CharField(_("real level"), max_length=32, blank=True, default="")
    protection_end_date = models.DateTimeField(_("protected until"), null=True, blank=True)
    period = models.CharField(_("period"), max_length=32, blank=True, default="")
    transactions_total = models.PositiveIntegerField(_("transactions"), null=True, blank=True)
    transactions_completed = models.PositiveIntegerField(_("completed"), null=True, blank=True)
    transactions_canceled = models.PositiveIntegerField(_("canceled"), null=True, blank=True)
    sales_completed = models.PositiveIntegerField(_("sales in the period"), null=True, blank=True)
    claims_rate = models.DecimalField(_("claims rate"), **RATE, null=True, blank=True)
    claims_value = models.PositiveIntegerField(_("claims"), null=True, blank=True)
    delayed_handling_rate = models.DecimalField(_("late shipments rate"), **RATE, null=True, blank=True)
    delayed_handling_value = models.PositiveIntegerField(_("late shipments"), null=True, blank=True)
    cancellations_rate = models.DecimalField(_("cancellations rate"), **RATE, null=True, blank=True)
    cancellations_value = models.PositiveIntegerField(_("cancellations"), null=True, blank=True)

    class Meta:
        verbose_name = _("reputation snapshot")
        verbose_name_plural = _("reputation snapshots")
        ordering = ["account", "-day"]
        constraints = [
            models.UniqueConstraint(fields=["account", "day"], name="reputation_account_day_unique"),
        ]

    def __str__(self):
        return f"{self.account_id} {self.day} {self.level_id or '-'}"


class CountSnapshot(models.Model):
    """The four dashboard counts of an account during one hour (the last known in it)."""

    account = models.ForeignKey(
        MLAccount, on_delete=models.CASCADE, related_name="count_snapshots", verbose_name=_("account")
    )
    hour = models.DateTimeField(_("hour"))
    products = models.PositiveIntegerField(_("active listings"), null=True, blank=True)
    orders = models.PositiveIntegerField(_("orders (30 days)"), null=True, blank=True)
    questions = models.PositiveIntegerField(_("unanswered questions"), null=True, blank=True)
    claims = models.PositiveIntegerField(_("open claims"), null=True, blank=True)

    class Meta:
        verbose_name = _("count snapshot")
        verbose_name_plural = _("count snapshots")
        ordering = ["account", "hour"]
        constraints = [
            models.UniqueConstraint(fields=["account", "hour"], name="count_snapshot_account_hour_unique"),
        ]
        indexes = [models.Index(fields=["hour"], name="count_snapshot_hour_idx")]

    def __str__(self):
        return f"{self.account_id} {self.hour:%Y-%m-%d %H:00}"
