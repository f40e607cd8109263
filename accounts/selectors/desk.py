"""Reads of the seller's desk: the questions queue, the claims list, saved replies.

Through the access helper like every read: the queue holds the questions of the accounts the
user can see (`mlaccount_visible_to`: membership and account scope); one question or saved
reply is a 404 for anybody else and a 403 when their role does not allow the action. Each
list is one query for the page and one for the count, however many accounts there are.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db.models import (
    F,
    OuterRef,
    QuerySet,
    Subquery,
)
from django.utils import timezone

from accounts.errors import Forbidden, QuestionNotFound, SavedReplyNotFound
from accounts.expressions import seconds_after
from accounts.models import Claim, ListingItem, MLAccount, Question, QuestionStatus, SavedReply
from accounts.roles import Can, abilities, allows
from accounts.selectors import (
    _signed_in,
    mlaccount_get_for_user,
    mlaccount_visible_to,
    workspace_get_for_user,
)

# The filters of the queue's age, in seconds ("late" is against each workspace's target).
AGE_FILTERS = {"1h": 3600, "4h": 4 * 3600, "24h": 24 * 3600, "3d": 3 * 24 * 3600}
LATE = "late"


def _with_item(queryset: QuerySet[Question]) -> QuerySet[Question]:
    items = ListingItem.objects.filter(pk=OuterRef("item_id"))
    return queryset.annotate(
        item_title=Subquery(items.values("title")[:1]),
        item_permalink=Subquery(items.values("permalink")[:1]),
        item_thumbnail=Subquery(items.values("thumbnail")[:1]),
    )


def _visible_accounts(*, user, account_id=None) -> QuerySet[MLAccount]:
    if account_id not in (None, ""):
        # The access helper: a 404 for an account the user cannot see, however it is asked for.
        account = mlaccount_get_for_user(user=user, account_id=account_id)
        return MLAccount.objects.filter(pk=account.pk)
    return mlaccount_visible_to(user=user)


def question_queue_for_user(
    *,
    user,
    account_id=None,
    older_than: int | None = None,
    late: bool = False,
    status: str = QuestionStatus.UNANSWERED,
    now: datetime | None = None,
) -> QuerySet[Question]:
    """The questions of every account `user` can see (or of `account_id`), oldest first.

    `older_than` (seconds) keeps those asked before that long ago; `late` those older than
    their workspace's response target. Each question carries its account (and workspace),
    its item's title, link and thumbnail, and the user's `role` on its account.
    """
    if not _signed_in(user):
        return Question.objects.none()
    now = now or timezone.now()
    accounts = _visible_accounts(user=user, account_id=account_id)
    roles = mlaccount_visible_to(user=user).filter(pk=OuterRef("account_id")).values("role")[:1]
    queryset = (
        _with_item(Question.objects.filter(status=status, account__in=accounts.values("pk")))
        .select_related("account", "account__workspace")
        .defer(*(f"account__{name}" for name in MLAccount.SECRET_FIELDS))
        .annotate(role=Subquery(roles))
        .order_by("date_created", "id")
    )
    if older_than is not None:
        queryset = queryset.filter(date_created__lte=now - timedelta(seconds=older_than))
    if late:
        target = F("account__workspace__response_target_minutes") * 60
        queryset = queryset.alias(due_at=seconds_after(F("date_created"), target)).filter(due_at__lt=now)
    return queryset


def question_get_for_user(*, user, question_id, need: Can = Can.VIEW) -> Question:
    """The access helper for one question: QuestionNotFound (404) unless it belongs to an
    account `user` can see, Forbidden (403) when their role does not allow `need`."""
    try:
        pk = int(str(question_id))
    except (TypeError, ValueError):
        raise QuestionNotFound() from None
    if not _signed_in(user) or not 0 < pk < 2**63:
        raise QuestionNotFound()
    roles = mlaccount_visible_to(user=user).filter(pk=OuterRef("account_id")).values("role")[:1]
    question = (
        _with_item(Question.objects.filter(pk=pk))
        .select_related("account", "account__workspace")
        .defer(*(f"account__{name}" for name in MLAccount.SECRET_FIELDS))
        .annotate(role=Subquery(roles))
        .first()
    )
    if question is None or question.role is None:
        raise QuestionNotFound()
    if not allows(question.role, need):
        raise Forbidden()
    question.can = abilities(question.role)
    return question


def claim_list_for_user(*, user, account_id=None) -> QuerySet[Claim]:
    """The open claims of every account `user` can see (or of `account_id`), soonest due first
    (claims without a due date last, then oldest first)."""
    if not _signed_in(user):
        return Claim.objects.none()
    accounts = _visible_accounts(user=user, account_id=account_id)
    return (
        Claim.objects.filter(account__in=accounts.values("pk"))
        .select_related("account")
        .defer(*(f"account__{name}" for name in MLAccount.SECRET_FIELDS))
        .order_by(F("due_date").asc(nulls_last=True), "date_created", "id")
    )


def saved_replies_for_workspaces(*, workspace_ids) -> dict:
    """The saved replies of each of `workspace_ids`, by title: {workspace_id: [SavedReply]}."""
    replies: dict = {pk: [] for pk in workspace_ids}
    if replies:
        for reply in SavedReply.objects.filter(workspace_id__in=list(replies)).order_by("title", "id"):
            replies[reply.workspace_id].append(reply)
    return replies


def saved_reply_list(*, workspace) -> QuerySet[SavedReply]:
    return SavedReply.objects.filter(workspace=workspace).order_by("title", "id")


def saved_reply_get_for_user(*, user, workspace_id, reply_id, need: Can = Can.ACT) -> SavedReply:
    """One saved reply of a workspace `user` belongs to (404 otherwise), if their role allows `need`."""
    workspace = workspace_get_for_user(user=user, workspace_id=workspace_id)
    try:
        reply = SavedReply.objects.get(workspace=workspace, pk=int(str(reply_id)))
    except (SavedReply.DoesNotExist, TypeError, ValueError, OverflowError):
        raise SavedReplyNotFound() from None
    if not allows(workspace.role, need):
        raise Forbidden()
    reply.workspace = workspace
    return reply
