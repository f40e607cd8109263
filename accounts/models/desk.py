"""The seller's desk: local mirrors of buyers' questions and open claims, and saved replies.

The mirrors are filled by the sync (sync.mirrors) and kept fresh by ML's notifications; the
pages and the API read them and never wait for Mercado Livre. Ids are ML's own (a question
or a claim id is unique across ML, and a seller is connected once per installation).
"""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.db.models.functions import Lower
from django.utils.translation import gettext_lazy as _

from accounts.models.core import MLAccount, Workspace

MAX_ANSWER_LENGTH = 2000  # mercadolivre-api.md §4.3: POST /answers text


class QuestionStatus(models.TextChoices):
    """ML's question statuses (§4.3 `available_filters`)."""

    UNANSWERED = "UNANSWERED", _("unanswered")
    ANSWERED = "ANSWERED", _("answered")
    CLOSED_UNANSWERED = "CLOSED_UNANSWERED", _("closed without an answer")
    DELETED = "DELETED", _("deleted")
    BANNED = "BANNED", _("banned")
    DISABLED = "DISABLED", _("disabled")
    UNDER_REVIEW = "UNDER_REVIEW", _("under review")


class Question(models.Model):
    """A buyer's question to one of the accounts, as ML last showed it.

    The queue is the UNANSWERED ones. A question that leaves ML's unanswered list is deleted
    from the mirror, unless it was answered here: that one stays, `ANSWERED`, with who
    answered it and what (kept QUESTION_RETENTION_DAYS by the cleanup job).
    """

    Status = QuestionStatus

    id = models.BigIntegerField(_("ML question id"), primary_key=True)
    account = models.ForeignKey(
        MLAccount, on_delete=models.CASCADE, related_name="questions", verbose_name=_("account")
    )
    item_id = models.CharField(_("item"), max_length=32)
    text = models.TextField(_("question"))
    status = models.CharField(_("status"), max_length=24, choices=Status.choices, default=Status.UNANSWERED)
    date_created = models.DateTimeField(_("asked at"))
    buyer_id = models.BigIntegerField(_("buyer's ML user id"), null=True, blank=True)
    buyer_nickname = models.CharField(_("buyer"), max_length=64, blank=True, default="")
    answer_text = models.TextField(_("answer"), blank=True, default="")
    answered_at = models.DateTimeField(_("answered at"), null=True, blank=True)
    answered_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("answered by"),
    )
    # When ML last listed or returned it: a full scan deletes the unanswered ones it did not see.
    seen_at = models.DateTimeField(_("last seen at ML"))

    class Meta:
        verbose_name = _("question")
        verbose_name_plural = _("questions")
        ordering = ["date_created", "id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=QuestionStatus.values), name="question_status_valid"
            ),
        ]
        indexes = [
            # The queue across accounts (oldest first) and each account's own.
            models.Index(
                fields=["date_created", "id"], condition=Q(status="UNANSWERED"), name="question_queue_idx"
            ),
            models.Index(fields=["account", "status", "date_created"], name="question_account_idx"),
        ]

    def __str__(self):
        return f"{self.id} ({self.status})"


class ListingItem(models.Model):
    """An item's title, thumbnail and link, from ML's multiget `GET /items?ids=` (§11.3), cached.

    Shared by every account (item ids are ML's); refreshed after ITEM_CACHE_DAYS. An item ML
    no longer knows is stored with an empty title, so it is not asked for again at once.
    """

    id = models.CharField(_("ML item id"), max_length=32, primary_key=True)
    title = models.CharField(_("title"), max_length=255, blank=True, default="")
    thumbnail = models.URLField(_("thumbnail"), max_length=500, blank=True, default="")
    permalink = models.URLField(_("link"), max_length=500, blank=True, default="")
    fetched_at = models.DateTimeField(_("fetched at"))

    class Meta:
        verbose_name = _("listing")
        verbose_name_plural = _("listings")

    def __str__(self):
        return f"{self.id} {self.title}"


class Claim(models.Model):
    """An open claim in which the account is the respondent (§4.4), with its detail.

    `due_date` and `action_responsible` come from `/claims/{id}/detail`, fetched again only
    when ML's `last_updated` moved (`detail_for` is the `last_updated` it was read at).
    Claims that are no longer open leave the mirror at the next sync or notification.
    """

    id = models.BigIntegerField(_("ML claim id"), primary_key=True)
    account = models.ForeignKey(
        MLAccount, on_delete=models.CASCADE, related_name="claims", verbose_name=_("account")
    )
    resource = models.CharField(_("resource"), max_length=16, blank=True, default="")
    resource_id = models.BigIntegerField(_("resource id"), null=True, blank=True)
    type = models.CharField(_("type"), max_length=32, blank=True, default="")
    stage = models.CharField(_("stage"), max_length=32, blank=True, default="")
    status = models.CharField(_("status"), max_length=16, default="opened")
    reason_id = models.CharField(_("reason"), max_length=32, blank=True, default="")
    date_created = models.DateTimeField(_("opened at"))
    last_updated = models.DateTimeField(_("updated at ML"), null=True, blank=True)
    due_date = models.DateTimeField(_("due"), null=True, blank=True)
    action_responsible = models.CharField(_("who must act"), max_length=32, blank=True, default="")
    detail_for = models.DateTimeField(null=True, blank=True, editable=False)
    seen_at = models.DateTimeField(_("last seen at ML"))

    class Meta:
        verbose_name = _("claim")
        verbose_name_plural = _("claims")
        ordering = [models.F("due_date").asc(nulls_last=True), "date_created", "id"]
        indexes = [
            models.Index(fields=["due_date", "date_created", "id"], name="claim_queue_idx"),
            models.Index(fields=["account", "due_date"], name="claim_account_idx"),
        ]

    def __str__(self):
        return f"{self.id} ({self.type}, {self.stage})"

    @property
    def order_id(self):
        """The order the claim is about (`resource_id` when the resource is an order)."""
        return self.resource_id if self.resource in ("order", "") else None


class SavedReply(models.Model):
    """A workspace's ready answer, with placeholders filled per question (accounts.services.desk)."""

    MAX_TITLE = 80
    MAX_PER_WORKSPACE = 100

    workspace = models.ForeignKey(
        Workspace, on_delete=models.CASCADE, related_name="saved_replies", verbose_name=_("workspace")
    )
    title = models.CharField(_("title"), max_length=MAX_TITLE)
    text = models.TextField(_("text"), max_length=MAX_ANSWER_LENGTH)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("saved reply")
        verbose_name_plural = _("saved replies")
        ordering = ["title", "id"]
        constraints = [
            models.UniqueConstraint("workspace", Lower("title"), name="savedreply_workspace_title_unique"),
        ]

    def __str__(self):
        return self.title
