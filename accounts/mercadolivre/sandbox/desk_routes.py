"""Routes of the seller's desk (§4.3, §4.4, §11.3): questions, answers, item titles and claims.

``GET /questions/search`` and ``GET /questions/{id}`` read the seller's question objects,
``POST /answers`` answers one; ``GET /items?ids=`` gives the titles a desk shows;
``GET /post-purchase/v1/claims/search``, ``…/{id}`` and ``…/{id}/detail`` read the claims.

Refusals of ``POST /answers`` (ML's error body, §5.1): a body that is not a JSON object →
400 ``bad_request``; ``question_id`` not a positive integer, ``text`` missing, blank or over
2000 characters → 400 ``validation_error``; unknown question → 404 ``not_found``; another
seller's → 403 ``forbidden``; a question no longer waiting for an answer → 400
``not_unanswered_question`` whatever its status (§11.3 names the code for an answered
question; for deleted, banned or closed ones ML's answer is unknown, [?]), the message saying
which: "Question <id> is already answered." / "… was deleted." / "… was banned." / "… was
closed without an answer.".
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Callable
from typing import Any, TypeVar

from .books import QUESTION_STATUSES
from .desk import MAX_ANSWER_LENGTH, DeskError
from .errors import Reply, api_error_body, bad_request
from .handler import BaseHandler, Route
from .sellers import item_body

T = TypeVar("T")

_CLAIM_FILTERS = (
    "id",
    "type",
    "stage",
    "status",
    "resource",
    "resource_id",
    "reason_id",
    "site_id",
    "players.role",
    "players.user_id",
    "order_id",
    "pack_id",
    "payment_id",
    "parent_id",
    "date_created",
    "last_updated",
)
# Claim filters compared field by field with the search shape; the demo claims have no packs,
# payments or parents, so those filters match nothing.
_CLAIM_FIELDS = {
    "id": "id",
    "type": "type",
    "stage": "stage",
    "resource": "resource",
    "site_id": "site_id",
    "resource_id": "resource_id",
    "order_id": "resource_id",
    "reason_id": "reason_id",
}
_UNMATCHED_CLAIM_FILTERS = {"pack_id", "payment_id", "parent_id"}
MULTIGET_MAX_IDS = 20  # §4.1, §11.3
_ITEM_ID = re.compile(r"([A-Z]{3})(\d+)")


class DeskRoutes(BaseHandler):
    """The desk's resources: questions and answers, items by id, claims and their detail."""

    ROUTES: list[Route] = [
        (re.compile(r"/questions/search/?"), {"GET": "questions_search"}, "questions", "api"),
        (re.compile(r"/questions/(?P<question_id>\d+)/?"), {"GET": "question"}, "questions_get", "api"),
        (re.compile(r"/answers/?"), {"POST": "answers"}, "answers", "api"),
        (re.compile(r"/items/?"), {"GET": "items_multiget"}, "items_get", "api"),
        (re.compile(r"/post-purchase/v1/claims/search/?"), {"GET": "claims_search"}, "claims", "api"),
        (
            re.compile(r"/post-purchase/v1/claims/(?P<claim_id>\d+)/?"),
            {"GET": "claim"},
            "claims_get",
            "api",
        ),
        (
            re.compile(r"/post-purchase/v1/claims/(?P<claim_id>\d+)/detail/?"),
            {"GET": "claim_detail"},
            "claims_get",
            "api",
        ),
    ]

    def _desk(self, operation: Callable[[], T]) -> T:
        """Run a desk operation under the state's lock (objects change under it); refusals → Reply."""
        try:
            with self.state._lock:
                return operation()
        except DeskError as exc:
            raise Reply(exc.status, api_error_body(exc.status, exc.error, exc.message)) from None

    # -- questions

    def _questions_ascending(self) -> bool:
        """§4.3 ``sort_fields``/``sort_types``: the sandbox sorts by ``date_created`` only (newest first)."""
        fields = self._param("sort_fields")
        if fields and fields != "date_created":
            raise bad_request(f"The sandbox sorts questions only by date_created, not {fields}")
        types = (self._param("sort_types") or "DESC").upper()
        if types not in {"ASC", "DESC"}:
            raise bad_request(f"Invalid value for parameter sort_types: {types}")
        return types == "ASC"

    def route_questions_search(self) -> None:
        if self._param("item"):
            self._authenticate()
            raise bad_request("The sandbox only supports question searches by seller_id")
        if self._param("seller_id") is None:
            self._authenticate()
            raise bad_request("Missing required parameter: item or seller_id", "invalid_request")
        seller = self._own_user(self._param("seller_id"))
        limit = min(self._int_param("limit", 50), 100)
        offset = self._int_param("offset", 0)
        status = (self._param("status") or "").upper()
        ascending = self._questions_ascending()
        total, questions = self._desk(
            lambda: self.state.desk.search_questions(
                seller.id, {status} if status else None, ascending=ascending, offset=offset, limit=limit
            )
        )
        sorted_by = self._param("sort_fields") or self._param("sort_types")
        # §4.3: the count is a top-level `total`; there is no `paging` object here.
        self._reply(
            200,
            {
                "total": total,
                "limit": limit,
                "questions": questions,
                "filters": {
                    "limit": limit,
                    "offset": offset,
                    "api_version": self._param("api_version"),
                    "is_admin": False,
                    "sorts": [f"date_created {'ASC' if ascending else 'DESC'}"] if sorted_by else [],
                    "caller": seller.id,
                    "seller_id": str(seller.id),
                    "status": status or None,
                },
                "available_filters": [
                    {
                        "id": "status",
                        "name": "Status",
                        "type": "text",
                        "values": list(QUESTION_STATUSES),
                    }
                ],
                "available_sorts": ["item_id", "from_id", "date_created", "seller_id"],
            },
        )

    def route_question(self, question_id: str) -> None:
        _, token_user = self._authenticate()
        self._reply(
            200, self._desk(lambda: self.state.desk.find_question(int(question_id), token_user).to_json())
        )

    def route_answers(self) -> None:
        """§4.3 ``POST /answers`` ``{"question_id", "text"}``: answer one of the token's questions."""
        _, token_user = self._authenticate()
        content_type = self.headers.get("Content-Type", "").lower()
        try:
            data = None if "form" in content_type else json.loads(self._body or b"null")
        except ValueError:
            data = None
        if not isinstance(data, dict):
            raise bad_request('The body must be a JSON object: {"question_id": <id>, "text": "<answer>"}')
        raw_id = data.get("question_id")
        # Ids come as numbers or as strings of digits (§0).
        if isinstance(raw_id, bool) or not (
            (isinstance(raw_id, int) and raw_id > 0) or (isinstance(raw_id, str) and raw_id.isdigit())
        ):
            raise bad_request("question_id must be a positive integer", "validation_error")
        text = data.get("text")
        if not isinstance(text, str) or not text.strip() or len(text) > MAX_ANSWER_LENGTH:
            raise bad_request(
                f"text must be a string of 1 to {MAX_ANSWER_LENGTH} characters", "validation_error"
            )
        question_id = int(raw_id)
        body = self._desk(lambda: self.state.desk.answer(token_user, question_id, text).to_json())
        # The count of unanswered questions moved: ML notifies the app as for any other change.
        self.state.notifications.notify(token_user, "questions", f"/questions/{question_id}")
        self._reply(200, body)

    # -- items

    def route_items_multiget(self) -> None:
        """§4.1/§11.3 ``GET /items?ids=A,B`` (at most 20): ``[{code, body}]`` in the order asked.

        Any live token of the app reads any seller's items. ``attributes`` (a comma list)
        keeps only those fields of each body, as ML does.
        """
        _, token_user = self._authenticate()
        ids = [part.strip() for part in (self._param("ids") or "").split(",") if part.strip()]
        if not ids:
            raise bad_request("Missing required parameter: ids")
        if len(ids) > MULTIGET_MAX_IDS:
            raise bad_request(f"You can request at most {MULTIGET_MAX_IDS} ids per call, not {len(ids)}")
        attributes = {name.strip() for name in (self._param("attributes") or "").split(",") if name.strip()}
        entries = []
        with self.state._lock:
            for identifier in ids:
                body = self._item(identifier, token_user)
                if body is None:
                    message = f"Item with id {identifier} not found"
                    entries.append({"code": 404, "body": api_error_body(404, "not_found", message)})
                    continue
                if attributes:
                    body = {name: value for name, value in body.items() if name in attributes}
                entries.append({"code": 200, "body": body})
        self._reply(200, entries)

    def _item(self, identifier: str, token_user: int) -> dict[str, Any] | None:
        match = _ITEM_ID.fullmatch(identifier)
        if match is None:
            return None
        site_id, digits = match.groups()
        # Item ids are site + 4_000_000_000 + seller number × 10_000_000 + index (sellers.item_id).
        number, index = divmod(int(digits) - 4_000_000_000, 10_000_000)
        if number <= 0:
            return None
        for user_id in self.state.desk.owner_candidates(number, token_user):
            seller = self.state.seller(user_id)
            body = item_body(seller, number, index) if seller.site_id == site_id else None
            if body is not None:
                return body
        return None

    # -- claims

    def route_claims_search(self) -> None:
        _, token_user = self._authenticate()
        query = {name: values[0] for name, values in self._query.items() if values}
        if not any(name in query for name in _CLAIM_FILTERS):
            # §4.4: paging and sort parameters do not count as a filter.
            raise Reply(
                400,
                {
                    "message": "at least any of these filters: " + ", ".join(_CLAIM_FILTERS),
                    "error": "invalid_query",
                    "status": 400,
                    "cause": [],
                },
            )

        def invalid(message: str) -> Reply:
            return Reply(400, api_error_body(400, "invalid_params", message))

        if ("players.role" in query) != ("players.user_id" in query):
            raise invalid("players.role and players.user_id must be sent together")
        if "resource_id" in query and "resource" not in query:
            raise invalid("resource_id requires resource")
        if "resource" in query and "resource_id" not in query and "players.role" not in query:
            raise invalid("resource requires resource_id or players.role and players.user_id")
        if "order_id" in query and "pack_id" in query:
            raise invalid("order_id and pack_id cannot be combined")
        role = query.get("players.role", "respondent")
        if role not in {"respondent", "complainant", "mediator"}:
            raise invalid(f"invalid players.role: {query['players.role']}")
        if "players.user_id" in query and query["players.user_id"] != str(token_user):
            raise Reply(403, api_error_body(403, "forbidden_error", "forbidden"))
        limit = min(self._int_param("limit", 30), 100)  # larger limits are silently clamped
        offset = self._int_param("offset", 0)
        if offset + limit >= 10000:
            raise invalid("offset + limit must be lower than 10000")
        sort = self._param("sort") or "date_created:desc"
        field, _, direction = sort.partition(":")
        if field != "date_created" or direction.lower() not in {"asc", "desc"}:
            raise invalid(
                f"The sandbox sorts claims only by date_created:asc or date_created:desc, not {sort}"
            )
        statuses = {query["status"]} if "status" in query else None
        filters = {name: value for name, value in query.items() if name in _CLAIM_FIELDS}
        desk = self.state.desk
        with self.state._lock:
            # The demo sellers are only ever respondents.
            claims = desk.claim_records(token_user, statuses, ascending=direction.lower() == "asc")
            if role != "respondent" or _UNMATCHED_CLAIM_FILTERS & query.keys():
                total, data = 0, []
            elif not filters:
                # Status alone (the desk's query): count and page without building every claim.
                total = desk.claim_count(token_user, statuses)
                data = [claim.to_json() for claim in itertools.islice(claims, offset, offset + limit)]
            else:
                matching = [
                    body
                    for body in (claim.to_json() for claim in claims)
                    if all(str(body[_CLAIM_FIELDS[name]]) == value for name, value in filters.items())
                ]
                total, data = len(matching), matching[offset : offset + limit]
        self._reply(200, {"paging": {"total": total, "offset": offset, "limit": limit}, "data": data})

    def route_claim(self, claim_id: str) -> None:
        """§4.4 ``GET /post-purchase/v1/claims/{id}``: the claim, with ``claim_version`` and the like."""
        _, token_user = self._authenticate()
        self._reply(
            200, self._desk(lambda: self.state.desk.find_claim(int(claim_id), token_user).full_json())
        )

    def route_claim_detail(self, claim_id: str) -> None:
        """§4.4/§11.3 ``…/{id}/detail``: ``due_date``, ``action_responsible``, title, description, problem."""
        _, token_user = self._authenticate()
        self._reply(
            200, self._desk(lambda: self.state.desk.find_claim(int(claim_id), token_user).detail_json())
        )
