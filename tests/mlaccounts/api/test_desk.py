"""The seller's desk through the API (issue 14): the questions queue, answers, open claims.

Alice owns her accounts; in the agency's workspace Bob operates and Victor only views;
Charlie is the outsider. Mercado Livre is mocked at the HTTP boundary: each answer test
checks the request ML received, the envelope, and the mirror and count left in the database.
"""

import json
from datetime import timedelta

import pytest
import requests
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.models import Claim, ListingItem, MLAccount, Question, QuestionStatus
from tests.desk_helpers import ANSWERS_URL, ask, claim, ml_accepts, ml_question, next_id
from tests.factories import MLAccountFactory, UserFactory, WorkspaceFactory, member
from tests.mlaccounts.api.conftest import assert_error, assert_unauthorized, body, client_for
from tests.mlaccounts.api.test_schema import _codes
from tests.mlmock import API, TOKEN_URL

pytestmark = pytest.mark.django_db

QUESTION_ID = 13_012_345_678
# The user (bearer token), the page, the count: however many accounts there are.
QUESTIONS_QUERIES = 3
CLAIMS_QUERIES = 3
QUESTION_FIELDS = {"id", "accountId", "itemId", "itemTitle", "text", "dateCreated", "ageSeconds", "status"}
CLAIM_FIELDS = {
    "id",
    "accountId",
    "orderId",
    "type",
    "stage",
    "reasonId",
    "dueDate",
    "actionResponsible",
    "dateCreated",
}


def queue(client, **params) -> dict:
    response = client.get("/api/questions", params)
    assert response.status_code == 200, response.content
    return body(response)["data"]


def answer(client, question_id, text="Temos sim, em estoque!", **kwargs):
    return client.post(f"/api/questions/{question_id}/answer", {"text": text}, format="json", **kwargs)


@pytest.fixture
def agency(user):
    """A shared workspace with one account: Alice owns it, Bob operates, Victor views."""
    workspace = WorkspaceFactory(name="Agência Sol")
    member(workspace, user, "owner")
    account = MLAccountFactory(workspace=workspace, account_name="Loja Sol", cached_questions=5)
    bob, victor = UserFactory(email="bob@example.com"), UserFactory(email="victor@example.com")
    member(workspace, bob, "operator")
    member(workspace, victor, "viewer")
    return account, client_for(bob), client_for(victor)


@pytest.fixture
def waiting(ml_account):
    MLAccount.objects.filter(pk=ml_account.pk).update(cached_questions=3)
    return ask(ml_account, question_id=QUESTION_ID, age=timedelta(hours=2))


# --- who may see and answer ------------------------------------------------------------------


def test_anonymous_callers_are_unauthorized_everywhere(api_client, waiting):
    assert_unauthorized(api_client.get("/api/questions"))
    assert_unauthorized(api_client.get("/api/claims/"))
    assert_unauthorized(answer(api_client, waiting.pk))
    assert Question.objects.get(pk=waiting.pk).status == QuestionStatus.UNANSWERED


def test_an_outsider_sees_nothing_and_cannot_answer(charlie, alice, ml, waiting, ml_account):
    claim(ml_account, claim_id=5_187_110_991)

    assert queue(charlie) == {"questions": [], "total": 0}
    assert body(charlie.get("/api/claims"))["data"] == {"claims": [], "total": 0}
    assert_error(charlie.get("/api/questions", {"accountId": str(ml_account.pk)}), 404, "NOT_FOUND")
    assert_error(charlie.get("/api/claims", {"accountId": str(ml_account.pk)}), 404, "NOT_FOUND")
    # Another user's question answers exactly like one that does not exist.
    assert_error(answer(charlie, waiting.pk), 404, "NOT_FOUND")
    assert_error(answer(charlie, 99_999_999_999), 404, "NOT_FOUND")
    assert len(ml.calls) == 0
    assert queue(alice)["total"] == 1


@pytest.mark.parametrize("question_id", ["abc", "0", "-5", "1e3", "9" * 30, "%20"])
def test_a_malformed_question_id_is_not_found(alice, ml, waiting, question_id):
    assert_error(answer(alice, question_id), 404, "NOT_FOUND")
    assert len(ml.calls) == 0


@pytest.mark.parametrize("account_id", ["abc", "123", "00000000-0000-0000-0000-000000000000"])
def test_a_malformed_or_unknown_account_filter_is_not_found(alice, ml_account, account_id):
    assert_error(alice.get("/api/questions", {"accountId": account_id}), 404, "NOT_FOUND")
    assert_error(alice.get("/api/claims", {"accountId": account_id}), 404, "NOT_FOUND")


def test_a_viewer_sees_the_queue_but_may_not_answer(agency, ml):
    account, _, victor = agency
    question = ask(account)

    assert [q["id"] for q in queue(victor)["questions"]] == [question.pk]
    assert_error(answer(victor, question.pk), 403, "FORBIDDEN")

    assert len(ml.calls) == 0
    question.refresh_from_db()
    assert question.status == QuestionStatus.UNANSWERED
    assert MLAccount.objects.get(pk=account.pk).cached_questions == 5


def test_an_operator_answers(agency, ml):
    account, bob, _ = agency
    question = ask(account)
    ml_accepts(ml, question.pk)

    response = answer(bob, question.pk, "Temos sim!")

    assert response.status_code == 200, response.content
    assert body(response)["data"]["status"] == "answered"
    question.refresh_from_db()
    assert question.status == QuestionStatus.ANSWERED
    assert question.answered_by.email == "bob@example.com"
    assert MLAccount.objects.get(pk=account.pk).cached_questions == 4


def test_a_scoped_member_sees_only_the_accounts_in_scope(user, other_user):
    workspace = WorkspaceFactory()
    member(workspace, user, "owner")
    mine, hidden = MLAccountFactory.create_batch(2, workspace=workspace)
    member(workspace, other_user, "operator", accounts=[mine])
    seen, unseen = ask(mine), ask(hidden)
    claim(mine, claim_id=1)
    claim(hidden, claim_id=2)
    bob = client_for(other_user)

    assert [q["id"] for q in queue(bob)["questions"]] == [seen.pk]
    assert [c["id"] for c in body(bob.get("/api/claims"))["data"]["claims"]] == [1]
    assert_error(bob.get("/api/questions", {"accountId": str(hidden.pk)}), 404, "NOT_FOUND")
    assert_error(answer(bob, unseen.pk), 404, "NOT_FOUND")


# --- answering -------------------------------------------------------------------------------


def test_answering_posts_to_ml_and_takes_the_question_out_of_the_queue(alice, user, ml, waiting, ml_account):
    other = ask(ml_account, age=timedelta(minutes=5))
    ml_accepts(ml, waiting.pk)

    response = answer(alice, str(waiting.pk), "  Temos sim, em estoque!  ")

    assert response.status_code == 200, response.content
    payload = body(response)
    assert payload["success"] is True
    data = payload["data"]
    assert set(data) == QUESTION_FIELDS
    assert data["id"] == waiting.pk
    assert data["accountId"] == str(ml_account.pk)
    assert data["itemId"] == "MLB1000"
    assert data["itemTitle"] is None
    assert data["text"] == "Tem na cor azul?"
    assert data["status"] == "answered"
    assert 7190 <= data["ageSeconds"] <= 7300
    # ML received exactly one POST /answers, with the trimmed text and the account's token.
    (call,) = ml.calls
    assert call.request.method == "POST"
    assert call.request.url == ANSWERS_URL
    assert json.loads(call.request.body) == {"question_id": waiting.pk, "text": "Temos sim, em estoque!"}
    account = MLAccount.objects.get(pk=ml_account.pk)
    assert call.request.headers["Authorization"] == f"Bearer {account.access_token}"
    # The mirror and the count, at once.
    waiting.refresh_from_db()
    assert waiting.status == QuestionStatus.ANSWERED
    assert waiting.answered_by == user
    assert waiting.answer_text == "Temos sim, em estoque!"
    assert waiting.answered_at is not None
    assert account.cached_questions == 2
    assert [q["id"] for q in queue(alice)["questions"]] == [other.pk]
    answered = queue(alice, status="answered")
    assert [q["id"] for q in answered["questions"]] == [waiting.pk]
    assert answered["questions"][0]["status"] == "answered"


def test_the_answer_response_carries_the_items_title(alice, ml, ml_account):
    question = ask(ml_account, item_id="MLB42")
    ListingItem.objects.create(id="MLB42", title="Caneca azul", fetched_at=timezone.now())
    ml_accepts(ml, question.pk)

    assert body(answer(alice, question.pk))["data"]["itemTitle"] == "Caneca azul"


def test_a_question_ml_no_longer_takes_is_409_and_leaves_the_queue(alice, ml, waiting, ml_account):
    ml.post(
        ANSWERS_URL,
        status=400,
        json={
            "error": "not_unanswered_question",
            "message": f"Question {waiting.pk} is already answered.",
            "status": 400,
            "cause": [],
        },
    )
    ml.get(f"{API}/questions/{waiting.pk}", json=ml_question(waiting.pk, "ANSWERED"))

    payload = assert_error(answer(alice, waiting.pk), 409, "QUESTION_NOT_OPEN")

    assert "already answered" in payload["message"]
    assert [c.request.method for c in ml.calls] == ["POST", "GET"]
    assert ml.calls[1].request.url.startswith(f"{API}/questions/{waiting.pk}?")
    # Answered at ML, not here: it leaves the mirror, and the count drops with it.
    assert not Question.objects.filter(pk=waiting.pk).exists()
    assert MLAccount.objects.get(pk=ml_account.pk).cached_questions == 2
    assert queue(alice)["total"] == 0
    assert queue(alice, status="answered")["total"] == 0


@pytest.mark.parametrize(
    "failure",
    [
        {"status": 500, "json": {"message": "internal", "error": "internal_error", "status": 500}},
        {"status": 503, "body": "<html>Service Unavailable</html>"},
        {"body": requests.exceptions.ConnectTimeout()},
        {"body": requests.exceptions.ReadTimeout()},
        {"body": requests.exceptions.ConnectionError()},
    ],
    ids=["500", "503-html", "connect-timeout", "read-timeout", "connection-error"],
)
def test_ml_failing_is_502_and_the_question_stays(alice, ml, waiting, ml_account, failure):
    ml.post(ANSWERS_URL, **failure)

    assert_error(answer(alice, waiting.pk), 502, "ML_UNAVAILABLE")

    # An answer is never sent twice: no retry of the POST.
    assert len(ml.calls) == 1
    waiting.refresh_from_db()
    assert waiting.status == QuestionStatus.UNANSWERED
    assert waiting.answered_by is None
    assert MLAccount.objects.get(pk=ml_account.pk).cached_questions == 3
    assert queue(alice)["total"] == 1


def test_ml_rate_limiting_is_429_with_retry_after(alice, ml, waiting):
    ml.post(
        ANSWERS_URL,
        status=429,
        json={"message": "too many requests", "error": "too_many_requests", "status": 429},
        headers={"Retry-After": "17"},
    )

    response = answer(alice, waiting.pk)

    assert_error(response, 429, "ML_RATE_LIMITED")
    assert response["Retry-After"] == "17"
    assert Question.objects.get(pk=waiting.pk).status == QuestionStatus.UNANSWERED


def test_a_dead_grant_is_401_token_expired_and_nothing_is_sent(alice, ml, waiting, ml_account):
    MLAccount.objects.filter(pk=ml_account.pk).update(token_expires_at=timezone.now() - timedelta(hours=1))
    ml.post(
        TOKEN_URL,
        status=400,
        json={"error": "invalid_grant", "error_description": "invalid refresh token", "status": 400},
    )

    response = answer(alice, waiting.pk)

    assert_error(response, 401, "TOKEN_EXPIRED")
    assert [call.request.url for call in ml.calls] == [TOKEN_URL]
    assert MLAccount.objects.get(pk=ml_account.pk).status == "expired"
    assert Question.objects.get(pk=waiting.pk).status == QuestionStatus.UNANSWERED


def test_a_2000_character_answer_is_accepted(alice, ml, waiting):
    ml_accepts(ml, waiting.pk)
    text = "a" * 2000

    assert answer(alice, waiting.pk, text).status_code == 200

    assert json.loads(ml.calls[0].request.body)["text"] == text


@pytest.mark.parametrize(
    "payload",
    [
        {"text": ""},
        {"text": "   \n\t "},
        {"text": "a" * 2001},
        {"text": 12},
        {"text": None},
        {"text": ["Temos"]},
        {"text": "nul\x00here"},
        {},
        ["text"],
    ],
    ids=["empty", "whitespace", "2001", "number", "null", "list", "nul", "missing", "not-an-object"],
)
def test_an_invalid_answer_is_400_and_nothing_is_sent(alice, ml, waiting, payload):
    response = alice.post(f"/api/questions/{waiting.pk}/answer", payload, format="json")

    errors = assert_error(response, 400, "VALIDATION_ERROR")["errors"]
    assert set(errors) <= {"text", "nonFieldErrors"} and errors
    assert len(ml.calls) == 0
    assert Question.objects.get(pk=waiting.pk).status == QuestionStatus.UNANSWERED


def test_a_malformed_json_body_is_a_parse_error(alice, ml, waiting):
    response = alice.post(
        f"/api/questions/{waiting.pk}/answer", '{"text": "Temos', content_type="application/json"
    )

    assert_error(response, 400, "PARSE_ERROR")
    assert len(ml.calls) == 0


def test_answering_twice_keeps_one_answer_and_one_decrement(alice, ml, waiting, ml_account):
    ml_accepts(ml, waiting.pk)
    assert answer(alice, waiting.pk).status_code == 200
    # The answered question is still the user's to look at, but ML refuses a second answer.
    ml.post(
        ANSWERS_URL,
        status=400,
        json={"error": "not_unanswered_question", "message": "answered", "status": 400, "cause": []},
    )
    ml.get(f"{API}/questions/{waiting.pk}", json=ml_question(waiting.pk, "ANSWERED"))

    assert_error(answer(alice, waiting.pk), 409, "QUESTION_NOT_OPEN")

    waiting.refresh_from_db()
    assert waiting.status == QuestionStatus.ANSWERED  # answered here: the row stays
    assert MLAccount.objects.get(pk=ml_account.pk).cached_questions == 2


# --- the queue -------------------------------------------------------------------------------


def test_the_queue_is_oldest_first_with_its_fields(alice, ml_account):
    ListingItem.objects.create(id="MLB7", title="Caneca azul", fetched_at=timezone.now())
    ListingItem.objects.create(id="MLB8", title="", fetched_at=timezone.now())  # unknown at ML
    newest = ask(ml_account, age=timedelta(minutes=1), item_id="MLB7")
    oldest = ask(ml_account, age=timedelta(days=2), item_id="MLB8")
    middle = ask(ml_account, age=timedelta(hours=3), item_id="MLB9")  # never looked up

    data = queue(alice)

    assert data["total"] == 3
    assert [q["id"] for q in data["questions"]] == [oldest.pk, middle.pk, newest.pk]
    first = data["questions"][0]
    assert set(first) == QUESTION_FIELDS
    assert first["status"] == "unanswered"
    assert 2 * 86400 - 5 <= first["ageSeconds"] <= 2 * 86400 + 60
    assert [q["itemTitle"] for q in data["questions"]] == [None, None, "Caneca azul"]


def test_the_queue_pages_by_50(alice, ml_account):
    now = timezone.now()
    Question.objects.bulk_create(
        Question(
            id=QUESTION_ID + 10_000 + n,
            account=ml_account,
            item_id="MLB1",
            text=f"Pergunta {n}",
            date_created=now - timedelta(minutes=200 - n),
            seen_at=now,
        )
        for n in range(73)
    )

    first, second = queue(alice), queue(alice, page=2)

    assert first["total"] == second["total"] == 73
    assert len(first["questions"]) == 50 and len(second["questions"]) == 23
    ids = [q["id"] for q in first["questions"] + second["questions"]]
    assert ids == [QUESTION_ID + 10_000 + n for n in range(73)]
    assert queue(alice, page=3) == {"questions": [], "total": 73}


def test_older_than_and_account_filters(alice, user, ml_account):
    other_account = MLAccountFactory(owner=user)
    fresh = ask(ml_account, age=timedelta(minutes=10))
    stale = ask(ml_account, age=timedelta(hours=5))
    elsewhere = ask(other_account, age=timedelta(hours=6))

    assert [q["id"] for q in queue(alice, olderThan=3600)["questions"]] == [elsewhere.pk, stale.pk]
    assert [q["id"] for q in queue(alice, olderThan=0)["questions"]] == [elsewhere.pk, stale.pk, fresh.pk]
    by_account = queue(alice, accountId=str(ml_account.pk))
    assert [q["id"] for q in by_account["questions"]] == [stale.pk, fresh.pk]
    assert queue(alice, accountId=str(ml_account.pk), olderThan=3600)["total"] == 1
    assert queue(alice, accountId="")["total"] == 3  # empty: every account
    assert queue(alice, olderThan=10 * 365 * 86400)["total"] == 0


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"status": "bogus"}, "status"),
        ({"status": "UNANSWERED"}, "status"),
        ({"status": ""}, "status"),
        ({"olderThan": "-1"}, "olderThan"),
        ({"olderThan": "1.5"}, "olderThan"),
        ({"olderThan": "abc"}, "olderThan"),
        ({"olderThan": ""}, "olderThan"),
        ({"olderThan": "+5"}, "olderThan"),
        ({"olderThan": "٥"}, "olderThan"),
        ({"olderThan": str(10 * 365 * 86400 + 1)}, "olderThan"),
        ({"olderThan": "9" * 400}, "olderThan"),
        ({"page": "abc"}, "page"),
        ({"page": "1.5"}, "page"),
    ],
)
def test_bad_queue_parameters_are_400(alice, ml_account, params, field):
    errors = assert_error(alice.get("/api/questions", params), 400, "VALIDATION_ERROR")["errors"]
    assert field in errors


def test_a_bad_page_of_claims_is_400(alice, ml_account):
    assert "page" in assert_error(alice.get("/api/claims", {"page": "x"}), 400, "VALIDATION_ERROR")["errors"]


def test_paths_answer_with_and_without_a_trailing_slash(alice, ml, waiting):
    assert alice.get("/api/questions/").status_code == 200
    assert alice.get("/api/claims/").status_code == 200
    ml_accepts(ml, waiting.pk)
    response = alice.post(f"/api/questions/{waiting.pk}/answer/", {"text": "Sim"}, format="json")
    assert response.status_code == 200


def test_the_answer_endpoint_takes_only_post(alice, waiting):
    response = alice.get(f"/api/questions/{waiting.pk}/answer")
    assert_error(response, 405, "METHOD_NOT_ALLOWED")


# --- claims ----------------------------------------------------------------------------------


def test_claims_soonest_due_first_then_without_a_due_date(alice, user, ml_account):
    other_account = MLAccountFactory(owner=user)
    later = claim(ml_account, claim_id=30, due_in=timedelta(days=3))
    undated = claim(ml_account, claim_id=10, action_responsible="")
    soon = claim(other_account, claim_id=20, due_in=timedelta(hours=5), resource="payment")

    data = body(alice.get("/api/claims"))["data"]

    assert data["total"] == 3
    assert [c["id"] for c in data["claims"]] == [soon.pk, later.pk, undated.pk]
    first = data["claims"][0]
    assert set(first) == CLAIM_FIELDS
    assert first["accountId"] == str(other_account.pk)
    assert first["orderId"] is None  # a payment's claim
    assert data["claims"][1]["orderId"] == 2_000_005_489_080_336
    assert data["claims"][1]["type"] == "mediations"
    assert data["claims"][1]["stage"] == "dispute"
    assert data["claims"][1]["reasonId"] == "PDD9528"
    assert data["claims"][1]["actionResponsible"] == "seller"
    assert data["claims"][1]["dueDate"] is not None
    assert data["claims"][2]["dueDate"] is None
    assert data["claims"][2]["actionResponsible"] is None
    by_account = body(alice.get("/api/claims", {"accountId": str(ml_account.pk)}))["data"]
    assert [c["id"] for c in by_account["claims"]] == [later.pk, undated.pk]


def test_claims_page_by_50(alice, ml_account):
    now = timezone.now()
    Claim.objects.bulk_create(
        Claim(id=n, account=ml_account, date_created=now, due_date=now + timedelta(hours=n), seen_at=now)
        for n in range(1, 56)
    )

    second = body(alice.get("/api/claims", {"page": 2}))["data"]

    assert second["total"] == 55
    assert [c["id"] for c in second["claims"]] == list(range(51, 56))


# --- cost ------------------------------------------------------------------------------------


def _accounts_with_a_question_and_a_claim(user, n):
    """`n` more accounts of `user` (in a few queries), each with a question and a claim;
    every other question's item has a title."""
    now = timezone.now()
    accounts = MLAccount.objects.bulk_create(MLAccountFactory.build_batch(n, owner=user))
    questions = Question.objects.bulk_create(
        Question(
            id=(question_id := next_id()),
            account=account,
            item_id=f"MLB{question_id}",
            text="Tem?",
            date_created=now - timedelta(minutes=i),
            seen_at=now,
        )
        for i, account in enumerate(accounts)
    )
    ListingItem.objects.bulk_create(
        ListingItem(id=q.item_id, title=f"Item {q.pk}", fetched_at=now) for q in questions[::2]
    )
    Claim.objects.bulk_create(
        Claim(id=next_id(), account=account, date_created=now, due_date=now, seen_at=now)
        for account in accounts
    )


def _queries(client, path) -> int:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(path)
    assert response.status_code == 200, response.content
    return len(captured.captured_queries)


@pytest.mark.parametrize(
    ("path", "expected"), [("/api/questions", QUESTIONS_QUERIES), ("/api/claims", CLAIMS_QUERIES)]
)
def test_the_lists_cost_the_same_for_2_and_200_accounts(alice, user, path, expected):
    _accounts_with_a_question_and_a_claim(user, 2)
    few = _queries(alice, path)
    _accounts_with_a_question_and_a_claim(user, 198)
    # Accounts in a workspace shared with Alice, and other users' accounts, too.
    workspace = WorkspaceFactory()
    member(workspace, user, "viewer")
    for account in MLAccountFactory.create_batch(3, workspace=workspace) + MLAccountFactory.create_batch(3):
        ask(account)
        claim(account)

    many = _queries(alice, path)

    assert few == many == expected
    data = body(alice.get(path))["data"]
    assert data["total"] == 203
    assert len(next(v for k, v in data.items() if k != "total")) == 50


def test_a_filtered_list_costs_one_more_query(alice, user, ml_account):
    # The access helper's look at the account, then the same page and count.
    ask(ml_account)
    claim(ml_account, claim_id=1)
    assert _queries(alice, f"/api/questions?accountId={ml_account.pk}") == QUESTIONS_QUERIES + 1
    assert _queries(alice, f"/api/claims?accountId={ml_account.pk}") == CLAIMS_QUERIES + 1


# --- schema ----------------------------------------------------------------------------------


@pytest.fixture
def schema(api_client):
    response = api_client.get("/api/schema/?format=json")
    assert response.status_code == 200
    return json.loads(response.content)


def test_the_schema_documents_the_desk(schema):
    paths = schema["paths"]
    assert set(paths["/api/questions"]) == {"get"}
    assert set(paths["/api/questions/{id}/answer"]) == {"post"}
    assert set(paths["/api/claims"]) == {"get"}
    operations = [paths["/api/questions"]["get"], paths["/api/questions/{id}/answer"]["post"]]
    operations.append(paths["/api/claims"]["get"])
    assert [op["operationId"] for op in operations] == ["listQuestions", "answerQuestion", "listClaims"]
    assert all(op["tags"] == ["desk"] for op in operations)
    answer_path = "/api/questions/{id}/answer"
    assert _codes(schema, answer_path, "post", "409") == {"QUESTION_NOT_OPEN"}
    assert _codes(schema, answer_path, "post", "502") == {"ML_UNAVAILABLE"}
    assert _codes(schema, answer_path, "post", "429") == {"ML_RATE_LIMITED", "RATE_LIMITED"}
    assert _codes(schema, answer_path, "post", "403") == {"FORBIDDEN"}
    assert _codes(schema, answer_path, "post", "401") == {"TOKEN_EXPIRED", "UNAUTHORIZED"}
    assert _codes(schema, answer_path, "post", "404") == {"NOT_FOUND"}
    assert _codes(schema, "/api/questions", "get", "400") == {"VALIDATION_ERROR"}
    assert _codes(schema, "/api/claims", "get", "404") == {"NOT_FOUND"}
    parameters = {p["name"]: p["schema"] for p in paths["/api/questions"]["get"]["parameters"]}
    assert set(parameters) == {"status", "accountId", "olderThan", "page"}
    assert parameters["status"]["enum"] == ["answered", "unanswered"]
    assert parameters["olderThan"] == {"type": "integer", "minimum": 0, "maximum": 10 * 365 * 86400}
    components = schema["components"]["schemas"]
    assert set(components["Question"]["properties"]) == QUESTION_FIELDS
    assert set(components["Claim"]["properties"]) == CLAIM_FIELDS
    text = components["AnswerInputRequest"]["properties"]["text"]
    assert text["maxLength"] == 2000 and text["minLength"] == 1
    assert components["AnswerInputRequest"]["required"] == ["text"]


def test_answering_leaves_an_unknown_count_unknown(alice, ml, ml_account):
    # Never synced: no count to drop (PostgreSQL's GREATEST(NULL - 1, 0) would make it 0).
    MLAccount.objects.filter(pk=ml_account.pk).update(cached_questions=None)
    question = ask(ml_account)
    ml_accepts(ml, question.pk)

    assert answer(alice, question.pk).status_code == 200

    assert MLAccount.objects.get(pk=ml_account.pk).cached_questions is None


def test_a_refused_answer_whose_question_cannot_be_reread_still_leaves_queue_and_count(
    alice, ml, waiting, ml_account
):
    ml.post(
        ANSWERS_URL,
        status=400,
        json={"error": "not_unanswered_question", "message": "closed", "status": 400, "cause": []},
    )
    ml.get(f"{API}/questions/{waiting.pk}", status=503, body="<html>busy</html>")

    assert_error(answer(alice, waiting.pk), 409, "QUESTION_NOT_OPEN")

    assert not Question.objects.filter(pk=waiting.pk).exists()
    assert MLAccount.objects.get(pk=ml_account.pk).cached_questions == 2
