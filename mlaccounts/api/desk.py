"""The REST API of the seller's desk (issue 14): the questions queue, answers, open claims.

The lists read the local mirrors (accounts.selectors.desk) and never wait for Mercado Livre;
answering is the one call that goes to ML from here, synchronously, under the same overall
deadline as "sync now". Access like everywhere: a question or an account the caller cannot
see is a 404, a viewer's answer a 403. Lists are 50 a page (`?page=`), in a stated order.
"""

from __future__ import annotations

from django.conf import settings
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from rest_framework import exceptions
from rest_framework.views import APIView

from accounts import selectors, services
from accounts.mercadolivre import deadline
from accounts.models import QuestionStatus
from accounts.roles import Can
from mlaccounts.api import serializers as s
from mlaccounts.api.exceptions import envelope
from mlaccounts.api.schema import (
    ACCOUNT_FILTER,
    MAX_OLDER_THAN,
    OLDER_THAN,
    PAGE,
    QUESTION_ID,
    QUESTION_STATUS,
    api_operation,
    envelope_of,
)
from mlaccounts.api.throttles import MLActionThrottle, UserThrottle
from mlaccounts.api.workspaces import page_of

DESK = "desk"
STATUSES = {"unanswered": QuestionStatus.UNANSWERED, "answered": QuestionStatus.ANSWERED}

QuestionResponse = envelope_of("QuestionResponse", s.QuestionSerializer())
QuestionListResponse = envelope_of("QuestionListResponse", s.QuestionListSerializer())
ClaimListResponse = envelope_of("ClaimListResponse", s.ClaimListSerializer())


def _queue_filters(request) -> tuple[str, int | None]:
    """`status` and `olderThan` of the queue, each refused with its own message."""
    errors = {}
    status = STATUSES.get(request.query_params.get("status", "unanswered"))
    if status is None:
        errors["status"] = [_("Must be unanswered or answered.")]
    raw = request.query_params.get("olderThan")
    older_than = None
    if raw is not None:
        # ASCII digits only (int() would also take " 5", "+5", "٥" and "1_000"), and few of them.
        if raw.isascii() and raw.isdigit() and len(raw) <= 18 and int(raw) <= MAX_OLDER_THAN:
            older_than = int(raw)
        else:
            errors["olderThan"] = [
                _("Must be a whole number of seconds from 0 to %(max)d.") % {"max": MAX_OLDER_THAN}
            ]
    if errors:
        raise exceptions.ValidationError(errors)
    return status, older_than


class QuestionListView(APIView):
    @api_operation(
        operation_id="listQuestions",
        summary="Buyers' questions to your accounts, oldest first",
        description="From the local mirror, kept fresh by the syncs and Mercado Livre's "
        "notifications; never waits for Mercado Livre. 50 a page, `total` questions.",
        tag=DESK,
        ok={200: QuestionListResponse},
        errors={400: ("VALIDATION_ERROR",), 404: ("NOT_FOUND",)},
        parameters=[QUESTION_STATUS, ACCOUNT_FILTER, OLDER_THAN, PAGE],
    )
    def get(self, request):
        status, older_than = _queue_filters(request)
        questions = selectors.question_queue_for_user(
            user=request.user,
            account_id=request.query_params.get("accountId"),
            older_than=older_than,
            status=status,
        )
        items, total = page_of(request, questions)
        data = {"questions": items, "total": total}
        return envelope(s.QuestionListSerializer(data, context={"now": timezone.now()}).data)


class QuestionAnswerView(APIView):
    """Answer a question at Mercado Livre, synchronously, under one overall deadline."""

    throttle_classes = (UserThrottle, MLActionThrottle)

    @api_operation(
        operation_id="answerQuestion",
        summary="Answer a buyer's question (operators and up)",
        description="Sent to Mercado Livre at once, within SYNC_REQUEST_DEADLINE seconds (20 by "
        "default). On success the question is answered here too and leaves the queue. "
        "409 QUESTION_NOT_OPEN: Mercado Livre no longer takes an answer (answered elsewhere, "
        "deleted, closed); the question leaves the queue. 502 ML_UNAVAILABLE: Mercado Livre "
        "failed or did not answer in time; the question stays in the queue. 401 TOKEN_EXPIRED: "
        "the account's authorization is dead (now `expired`); nothing was sent, reconnect it.",
        tag=DESK,
        request=s.AnswerInputSerializer,
        ok={200: QuestionResponse},
        errors={
            401: ("TOKEN_EXPIRED",),
            404: ("NOT_FOUND",),
            409: ("QUESTION_NOT_OPEN",),
            429: ("ML_RATE_LIMITED",),
            502: ("ML_UNAVAILABLE",),
        },
        parameters=[QUESTION_ID],
    )
    def post(self, request, id):
        question = selectors.question_get_for_user(user=request.user, question_id=id, need=Can.ACT)
        serializer = s.AnswerInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        with deadline.within(settings.SYNC_REQUEST_DEADLINE):
            question = services.question_answer(
                question=question, text=serializer.validated_data["text"], user=request.user
            )
        return envelope(s.QuestionSerializer(question, context={"now": timezone.now()}).data)


class ClaimListView(APIView):
    @api_operation(
        operation_id="listClaims",
        summary="Open claims against your accounts, soonest due first",
        description="From the local mirror. Claims without a due date come last, then oldest "
        "first. 50 a page, `total` claims.",
        tag=DESK,
        ok={200: ClaimListResponse},
        errors={400: ("VALIDATION_ERROR",), 404: ("NOT_FOUND",)},
        parameters=[ACCOUNT_FILTER, PAGE],
    )
    def get(self, request):
        claims = selectors.claim_list_for_user(
            user=request.user, account_id=request.query_params.get("accountId")
        )
        items, total = page_of(request, claims)
        return envelope(s.ClaimListSerializer({"claims": items, "total": total}).data)
