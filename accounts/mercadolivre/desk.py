"""The seller's desk at ML: questions, answers, item titles and claims (§4.3, §4.4, §11.3).

One plain function per endpoint, like ``resources``: each goes through ``http.request_json``
(the shared budget, timeouts, typed errors). ML's objects are read leniently into small
dataclasses: an entry that lacks its id or a usable date is dropped (and counted by the
caller through the page's length), never guessed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.utils.dateparse import parse_datetime

from .errors import MLBadResponse
from .http import request_json

# §4.3: 50 is the search's default page; the mirror asks for it (ML documents no larger one).
QUESTIONS_PAGE = 50
# §4.3: past this offset the search needs `search_type=scan`; the mirror stops there.
QUESTIONS_MAX_OFFSET = 1000
# §4.4: the claims search pages at most 100 (larger limits are silently clamped), and
# offset + limit must stay below 10,000.
CLAIMS_PAGE = 100
CLAIMS_MAX_OFFSET = 9900
# §11.3: the multiget takes at most 20 ids.
ITEMS_PER_CALL = 20


def _int(value: Any) -> int | None:
    # Ids come as numbers or strings of digits (§0).
    if isinstance(value, bool):
        return None
    if isinstance(value, int) and value > 0:
        return value
    if isinstance(value, str) and value.strip().isdigit() and int(value) > 0:
        return int(value)
    return None


def _moment(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        moment = parse_datetime(value)
    except ValueError:
        return None
    return moment if moment is not None and moment.tzinfo is not None else None


def _str(value: Any, limit: int) -> str:
    return value[:limit] if isinstance(value, str) else ""


@dataclass(frozen=True)
class MLQuestion:
    id: int
    item_id: str
    text: str
    status: str
    date_created: datetime
    buyer_id: int | None
    buyer_nickname: str
    answer_text: str
    answered_at: datetime | None


def parse_question(body: Any) -> MLQuestion | None:
    """A question object of §4.3, or None when it lacks an id, a status or a creation date."""
    if not isinstance(body, dict):
        return None
    question_id, created = _int(body.get("id")), _moment(body.get("date_created"))
    status = body.get("status")
    if question_id is None or created is None or not isinstance(status, str) or not status:
        return None
    buyer = body.get("from") if isinstance(body.get("from"), dict) else {}
    answer = body.get("answer") if isinstance(body.get("answer"), dict) else {}
    return MLQuestion(
        id=question_id,
        item_id=_str(body.get("item_id"), 32),
        text=_str(body.get("text"), 4000),
        status=status.upper()[:24],
        date_created=created,
        buyer_id=_int(buyer.get("id")),
        # api_version=4 sends only the buyer's id; older shapes carried the nickname too.
        buyer_nickname=_str(buyer.get("nickname"), 64),
        answer_text=_str(answer.get("text"), 4000),
        answered_at=_moment(answer.get("date_created")),
    )


@dataclass(frozen=True)
class QuestionPage:
    total: int
    questions: list[MLQuestion]
    size: int  # entries ML sent, usable or not: a page shorter than asked is the last


def search_unanswered_questions(
    token: str, user_id: int, *, offset: int = 0, limit: int = QUESTIONS_PAGE, ascending: bool = False
) -> QuestionPage:
    """One page of the seller's unanswered questions by creation date (§4.3, §11.3).

    ``total`` is the top-level count (no ``paging`` here): the same number the dashboard's
    count reads, so a mirror page replaces that call.
    """
    body = request_json(
        "GET",
        "/questions/search",
        token=token,
        params={
            "seller_id": int(user_id),
            "status": "UNANSWERED",
            "api_version": 4,
            "sort_fields": "date_created",
            "sort_types": "ASC" if ascending else "DESC",
            "offset": int(offset),
            "limit": int(limit),
        },
    )
    total = body.get("total")
    entries = body.get("questions")
    if isinstance(total, bool) or not isinstance(total, int) or total < 0 or not isinstance(entries, list):
        raise MLBadResponse("/questions/search answered without a total and a questions list")
    parsed = [parse_question(entry) for entry in entries]
    return QuestionPage(total=total, questions=[q for q in parsed if q is not None], size=len(entries))


def get_question(token: str, question_id: int) -> MLQuestion:
    """One question as ML has it now (`GET /questions/{id}?api_version=4`)."""
    body = request_json("GET", f"/questions/{int(question_id)}", token=token, params={"api_version": 4})
    question = parse_question(body)
    if question is None:
        raise MLBadResponse("/questions/{id} answered without an id, a status or a date")
    return question


def answer_question(token: str, question_id: int, text: str) -> dict[str, Any]:
    """Answer a question (§4.3 ``POST /answers`` ``{"question_id", "text"}``), never retried.

    A question that is no longer open comes back as 400 ``not_unanswered_question``
    (``MLBadRequest`` with that code, §11.3).
    """
    return request_json("POST", "/answers", token=token, json={"question_id": int(question_id), "text": text})


@dataclass(frozen=True)
class MLItem:
    id: str
    title: str
    thumbnail: str
    permalink: str


def get_items(token: str, item_ids: list[str]) -> dict[str, MLItem | None]:
    """Titles, thumbnails and links of up to 20 items (§11.3 ``GET /items?ids=``).

    The answer is ``[{code, body}]``; an item ML does not know (its ``code`` is not 200) maps
    to None, so the caller can remember it as unknown.
    """
    if not item_ids or len(item_ids) > ITEMS_PER_CALL:
        raise ValueError(f"the items multiget takes 1 to {ITEMS_PER_CALL} ids")
    entries = request_json(
        "GET",
        "/items",
        token=token,
        params={"ids": ",".join(item_ids), "attributes": "id,title,thumbnail,secure_thumbnail,permalink"},
        array=True,
    )
    found: dict[str, MLItem | None] = dict.fromkeys(item_ids)
    for entry in entries:
        body = entry.get("body") if isinstance(entry, dict) else None
        if not isinstance(body, dict) or entry.get("code") != 200 or body.get("id") not in found:
            continue
        thumbnail = _str(body.get("secure_thumbnail"), 500) or _str(body.get("thumbnail"), 500)
        found[body["id"]] = MLItem(
            id=body["id"],
            title=_str(body.get("title"), 255),
            thumbnail=thumbnail if thumbnail.startswith("https://") else "",
            permalink=_str(body.get("permalink"), 500)
            if _str(body.get("permalink"), 500).startswith("https://")
            else "",
        )
    return found


def get_user_nickname(token: str, user_id: int) -> str:
    """A buyer's public nickname (``GET /users/{id}``), for a saved reply's ``{buyer_nickname}``."""
    body = request_json("GET", f"/users/{int(user_id)}", token=token, expected=(200, 206))
    return _str(body.get("nickname"), 64)


@dataclass(frozen=True)
class MLClaim:
    id: int
    resource: str
    resource_id: int | None
    type: str
    stage: str
    status: str
    reason_id: str
    date_created: datetime
    last_updated: datetime | None


def parse_claim(body: Any) -> MLClaim | None:
    """A claim of the §4.4 search, or None without an id or a creation date."""
    if not isinstance(body, dict):
        return None
    claim_id, created = _int(body.get("id")), _moment(body.get("date_created"))
    if claim_id is None or created is None:
        return None
    return MLClaim(
        id=claim_id,
        resource=_str(body.get("resource"), 16),
        resource_id=_int(body.get("resource_id")),
        type=_str(body.get("type"), 32),
        stage=_str(body.get("stage"), 32),
        status=_str(body.get("status"), 16) or "opened",
        reason_id=_str(body.get("reason_id"), 32),
        date_created=created,
        last_updated=_moment(body.get("last_updated")),
    )


@dataclass(frozen=True)
class ClaimPage:
    total: int
    claims: list[MLClaim]
    size: int


def search_open_claims(token: str, user_id: int, *, offset: int = 0, limit: int = CLAIMS_PAGE) -> ClaimPage:
    """One page of the open claims in which the seller is the respondent (§4.4, §11.3), oldest first."""
    body = request_json(
        "GET",
        "/post-purchase/v1/claims/search",
        token=token,
        params={
            "players.role": "respondent",
            "players.user_id": int(user_id),
            "status": "opened",
            "sort": "date_created:asc",
            "offset": int(offset),
            "limit": int(limit),
        },
    )
    paging = body.get("paging") if isinstance(body.get("paging"), dict) else {}
    total = paging.get("total")
    entries = body.get("data")
    if isinstance(total, bool) or not isinstance(total, int) or total < 0 or not isinstance(entries, list):
        raise MLBadResponse("the claims search answered without paging.total and a data list")
    parsed = [parse_claim(entry) for entry in entries]
    return ClaimPage(total=total, claims=[c for c in parsed if c is not None], size=len(entries))


@dataclass(frozen=True)
class ClaimDetail:
    due_date: datetime | None
    action_responsible: str


def get_claim_detail(token: str, claim_id: int) -> ClaimDetail:
    """When the claim is due and who must act (§4.4 ``/post-purchase/v1/claims/{id}/detail``)."""
    body = request_json("GET", f"/post-purchase/v1/claims/{int(claim_id)}/detail", token=token)
    return ClaimDetail(
        due_date=_moment(body.get("due_date")), action_responsible=_str(body.get("action_responsible"), 32)
    )
