"""The seller's desk: one queue of buyers' questions and one list of open claims across every
account the user can see, answered in place (issue 14), and each workspace's desk settings
(response target, saved replies).

Thin like the other pages: the access helper (accounts.selectors) → one service → redirect
with a message. Answering is the one action that waits for Mercado Livre in the request
(POST /answers), under one overall deadline (SYNC_REQUEST_DEADLINE, below the web server's
timeout) and the per-user ML action limit shared with the API. A text that could not be
sent is kept as a draft in the session and offered again in its answer box.
"""

from __future__ import annotations

import contextlib
import uuid
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.core.paginator import Paginator
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts import selectors, services
from accounts.errors import (
    AccountValidationError,
    DomainError,
    QuestionNotOpen,
    SavedReplyNotFound,
)
from accounts.mercadolivre import deadline
from accounts.models import MAX_ANSWER_LENGTH, MAX_REPUTATION_MARGIN_PERCENT, SavedReply
from accounts.roles import Can, abilities, allows
from mlaccounts.api.throttles import ml_action_wait
from mlaccounts.views.accounts import _next_url, dashboard_login_required

QUESTIONS_PER_PAGE = 25
CLAIMS_PER_PAGE = 50
REPLIES_PER_PAGE = 50
DRAFTS_KEY = "desk_drafts"
MAX_DRAFTS = 20
# An age past this share of the response target reads "answer soon".
SOON_SHARE = 0.75


def _filters(request) -> dict:
    """The queue's filters from the query string, as given (the selector checks the account)."""
    age = request.GET.get("age", "")
    if age not in selectors.AGE_FILTERS and age != "late":
        age = ""
    account = request.GET.get("account", "").strip()
    with contextlib.suppress(ValueError):  # kept as given: the access helper answers 404 for it
        account = str(uuid.UUID(account)) if account else ""
    return {"account": account, "age": age}


def _query(filters: dict, **extra) -> str:
    values = {name: value for name, value in {**filters, **extra}.items() if value not in ("", None, 1)}
    return urlencode(values)


def _age_state(question, now) -> str:
    age = (now - question.date_created).total_seconds()
    target = question.account.workspace.response_target_minutes * 60
    if age > target:
        return "late"
    return "soon" if age > target * SOON_SHARE else "ok"


def _drafts(request) -> dict:
    return request.session.get(DRAFTS_KEY, {})


def _keep_draft(request, question_id, text) -> None:
    if not isinstance(text, str) or not text.strip():
        return
    drafts = dict(_drafts(request))
    drafts[str(question_id)] = text[:MAX_ANSWER_LENGTH]
    request.session[DRAFTS_KEY] = dict(list(drafts.items())[-MAX_DRAFTS:])


def _drop_draft(request, question_id) -> None:
    drafts = _drafts(request)
    if str(question_id) in drafts:
        drafts = dict(drafts)
        del drafts[str(question_id)]
        request.session[DRAFTS_KEY] = drafts


@require_GET
@dashboard_login_required
def questions(request):
    """The queue: every unanswered question of the accounts the user can see, oldest first."""
    filters = _filters(request)
    accounts = list(
        selectors.mlaccount_list_for_user(user=request.user).only(
            "id", "account_name", "nickname", "workspace_id"
        )
    )
    account_ids = {str(account.pk) for account in accounts}
    if filters["account"] and filters["account"] not in account_ids:
        # The same answer for an account that does not exist and one the user cannot see.
        selectors.mlaccount_get_for_user(user=request.user, account_id=filters["account"])
    queue = selectors.question_queue_for_user(
        user=request.user,
        account_id=filters["account"] or None,
        older_than=selectors.AGE_FILTERS.get(filters["age"]),
        late=filters["age"] == "late",
    )
    page = Paginator(queue, QUESTIONS_PER_PAGE).get_page(request.GET.get("page"))
    rows = list(page.object_list)
    now = timezone.now()
    replies = selectors.saved_replies_for_workspaces(
        workspace_ids={q.account.workspace_id for q in rows if allows(q.role, Can.ACT)}
    )
    drafts = _drafts(request)
    for question in rows:
        question.can = abilities(question.role)
        question.age_state = _age_state(question, now)
        question.replies = replies.get(question.account.workspace_id, [])
        question.draft = drafts.get(str(question.pk), "")
    back = request.get_full_path()
    context = {
        "questions": rows,
        "page": page,
        "total": page.paginator.count,
        "accounts": accounts,
        "filters": filters,
        "age_choices": _age_choices(),
        "prev_url": "?" + _query(filters, page=page.previous_page_number()) if page.has_previous() else "",
        "next_url": "?" + _query(filters, page=page.next_page_number()) if page.has_next() else "",
        "back": back,
        "max_answer": MAX_ANSWER_LENGTH,
        "replies_json": {
            str(workspace_id): [{"id": r.pk, "title": r.title, "text": r.text} for r in items]
            for workspace_id, items in replies.items()
        },
    }
    return render(request, "desk/questions.html", context)


def _age_choices() -> list[tuple[str, str]]:
    return [
        ("", _("Any age")),
        ("late", _("Past the response target")),
        ("1h", _("Older than 1 hour")),
        ("4h", _("Older than 4 hours")),
        ("24h", _("Older than 1 day")),
        ("3d", _("Older than 3 days")),
    ]


@require_POST
@dashboard_login_required
def question_answer(request, question_id):
    """Answer one question at Mercado Livre, then back to the queue as it was filtered."""
    back = _next_url(request, reverse("dashboard:questions"))
    question = selectors.question_get_for_user(user=request.user, question_id=question_id, need=Can.ACT)
    text = request.POST.get("text", "")
    reply_id = request.POST.get("reply", "")
    if not text.strip() and reply_id:
        text = _filled_reply(request, question, reply_id)
    try:
        # Checked before the ML action limit, which only what would reach ML should spend.
        services.question_answer_validate(text)
    except AccountValidationError as error:
        _keep_draft(request, question.pk, text)
        messages.error(request, " ".join(str(m) for ms in error.errors.values() for m in ms))
        return redirect(back)
    wait = ml_action_wait(request)
    if wait is not None:
        _keep_draft(request, question.pk, text)
        messages.error(
            request, _("Too many requests to Mercado Livre. The answer was not sent; try again in a moment.")
        )
        return redirect(back)
    try:
        with deadline.within(settings.SYNC_REQUEST_DEADLINE):
            services.question_answer(question=question, text=text, user=request.user)
    except AccountValidationError as error:
        _keep_draft(request, question.pk, text)
        messages.error(request, " ".join(str(m) for ms in error.errors.values() for m in ms))
    except QuestionNotOpen as error:
        _drop_draft(request, question.pk)
        messages.warning(
            request,
            _("Not sent to %(buyer)s: %(reason)s") % {"buyer": _buyer(question), "reason": error.message},
        )
    except DomainError as error:
        # ML failed or timed out (DeskUnavailable), or the account needs reconnecting.
        _keep_draft(request, question.pk, text)
        messages.error(request, str(error.message))
    else:
        _drop_draft(request, question.pk)
        messages.success(
            request,
            _("Answer sent to %(buyer)s (%(account)s). The question left the queue.")
            % {"buyer": _buyer(question), "account": question.account.account_name},
        )
    return redirect(back)


def _buyer(question) -> str:
    return question.buyer_nickname or _("the buyer")


def _filled_reply(request, question, reply_id) -> str:
    try:
        reply = selectors.saved_reply_get_for_user(
            user=request.user, workspace_id=question.account.workspace_id, reply_id=reply_id
        )
    except SavedReplyNotFound:
        return ""
    return services.saved_reply_fill(
        reply.text, item_title=question.item_title or "", buyer_nickname=question.buyer_nickname
    )


@require_GET
@dashboard_login_required
def claims(request):
    """Open claims where the seller must respond, soonest due first (read only)."""
    account = request.GET.get("account", "").strip()
    accounts = list(
        selectors.mlaccount_list_for_user(user=request.user).only("id", "account_name", "nickname")
    )
    if account and account not in {str(a.pk) for a in accounts}:
        selectors.mlaccount_get_for_user(user=request.user, account_id=account)
    page = Paginator(
        selectors.claim_list_for_user(user=request.user, account_id=account or None), CLAIMS_PER_PAGE
    ).get_page(request.GET.get("page"))
    filters = {"account": account}
    context = {
        "claims": list(page.object_list),
        "page": page,
        "total": page.paginator.count,
        "accounts": accounts,
        "filters": filters,
        "now": timezone.now(),
        "prev_url": "?" + _query(filters, page=page.previous_page_number()) if page.has_previous() else "",
        "next_url": "?" + _query(filters, page=page.next_page_number()) if page.has_next() else "",
    }
    return render(request, "desk/claims.html", context)


# --- desk settings of a workspace ------------------------------------------------------------------


def _settings_url(workspace_id) -> str:
    return reverse("dashboard:desk_settings", args=[workspace_id])


@require_http_methods(["GET", "POST"])
@dashboard_login_required
def desk_settings(request, workspace_id):
    """The workspace's response target and reputation margin (managers) and saved replies
    (operators and up)."""
    workspace = selectors.workspace_get_for_user(user=request.user, workspace_id=workspace_id)
    errors: dict = {}
    values = {"title": "", "text": ""}
    if request.method == "POST":
        action = request.POST.get("action")
        try:
            if action == "target":
                selectors.workspace_get_for_user(
                    user=request.user, workspace_id=workspace_id, need=Can.MANAGE
                )
                services.workspace_set_response_target(
                    workspace=workspace, minutes=_whole(request.POST.get("minutes"))
                )
                messages.success(request, _("Response target saved."))
                return redirect(_settings_url(workspace.pk))
            if action == "margin":
                selectors.workspace_get_for_user(
                    user=request.user, workspace_id=workspace_id, need=Can.MANAGE
                )
                services.workspace_set_reputation_margin(
                    workspace=workspace, percent=_whole(request.POST.get("percent"))
                )
                messages.success(request, _("Reputation warning margin saved."))
                return redirect(_settings_url(workspace.pk))
            selectors.workspace_get_for_user(user=request.user, workspace_id=workspace_id, need=Can.ACT)
            values = {"title": request.POST.get("title", ""), "text": request.POST.get("text", "")}
            services.saved_reply_create(workspace=workspace, user=request.user, **values)
            messages.success(
                request, _("Saved reply “%(title)s” added.") % {"title": values["title"].strip()}
            )
            return redirect(_settings_url(workspace.pk))
        except AccountValidationError as error:
            errors = error.errors
    page = Paginator(selectors.saved_reply_list(workspace=workspace), REPLIES_PER_PAGE).get_page(
        request.GET.get("page")
    )
    context = {
        "workspace": workspace,
        "replies": list(page.object_list),
        "page": page,
        "prev_url": f"?page={page.previous_page_number()}" if page.has_previous() else "",
        "next_url": f"?page={page.next_page_number()}" if page.has_next() else "",
        "errors": errors,
        "values": values,
        "max_answer": MAX_ANSWER_LENGTH,
        "max_title": SavedReply.MAX_TITLE,
        "max_margin": MAX_REPUTATION_MARGIN_PERCENT,
    }
    return render(request, "desk/settings.html", context, status=400 if errors else 200)


def _whole(value):
    try:
        return int(str(value).strip())
    except (TypeError, ValueError):
        return value


@require_POST
@dashboard_login_required
def saved_reply_edit(request, workspace_id, reply_id):
    reply = selectors.saved_reply_get_for_user(
        user=request.user, workspace_id=workspace_id, reply_id=reply_id
    )
    if request.POST.get("action") == "delete":
        services.saved_reply_delete(reply=reply)
        messages.success(request, _("Saved reply “%(title)s” deleted.") % {"title": reply.title})
        return redirect(_settings_url(workspace_id))
    values = {"title": request.POST.get("title", ""), "text": request.POST.get("text", "")}
    try:
        services.saved_reply_update(reply=reply, **values)
    except AccountValidationError as error:
        # Shown again with what was typed, not sent back to a list that has lost it.
        messages.error(request, " ".join(str(m) for ms in error.errors.values() for m in ms))
        context = {
            "workspace": reply.workspace,
            "reply": reply,
            "values": values,
            "errors": error.errors,
            "max_answer": MAX_ANSWER_LENGTH,
            "max_title": SavedReply.MAX_TITLE,
        }
        return render(request, "desk/reply_edit.html", context, status=400)
    messages.success(request, _("Saved reply “%(title)s” saved.") % {"title": reply.title})
    return redirect(_settings_url(workspace_id))
