"""The seller's desk in the sandbox: every seller's questions and claims as objects that live.

``Desk`` keeps one ``QuestionBook`` and one ``ClaimBook`` per seller (see ``books``), made on
first use; seller activity creates, answers and closes objects, ``POST /answers`` answers one
and ``/_sandbox/question-status`` deletes, bans or closes one. Everything runs under the
state's one lock and lives in memory only.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Container, Iterator
from typing import TYPE_CHECKING, Any

from .books import (
    CLAIM_BASE,
    CLAIM_STRIDE,
    DAY,
    HOUR,
    QUESTION_BASE,
    QUESTION_STRIDE,
    Claim,
    ClaimBook,
    Question,
    QuestionBook,
    Ref,
    answer_body,
)
from .sellers import DemoSeller, item_id

if TYPE_CHECKING:
    from .state import SandboxState

# The sizes that are objects here, and the stats kinds of the routes that read and answer them.
DESK_SIZES = ("questions", "claims")
DESK_STAT_KINDS = ("questions_get", "answers", "items_get", "claims_get")
# Ids of records created by activity, from one counter, above every generated range.
NEW_QUESTION_BASE = 30_000_000_000
NEW_CLAIM_BASE = 5_300_000_000
# The order a new claim names when its seller has no order at all: no seller's (orders.py).
NO_ORDER_ID = 2_000_000_000_000_000
# One activity call creates, answers or closes at most this many (memory stays proportional
# to what the tests or the ticker actually do).
MAX_DESK_CHANGE = 10_000
MAX_ANSWER_LENGTH = 2000  # §4.3
# What /_sandbox/question-status may set: the ways a question stops waiting for the seller.
SETTABLE_QUESTION_STATUSES = ("DELETED", "BANNED", "CLOSED_UNANSWERED")
_NEW_TEXTS = (
    "Tem em outra cor?",
    "Qual o prazo de entrega para São Paulo?",
    "Serve no modelo 2020?",
    "Ainda tem em estoque?",
    "Vem com nota fiscal?",
    "Qual a voltagem? 110 ou 220?",
    "Faz desconto para duas unidades?",
    "Tem garantia?",
)
_ACTIVITY_ANSWER = "Olá! Temos sim, pode comprar. Obrigado pela pergunta."


class DeskError(Exception):
    """A refused desk operation: the route answers ``status`` with ML's body (``error``, ``message``)."""

    def __init__(self, status: int, error: str, message: str):
        super().__init__(message)
        self.status, self.error, self.message = status, error, message


class Desk:
    """Every seller's question and claim books, made on first use; owned by a ``SandboxState``.

    Public methods take the state's lock. Until a seller has a book its sizes are those of its
    ``DemoSeller`` (``sizes`` leaves them out); from then on the book counts them.
    """

    def __init__(self, state: SandboxState):
        self._state = state
        self._lock = state._lock
        self._questions: dict[int, QuestionBook] = {}
        self._claims: dict[int, ClaimBook] = {}
        self._owners: dict[int, int] = {}  # id of a record created by activity -> seller id
        # Never restarted, not even by reset: an id the app stored is never given out again.
        self._serials = itertools.count(1)

    def reset(self) -> None:
        with self._lock:
            self._questions.clear()
            self._claims.clear()
            self._owners.clear()

    # -- books

    def questions(self, user_id: int) -> QuestionBook:
        with self._lock:
            book = self._questions.get(user_id)
            if book is None:
                book = self._questions[user_id] = QuestionBook(*self._book_args(user_id))
            return book

    def claims(self, user_id: int) -> ClaimBook:
        with self._lock:
            book = self._claims.get(user_id)
            if book is None:
                book = self._claims[user_id] = ClaimBook(*self._book_args(user_id))
            return book

    def _book_args(self, user_id: int) -> tuple[DemoSeller, int, float]:
        state = self._state
        return state.base_seller(user_id), state._seller_number(user_id), time.time() // HOUR * HOUR

    def sizes(self, user_id: int) -> dict[str, int]:
        """The seller's ``questions`` (UNANSWERED) and ``claims`` (opened) counts, for the books it has."""
        with self._lock:
            sizes = {}
            if user_id in self._questions:
                sizes["questions"] = self._questions[user_id].count({"UNANSWERED"})
            if user_id in self._claims:
                sizes["claims"] = self._claims[user_id].count({"opened"})
            return sizes

    def activity(self, user_id: int, size: str, change: int) -> str | None:
        """Apply seller activity to ``questions`` or ``claims``; the resource of the last object
        created, answered or closed (None when nothing changed). ValueError on a bad change."""
        if size == "questions":
            question = self.question_activity(user_id, change)
            return None if question is None else f"/questions/{question.id}"
        if size == "claims":
            claim = self.claim_activity(user_id, change)
            return None if claim is None else f"/post-purchase/v1/claims/{claim.id}"
        raise ValueError(f"the desk holds no {size}")

    def owner_candidates(self, number: int, user_id: int | None = None) -> Iterator[int]:
        """The sellers a generated id with seller ``number`` may belong to, likeliest first.

        Generated ids (questions, claims, items) carry only the seller's number, and synthetic
        sellers can share one: ``user_id`` (the caller) comes first, then the demo seller of
        that number, then the other sellers the desk has met.
        """
        state = self._state
        if user_id is not None and state._seller_number(user_id) == number:
            yield user_id
        if 1 <= number <= len(state.sellers):
            yield state.sellers[number - 1].id
        yield from [uid for uid in {**self._questions, **self._claims} if state._seller_number(uid) == number]

    def _find(self, record_id: int, user_id: int | None, kind: str) -> tuple[Any, Any] | None:
        make = self.questions if kind == "question" else self.claims
        new_base, base, stride = (
            (NEW_QUESTION_BASE, QUESTION_BASE, QUESTION_STRIDE)
            if kind == "question"
            else (NEW_CLAIM_BASE, CLAIM_BASE, CLAIM_STRIDE)
        )
        if record_id >= new_base:
            owners: Iterator[int] = iter([self._owners[record_id]] if record_id in self._owners else [])
        elif record_id >= base:
            owners = self.owner_candidates((record_id - base) // stride, user_id)
        else:
            return None
        for owner in owners:
            book = make(owner)
            ref = book.lookup(record_id)
            if ref is not None:
                return book, ref
        return None

    # -- questions

    def find_question(self, question_id: int, user_id: int | None = None) -> Question:
        """The question with ``question_id``; DeskError 404 when unknown, 403 when not ``user_id``'s."""
        with self._lock:
            book, ref = self._question_ref(question_id, user_id)
            return book.resolve(ref)

    def _question_ref(self, question_id: int, user_id: int | None) -> tuple[QuestionBook, Ref | Question]:
        found = self._find(question_id, user_id, "question")
        if found is None:
            raise DeskError(404, "not_found", f"Question {question_id} not found.")
        book, ref = found
        if user_id is not None and book.seller.id != user_id:
            raise DeskError(403, "forbidden", "forbidden")
        return book, ref

    def search_questions(
        self, user_id: int, statuses: Container[str] | None, *, ascending: bool, offset: int, limit: int
    ) -> tuple[int, list[dict[str, Any]]]:
        """(total, page as JSON) of the seller's questions with ``statuses`` (None: all), by date."""
        with self._lock:
            book = self.questions(user_id)
            page = itertools.islice(book.refs(statuses, ascending=ascending), offset, offset + limit)
            return book.count(statuses), [book.resolve(ref).to_json() for ref in page]

    def answer(self, user_id: int, question_id: int, text: str) -> Question:
        """Answer a question of ``user_id`` (``POST /answers``); DeskError when refused."""
        with self._lock:
            book, ref = self._question_ref(question_id, user_id)
            status = book.resolve(ref).status
            if status != "UNANSWERED":
                # §11.3 names this error for an answered question; the sandbox uses it for
                # every question that no longer waits for an answer ([?] at ML), and says why.
                reason = {
                    "ANSWERED": "is already answered",
                    "DELETED": "was deleted",
                    "BANNED": "was banned",
                    "CLOSED_UNANSWERED": "was closed without an answer",
                }.get(status, f"is {status.lower()}")
                raise DeskError(400, "not_unanswered_question", f"Question {question_id} {reason}.")
            question = book.set_status(ref, "ANSWERED")
            question.answer = answer_body(text, time.time())
            return question

    def set_question_status(self, question_id: int, status: str) -> Question:
        """``/_sandbox/question-status``: delete, ban or close a question (ValueError if asked wrong)."""
        if status not in SETTABLE_QUESTION_STATUSES:
            raise ValueError(f"status must be one of {', '.join(SETTABLE_QUESTION_STATUSES)}")
        with self._lock:
            book, ref = self._question_ref(question_id, None)
            return book.set_status(ref, status)

    def question_activity(self, user_id: int, change: int) -> Question | None:
        """Create ``change`` new questions, or answer the ``-change`` oldest; the last one touched."""
        _check_change(change)
        with self._lock:
            book = self.questions(user_id)
            if change < 0:
                last = None
                for ref in list(itertools.islice(book.refs({"UNANSWERED"}, ascending=True), -change)):
                    last = book.set_status(ref, "ANSWERED")
                    last.answer = answer_body(_ACTIVITY_ANSWER, time.time())
                return last
            seller = self._state.seller(user_id)  # today's listings: new questions ask about them
            now = time.time()
            question = None
            for k in range(change):
                serial = next(self._serials)
                question = book.add(
                    Question(
                        id=NEW_QUESTION_BASE + serial,
                        seller_id=user_id,
                        item_id=item_id(seller, book.number, serial * 31 % max(seller.listings, 1)),
                        text=_NEW_TEXTS[serial % len(_NEW_TEXTS)],
                        created=now + k / 1000,  # distinct, increasing dates within one batch
                        buyer_id=100_000_000 + serial * 104_729 % 899_999_999,
                        status="UNANSWERED",
                    )
                )
                self._owners[question.id] = user_id
            return question

    # -- claims

    def find_claim(self, claim_id: int, user_id: int) -> Claim:
        """The claim with ``claim_id``; DeskError 404 when unknown, 403 when not ``user_id``'s."""
        with self._lock:
            found = self._find(claim_id, user_id, "claim")
            if found is None:
                raise DeskError(404, "not_found", f"Claim {claim_id} not found.")
            book, ref = found
            if book.seller.id != user_id:
                raise DeskError(403, "forbidden_error", "forbidden")
            return book.resolve(ref)

    def claim_records(
        self, user_id: int, statuses: Container[str] | None, *, ascending: bool
    ) -> Iterator[Claim]:
        """The seller's claims with ``statuses``, by date; lazy: consume under ``state._lock``."""
        book = self.claims(user_id)
        return (book.resolve(ref) for ref in book.refs(statuses, ascending=ascending))

    def claim_count(self, user_id: int, statuses: Container[str] | None) -> int:
        with self._lock:
            return self.claims(user_id).count(statuses)

    def claim_activity(self, user_id: int, change: int) -> Claim | None:
        """Open ``change`` new claims, or close the ``-change`` oldest open ones; the last one touched."""
        _check_change(change)
        with self._lock:
            book = self.claims(user_id)
            now = time.time()
            if change < 0:
                last = None
                for ref in list(itertools.islice(book.refs({"opened"}, ascending=True), -change)):
                    last = book.set_status(ref, "closed")
                    last.stage, last.due, last.responsible = "none", None, None
                    last.resolved = last.last_updated = now
                return last
            seller = self._state.base_seller(user_id)
            # A new claim is about one of the seller's newest orders (GET /orders/{id} serves it),
            # from its buyer.
            orders = [(order.id, order.buyer_id) for order in self._state.seller_orders(user_id).newest(10)]
            claim = None
            for k in range(change):
                serial = next(self._serials)
                order_id, buyer_id = (
                    orders[serial % len(orders)]
                    if orders
                    else (NO_ORDER_ID, 100_000_000 + serial * 7_919 % 899_999_999)
                )
                claim = book.add(
                    Claim(
                        id=NEW_CLAIM_BASE + serial,
                        seller_id=user_id,
                        site_id=seller.site_id,
                        order_id=order_id,
                        buyer_id=buyer_id,
                        created=now + k / 1000,
                        last_updated=now + k / 1000,
                        status="opened",
                        stage="claim",
                        due=now + (serial % 3 + 2) * DAY,
                        responsible="seller",
                        problem=serial,
                    )
                )
                self._owners[claim.id] = user_id
            return claim


def _check_change(change: int) -> None:
    if abs(change) > MAX_DESK_CHANGE:
        raise ValueError(
            f"change for questions and claims must be between -{MAX_DESK_CHANGE} and {MAX_DESK_CHANGE}"
        )
