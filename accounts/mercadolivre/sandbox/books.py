"""Question and claim records (§4.3, §4.4, §11.3) and the per-seller books that hold them.

A seller's book starts as the population its sizes describe (``questions`` unanswered and 3×
as many answered; ``claims`` opened and 3× as many closed), with the ids, items, texts and
dates the searches always showed. That population is *implicit*: a record is built from its
serial when a page or a lookup needs it, so a seller with 10 000 questions costs nothing until
asked. Only what changes is kept: a generated record whose status moved (``_changed``) and the
records activity created (``_new``). Per-status counts follow every change, so the seller's
``questions`` size is always the number of UNANSWERED objects and ``claims`` the opened ones.
"""

from __future__ import annotations

import heapq
import itertools
from collections import Counter
from collections.abc import Container, Iterator
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from .sellers import DemoSeller, iso, item_id

# Generated ids: base + seller number × stride + serial (as the searches always made them).
QUESTION_BASE, QUESTION_STRIDE = 13_000_000_000, 10_000_000
CLAIM_BASE, CLAIM_STRIDE = 5_100_000_000, 100_000
# §4.3's question statuses, as the search lists them in ``available_filters``.
QUESTION_STATUSES = ("ANSWERED", "BANNED", "CLOSED_UNANSWERED", "DELETED", "DISABLED", "UNANSWERED")

HOUR, DAY = 3600, 86400
_GENERATED_TEXT, _GENERATED_ANSWER = "Tem em outra cor?", "Temos sim!"
# (problem, description) of a claim, in turn.
_PROBLEMS = (
    ("O produto chegou com defeito", "O comprador diz que o produto chegou com defeito e pede a troca."),
    ("Recebi um produto diferente do anunciado", "O comprador recebeu outro modelo e quer devolver."),
    ("O produto não chegou", "O comprador ainda não recebeu o produto e pede o reembolso."),
)
_TITLES = {
    "seller": "Responda à reclamação",
    "buyer": "Aguardando a resposta do comprador",
    "mediator": "O Mercado Livre está analisando a reclamação",
    None: "Reclamação encerrada",
}


def answer_body(text: str, at: float) -> dict[str, Any]:
    """A question's ``answer`` (§4.3)."""
    return {"text": text, "status": "ACTIVE", "date_created": iso(at)}


@dataclass(slots=True)
class Question:
    """One question (§4.3)."""

    id: int
    seller_id: int
    item_id: str
    text: str
    created: float
    buyer_id: int
    status: str
    answer: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "seller_id": self.seller_id,
            "item_id": self.item_id,
            "status": self.status,
            "text": self.text,
            "date_created": iso(self.created),
            "deleted_from_listing": self.status == "DELETED",
            "hold": False,
            "suspected_spam": False,
            "answer": None if self.answer is None else dict(self.answer),
            "from": {"id": self.buyer_id},
        }


@dataclass(slots=True)
class Claim:
    """One claim against the seller (§4.4), with what its ``/detail`` tells (§11.3)."""

    id: int
    seller_id: int
    site_id: str
    order_id: int
    buyer_id: int
    created: float
    last_updated: float
    status: str  # opened | closed
    stage: str
    due: float | None  # when the responsible party must act; None once closed
    responsible: str | None  # seller | buyer | mediator; None once closed
    problem: int
    resolved: float | None = None

    def to_json(self) -> dict[str, Any]:
        """The shape of ``/post-purchase/v1/claims/search`` ``data`` entries."""
        opened = self.status == "opened"
        must_act = opened and self.responsible == "seller"
        return {
            "id": self.id,
            "resource_id": self.order_id,
            "resource": "order",
            "status": self.status,
            "type": "mediations",
            "stage": self.stage,
            "parent_id": None,
            "reason_id": "PDD9528",
            "fulfilled": True,
            "quantity_type": None,
            "players": [
                {"role": "complainant", "type": "buyer", "user_id": self.buyer_id, "available_actions": []},
                {
                    "role": "respondent",
                    "type": "seller",
                    "user_id": self.seller_id,
                    "available_actions": [
                        {
                            "action": "send_message_to_complainant",
                            "mandatory": must_act,
                            "due_date": iso(self.due) if must_act and self.due is not None else None,
                        }
                    ]
                    if opened
                    else [],
                },
            ],
            "resolution": None
            if self.resolved is None
            else {"reason": "item_returned", "date_created": iso(self.resolved)},
            "site_id": self.site_id,
            "date_created": iso(self.created),
            "last_updated": iso(self.last_updated),
        }

    def full_json(self) -> dict[str, Any]:
        """``GET /post-purchase/v1/claims/{id}``: the search shape and a few more fields (§4.4)."""
        return self.to_json() | {"claim_version": 2, "claimed_quantity": 1, "related_entities": []}

    def detail_json(self) -> dict[str, Any]:
        """``GET /post-purchase/v1/claims/{id}/detail`` (§4.4, §11.3)."""
        problem, description = _PROBLEMS[self.problem % len(_PROBLEMS)]
        opened = self.status == "opened"
        responsible = self.responsible if opened else None
        return {
            "due_date": iso(self.due) if opened and self.due is not None else None,
            "action_responsible": responsible,
            "title": _TITLES[responsible],
            "description": description,
            "problem": problem,
        }


R = TypeVar("R", Question, Claim)
Ref = int  # a generated record's serial; records created by activity are their own reference


class _Book(Generic[R]):
    """One seller's records of one kind: a generated population plus what changed or was added.

    Serial order is newest first (serial 0 is the most recent generated record), and every
    record created by activity is newer than the whole population, so date order never needs
    a sort: newest first is (new, newest first) then serials ascending; oldest first is the
    reverse.
    """

    def __init__(self, seller: DemoSeller, number: int, anchor: float, ranges: list[tuple[str, int]]):
        self.seller, self.number, self.anchor = seller, number, anchor
        self._ranges: list[tuple[str, int, int]] = []  # (status, first serial, end)
        start = 0
        for status, size in ranges:
            self._ranges.append((status, start, start + size))
            start += size
        self._generated = start
        self._changed: dict[int, R] = {}
        self._new: list[R] = []
        self._new_by_id: dict[int, R] = {}
        self._counts: Counter[str] = Counter(dict(ranges))

    @property
    def materialized(self) -> int:
        """How many records are held in memory (changed or created); the rest are built on demand."""
        return len(self._changed) + len(self._new)

    def count(self, statuses: Container[str] | None = None) -> int:
        if statuses is None:
            return sum(self._counts.values())
        return sum(n for status, n in self._counts.items() if status in statuses)

    def _build(self, serial: int) -> R:
        raise NotImplementedError

    def _first_id(self) -> int:
        raise NotImplementedError

    def resolve(self, ref: Ref | R) -> R:
        """The record behind a reference (built on the fly when never changed: not kept)."""
        if isinstance(ref, int):
            return self._changed.get(ref) or self._build(ref)
        return ref

    def lookup(self, record_id: int) -> Ref | R | None:
        """The reference of the record with ``record_id``, None when it is not this seller's."""
        if record_id in self._new_by_id:
            return self._new_by_id[record_id]
        serial = record_id - self._first_id()
        return serial if 0 <= serial < self._generated else None

    def refs(self, statuses: Container[str] | None = None, *, ascending: bool) -> Iterator[Ref | R]:
        """References to the records with one of ``statuses``, by date; lazy, nothing built."""

        def wanted(status: str) -> bool:
            return statuses is None or status in statuses

        changed = self._changed
        spans = [range(first, end) for status, first, end in self._ranges if wanted(status)]
        if ascending:  # oldest first: the highest serials first
            spans = [span[::-1] for span in reversed(spans)]
        untouched = (serial for span in spans for serial in span if serial not in changed)
        moved = sorted((s for s, record in changed.items() if wanted(record.status)), reverse=ascending)
        generated = heapq.merge(untouched, moved, reverse=ascending)
        new = (
            record for record in (self._new if ascending else reversed(self._new)) if wanted(record.status)
        )
        return itertools.chain(generated, new) if ascending else itertools.chain(new, generated)

    def set_status(self, ref: Ref | R, status: str) -> R:
        """Give a record a new status (keeping the counts right) and return it, now kept."""
        if isinstance(ref, int):
            record = self._changed.get(ref)
            if record is None:
                record = self._changed[ref] = self._build(ref)
        else:
            record = ref
        self._counts[record.status] -= 1
        self._counts[status] += 1
        record.status = status
        return record

    def add(self, record: R) -> R:
        self._new.append(record)
        self._new_by_id[record.id] = record
        self._counts[record.status] += 1
        return record


class QuestionBook(_Book[Question]):
    """A seller's questions: ``questions`` unanswered, then 3× as many answered, 1.5 h apart."""

    def __init__(self, seller: DemoSeller, number: int, anchor: float):
        super().__init__(
            seller, number, anchor, [("UNANSWERED", seller.questions), ("ANSWERED", seller.questions * 3)]
        )

    def _first_id(self) -> int:
        return QUESTION_BASE + self.number * QUESTION_STRIDE

    def _build(self, serial: int) -> Question:
        seller, number = self.seller, self.number
        created = self.anchor - (serial + 1) * 5400
        answered = serial >= seller.questions
        return Question(
            id=self._first_id() + serial,
            seller_id=seller.id,
            item_id=item_id(seller, number, serial % max(seller.listings, 1)),
            text=_GENERATED_TEXT,
            created=created,
            buyer_id=100_000_000 + (serial * 7919 + number) % 899_999_999,
            status="ANSWERED" if answered else "UNANSWERED",
            answer=answer_body(_GENERATED_ANSWER, created + 900) if answered else None,
        )


class ClaimBook(_Book[Claim]):
    """A seller's claims: ``claims`` opened, then 3× as many closed, a day apart."""

    def __init__(self, seller: DemoSeller, number: int, anchor: float):
        super().__init__(seller, number, anchor, [("opened", seller.claims), ("closed", seller.claims * 3)])

    def _first_id(self) -> int:
        return CLAIM_BASE + self.number * CLAIM_STRIDE

    def _build(self, serial: int) -> Claim:
        seller, number = self.seller, self.number
        created = self.anchor - (serial + 1) * DAY
        opened = serial < seller.claims
        # Open claims wait mostly on the seller, some on the buyer, some on ML's mediation;
        # their due dates fall over the next five days.
        responsible = ("seller", "seller", "buyer", "mediator")[serial % 4] if opened else None
        return Claim(
            id=self._first_id() + serial,
            seller_id=seller.id,
            site_id=seller.site_id,
            order_id=2_000_000_000_000_000 + number * 100_000_000 + serial * 7,
            buyer_id=100_000_000 + serial,
            created=created,
            last_updated=created + HOUR,
            status="opened" if opened else "closed",
            stage=("dispute" if responsible == "mediator" else "claim") if opened else "none",
            due=self.anchor + (serial % 5 + 1) * DAY if opened else None,
            responsible=responsible,
            problem=serial,
            resolved=None if opened else created + DAY,
        )
