"""The desk's mirrors at the HTTP boundary (sync/mirrors.py, issue 14): what a sync and a
notification run ask ML, and what the questions, claims and listings tables hold after.

ML is the root conftest's `ml` mock answered by `FakeDesk`, one seller's desk kept in memory
(questions, claims, items, buyers) and served with ML's shapes (tests/fixtures/ml/); the
budget of a 1,000-question desk runs against the bundled sandbox instead.
"""

import copy
import json
import re
from datetime import datetime as dt
from datetime import timedelta, timezone
from urllib.parse import parse_qs, urlsplit

import pytest
import responses
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone as dj_timezone

from accounts.mercadolivre import sandbox
from accounts.mercadolivre.errors import MLBadResponse
from accounts.models import AccountEvent, Claim, ListingItem, MLAccount, Question
from sync import engine, mirrors, notifications
from tests.factories import MLAccountFactory
from tests.mlmock import (
    API,
    COUNT_URLS,
    RotatingTokenEndpoint,
    load_fixture,
    ml_error,
    orders_search,
    reputation_json,
)
from tests.notification_helpers import stored, use_fresh_cache

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("ml_settings")]

SAO_PAULO = timezone(timedelta(hours=-3))
START = dt(2026, 3, 2, 9, 0, tzinfo=SAO_PAULO)
QUESTION_BASE = 13_000_000_000
CLAIM_BASE = 5_187_110_000
ORDER_BASE = 2_000_005_489_080_000
BUYER_BASE = 162_981_000
ITEM_BASE = 903_218_000


@pytest.fixture(autouse=True)
def _fresh_cache(settings):
    # Buyers ML did not know are remembered in the cache for a day: a namespace per test.
    use_fresh_cache(settings)


def stamp(moment: dt) -> str:
    """ML's date format: local time, millis, an offset (§0)."""
    return moment.isoformat(timespec="milliseconds")


def question_json(n: int, *, seller_id: int, item: int | None = None, buyer: int | None = None) -> dict:
    """Question `n` of §4.3 (the fixture's shape): the higher `n`, the newer."""
    body = copy.deepcopy(load_fixture("questions_search")["questions"][0])
    body.update(
        id=QUESTION_BASE + n,
        seller_id=seller_id,
        item_id=f"MLB{ITEM_BASE + (n if item is None else item)}",
        text=f"Pergunta {n}: tem em azul?",
        date_created=stamp(START + timedelta(minutes=n)),
    )
    body["from"] = {"id": BUYER_BASE + (n if buyer is None else buyer)}
    return body


def claim_json(n: int, *, seller_id: int, **fields) -> dict:
    """Claim `n` of the §4.4 search (the fixture's shape), opened `n` hours after START."""
    body = copy.deepcopy(load_fixture("claims_search")["data"][0])
    opened = START + timedelta(hours=n)
    body.update(
        id=CLAIM_BASE + n,
        resource_id=ORDER_BASE + n,
        date_created=stamp(opened),
        last_updated=stamp(opened + timedelta(minutes=5)),
        site_id="MLB",
    )
    body["players"][1]["user_id"] = seller_id
    body.update(fields)
    return body


def query_of(call_or_request) -> dict:
    """The query string of a recorded call (or of a request a callback got), one value a key."""
    url = getattr(call_or_request, "request", call_or_request).url
    return {key: values[0] for key, values in parse_qs(urlsplit(url).query).items()}


def path_of(call) -> str:
    return urlsplit(call.request.url).path


class FakeDesk:
    """One seller's desk as ML keeps it, served through `responses` callbacks.

    `questions` and `claims` map ML ids to their JSON (every status: the searches list the
    UNANSWERED / opened ones, `GET /questions/{id}` any); `details` the claims' `/detail`;
    `titles` the items ML knows (any other id is a 404 entry of the multiget); `nicknames`
    the buyers with a public profile (any other id: 404). `rejected` is a token ML now
    answers 401 for.
    """

    def __init__(self, ml, account, *, questions=0, claims=0, buyers=None, products=12, orders=5):
        self.seller_id = account.ml_user_id
        self.questions = {}
        self.claims = {}
        self.details = {}
        self.titles = {}
        self.nicknames = {}
        self.rejected = None
        for n in range(questions):
            self.ask(n, buyer=None if buyers is None else n % buyers)
        for n in range(claims):
            self.open_claim(n)
        ml.add(responses.GET, COUNT_URLS["products"], json={"paging": {"total": products}, "results": []})
        ml.add_callback(responses.GET, COUNT_URLS["orders"], callback=orders_search(orders))
        routes = [
            (COUNT_URLS["questions"], self._questions_search),
            (re.compile(re.escape(API) + r"/questions/(\d+)(\?.*)?$"), self._question),
            (COUNT_URLS["claims"], self._claims_search),
            (re.compile(re.escape(API) + r"/post-purchase/v1/claims/(\d+)/detail(\?.*)?$"), self._detail),
            (re.compile(re.escape(API) + r"/items(\?.*)?$"), self._items),
            (re.compile(re.escape(API) + r"/users/(\d+)(\?.*)?$"), self._user),
        ]
        for url, callback in routes:
            ml.add_callback(responses.GET, url, callback=self._guarded(callback))

    # -- ML's side changes

    def ask(self, n: int, *, item: int | None = None, buyer: int | None = None) -> dict:
        body = question_json(n, seller_id=self.seller_id, item=item, buyer=buyer)
        self.questions[body["id"]] = body
        self.titles.setdefault(body["item_id"], f"Camiseta {body['item_id']}")
        self.nicknames.setdefault(body["from"]["id"], f"COMPRADOR{body['from']['id'] % 100000:05d}")
        return body

    def answer(self, n: int) -> None:
        question = self.questions[QUESTION_BASE + n]
        question["status"] = "ANSWERED"
        question["answer"] = {"text": "Temos sim!", "status": "ACTIVE", "date_created": stamp(START)}

    def open_claim(self, n: int, **fields) -> dict:
        body = claim_json(n, seller_id=self.seller_id, **fields)
        self.claims[body["id"]] = body
        detail = load_fixture("claim_detail")
        detail["due_date"] = stamp(START + timedelta(days=3, hours=n))
        detail["action_responsible"] = ("seller", "buyer", "mediator")[n % 3]
        self.details[body["id"]] = detail
        return body

    def question_id(self, n: int) -> int:
        return QUESTION_BASE + n

    # -- what ML answers

    def _guarded(self, callback):
        def answer(request):
            if self.rejected and request.headers.get("Authorization") == f"Bearer {self.rejected}":
                return (401, {}, json.dumps(ml_error("invalid_token")))
            status, body = callback(request)
            return (status, {"Content-Type": "application/json"}, json.dumps(body))

        return answer

    def _questions_search(self, request):
        query = query_of(request)
        unanswered = sorted(
            (q for q in self.questions.values() if q["status"] == "UNANSWERED"),
            key=lambda q: (q["date_created"], q["id"]),
            reverse=query.get("sort_types") == "DESC",
        )
        offset, limit = int(query.get("offset", 0)), int(query.get("limit", 50))
        return 200, {
            "total": len(unanswered),
            "limit": limit,
            "questions": unanswered[offset : offset + limit],
        }

    def _question(self, request):
        question_id = int(re.search(r"/questions/(\d+)", request.url).group(1))
        if question_id not in self.questions:
            message = f"Question {question_id} not found."
            return 404, {"message": message, "error": "not_found", "status": 404, "cause": []}
        return 200, self.questions[question_id]

    def _claims_search(self, request):
        query = query_of(request)
        opened = sorted(
            (c for c in self.claims.values() if c["status"] == "opened"), key=lambda c: c["date_created"]
        )
        offset, limit = int(query.get("offset", 0)), min(int(query.get("limit", 30)), 100)
        return 200, {
            "paging": {"total": len(opened), "offset": offset, "limit": limit},
            "data": opened[offset : offset + limit],
        }

    def _detail(self, request):
        return 200, self.details[int(re.search(r"/claims/(\d+)/detail", request.url).group(1))]

    def _items(self, request):
        entries = []
        template = load_fixture("items_multiget")
        for item_id in query_of(request)["ids"].split(","):
            if item_id in self.titles:
                entry = copy.deepcopy(template[0])
                entry["body"].update(id=item_id, title=self.titles[item_id])
            else:
                entry = copy.deepcopy(template[1])
                entry["body"]["message"] = f"Item with id {item_id} not found"
            entries.append(entry)
        return 200, entries

    def _user(self, request):
        user_id = int(re.search(r"/users/(\d+)", request.url).group(1))
        if user_id == self.seller_id:  # the seller's own profile: the day's reputation
            return 200, reputation_json(user_id)
        if user_id not in self.nicknames:
            return 404, {"message": "user not found", "error": "not_found", "status": 404, "cause": []}
        return 200, load_fixture("users_public") | {"id": user_id, "nickname": self.nicknames[user_id]}


def calls_to(ml, pattern: str, since: int = 0) -> list:
    """The calls after the first `since` whose path matches `pattern` (a regex)."""
    return [call for call in list(ml.calls)[since:] if re.fullmatch(pattern, path_of(call))]


def open_questions(account) -> list[Question]:
    return list(Question.objects.filter(account=account, status="UNANSWERED").order_by("date_created"))


def synced(account) -> MLAccount:
    result = engine.sync_account(account.pk)
    assert result.ok, result.error
    return MLAccount.objects.get(pk=account.pk)


# --- questions: the first sync ----------------------------------------------------------------------


def test_a_first_sync_pages_through_every_unanswered_question(ml_account, ml):
    desk = FakeDesk(ml, ml_account, questions=120)

    account = synced(ml_account)

    searches = calls_to(ml, "/questions/search")
    base = {
        "seller_id": str(ml_account.ml_user_id),
        "status": "UNANSWERED",
        "api_version": "4",
        "sort_fields": "date_created",
        "limit": "50",
    }
    assert [query_of(call) for call in searches] == [
        base | {"sort_types": "DESC", "offset": "0"},
        base | {"sort_types": "ASC", "offset": "0"},
        base | {"sort_types": "ASC", "offset": "50"},
        base | {"sort_types": "ASC", "offset": "100"},
    ]
    assert account.cached_questions == 120
    assert account.questions_scanned_at is not None
    mirrored = open_questions(ml_account)
    assert [q.id for q in mirrored] == [desk.question_id(n) for n in range(120)]
    for n, question in enumerate(mirrored):
        assert question.item_id == f"MLB{ITEM_BASE + n}"
        assert question.buyer_id == BUYER_BASE + n
        assert question.date_created == START + timedelta(minutes=n)
        assert question.text == f"Pergunta {n}: tem em azul?"
        assert question.answered_by is None and question.seen_at is not None
    # Every call carried the account's token in the header only (§2).
    for call in ml.calls:
        assert call.request.headers["Authorization"] == f"Bearer {ml_account.access_token}"
        assert ml_account.access_token not in call.request.url


def test_a_first_mirror_of_1000_questions_costs_86_calls(user, ml_settings):
    """The budget of issue 14: 1,000 open questions on 1,000 distinct items, under 100 calls.

    1 listings count + 1 orders page (the orders mirror's first import, which then counts
    them) + 21 question pages (the newest, then 20 oldest-first pages of 50) + 1 claims page
    + 2 claim details + 50 multigets of 20 titles + 10 buyers' nicknames = 86, and the day's
    reputation (1), against the sandbox (which counts the requests it served as well).
    """
    seller = sandbox.DemoSeller(
        7_000_000_002, "MIL_PERGUNTAS", "mil@testuser.com", "Mil", "Perguntas", "MLB", 1000, 10, 1000, 2
    )
    state = sandbox.SandboxState(sellers=[*sandbox.DEMO_SELLERS, seller])
    with sandbox.start_sandbox(port=0, state=state) as server:
        ml_settings.ML_API_URL = server.url
        pair = state.mint(seller.id)
        account = MLAccountFactory(owner=user, ml_user_id=seller.id, access_token=pair["access_token"])
        state.reset_stats()

        first = engine.sync_account(account.pk)
        served = state.stats()["by_kind"]
        state.reset_stats()
        second = engine.sync_account(account.pk)
        served_again = state.stats()["by_kind"]

    assert first.ok and second.ok
    assert first.ml_calls == 86 + 1
    assert {kind: n for kind, n in served.items() if n} == {
        "items": 1,
        "orders": 1,
        "questions": 21,
        "claims": 1,
        "claims_get": 2,
        "items_get": 50,
        "users": 10 + 1,
    }
    account.refresh_from_db()
    assert (account.cached_questions, account.cached_claims) == (1000, 2)
    assert Question.objects.filter(account=account, status="UNANSWERED").count() == 1000
    assert Question.objects.filter(account=account).values("item_id").distinct().count() == 1000
    assert ListingItem.objects.exclude(title="").count() == 1000
    # The twenty oldest questions' buyers (ten a sync), with the sandbox's public profiles.
    named = Question.objects.filter(account=account).exclude(buyer_nickname="").order_by("date_created")
    assert [q.buyer_nickname for q in named] == [f"COMPRADOR{q.buyer_id % 100000:05d}" for q in named]
    oldest = Question.objects.filter(account=account).order_by("date_created")[:20]
    assert [q.id for q in named] == [q.id for q in oldest]
    assert list(Claim.objects.filter(account=account).values_list("due_date", flat=True)).count(None) == 0
    # The second sync: one page of each list and the two counts; titles are cached, the next
    # ten buyers are looked up (ten a run until every one is known).
    assert second.ml_calls == 14
    assert {kind: n for kind, n in served_again.items() if n} == {
        "items": 1,
        "orders": 1,
        "questions": 1,
        "claims": 1,
        "users": 10,
    }


# --- questions: later syncs ------------------------------------------------------------------------


@pytest.mark.parametrize("questions", [3, 60])
def test_a_second_sync_when_nothing_changed_costs_one_call_per_mirror(ml_account, ml, questions):
    FakeDesk(ml, ml_account, questions=questions, claims=1, buyers=5)
    synced(ml_account)
    before = len(ml.calls)

    result = engine.sync_account(ml_account.pk)

    assert result.ok and result.ml_calls == 4
    assert sorted(path_of(call) for call in list(ml.calls)[before:]) == sorted(
        [
            f"/users/{ml_account.ml_user_id}/items/search",
            "/orders/search",
            "/questions/search",
            "/post-purchase/v1/claims/search",
        ]
    )
    assert query_of(calls_to(ml, "/questions/search", before)[0])["sort_types"] == "DESC"
    account = MLAccount.objects.get(pk=ml_account.pk)
    assert (account.cached_questions, account.cached_claims) == (questions, 1)
    assert len(open_questions(ml_account)) == questions


def test_a_question_answered_at_ml_leaves_the_mirror_and_a_new_one_appears(ml_account, ml):
    desk = FakeDesk(ml, ml_account, questions=60, buyers=5)
    synced(ml_account)
    # At ML: an old question (far from the newest page) is answered, a buyer asks another.
    desk.answer(3)
    desk.ask(100, buyer=1)
    before = len(ml.calls)

    account = synced(ml_account)

    # ML's total (60) and the mirror's (60 and the new one) disagree: a scan, oldest first,
    # and what it did not see leaves.
    searches = [query_of(call) for call in calls_to(ml, "/questions/search", before)]
    assert [(q["sort_types"], q["offset"]) for q in searches] == [("DESC", "0"), ("ASC", "0"), ("ASC", "50")]
    ids = {q.id for q in open_questions(ml_account)}
    assert desk.question_id(3) not in ids
    assert desk.question_id(100) in ids
    assert len(ids) == account.cached_questions == 60
    # The new question's item is the only title asked for.
    items = calls_to(ml, "/items", before)
    assert [query_of(call)["ids"] for call in items] == [f"MLB{ITEM_BASE + 100}"]


def test_a_short_list_is_the_whole_truth_without_a_scan(ml_account, ml):
    desk = FakeDesk(ml, ml_account, questions=3)
    synced(ml_account)
    desk.answer(0)
    before = len(ml.calls)

    account = synced(ml_account)

    assert len(calls_to(ml, "/questions/search", before)) == 1
    assert [q.id for q in open_questions(ml_account)] == [desk.question_id(1), desk.question_id(2)]
    assert account.cached_questions == 2


def test_the_list_is_scanned_again_after_six_hours_even_when_the_total_agrees(ml_account, ml):
    desk = FakeDesk(ml, ml_account, questions=60, buyers=5)
    synced(ml_account)
    # One answered and one asked: the total is the same, and the new one is on the newest page,
    # but the old one stays in the mirror until a scan.
    desk.answer(3)
    desk.ask(100, buyer=1)
    MLAccount.objects.filter(pk=ml_account.pk).update(
        questions_scanned_at=dj_timezone.now() - mirrors.QUESTIONS_FULL_SCAN
    )
    before = len(ml.calls)

    synced(ml_account)

    assert len(calls_to(ml, "/questions/search", before)) == 3
    assert desk.question_id(3) not in {q.id for q in open_questions(ml_account)}


def test_a_malformed_question_is_skipped_not_a_crash(ml_account, ml):
    FakeDesk(ml, ml_account)
    good = question_json(1, seller_id=ml_account.ml_user_id)
    no_id = question_json(2, seller_id=ml_account.ml_user_id) | {"id": None}
    bad_date = question_json(3, seller_id=ml_account.ml_user_id) | {"date_created": "yesterday"}
    no_date = {
        k: v for k, v in question_json(4, seller_id=ml_account.ml_user_id).items() if k != "date_created"
    }
    ml.replace(
        responses.GET,
        COUNT_URLS["questions"],
        json={"total": 4, "questions": [no_id, good, bad_date, no_date]},
    )

    account = synced(ml_account)

    assert [q.id for q in open_questions(ml_account)] == [good["id"]]
    assert account.cached_questions == 4  # ML's count, as ML gives it


def test_a_questions_answer_without_a_total_fails_the_sync_and_keeps_the_mirror(ml_account, ml):
    FakeDesk(ml, ml_account, questions=3, claims=1)
    account = synced(ml_account)
    before = list(Question.objects.values_list("id", "status", "seen_at"))
    ml.replace(
        responses.GET,
        COUNT_URLS["questions"],
        json={"questions": [question_json(9, seller_id=account.ml_user_id)]},
    )

    result = engine.sync_account(account.pk)

    assert result.outcome == engine.Outcome.FAILED
    assert isinstance(result.error, MLBadResponse)
    assert AccountEvent.objects.get(account=account).kind == "bad_response"
    after = MLAccount.objects.get(pk=account.pk)
    assert (after.cached_questions, after.cached_claims, after.cached_at) == (3, 1, account.cached_at)
    assert (after.last_sync_status, after.sync_started_at) == ("failed", None)
    assert list(Question.objects.values_list("id", "status", "seen_at")) == before
    assert Claim.objects.filter(account=account).count() == 1


# --- claims ----------------------------------------------------------------------------------------


def test_claims_are_stored_with_their_detail(ml_account, ml):
    FakeDesk(ml, ml_account, claims=2)

    account = synced(ml_account)

    search = calls_to(ml, "/post-purchase/v1/claims/search")
    assert [query_of(call) for call in search] == [
        {
            "players.role": "respondent",
            "players.user_id": str(ml_account.ml_user_id),
            "status": "opened",
            "sort": "date_created:asc",
            "offset": "0",
            "limit": "100",
        }
    ]
    assert sorted(path_of(call) for call in calls_to(ml, r"/post-purchase/v1/claims/\d+/detail")) == [
        f"/post-purchase/v1/claims/{CLAIM_BASE}/detail",
        f"/post-purchase/v1/claims/{CLAIM_BASE + 1}/detail",
    ]
    assert account.cached_claims == 2
    claims = list(Claim.objects.filter(account=ml_account).order_by("id"))
    assert [c.id for c in claims] == [CLAIM_BASE, CLAIM_BASE + 1]
    for n, claim in enumerate(claims):
        assert (claim.type, claim.stage, claim.status, claim.reason_id) == (
            "mediations",
            "dispute",
            "opened",
            "PDD9528",
        )
        assert (claim.resource, claim.resource_id, claim.order_id) == (
            "order",
            ORDER_BASE + n,
            ORDER_BASE + n,
        )
        assert claim.date_created == START + timedelta(hours=n)
        assert claim.last_updated == START + timedelta(hours=n, minutes=5)
        assert claim.due_date == START + timedelta(days=3, hours=n)
        assert claim.action_responsible == ("seller", "buyer")[n]
        assert claim.detail_for == claim.last_updated


def test_a_claims_detail_is_read_again_only_when_ml_updated_it(ml_account, ml):
    desk = FakeDesk(ml, ml_account, claims=3)
    synced(ml_account)
    details = r"/post-purchase/v1/claims/\d+/detail"
    assert len(calls_to(ml, details)) == 3

    before = len(ml.calls)
    synced(ml_account)
    assert calls_to(ml, details, before) == []

    # ML moved one: the buyer answered, now the seller must act by another date.
    moved = desk.claims[CLAIM_BASE + 1]
    moved["last_updated"] = stamp(START + timedelta(days=1))
    moved["stage"] = "claim"
    desk.details[CLAIM_BASE + 1] |= {
        "action_responsible": "seller",
        "due_date": stamp(START + timedelta(days=5)),
    }
    before = len(ml.calls)
    synced(ml_account)

    assert [path_of(call) for call in calls_to(ml, details, before)] == [
        f"/post-purchase/v1/claims/{CLAIM_BASE + 1}/detail"
    ]
    claim = Claim.objects.get(pk=CLAIM_BASE + 1)
    assert (claim.stage, claim.action_responsible) == ("claim", "seller")
    assert claim.due_date == START + timedelta(days=5)
    assert claim.last_updated == claim.detail_for == START + timedelta(days=1)


def test_a_claim_without_last_updated_has_its_detail_read_once(ml_account, ml):
    FakeDesk(ml, ml_account).open_claim(0, last_updated=None)
    synced(ml_account)
    before = len(ml.calls)

    synced(ml_account)

    assert calls_to(ml, r"/post-purchase/v1/claims/\d+/detail", before) == []
    assert Claim.objects.get().due_date == START + timedelta(days=3)


def test_a_claim_no_longer_listed_leaves_the_mirror(ml_account, ml):
    desk = FakeDesk(ml, ml_account, claims=2)
    synced(ml_account)
    desk.claims[CLAIM_BASE]["status"] = "closed"

    account = synced(ml_account)

    assert list(Claim.objects.values_list("id", flat=True)) == [CLAIM_BASE + 1]
    assert account.cached_claims == 1


def test_a_full_page_of_claims_reads_the_next_and_details_wait_for_the_next_run(ml_account, ml):
    FakeDesk(ml, ml_account, claims=130)

    account = synced(ml_account)

    pages = [query_of(call)["offset"] for call in calls_to(ml, "/post-purchase/v1/claims/search")]
    assert pages == ["0", "100"]
    assert account.cached_claims == Claim.objects.count() == 130
    details = r"/post-purchase/v1/claims/\d+/detail"
    assert len(calls_to(ml, details)) == mirrors.CLAIM_DETAILS_PER_RUN
    before = len(ml.calls)
    synced(ml_account)
    assert len(calls_to(ml, details, before)) == mirrors.CLAIM_DETAILS_PER_RUN
    before = len(ml.calls)
    synced(ml_account)
    assert len(calls_to(ml, details, before)) == 130 - 2 * mirrors.CLAIM_DETAILS_PER_RUN
    assert not Claim.objects.filter(detail_for=None).exists()


# --- item titles and buyers -------------------------------------------------------------------------


def test_item_titles_come_20_ids_a_call_and_an_unknown_item_is_not_asked_again(ml_account, ml):
    desk = FakeDesk(ml, ml_account, questions=45, buyers=1)
    gone = f"MLB{ITEM_BASE + 7}"
    del desk.titles[gone]  # the item of question 7 was deleted at ML

    synced(ml_account)

    items = calls_to(ml, "/items")
    asked = [query_of(call)["ids"].split(",") for call in items]
    assert [len(ids) for ids in asked] == [20, 20, 5]
    assert sorted(i for ids in asked for i in ids) == sorted(f"MLB{ITEM_BASE + n}" for n in range(45))
    assert {query_of(call)["attributes"] for call in items} == {
        "id,title,thumbnail,secure_thumbnail,permalink"
    }
    listing = ListingItem.objects.get(pk=f"MLB{ITEM_BASE + 3}")
    assert listing.title == f"Camiseta MLB{ITEM_BASE + 3}"
    assert listing.thumbnail.startswith("https://") and listing.permalink.startswith("https://")
    unknown = ListingItem.objects.get(pk=gone)
    assert (unknown.title, unknown.thumbnail, unknown.permalink) == ("", "", "")
    assert ListingItem.objects.count() == 45

    # Within the cache window nothing is asked again, the unknown item neither.
    before = len(ml.calls)
    synced(ml_account)
    assert calls_to(ml, "/items", before) == []

    # Past it (ITEM_CACHE_DAYS), the stale titles are read again.
    ListingItem.objects.filter(pk__in=[gone, f"MLB{ITEM_BASE + 3}"]).update(
        fetched_at=dj_timezone.now() - timedelta(days=mirrors.ITEM_CACHE_DAYS, minutes=1)
    )
    before = len(ml.calls)
    synced(ml_account)
    assert [sorted(query_of(call)["ids"].split(",")) for call in calls_to(ml, "/items", before)] == [
        sorted([f"MLB{ITEM_BASE + 3}", gone])
    ]


def test_buyers_nicknames_are_looked_up_ten_a_run_and_misses_are_remembered(ml_account, ml):
    desk = FakeDesk(ml, ml_account, questions=14)
    unknown = BUYER_BASE + 0
    del desk.nicknames[unknown]  # the oldest question's buyer has no public profile

    synced(ml_account)

    own = f"/users/{ml_account.ml_user_id}"  # the seller's profile: the day's reputation
    users = [path_of(call) for call in calls_to(ml, r"/users/\d+") if path_of(call) != own]
    assert users == [f"/users/{BUYER_BASE + n}" for n in range(10)]  # oldest questions first
    named = dict(Question.objects.exclude(buyer_nickname="").values_list("buyer_id", "buyer_nickname"))
    assert named == {BUYER_BASE + n: f"COMPRADOR{(BUYER_BASE + n) % 100000:05d}" for n in range(1, 10)}

    before = len(ml.calls)
    synced(ml_account)
    # The other four; the buyer ML did not know is not asked again today.
    assert [path_of(call) for call in calls_to(ml, r"/users/\d+", before)] == [
        f"/users/{BUYER_BASE + n}" for n in range(10, 14)
    ]
    before = len(ml.calls)
    synced(ml_account)
    assert calls_to(ml, r"/users/\d+", before) == []


# --- notifications ----------------------------------------------------------------------------------


@pytest.mark.parametrize("at_ml", ["answered", "gone"])
def test_a_notification_naming_an_old_question_gone_at_ml_reads_only_that_question(ml_account, ml, at_ml):
    desk = FakeDesk(ml, ml_account, questions=60, buyers=5)
    synced(ml_account)
    # At ML, far from the newest page: answered, or deleted with its listing (a 404).
    if at_ml == "answered":
        desk.answer(3)
    else:
        del desk.questions[desk.question_id(3)]
    row = stored(ml_account, "questions", resource=f"/questions/{desk.question_id(3)}")
    before = len(ml.calls)

    result = notifications.process_account(ml_account.pk)

    asked = list(ml.calls)[before:]
    assert [path_of(call) for call in asked] == ["/questions/search", f"/questions/{desk.question_id(3)}"]
    assert query_of(asked[0])["sort_types"] == "DESC"
    assert query_of(asked[1]) == {"api_version": "4"}
    assert result.ml_calls == 2 and dict(result.outcomes) == {"done": 1}
    ids = {q.id for q in open_questions(ml_account)}
    assert desk.question_id(3) not in ids and len(ids) == 59
    assert not Question.objects.filter(pk=desk.question_id(3)).exists()
    account = MLAccount.objects.get(pk=ml_account.pk)
    assert account.cached_questions == 59  # ML's total
    row.refresh_from_db()
    assert row.status == "done"


def test_a_notification_naming_a_question_on_the_newest_page_reads_it_there(ml_account, ml):
    desk = FakeDesk(ml, ml_account, questions=60, buyers=5)
    synced(ml_account)
    desk.ask(100, buyer=2)
    stored(ml_account, "questions", resource=f"/questions/{desk.question_id(100)}")
    before = len(ml.calls)

    notifications.process_account(ml_account.pk)

    # The new question is on the newest page: no scan, no lookup; its item's title is read.
    # Buyers' nicknames are left to the account's next sync: no /users call here.
    assert [path_of(call) for call in list(ml.calls)[before:]] == ["/questions/search", "/items"]
    question = Question.objects.get(pk=desk.question_id(100))
    assert question.status == "UNANSWERED" and question.buyer_nickname == ""
    assert MLAccount.objects.get(pk=ml_account.pk).cached_questions == 61

    # The sync fills it in, with no call either: the buyer asked before, so is known.
    before = len(ml.calls)
    assert engine.sync_account(ml_account.pk).ok
    paths = [path_of(call) for call in list(ml.calls)[before:]]
    assert not [path for path in paths if re.fullmatch(r"/users/\d+", path)], paths
    question.refresh_from_db()
    assert question.buyer_nickname and question.buyer_nickname == (
        Question.objects.filter(buyer_id=question.buyer_id).exclude(pk=question.pk).first().buyer_nickname
    )


def test_a_burst_of_named_questions_is_settled_by_a_scan(ml_account, ml):
    desk = FakeDesk(ml, ml_account, questions=80, buyers=5)
    synced(ml_account)
    burst = range(mirrors.NAMED_QUESTIONS_PER_RUN + 1)
    for n in burst:
        desk.answer(n)
        stored(ml_account, "questions", resource=f"/questions/{desk.question_id(n)}")
    before = len(ml.calls)

    notifications.process_account(ml_account.pk)

    # No `GET /questions/{id}`: the newest page, then the scan's two pages.
    asked = [(path_of(call), query_of(call).get("sort_types")) for call in list(ml.calls)[before:]]
    assert asked == [
        ("/questions/search", "DESC"),
        ("/questions/search", "ASC"),
        ("/questions/search", "ASC"),
    ]
    assert len(open_questions(ml_account)) == 80 - len(burst)
    assert MLAccount.objects.get(pk=ml_account.pk).cached_questions == 80 - len(burst)


def test_a_claims_notification_refreshes_the_claims_mirror(ml_account, ml):
    desk = FakeDesk(ml, ml_account, claims=1)
    synced(ml_account)
    desk.open_claim(5)
    stored(ml_account, "post_purchase", resource=f"/post-purchase/v1/claims/{CLAIM_BASE + 5}")
    before = len(ml.calls)

    notifications.process_account(ml_account.pk)

    assert [path_of(call) for call in list(ml.calls)[before:]] == [
        "/post-purchase/v1/claims/search",
        f"/post-purchase/v1/claims/{CLAIM_BASE + 5}/detail",
    ]
    assert sorted(Claim.objects.values_list("id", flat=True)) == [CLAIM_BASE, CLAIM_BASE + 5]
    assert MLAccount.objects.get(pk=ml_account.pk).cached_claims == 2


# --- a token ML stops taking ------------------------------------------------------------------------


def test_a_401_during_the_mirror_renews_the_token_once(ml_account, ml):
    endpoint = RotatingTokenEndpoint(user_id=ml_account.ml_user_id, current_refresh=ml_account.refresh_token)
    endpoint.install(ml)
    desk = FakeDesk(ml, ml_account, questions=3, claims=1)
    desk.rejected = ml_account.access_token  # revoked before its expiry (§1.6)

    account = synced(ml_account)

    assert endpoint.calls == endpoint.issued == 1
    assert account.access_token == endpoint.last_access
    refused = [call for call in ml.calls if call.response.status_code == 401]
    assert [path_of(call) for call in refused] == ["/questions/search"]
    for call in calls_to(ml, r"/(questions/search|items|users/\d+|post-purchase/.*)"):
        if call not in refused:
            assert call.request.headers["Authorization"] == f"Bearer {endpoint.last_access}"
    assert (account.cached_questions, account.cached_claims) == (3, 1)
    assert len(open_questions(ml_account)) == 3 and Claim.objects.count() == 1


# --- what a sync costs the database -----------------------------------------------------------------


def _statements(queries) -> list[str]:
    return [q["sql"] for q in queries.captured_queries if not q["sql"].startswith(("SAVEPOINT", "RELEASE"))]


def test_the_database_cost_of_a_sync_with_a_small_desk(ml_account, ml):
    """A desk of 3 questions (3 items, 3 buyers) and 1 claim, and 5 orders; the empty desk's
    statements are pinned in test_engine_cost.py.

    The first sync: claim; questions (SELECT of the ones answered here that settle, upsert,
    prune); claims (SELECT of the known details, upsert, prune, SELECT of the ones without
    a detail, one UPDATE per detail); titles (SELECT of the missing, upsert); buyers (SELECT
    of the ones without a nickname, SELECT of those known from other questions, one UPDATE
    per nickname read); the orders' (SELECT of what the mirror holds, upsert, the read's
    mark, the count); the reputation (upsert, the day's mark, the alert rule's one SELECT);
    the result; the hour's
    counts snapshot. A quiet sync keeps the claim, the three mirrors' reads and writes, the
    two SELECTs that find nothing to fill, the result and the snapshot.
    """
    FakeDesk(ml, ml_account, questions=3, claims=1)

    with CaptureQueriesContext(connection) as first:
        assert engine.sync_account(ml_account.pk).ok
    with CaptureQueriesContext(connection) as quiet:
        assert engine.sync_account(ml_account.pk).ok

    assert len(_statements(first)) == 25, _statements(first)
    assert len(_statements(quiet)) == 15, _statements(quiet)
    assert [sql.split(" ", 1)[0] for sql in _statements(quiet)] == [
        "UPDATE",  # the claim
        "SELECT",  # the orders the mirror holds of those listed
        "INSERT",  # the orders' upsert
        "UPDATE",  # the orders read's mark
        "SELECT",  # the recent orders count
        "SELECT",  # questions answered here, settling
        "INSERT",  # the questions' upsert
        "DELETE",  # the questions ML no longer lists
        "SELECT",  # the claims' details as read
        "INSERT",  # the claims' upsert
        "DELETE",  # the claims ML no longer lists
        "SELECT",  # titles to read: none
        "SELECT",  # nicknames to read: none
        "UPDATE",  # the counts, releasing the claim
        "INSERT",  # the hour's counts snapshot
    ]
