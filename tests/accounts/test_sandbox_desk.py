"""The sandbox's seller desk (§4.3, §4.4, §11.3): question and claim objects, answers, items.

Exercised over real HTTP like the app will use it; no database. CASA_DA_ANA (4 unanswered
questions, 1 open claim, 37 listings) plays the seller and MEGASTORE_BR the other seller.
"""

from datetime import datetime, timedelta

import pytest
import requests

from accounts.mercadolivre.sandbox import DEMO_SELLERS, DemoSeller, SandboxState, start_sandbox
from accounts.mercadolivre.sandbox.books import QuestionBook

TIMEOUT = 10
FORBIDDEN = {"message": "forbidden", "error": "forbidden", "status": 403, "cause": []}
QUESTION_FIELDS = {
    "id",
    "seller_id",
    "item_id",
    "status",
    "text",
    "date_created",
    "deleted_from_listing",
    "hold",
    "suspected_spam",
    "answer",
    "from",
}
ITEM_FIELDS = {
    "id",
    "title",
    "permalink",
    "thumbnail",
    "secure_thumbnail",
    "seller_id",
    "site_id",
    "status",
    "price",
    "currency_id",
}


def _seller(nickname):
    return next(seller for seller in DEMO_SELLERS if seller.nickname == nickname)


ANA = _seller("CASA_DA_ANA")
BIG = _seller("MEGASTORE_BR")


@pytest.fixture
def sandbox():
    server = start_sandbox(port=0)
    yield server
    server.stop()


def _token(sandbox, user_id=ANA.id):
    return sandbox.state.mint(user_id)["access_token"]


def _get(sandbox, path, token=None, **params):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return requests.get(f"{sandbox.url}{path}", params=params, headers=headers, timeout=TIMEOUT)


def _answer(sandbox, token, question_id, text="Temos sim!", **kwargs):
    if "data" not in kwargs and "json" not in kwargs:
        kwargs["json"] = {"question_id": question_id, "text": text}
    headers = {"Authorization": f"Bearer {token}", **kwargs.pop("headers", {})}
    return requests.post(f"{sandbox.url}/answers", headers=headers, timeout=TIMEOUT, **kwargs)


def _control(sandbox, name, **body):
    return requests.post(f"{sandbox.url}/_sandbox/{name}", json=body, timeout=TIMEOUT)


def _activity(sandbox, user_id, topic, change=1):
    response = _control(sandbox, "activity", user_id=user_id, topic=topic, change=change)
    assert response.status_code == 200, response.text
    return response.json()


def _questions(sandbox, token, seller=ANA, **params):
    params = {"seller_id": seller.id, "api_version": 4, **params}
    response = _get(sandbox, "/questions/search", token, **params)
    assert response.status_code == 200, response.text
    return response.json()


def _unanswered(sandbox, token, seller=ANA, **params):
    return _questions(sandbox, token, seller, status="UNANSWERED", **params)


def _claims(sandbox, token, seller=ANA, **params):
    params = {"players.role": "respondent", "players.user_id": seller.id, **params}
    response = _get(sandbox, "/post-purchase/v1/claims/search", token, **params)
    assert response.status_code == 200, response.text
    return response.json()


def _sizes(sandbox, seller=ANA):
    sellers = requests.get(f"{sandbox.url}/_sandbox/sellers", timeout=TIMEOUT).json()
    return next(s for s in sellers if s["id"] == seller.id)


def _stamp(value):
    return datetime.fromisoformat(value)


def _id_of(resource):
    return int(resource.rsplit("/", 1)[1])


# --- Questions search --------------------------------------------------------------------------------


def test_unanswered_questions_page_oldest_first_with_a_consistent_total(sandbox):
    token = _token(sandbox, BIG.id)
    pages = [
        _unanswered(
            sandbox, token, BIG, sort_fields="date_created", sort_types="ASC", limit=100, offset=offset
        )
        for offset in (0, 100, 200)
    ]

    assert [page["total"] for page in pages] == [BIG.questions] * 3
    assert [len(page["questions"]) for page in pages] == [100, 100, BIG.questions - 200]
    questions = [question for page in pages for question in page["questions"]]
    assert len({question["id"] for question in questions}) == BIG.questions
    dates = [_stamp(question["date_created"]) for question in questions]
    assert dates == sorted(dates)
    for question in questions:
        assert set(question) == QUESTION_FIELDS
        assert (question["status"], question["answer"], question["seller_id"]) == ("UNANSWERED", None, BIG.id)
    newest_first = _unanswered(sandbox, token, BIG, sort_fields="date_created", sort_types="DESC", limit=5)
    assert [q["id"] for q in newest_first["questions"]] == [q["id"] for q in questions[::-1][:5]]


def test_without_a_status_the_search_includes_the_answered_questions(sandbox):
    token = _token(sandbox)

    everything = _questions(sandbox, token, limit=100)
    answered = _questions(sandbox, token, status="ANSWERED", limit=100)

    assert everything["total"] == ANA.questions * 4
    assert answered["total"] == ANA.questions * 3
    for question in answered["questions"]:
        assert question["status"] == "ANSWERED"
        assert set(question["answer"]) == {"text", "status", "date_created"}
        assert question["answer"]["status"] == "ACTIVE"
    assert {q["status"] for q in everything["questions"]} == {"UNANSWERED", "ANSWERED"}


@pytest.mark.parametrize("params", [{"sort_fields": "item_id"}, {"sort_types": "SIDEWAYS"}])
def test_unsupported_question_sorts_are_refused(sandbox, params):
    response = _get(sandbox, "/questions/search", _token(sandbox), seller_id=ANA.id, **params)

    assert response.status_code == 400
    assert response.json()["error"] == "bad_request"


# --- Activity makes and answers questions -----------------------------------------------------------------


def test_activity_creates_questions_found_by_the_search_and_by_id(sandbox):
    token = _token(sandbox)
    before = datetime.now().astimezone() - timedelta(seconds=1)

    event = _activity(sandbox, ANA.id, "questions", change=2)

    assert event["seller"]["questions"] == ANA.questions + 2
    page = _unanswered(sandbox, token, sort_fields="date_created", sort_types="DESC")
    assert page["total"] == ANA.questions + 2
    newest = page["questions"][:2]
    assert newest[0]["id"] == _id_of(event["resource"])  # the notification points at the newest
    assert newest[0]["id"] != newest[1]["id"]
    for question in newest:
        assert _stamp(question["date_created"]) >= before
        assert question["item_id"].startswith(ANA.site_id)
        assert question["text"] and question["from"]["id"] > 0
    by_id = _get(sandbox, event["resource"], token, api_version=4)
    assert by_id.status_code == 200
    assert by_id.json() == newest[0]
    oldest_first = _unanswered(sandbox, token, sort_fields="date_created", sort_types="ASC")
    assert [q["id"] for q in oldest_first["questions"][-2:]] == [newest[1]["id"], newest[0]["id"]]


def test_negative_activity_answers_the_oldest_questions(sandbox):
    token = _token(sandbox)
    oldest = _unanswered(sandbox, token, sort_fields="date_created", sort_types="ASC", limit=1)["questions"][
        0
    ]

    event = _activity(sandbox, ANA.id, "questions", change=-1)

    assert event["seller"]["questions"] == ANA.questions - 1
    assert _id_of(event["resource"]) == oldest["id"]
    question = _get(sandbox, event["resource"], token).json()
    assert question["status"] == "ANSWERED"
    assert question["answer"]["status"] == "ACTIVE"
    assert _unanswered(sandbox, token)["total"] == ANA.questions - 1


def test_the_ticker_and_the_controls_never_take_the_count_below_zero(sandbox):
    new = _seller("LOJA_NOVA_TESTE")

    assert _activity(sandbox, new.id, "questions", change=-3)["seller"]["questions"] == 0
    assert _activity(sandbox, new.id, "questions", change=1)["seller"]["questions"] == 1
    assert _unanswered(sandbox, _token(sandbox, new.id), new)["total"] == 1


# --- GET /questions/{id} ---------------------------------------------------------------------------------


def test_question_by_id_is_the_sellers_only(sandbox):
    question = _unanswered(sandbox, _token(sandbox), limit=1)["questions"][0]

    own = _get(sandbox, f"/questions/{question['id']}", _token(sandbox), api_version=4)
    other = _get(sandbox, f"/questions/{question['id']}", _token(sandbox, BIG.id), api_version=4)
    unknown = _get(sandbox, "/questions/12345", _token(sandbox), api_version=4)
    anonymous = _get(sandbox, f"/questions/{question['id']}", api_version=4)

    assert (own.status_code, own.json()) == (200, question)
    assert (other.status_code, other.json()) == (403, FORBIDDEN)
    assert unknown.status_code == 404
    assert unknown.json() == {
        "message": "Question 12345 not found.",
        "error": "not_found",
        "status": 404,
        "cause": [],
    }
    assert anonymous.status_code == 401


# --- POST /answers ---------------------------------------------------------------------------------------


def test_answering_a_question_answers_it_once(sandbox):
    token = _token(sandbox)
    question = _unanswered(sandbox, token, sort_fields="date_created", sort_types="ASC")["questions"][0]
    sandbox.state.reset_stats()

    first = _answer(sandbox, token, question["id"], "Olá! Temos em azul e verde.")
    second = _answer(sandbox, token, question["id"], "De novo")

    assert first.status_code == 200, first.text
    answered = first.json()
    assert (answered["id"], answered["status"]) == (question["id"], "ANSWERED")
    assert answered["answer"]["text"] == "Olá! Temos em azul e verde."
    assert answered["answer"]["status"] == "ACTIVE"
    assert _stamp(answered["answer"]["date_created"]) >= _stamp(question["date_created"])
    assert _get(sandbox, f"/questions/{question['id']}", token).json() == answered
    assert _unanswered(sandbox, token)["total"] == ANA.questions - 1
    assert _sizes(sandbox)["questions"] == ANA.questions - 1
    assert second.status_code == 400
    assert second.json() == {
        "message": f"Question {question['id']} is already answered.",
        "error": "not_unanswered_question",
        "status": 400,
        "cause": [],
    }
    assert sandbox.state.stats()["by_kind"]["answers"] == 2


def test_an_answer_notifies_the_app_like_other_activity(sandbox):
    # An unreachable callback: what matters is that the notification is emitted.
    sandbox.state.configure(notifications_url="http://127.0.0.1:9/hook", notification_retries=0)
    token = _token(sandbox)
    question = _unanswered(sandbox, token, limit=1)["questions"][0]

    assert _answer(sandbox, token, question["id"]).status_code == 200

    deliveries = requests.get(f"{sandbox.url}/_sandbox/notifications", timeout=TIMEOUT).json()["deliveries"]
    assert [(d["topic"], d["resource"], d["user_id"]) for d in deliveries] == [
        ("questions", f"/questions/{question['id']}", ANA.id)
    ]


@pytest.mark.parametrize(
    ("status", "reason"),
    [
        ("DELETED", "was deleted"),
        ("BANNED", "was banned"),
        ("CLOSED_UNANSWERED", "was closed without an answer"),
    ],
)
def test_a_question_no_longer_open_is_refused(sandbox, status, reason):
    token = _token(sandbox)
    question = _unanswered(sandbox, token, limit=1)["questions"][0]

    changed = _control(sandbox, "question-status", question_id=question["id"], status=status)
    response = _answer(sandbox, token, question["id"])

    assert changed.status_code == 200, changed.text
    assert changed.json()["status"] == status
    assert changed.json()["deleted_from_listing"] is (status == "DELETED")
    assert _unanswered(sandbox, token)["total"] == ANA.questions - 1
    assert _questions(sandbox, token, status=status)["total"] == 1
    assert response.status_code == 400
    assert response.json() == {
        "message": f"Question {question['id']} {reason}.",
        "error": "not_unanswered_question",
        "status": 400,
        "cause": [],
    }


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"question_id": 13010000000, "status": "ANSWERED"}, 400),
        ({"question_id": 13010000000, "status": "deleted"}, 400),
        ({"question_id": "x", "status": "DELETED"}, 400),
        ({"question_id": 12345, "status": "DELETED"}, 404),
    ],
)
def test_question_status_control_rejects_bad_input(sandbox, body, status):
    response = _control(sandbox, "question-status", **body)

    assert response.status_code == status, response.text
    assert _sizes(sandbox)["questions"] == ANA.questions


def test_answer_text_must_have_1_to_2000_characters(sandbox):
    token = _token(sandbox)
    first, second = _unanswered(sandbox, token, limit=2)["questions"]

    refused = [_answer(sandbox, token, first["id"], text) for text in ("", "   ", "x" * 2001)]
    longest = _answer(sandbox, token, second["id"], "x" * 2000)

    for response in refused:
        assert response.status_code == 400
        assert response.json()["error"] == "validation_error"
    assert longest.status_code == 200
    assert _get(sandbox, f"/questions/{first['id']}", token).json()["status"] == "UNANSWERED"


def test_answers_take_a_json_object_only(sandbox):
    token = _token(sandbox)
    question_id = _unanswered(sandbox, token, limit=1)["questions"][0]["id"]

    form = _answer(sandbox, token, question_id, data={"question_id": question_id, "text": "Sim"})
    garbage = _answer(
        sandbox, token, question_id, data=b"{not json", headers={"Content-Type": "application/json"}
    )
    a_list = _answer(sandbox, token, question_id, json=[question_id, "Sim"])
    bad_id = _answer(sandbox, token, question_id, json={"question_id": "abc", "text": "Sim"})
    string_id = _answer(sandbox, token, question_id, json={"question_id": str(question_id), "text": "Sim"})

    for response in (form, garbage, a_list):
        assert response.status_code == 400
        assert response.json()["error"] == "bad_request"
    assert (bad_id.status_code, bad_id.json()["error"]) == (400, "validation_error")
    assert string_id.status_code == 200  # ids come as numbers or strings (§0)


def test_answers_to_unknown_or_another_sellers_questions(sandbox):
    ana_question = _unanswered(sandbox, _token(sandbox), limit=1)["questions"][0]

    other = _answer(sandbox, _token(sandbox, BIG.id), ana_question["id"])
    unknown = _answer(sandbox, _token(sandbox), 12345)
    anonymous = requests.post(
        f"{sandbox.url}/answers", json={"question_id": ana_question["id"], "text": "Sim"}, timeout=TIMEOUT
    )

    assert (other.status_code, other.json()) == (403, FORBIDDEN)
    assert (unknown.status_code, unknown.json()["error"]) == (404, "not_found")
    assert anonymous.status_code == 401
    assert _get(sandbox, f"/questions/{ana_question['id']}", _token(sandbox)).json()["status"] == "UNANSWERED"
    assert _sizes(sandbox)["questions"] == ANA.questions


# --- Items multiget --------------------------------------------------------------------------------------


def test_items_multiget_answers_each_id_with_code_and_body(sandbox):
    big_token = _token(sandbox, BIG.id)
    ids = _get(sandbox, f"/users/{BIG.id}/items/search", big_token, limit=20).json()["results"]
    sandbox.state.reset_stats()

    # Any token of the app reads any seller's items.
    response = _get(sandbox, "/items", _token(sandbox), ids=",".join(ids))

    assert response.status_code == 200
    entries = response.json()
    assert [entry["code"] for entry in entries] == [200] * 20
    assert [entry["body"]["id"] for entry in entries] == ids
    for entry in entries:
        body = entry["body"]
        assert set(body) == ITEM_FIELDS
        assert (body["seller_id"], body["site_id"], body["status"]) == (BIG.id, "MLB", "active")
        assert body["title"].startswith("Produto de teste")
        assert body["secure_thumbnail"].startswith("https://")
    assert len({entry["body"]["title"] for entry in entries}) == 20
    assert sandbox.state.stats()["by_kind"]["items_get"] == 1


def test_items_multiget_refuses_more_than_20_ids(sandbox):
    ids = _get(sandbox, f"/users/{BIG.id}/items/search", _token(sandbox, BIG.id), limit=21).json()["results"]

    response = _get(sandbox, "/items", _token(sandbox), ids=",".join(ids))

    assert response.status_code == 400
    assert response.json()["status"] == 400


def test_items_multiget_gives_unknown_ids_a_404_entry(sandbox):
    token = _token(sandbox)
    known = _get(sandbox, f"/users/{ANA.id}/items/search", token, limit=1).json()["results"][0]
    beyond = f"MLB{4_000_000_000 + 1 * 10_000_000 + 5000}"  # ANA has 50 items, not 5001

    entries = _get(sandbox, "/items", token, ids=f"{known},MLB1,{beyond},nonsense").json()

    assert [entry["code"] for entry in entries] == [200, 404, 404, 404]
    assert entries[1]["body"] == {
        "message": "Item with id MLB1 not found",
        "error": "not_found",
        "status": 404,
        "cause": [],
    }


def test_items_titles_match_the_questions_and_orders_and_attributes_filter(sandbox):
    token = _token(sandbox)
    order = _get(sandbox, "/orders/search", token, seller=ANA.id, limit=1).json()["results"][0]
    line = order["order_items"][0]["item"]

    entries = _get(sandbox, "/items", token, ids=line["id"], attributes="id,title").json()

    assert entries == [{"code": 200, "body": {"id": line["id"], "title": line["title"]}}]
    assert _get(sandbox, "/items", token).status_code == 400  # ids is required
    assert _get(sandbox, "/items", ids=line["id"]).status_code == 401


# --- Claims ----------------------------------------------------------------------------------------------


def test_claim_and_its_detail_are_the_sellers_only(sandbox):
    token = _token(sandbox)
    claim = _claims(sandbox, token, status="opened")["data"][0]

    full = _get(sandbox, f"/post-purchase/v1/claims/{claim['id']}", token)
    detail = _get(sandbox, f"/post-purchase/v1/claims/{claim['id']}/detail", token)
    other = _get(sandbox, f"/post-purchase/v1/claims/{claim['id']}/detail", _token(sandbox, BIG.id))
    unknown = _get(sandbox, "/post-purchase/v1/claims/42/detail", token)

    assert full.status_code == 200
    assert full.json().items() >= claim.items()
    assert {"claim_version", "claimed_quantity", "related_entities"} <= full.json().keys()
    assert detail.status_code == 200
    body = detail.json()
    assert set(body) == {"due_date", "action_responsible", "title", "description", "problem"}
    assert body["action_responsible"] in {"seller", "buyer", "mediator"}
    assert _stamp(body["due_date"]) > datetime.now().astimezone()
    assert (other.status_code, other.json()["error"]) == (403, "forbidden_error")
    assert (unknown.status_code, unknown.json()["error"]) == (404, "not_found")
    assert sandbox.state.stats()["by_kind"]["claims_get"] == 4


def test_open_claims_have_due_dates_over_the_next_days(sandbox):
    token = _token(sandbox, BIG.id)
    claims = _claims(sandbox, token, BIG, status="opened", limit=100)["data"]

    details = [_get(sandbox, f"/post-purchase/v1/claims/{c['id']}/detail", token).json() for c in claims]

    assert len(details) == BIG.claims
    assert {detail["action_responsible"] for detail in details} == {"seller", "buyer", "mediator"}
    now = datetime.now().astimezone()
    due = {_stamp(detail["due_date"]) for detail in details}
    assert len(due) > 1
    assert all(now < date < now + timedelta(days=6) for date in due)


def test_claims_activity_opens_and_closes_real_claims(sandbox):
    token = _token(sandbox)
    oldest = _claims(sandbox, token, status="opened", sort="date_created:asc")["data"][0]

    opened = _activity(sandbox, ANA.id, "claims", change=2)
    after_open = _claims(sandbox, token, status="opened")
    closed = _activity(sandbox, ANA.id, "claims", change=-1)
    after_close = _claims(sandbox, token, status="opened")

    assert opened["seller"]["claims"] == ANA.claims + 2
    assert after_open["paging"]["total"] == ANA.claims + 2
    assert after_open["data"][0]["id"] == _id_of(opened["resource"])  # newest first
    new_detail = _get(sandbox, opened["resource"] + "/detail", token).json()
    assert new_detail["action_responsible"] == "seller"
    assert _stamp(new_detail["due_date"]) > datetime.now().astimezone()
    # The oldest open claim is the one closed.
    assert _id_of(closed["resource"]) == oldest["id"]
    assert closed["seller"]["claims"] == after_close["paging"]["total"] == ANA.claims + 1
    assert oldest["id"] not in {claim["id"] for claim in after_close["data"]}
    closed_claim = _get(sandbox, f"/post-purchase/v1/claims/{oldest['id']}", token).json()
    assert (closed_claim["status"], closed_claim["stage"]) == ("closed", "none")
    assert closed_claim["resolution"] is not None
    assert _get(sandbox, closed["resource"] + "/detail", token).json()["due_date"] is None
    assert _claims(sandbox, token, status="closed")["paging"]["total"] == ANA.claims * 3 + 1
    assert _sizes(sandbox)["claims"] == ANA.claims + 1


def test_claims_search_filters_and_sorts(sandbox):
    token = _token(sandbox, BIG.id)
    newest_first = _claims(sandbox, token, BIG, limit=100)
    total = newest_first["paging"]["total"]
    oldest_first = _claims(sandbox, token, BIG, sort="date_created:asc", offset=total - 3, limit=3)
    one = newest_first["data"][3]

    by_id = _claims(sandbox, token, BIG, id=one["id"])
    by_order = _claims(sandbox, token, BIG, resource="order", resource_id=one["resource_id"])
    bad_sort = _get(
        sandbox,
        "/post-purchase/v1/claims/search",
        token,
        status="opened",
        sort="amount:asc",
    )

    assert (total, len(newest_first["data"])) == (BIG.claims * 4, 100)
    assert [c["id"] for c in oldest_first["data"]] == [c["id"] for c in newest_first["data"][:3]][::-1]
    assert (by_id["paging"]["total"], by_id["data"]) == (1, [one])
    assert one in by_order["data"]
    assert (bad_sort.status_code, bad_sort.json()["error"]) == (400, "invalid_params")


# --- Buyers' public profiles ------------------------------------------------------------------------


PRIVATE_FIELDS = {"email", "first_name", "last_name", "identification", "phone", "credit"}


def test_the_buyers_of_questions_and_claims_have_a_public_profile(sandbox):
    token = _token(sandbox)
    asker = _unanswered(sandbox, token, limit=1)["questions"][0]["from"]["id"]
    complainant = next(
        player["user_id"]
        for player in _claims(sandbox, token, status="opened")["data"][0]["players"]
        if player["role"] == "complainant"
    )

    for buyer_id in (asker, complainant):
        response = _get(sandbox, f"/users/{buyer_id}", token)

        assert response.status_code == 200, response.text
        profile = response.json()
        assert profile["id"] == buyer_id
        assert profile["nickname"] == f"COMPRADOR{buyer_id % 100000:05d}"
        assert (profile["site_id"], profile["country_id"], profile["user_type"]) == ("MLB", "BR", "normal")
        assert profile["permalink"] == f"http://perfil.mercadolivre.com.br/{profile['nickname']}"
        assert _stamp(profile["registration_date"]) < datetime.now().astimezone()
        assert profile["seller_reputation"]["level_id"] is None
        assert not PRIVATE_FIELDS & profile.keys()


def test_a_buyers_profile_is_the_same_for_every_token_of_a_site(sandbox):
    buyer_id = 100_012_345

    from_ana = _get(sandbox, f"/users/{buyer_id}", _token(sandbox)).json()
    from_big = _get(sandbox, f"/users/{buyer_id}", _token(sandbox, BIG.id)).json()
    from_baires = _get(sandbox, f"/users/{buyer_id}", _token(sandbox, _seller("TECNO_BAIRES").id)).json()

    assert from_ana == from_big
    assert from_ana["nickname"] == "COMPRADOR12345"
    # A buyer shops on the site of the seller who asks about them.
    assert (from_baires["site_id"], from_baires["country_id"]) == ("MLA", "AR")
    assert from_baires["nickname"] == from_ana["nickname"]


def test_profiles_still_need_a_valid_token(sandbox):
    anonymous = _get(sandbox, "/users/100012345")
    bad_token = _get(sandbox, "/users/100012345", "APP_USR-not-a-token")

    assert anonymous.status_code == bad_token.status_code == 401


def test_own_profile_stays_private_and_other_sellers_stay_forbidden(sandbox):
    token = _token(sandbox, BIG.id)
    me = _get(sandbox, "/users/me", token).json()

    own = _get(sandbox, f"/users/{BIG.id}", token)
    # CASA_DA_ANA's id lies in the buyers' range, but she is a seller here.
    seller_in_range = _get(sandbox, f"/users/{ANA.id}", token)
    outside = [_get(sandbox, f"/users/{user_id}", token) for user_id in (99_999_999, 1_000_000_000, 12345)]

    assert (own.status_code, own.json()) == (200, me)
    assert "email" in own.json()
    assert 100_000_000 <= ANA.id < 1_000_000_000
    assert (seller_in_range.status_code, seller_in_range.json()) == (403, FORBIDDEN)
    for response in outside:
        assert (response.status_code, response.json()) == (403, FORBIDDEN)


# --- Memory, reset -------------------------------------------------------------------------------------


def test_a_seller_with_10000_questions_answers_a_page_without_building_them_all(monkeypatch):
    huge = DemoSeller(7_000_000_001, "HUGE", "huge@testuser.com", "Huge", "Seller", "MLB", 500, 10, 10_000, 0)
    built = []
    original = QuestionBook._build

    def counting_build(self, serial):
        built.append(serial)
        return original(self, serial)

    monkeypatch.setattr(QuestionBook, "_build", counting_build)
    server = start_sandbox(port=0, state=SandboxState(sellers=[*DEMO_SELLERS, huge]))
    try:
        token = _token(server, huge.id)
        last_page = _unanswered(
            server, token, huge, sort_fields="date_created", sort_types="DESC", offset=9_950, limit=50
        )
        book = server.state.desk.questions(huge.id)

        assert last_page["total"] == 10_000
        assert len(last_page["questions"]) == 50
        assert len(built) == 50
        assert book.materialized == 0

        oldest = _unanswered(server, token, huge, sort_fields="date_created", sort_types="ASC", limit=1)
        assert oldest["questions"][0] == last_page["questions"][-1]
        assert _answer(server, token, oldest["questions"][0]["id"]).status_code == 200
        assert book.materialized == 1
        assert _unanswered(server, token, huge, limit=1)["total"] == 9_999
        assert len(built) < 60
    finally:
        server.stop()


def test_reset_forgets_the_desks_objects(sandbox):
    token = _token(sandbox)
    question_id = _unanswered(sandbox, token, limit=1)["questions"][0]["id"]
    _answer(sandbox, token, question_id)
    _activity(sandbox, ANA.id, "questions", change=3)
    _activity(sandbox, ANA.id, "claims", change=2)

    assert _control(sandbox, "reset").status_code == 200

    token = _token(sandbox)
    assert _unanswered(sandbox, token)["total"] == ANA.questions
    assert _get(sandbox, f"/questions/{question_id}", token).json()["status"] == "UNANSWERED"
    assert _claims(sandbox, token, status="opened")["paging"]["total"] == ANA.claims
