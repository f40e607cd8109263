"""Writes of the seller's desk: the question and claim mirrors, answers, saved replies.

The mirror writes are called by sync.mirrors (a sync or a notification run) with what ML
just said; they are upserts keyed on ML's ids, so running one twice, or two at once, ends
in the same rows. `question_answer` is the one write that goes to ML from a web request:
POST /answers under the caller's deadline, then the mirror and the count at once.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from datetime import datetime, timedelta

from django.db import IntegrityError, transaction
from django.db.models import F
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts import tokens
from accounts.errors import (
    AccountNeedsReconnect,
    AccountValidationError,
    DeskUnavailable,
    NoRefreshToken,
    QuestionNotOpen,
    SavedReplyNotFound,
)
from accounts.mercadolivre import desk as ml_desk
from accounts.mercadolivre.errors import MLBadRequest, MLError, MLInvalidGrant, MLUnauthorized
from accounts.models import (
    MAX_ANSWER_LENGTH,
    MAX_RESPONSE_TARGET_MINUTES,
    AuditAction,
    Claim,
    ListingItem,
    MLAccount,
    Question,
    QuestionStatus,
    SavedReply,
    Workspace,
)
from accounts.services.audit import audit_record

logger = logging.getLogger(__name__)

# ML's search index can list a question as unanswered for a moment after it was answered
# (here or at ML): within this window a local answer wins over a stale search page.
ANSWER_SETTLE = timedelta(minutes=10)
QUESTION_RETENTION_DAYS = 90


# --- questions --------------------------------------------------------------------------------------


def question_mirror_store(*, account_id, questions: Iterable[ml_desk.MLQuestion], seen_at: datetime) -> int:
    """Upsert the unanswered questions ML listed for the account; return how many were stored.

    A question answered here within ANSWER_SETTLE keeps its local answer (ML's search may
    not show it yet). The buyer's nickname is only ever filled, never blanked.
    """
    rows = {q.id: q for q in questions if q.status == QuestionStatus.UNANSWERED}
    if not rows:
        return 0
    settling = set(
        Question.objects.filter(
            pk__in=rows, status=QuestionStatus.ANSWERED, answered_at__gte=seen_at - ANSWER_SETTLE
        ).values_list("pk", flat=True)
    )
    objects = [
        Question(
            id=q.id,
            account_id=account_id,
            item_id=q.item_id,
            text=q.text,
            status=QuestionStatus.UNANSWERED,
            date_created=q.date_created,
            buyer_id=q.buyer_id,
            buyer_nickname=q.buyer_nickname,
            seen_at=seen_at,
        )
        for q in rows.values()
        if q.id not in settling
    ]
    Question.objects.bulk_create(
        objects,
        update_conflicts=True,
        unique_fields=["id"],
        update_fields=["item_id", "text", "status", "date_created", "buyer_id", "seen_at"],
    )
    with_nickname = {q.buyer_id: q.buyer_nickname for q in rows.values() if q.buyer_nickname and q.buyer_id}
    if with_nickname:
        question_buyers_store(nicknames=with_nickname)
    return len(objects)


def question_mirror_settle(*, account_id, question: ml_desk.MLQuestion, seen_at: datetime) -> bool:
    """Bring one question in line with what `GET /questions/{id}` said; return whether it left the queue.

    Unanswered: upserted. Any other status: it leaves the queue; a question answered here
    keeps its row with ML's status, any other is deleted from the mirror.
    """
    if question.status == QuestionStatus.UNANSWERED:
        question_mirror_store(account_id=account_id, questions=[question], seen_at=seen_at)
        return False
    status = question.status if question.status in QuestionStatus.values else QuestionStatus.CLOSED_UNANSWERED
    rows = Question.objects.filter(pk=question.id, account_id=account_id)
    left = rows.filter(status=QuestionStatus.UNANSWERED).exists()
    rows.filter(answered_by__isnull=False).update(status=status, seen_at=seen_at)
    rows.filter(answered_by__isnull=True).delete()
    return left


def question_mirror_prune(*, account_id, seen_before: datetime, created_until: datetime | None = None) -> int:
    """Delete the account's unanswered questions a complete scan did not see; return how many.

    `created_until` limits it to the range a scan that stopped early covered.
    """
    rows = Question.objects.filter(
        account_id=account_id, status=QuestionStatus.UNANSWERED, seen_at__lt=seen_before
    )
    if created_until is not None:
        rows = rows.filter(date_created__lte=created_until)
    deleted, _ = rows.delete()
    return deleted


def mlaccount_questions_scanned(*, account_id, at: datetime) -> None:
    MLAccount.objects.filter(pk=account_id).update(questions_scanned_at=at)


def question_buyers_store(*, nicknames: dict[int, str]) -> None:
    """Remember buyers' nicknames on their questions (one UPDATE per buyer, a few per run)."""
    for buyer_id, nickname in nicknames.items():
        Question.objects.filter(buyer_id=buyer_id, buyer_nickname="").update(buyer_nickname=nickname[:64])


def question_cleanup(*, now: datetime | None = None) -> int:
    """Delete questions answered here more than QUESTION_RETENTION_DAYS ago."""
    now = now or timezone.now()
    cutoff = now - timedelta(days=QUESTION_RETENTION_DAYS)
    deleted, _ = (
        Question.objects.exclude(status=QuestionStatus.UNANSWERED).filter(answered_at__lt=cutoff).delete()
    )
    return deleted


def listing_items_store(*, items: dict[str, ml_desk.MLItem | None], at: datetime) -> None:
    """Cache the multiget's titles; an item ML does not know is stored blank, not asked again soon."""
    ListingItem.objects.bulk_create(
        [
            ListingItem(
                id=item_id,
                title=item.title if item else "",
                thumbnail=item.thumbnail if item else "",
                permalink=item.permalink if item else "",
                fetched_at=at,
            )
            for item_id, item in items.items()
        ],
        update_conflicts=True,
        unique_fields=["id"],
        update_fields=["title", "thumbnail", "permalink", "fetched_at"],
    )


def question_answer_validate(text) -> str:
    """The answer as it would be sent (stripped), or AccountValidationError (empty, too long)."""
    if not isinstance(text, str):
        raise AccountValidationError({"text": [_("Must be text.")]})
    if not text.strip():
        raise AccountValidationError({"text": [_("Write an answer.")]})
    if len(text) > MAX_ANSWER_LENGTH:
        raise AccountValidationError(
            {
                "text": [
                    _("At most %(limit)d characters (this one has %(n)d).")
                    % {"limit": MAX_ANSWER_LENGTH, "n": len(text)}
                ]
            }
        )
    return text.strip()


# What ML's refusal means for the seller, by the status GET /questions/{id} shows afterwards.
def _not_open_message(status: str) -> str:
    messages = {
        QuestionStatus.ANSWERED: _("This question was already answered (perhaps at Mercado Livre)."),
        QuestionStatus.DELETED: _("The buyer deleted this question, or Mercado Livre removed it."),
        QuestionStatus.BANNED: _("Mercado Livre banned this question; it cannot be answered."),
        QuestionStatus.CLOSED_UNANSWERED: _(
            "This question was closed without an answer; it can no longer be answered."
        ),
        QuestionStatus.UNDER_REVIEW: _("Mercado Livre is reviewing this question; try again later."),
        QuestionStatus.DISABLED: _("This question was disabled at Mercado Livre."),
    }
    return str(messages.get(status, _("This question is no longer open at Mercado Livre.")))


def question_answer(*, question: Question, text, user) -> Question:
    """Answer `question` at ML (POST /answers), then record it here and drop the count by one.

    Runs inside the caller's deadline (a web request's). Raises AccountValidationError for an
    empty or too long text, QuestionNotOpen when ML says it is no longer open (after
    re-reading it, so the mirror and the message show the real reason), DeskUnavailable when
    ML failed, timed out or the budget was spent, AccountNeedsReconnect when the grant is
    dead. The access check is the caller's (selectors.question_get_for_user with Can.ACT).
    """
    text = question_answer_validate(text)
    if question.status != QuestionStatus.UNANSWERED:
        # Answered here already (a second submit): no second POST for ML to refuse.
        raise QuestionNotOpen(_not_open_message(question.status), status=question.status)
    account_id = question.account_id
    try:
        token = tokens.get_fresh_access_token(account_id)
        try:
            ml_desk.answer_question(token, question.pk, text)
        except MLUnauthorized:
            # A 401 means ML did not take the answer: renew once and send it again.
            token = tokens.get_fresh_access_token(account_id, force=True)
            ml_desk.answer_question(token, question.pk, text)
    except (MLInvalidGrant, NoRefreshToken, MLUnauthorized) as error:
        # A dead grant (the refresh path marked the account expired and recorded why), or a
        # token ML refused again right after its renewal: either way, reconnect.
        raise AccountNeedsReconnect() from error
    except MLBadRequest as error:
        if error.code != "not_unanswered_question":
            raise DeskUnavailable(
                _("Mercado Livre refused the answer: %(reason)s") % {"reason": error.message}
            ) from error
        status = _reread(token, question)
        raise QuestionNotOpen(_not_open_message(status), status=status) from error
    except MLError as error:
        logger.warning(
            "answer not sent",
            extra={"event": "question_answer", "account_id": str(account_id), "error": type(error).__name__},
        )
        raise DeskUnavailable.from_ml(error) from error
    answered = question_answer_record(question=question, text=text, user=user)
    # The question and its listing, not the answer: it is at Mercado Livre and in the mirror.
    audit_record(
        action=AuditAction.ANSWER,
        account=question.account,
        changes={"question": question.pk, "item": question.item_id},
        actor=user,
    )
    return answered


def _reread(token: str, question: Question) -> str:
    """Re-read a refused question and settle the mirror; its status, as well as known."""
    try:
        current = ml_desk.get_question(token, question.pk)
    except MLError:
        # The refusal stands; the next sync settles the row.
        deleted, _ = Question.objects.filter(
            pk=question.pk, answered_by__isnull=True, status=QuestionStatus.UNANSWERED
        ).delete()
        if deleted:
            _questions_count_drop(question.account_id)
        return ""
    if question_mirror_settle(account_id=question.account_id, question=current, seen_at=timezone.now()):
        # It left the queue: so does it leave the count, until the next sync reads ML's.
        _questions_count_drop(question.account_id)
    return "" if current.status == QuestionStatus.UNANSWERED else current.status


def _questions_count_drop(account_id) -> None:
    # Not below 0, and an unknown count (null, never synced) stays unknown: PostgreSQL's
    # GREATEST(NULL - 1, 0) would make it 0 where SQLite's MAX() keeps NULL.
    MLAccount.objects.filter(pk=account_id, cached_questions__gt=0).update(
        cached_questions=F("cached_questions") - 1
    )


@transaction.atomic
def question_answer_record(*, question: Question, text: str, user, at: datetime | None = None) -> Question:
    """Record an answer ML accepted: the question leaves the queue and the count drops by one."""
    at = at or timezone.now()
    updated = Question.objects.filter(pk=question.pk, status=QuestionStatus.UNANSWERED).update(
        status=QuestionStatus.ANSWERED, answer_text=text, answered_at=at, answered_by=user
    )
    if updated:
        _questions_count_drop(question.account_id)
    question.status, question.answer_text, question.answered_at, question.answered_by = (
        QuestionStatus.ANSWERED,
        text,
        at,
        user,
    )
    return question


# --- claims -----------------------------------------------------------------------------------------


def claim_mirror_store(*, account_id, claims: Iterable[ml_desk.MLClaim], seen_at: datetime) -> list[int]:
    """Upsert the open claims ML listed; return the ids whose detail must be (re)read.

    The detail is read again only when ML's `last_updated` moved since it was last read.
    """
    rows = {c.id: c for c in claims if c.status == "opened"}
    if not rows:
        return []
    known = dict(Claim.objects.filter(pk__in=rows).values_list("pk", "detail_for"))
    Claim.objects.bulk_create(
        [
            Claim(
                id=c.id,
                account_id=account_id,
                resource=c.resource,
                resource_id=c.resource_id,
                type=c.type,
                stage=c.stage,
                status=c.status,
                reason_id=c.reason_id,
                date_created=c.date_created,
                last_updated=c.last_updated,
                seen_at=seen_at,
            )
            for c in rows.values()
        ],
        update_conflicts=True,
        unique_fields=["id"],
        update_fields=[
            "resource",
            "resource_id",
            "type",
            "stage",
            "status",
            "reason_id",
            "date_created",
            "last_updated",
            "seen_at",
        ],
    )
    return [
        c.id
        for c in rows.values()
        if c.id not in known
        or known[c.id] is None
        or (c.last_updated is not None and known[c.id] != c.last_updated)
    ]


def claim_detail_store(*, claim_id: int, detail: ml_desk.ClaimDetail) -> None:
    """Store a claim's due date and who must act, as read at its current `last_updated`."""
    Claim.objects.filter(pk=claim_id).update(
        due_date=detail.due_date,
        action_responsible=detail.action_responsible,
        # The `last_updated` it was read at, which claim_mirror_store compares with ML's next
        # one; ML may send none, then the creation date stands for it. (Not Greatest: on
        # SQLite a NULL argument makes it NULL, and the detail was read again every sync.)
        detail_for=Coalesce(F("last_updated"), F("date_created")),
    )


def claim_mirror_prune(*, account_id, seen_before: datetime) -> int:
    """Delete the account's claims a complete search did not list (closed at ML)."""
    deleted, _ = Claim.objects.filter(account_id=account_id, seen_at__lt=seen_before).delete()
    return deleted


# --- saved replies ----------------------------------------------------------------------------------

PLACEHOLDERS = ("item_title", "buyer_nickname")
_PLACEHOLDER = re.compile(r"\{(\w+)\}")


def saved_reply_fill(text: str, *, item_title: str, buyer_nickname: str) -> str:
    """A saved reply's text for one question: `{item_title}` and `{buyer_nickname}` filled in.

    An unknown nickname (ML's api_version=4 sends only the buyer's id) fills in as nothing,
    and the space or comma left before it goes too: "Olá {buyer_nickname}!" reads "Olá!".
    """
    values = {"item_title": item_title, "buyer_nickname": buyer_nickname}

    def fill(match: re.Match) -> str:
        return values.get(match.group(1), match.group(0))

    if not buyer_nickname:
        text = re.sub(r"[ ,]*\{buyer_nickname\}", "", text)
    return _PLACEHOLDER.sub(fill, text)[:MAX_ANSWER_LENGTH]


def _check_reply(title, text) -> dict[str, list[str]]:
    errors: dict[str, list[str]] = {}
    if not isinstance(title, str) or not title.strip():
        errors["title"] = [_("Give the reply a title.")]
    elif len(title.strip()) > SavedReply.MAX_TITLE:
        errors["title"] = [_("At most %(limit)d characters.") % {"limit": SavedReply.MAX_TITLE}]
    if not isinstance(text, str) or not text.strip():
        errors["text"] = [_("Write the reply.")]
    elif len(text) > MAX_ANSWER_LENGTH:
        errors["text"] = [_("At most %(limit)d characters.") % {"limit": MAX_ANSWER_LENGTH}]
    else:
        unknown = sorted({name for name in _PLACEHOLDER.findall(text) if name not in PLACEHOLDERS})
        if unknown:
            errors["text"] = [
                _("Unknown placeholder: %(names)s. Use {item_title} or {buyer_nickname}.")
                % {"names": ", ".join(f"{{{name}}}" for name in unknown)}
            ]
    return errors


def saved_reply_create(*, workspace: Workspace, user, title, text) -> SavedReply:
    """Add a saved reply to the workspace (at most SavedReply.MAX_PER_WORKSPACE, titles unique)."""
    errors = _check_reply(title, text)
    if not errors and SavedReply.objects.filter(workspace=workspace).count() >= SavedReply.MAX_PER_WORKSPACE:
        errors["title"] = [
            _("A workspace keeps at most %(n)d saved replies.") % {"n": SavedReply.MAX_PER_WORKSPACE}
        ]
    if errors:
        raise AccountValidationError(errors)
    try:
        with transaction.atomic():
            return SavedReply.objects.create(
                workspace=workspace, title=title.strip(), text=text.strip(), created_by=user
            )
    except IntegrityError:
        raise AccountValidationError({"title": [_("Another saved reply has this title.")]}) from None


def saved_reply_update(*, reply: SavedReply, title, text) -> SavedReply:
    errors = _check_reply(title, text)
    if errors:
        raise AccountValidationError(errors)
    try:
        with transaction.atomic():
            updated = SavedReply.objects.filter(pk=reply.pk).update(
                title=title.strip(), text=text.strip(), updated_at=timezone.now()
            )
    except IntegrityError:
        raise AccountValidationError({"title": [_("Another saved reply has this title.")]}) from None
    if not updated:
        raise SavedReplyNotFound()
    reply.title, reply.text = title.strip(), text.strip()
    return reply


def saved_reply_delete(*, reply: SavedReply) -> None:
    SavedReply.objects.filter(pk=reply.pk).delete()


def workspace_set_response_target(*, workspace: Workspace, minutes) -> Workspace:
    """Set how soon the workspace means to answer buyers (the queue's colours), in minutes."""
    if (
        isinstance(minutes, bool)
        or not isinstance(minutes, int)
        or not 1 <= minutes <= MAX_RESPONSE_TARGET_MINUTES
    ):
        raise AccountValidationError(
            {
                "response_target_minutes": [
                    _("A whole number of minutes from 1 to %(max)d.") % {"max": MAX_RESPONSE_TARGET_MINUTES}
                ]
            }
        )
    was = workspace.response_target_minutes
    Workspace.objects.filter(pk=workspace.pk).update(response_target_minutes=minutes)
    workspace.response_target_minutes = minutes
    if was != minutes:
        audit_record(
            action=AuditAction.SETTINGS,
            workspace=workspace,
            changes={"response_target_minutes": [was, minutes]},
        )
    return workspace
