"""Rows of the seller's desk and ML's answers about them, shared by the desk's page and API tests."""

from datetime import timedelta
from itertools import count

from django.utils import timezone

from accounts.models import Claim, Question
from tests.mlmock import API

ANSWERS_URL = f"{API}/answers"
# Ids above any a test sets itself.
_ids = count(13_012_000_000)


def next_id() -> int:
    """A fresh ML id for a question or a claim."""
    return next(_ids)


def ask(account, *, age=timedelta(hours=1), question_id=None, item_id="MLB1000", **fields) -> Question:
    """A question in `account`'s queue, asked `age` ago."""
    now = timezone.now()
    return Question.objects.create(
        id=question_id or fields.pop("id", None) or next(_ids),
        account=account,
        item_id=item_id,
        text=fields.pop("text", "Tem na cor azul?"),
        date_created=now - age,
        buyer_id=fields.pop("buyer_id", 162_981_404),
        seen_at=now,
        **fields,
    )


def claim(account, *, claim_id=None, due_in=None, **fields) -> Claim:
    """An open claim of `account` where the seller must act, due `due_in` from now (None: no date)."""
    now = timezone.now()
    values = {
        "resource": "order",
        "resource_id": 2_000_005_489_080_336,
        "type": "mediations",
        "stage": "dispute",
        "reason_id": "PDD9528",
        "date_created": now - timedelta(days=2),
        "due_date": None if due_in is None else now + due_in,
        "action_responsible": "seller",
        "seen_at": now,
    }
    return Claim.objects.create(id=claim_id or next(_ids), account=account, **{**values, **fields})


def ml_question(question_id, status, *, item_id="MLB1000") -> dict:
    """ML's GET /questions/{id}?api_version=4 (§4.3) in `status`."""
    return {
        "id": question_id,
        "seller_id": 4_000_000_000,
        "item_id": item_id,
        "status": status,
        "text": "Tem na cor azul?",
        "date_created": "2026-11-30T14:50:27.938-03:00",
        "deleted_from_listing": False,
        "hold": False,
        "answer": {"text": "Sim!", "status": "ACTIVE", "date_created": "2026-11-30T15:00:00.000-03:00"}
        if status == "ANSWERED"
        else None,
        "from": {"id": 162_981_404},
    }


def ml_accepts(ml, question_id):
    """ML takes the answer (POST /answers 200)."""
    ml.post(ANSWERS_URL, json=ml_question(question_id, "ANSWERED"))
