"""The seller's desk pages (issue 14): the questions queue, answers, open claims, desk settings.

The cast: `user` (Alice) owns `ml_account` in her personal workspace and the agency
"Agência Sol"; there Bob operates, Victor only views, Maria manages and Sam operates
limited to one of its two accounts. `other_user` (Charlie) is the outsider. Mercado Livre
is mocked at the HTTP boundary: every answer test checks the request ML received, the page
or the message, and the mirror and the count left in the database. Times are relative to
`timezone.now()` with margins of hours.
"""

import html
import json
import re
import uuid
from datetime import timedelta

import pytest
import requests
import responses
from django.conf import settings
from django.contrib.messages import get_messages
from django.core.cache import cache
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts.models import Claim, ListingItem, MLAccount, Question, QuestionStatus, SavedReply, Workspace
from tests.desk_helpers import ANSWERS_URL, ask, claim, ml_accepts, ml_question
from tests.factories import MLAccountFactory, UserFactory, WorkspaceFactory, member
from tests.mlmock import API, TOKEN_URL

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("ml_settings")]

QUESTIONS = reverse("dashboard:questions")
CLAIMS = reverse("dashboard:claims")
LOGIN = reverse("account_login")
# The session, the user, the accounts (the filter's choices), the user's workspaces (the
# header's switcher), the page of questions (with its account, workspace, item and the
# caller's role), their count, the saved replies of the page's workspaces.
QUESTIONS_QUERIES = 7
# The session, the user, the accounts, the workspaces, the page of claims and their count.
CLAIMS_QUERIES = 6


@pytest.fixture(autouse=True)
def _fresh_throttles(settings):
    # Answers count against the per-user ML action limit, kept in the cache: every test
    # starts from zero. Redis (CI) is shared, so a fresh key prefix there, never FLUSHDB.
    default = settings.CACHES["default"]
    if "redis" in default["BACKEND"].lower():
        settings.CACHES = {
            **settings.CACHES,
            "default": {**default, "KEY_PREFIX": f"desk-{uuid.uuid4().hex}"},
        }
    else:
        cache.clear()


def ml_refuses_as_answered(ml, question_id):
    ml.post(
        ANSWERS_URL,
        status=400,
        json={"error": "not_unanswered_question", "message": "answered", "status": 400, "cause": []},
    )
    ml.get(f"{API}/questions/{question_id}", json=ml_question(question_id, "ANSWERED"))


def answer_url(question) -> str:
    return reverse("dashboard:question_answer", args=[question.pk])


def settings_url(workspace) -> str:
    return reverse("dashboard:desk_settings", args=[workspace.pk])


def reply_url(reply) -> str:
    return reverse("dashboard:saved_reply_edit", args=[reply.workspace_id, reply.pk])


def english(client) -> Client:
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    return client


def signed_in(user) -> Client:
    client = english(Client())
    client.force_login(user)
    return client


def messages_after(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def page(client, path, status=200) -> str:
    response = client.get(path)
    assert response.status_code == status, response.content[:500]
    return response.content.decode()


def question_ids(body: str) -> list[int]:
    return [
        int(pk) for pk in re.findall(r'<li class="panel desk-item question [^"]*" id="question-(\d+)"', body)
    ]


def claim_ids(body: str) -> list[int]:
    return [int(pk) for pk in re.findall(r'<tr id="claim-(\d+)"', body)]


def answer_box(body: str, question) -> str | None:
    """The text in the question's answer box, None without one."""
    found = re.search(rf'<textarea id="answer-{question.pk}"[^>]*>(.*?)</textarea>', body, re.S)
    return html.unescape(found.group(1)) if found else None


def reply_titles(body: str) -> list[str]:
    return [html.unescape(t) for t in re.findall(r'<input id="title-\d+" name="title" value="([^"]*)"', body)]


@pytest.fixture
def alice(client_user):
    return english(client_user)


@pytest.fixture
def charlie(other_user):
    return signed_in(other_user)


@pytest.fixture
def agency(user):
    """Alice's shared workspace with two accounts and a member of every kind."""
    workspace = WorkspaceFactory(name="Agência Sol")
    member(workspace, user, "owner")
    sol = MLAccountFactory(
        workspace=workspace, account_name="Loja Sol", nickname="LOJA_SOL", cached_questions=5
    )
    lua = MLAccountFactory(
        workspace=workspace, account_name="Loja Lua", nickname="LOJA_LUA", cached_questions=3
    )
    team = {"workspace": workspace, "sol": sol, "lua": lua}
    for name, role, scope in [
        ("bob", "operator", None),
        ("victor", "viewer", None),
        ("maria", "manager", None),
        ("sam", "operator", [sol]),
    ]:
        person = UserFactory(email=f"{name}@example.com")
        member(workspace, person, role, accounts=scope)
        team[name] = signed_in(person)
    return team


# --- anonymous -----------------------------------------------------------------------------------


def test_anonymous_is_sent_to_login_and_nothing_happens(client, ml, ml_account):
    question = ask(ml_account)
    workspace = ml_account.workspace
    reply = SavedReply.objects.create(workspace=workspace, title="Oi", text="Olá!")
    for path in (QUESTIONS, CLAIMS, settings_url(workspace)):
        response = client.get(path)
        assert response.status_code == 302, path
        assert response["Location"].startswith(LOGIN + "?next="), path
    posts = [
        (answer_url(question), {"text": "Sim"}),
        (settings_url(workspace), {"action": "target", "minutes": "30"}),
        (settings_url(workspace), {"title": "Nova", "text": "Oi"}),
        (reply_url(reply), {"action": "delete"}),
        (reply_url(reply), {"title": "Mudou", "text": "Mudou"}),
    ]
    for path, data in posts:
        response = client.post(path, data)
        assert response.status_code == 302, path
        assert response["Location"].startswith(LOGIN + "?next="), path
    assert len(ml.calls) == 0
    question.refresh_from_db()
    assert question.status == QuestionStatus.UNANSWERED
    assert list(SavedReply.objects.values_list("title", "text")) == [("Oi", "Olá!")]
    assert Workspace.objects.get(pk=workspace.pk).response_target_minutes == workspace.response_target_minutes


# --- the outsider --------------------------------------------------------------------------------


def test_outsider_sees_none_of_the_questions_or_claims(charlie, ml_account):
    question = ask(ml_account, text="Pergunta só da Alice")
    dispute = claim(ml_account, due_in=timedelta(days=1))

    questions = page(charlie, QUESTIONS)
    claims = page(charlie, CLAIMS)

    assert 'id="queue-empty"' in questions
    assert "0 questions waiting for an answer" in questions
    assert f"question-{question.pk}" not in questions and "Pergunta só da Alice" not in questions
    assert ml_account.account_name not in questions
    assert 'id="claims-empty"' in claims
    assert f"claim-{dispute.pk}" not in claims and ml_account.account_name not in claims


@pytest.mark.parametrize("path", [QUESTIONS, CLAIMS])
def test_outsider_filtering_by_someone_elses_account_is_404(charlie, ml_account, path):
    ask(ml_account)
    claim(ml_account)
    assert charlie.get(f"{path}?account={ml_account.pk}").status_code == 404
    assert charlie.get(f"{path}?account={ml_account.pk}&page=2").status_code == 404


@pytest.mark.parametrize("path", [QUESTIONS, CLAIMS])
@pytest.mark.parametrize("account", ["xyz", "4fa743a0-c7f9-410c-9f95-20d9331c34c6", "1' OR 1=1"])
def test_a_malformed_or_unknown_account_filter_is_404(alice, charlie, ml_account, path, account):
    assert alice.get(path, {"account": account}).status_code == 404
    assert charlie.get(path, {"account": account}).status_code == 404


def test_outsider_cannot_answer_someone_elses_question(charlie, ml, ml_account):
    question = ask(ml_account)
    response = charlie.post(answer_url(question), {"text": "Intruso", "next": QUESTIONS})
    assert response.status_code == 404
    assert len(ml.calls) == 0
    question.refresh_from_db()
    assert question.status == QuestionStatus.UNANSWERED and question.answered_by is None


@pytest.mark.parametrize("question_id", ["999999", "abc", "0", "-5", "99999999999999999999999"])
def test_answering_a_question_that_does_not_exist_is_404(alice, ml, ml_account, question_id):
    response = alice.post(reverse("dashboard:question_answer", args=[question_id]), {"text": "Sim"})
    assert response.status_code == 404
    assert len(ml.calls) == 0


def test_outsider_gets_404_for_someone_elses_desk_settings(charlie, ml_account):
    workspace = ml_account.workspace
    reply = SavedReply.objects.create(workspace=workspace, title="Oi", text="Olá!")
    assert charlie.get(settings_url(workspace)).status_code == 404
    assert charlie.post(settings_url(workspace), {"action": "target", "minutes": "30"}).status_code == 404
    assert charlie.post(settings_url(workspace), {"title": "Nova", "text": "Intrusa"}).status_code == 404
    assert charlie.post(reply_url(reply), {"title": "Mudou", "text": "Mudou"}).status_code == 404
    assert charlie.post(reply_url(reply), {"action": "delete"}).status_code == 404
    assert list(SavedReply.objects.values_list("title", "text")) == [("Oi", "Olá!")]
    assert Workspace.objects.get(pk=workspace.pk).response_target_minutes == workspace.response_target_minutes


def test_a_saved_reply_is_reached_only_through_its_own_workspace(alice, agency, ml_account):
    theirs = SavedReply.objects.create(workspace=agency["workspace"], title="Oi", text="Olá!")
    path = reverse("dashboard:saved_reply_edit", args=[ml_account.workspace_id, theirs.pk])
    assert alice.post(path, {"action": "delete"}).status_code == 404
    for reply_id in ("abc", "0", "99999999999999999999999"):
        path = reverse("dashboard:saved_reply_edit", args=[agency["workspace"].pk, reply_id])
        assert alice.post(path, {"action": "delete"}).status_code == 404
    assert SavedReply.objects.filter(pk=theirs.pk).exists()


# --- roles ---------------------------------------------------------------------------------------


def test_a_viewer_reads_the_queue_without_an_answer_box(agency, ml):
    question = ask(agency["sol"])

    body = page(agency["victor"], QUESTIONS)

    assert question_ids(body) == [question.pk]
    assert f'id="read-only-{question.pk}"' in body
    assert "lets you read the questions but not answer them" in body
    assert answer_box(body, question) is None
    assert answer_url(question) not in body


def test_a_viewer_cannot_answer(agency, ml):
    question = ask(agency["sol"])
    response = agency["victor"].post(answer_url(question), {"text": "Sim"})
    assert response.status_code == 403
    assert len(ml.calls) == 0
    question.refresh_from_db()
    assert question.status == QuestionStatus.UNANSWERED
    assert MLAccount.objects.get(pk=agency["sol"].pk).cached_questions == 5


def test_a_viewer_reads_the_desk_settings_but_changes_nothing(agency):
    workspace = agency["workspace"]
    reply = SavedReply.objects.create(workspace=workspace, title="Frete", text="Enviamos em 24 h.")
    victor = agency["victor"]

    body = page(victor, settings_url(workspace))

    assert 'id="target-value"' in body and "within 60 minutes" in body
    assert "Frete" in body and "Enviamos em 24 h." in body
    assert 'id="new-reply"' not in body and 'name="minutes"' not in body
    assert reply_url(reply) not in body
    assert victor.post(settings_url(workspace), {"title": "Nova", "text": "Oi"}).status_code == 403
    assert victor.post(settings_url(workspace), {"action": "target", "minutes": "30"}).status_code == 403
    assert victor.post(reply_url(reply), {"title": "Mudou", "text": "Mudou"}).status_code == 403
    assert victor.post(reply_url(reply), {"action": "delete"}).status_code == 403
    assert list(SavedReply.objects.values_list("title", "text")) == [("Frete", "Enviamos em 24 h.")]
    assert Workspace.objects.get(pk=workspace.pk).response_target_minutes == 60


def test_an_operator_answers_and_adds_replies_but_cannot_change_the_target(agency, ml):
    workspace = agency["workspace"]
    question = ask(agency["sol"])
    bob = agency["bob"]
    ml_accepts(ml, question.pk)

    assert answer_box(page(bob, QUESTIONS), question) == ""
    answered = bob.post(answer_url(question), {"text": "Temos sim!"})
    added = bob.post(settings_url(workspace), {"title": "Frete", "text": "Enviamos em 24 h."})
    target = bob.post(settings_url(workspace), {"action": "target", "minutes": "30"})

    assert answered.status_code == 302 and len(ml.calls) == 1
    assert Question.objects.get(pk=question.pk).status == QuestionStatus.ANSWERED
    assert added.status_code == 302 and added["Location"] == settings_url(workspace)
    assert SavedReply.objects.get(workspace=workspace).title == "Frete"
    assert target.status_code == 403
    assert Workspace.objects.get(pk=workspace.pk).response_target_minutes == 60
    body = page(bob, settings_url(workspace))
    assert 'id="target-value"' in body and 'name="minutes"' not in body and 'id="new-reply"' in body


def test_a_manager_changes_the_target(agency):
    workspace = agency["workspace"]
    maria = agency["maria"]

    response = maria.post(settings_url(workspace), {"action": "target", "minutes": " 30 "})

    assert response.status_code == 302 and response["Location"] == settings_url(workspace)
    assert messages_after(response) == ["Response target saved."]
    assert Workspace.objects.get(pk=workspace.pk).response_target_minutes == 30
    assert 'name="minutes" min="1" max="10080" required value="30"' in page(maria, settings_url(workspace))


@pytest.mark.parametrize("minutes", ["0", "abc", "10081", "-5", "1.5", ""])
def test_an_invalid_target_is_400_and_saves_nothing(agency, minutes):
    workspace = agency["workspace"]

    response = agency["maria"].post(settings_url(workspace), {"action": "target", "minutes": minutes})

    assert response.status_code == 400
    body = response.content.decode()
    assert '<p class="field-error">A whole number of minutes from 1 to 10080.</p>' in body
    assert 'aria-invalid="true"' in body
    assert Workspace.objects.get(pk=workspace.pk).response_target_minutes == 60


def test_a_scoped_member_sees_only_the_questions_of_its_accounts(agency, ml):
    mine = ask(agency["sol"], text="Pergunta da Sol")
    hidden = ask(agency["lua"], text="Pergunta da Lua", age=timedelta(hours=3))
    claim(agency["sol"], claim_id=501)
    claim(agency["lua"], claim_id=502)
    sam = agency["sam"]

    body = page(sam, QUESTIONS)

    assert question_ids(body) == [mine.pk]
    assert "Pergunta da Lua" not in body and "1 question waiting for an answer" in body
    assert 'value="{}"'.format(agency["lua"].pk) not in body  # not among the filter's choices
    assert claim_ids(page(sam, CLAIMS)) == [501]
    assert sam.get(QUESTIONS, {"account": str(agency["lua"].pk)}).status_code == 404
    assert sam.get(CLAIMS, {"account": str(agency["lua"].pk)}).status_code == 404
    assert sam.post(answer_url(hidden), {"text": "Sim"}).status_code == 404
    assert len(ml.calls) == 0
    assert Question.objects.get(pk=hidden.pk).status == QuestionStatus.UNANSWERED


# --- the queue -----------------------------------------------------------------------------------


def test_the_queue_is_oldest_first_across_workspaces(alice, agency, ml_account, other_user):
    newest = ask(ml_account, age=timedelta(minutes=5))
    oldest = ask(agency["lua"], age=timedelta(days=2))
    middle = ask(ml_account, age=timedelta(hours=3))
    second = ask(agency["sol"], age=timedelta(hours=20))
    ask(MLAccountFactory(owner=other_user))  # not Alice's
    ask(ml_account, age=timedelta(days=3), status=QuestionStatus.ANSWERED)

    body = page(alice, QUESTIONS)

    assert question_ids(body) == [oldest.pk, second.pk, middle.pk, newest.pk]
    assert "4 questions waiting for an answer" in body and "(filtered)" not in body
    by_account = page(alice, f"{QUESTIONS}?account={ml_account.pk}")
    assert question_ids(by_account) == [middle.pk, newest.pk]
    assert "2 questions waiting for an answer (filtered)" in by_account
    assert f'<option value="{ml_account.pk}" selected>' in by_account


def test_the_age_filters(alice, ml_account):
    ages = [
        timedelta(minutes=10),
        timedelta(hours=2),
        timedelta(hours=5),
        timedelta(hours=30),
        timedelta(days=4),
    ]
    asked = [ask(ml_account, age=age) for age in ages]
    ids = [q.pk for q in reversed(asked)]  # oldest first

    assert question_ids(page(alice, QUESTIONS)) == ids
    assert question_ids(page(alice, QUESTIONS + "?age=1h")) == ids[:4]
    assert question_ids(page(alice, QUESTIONS + "?age=4h")) == ids[:3]
    assert question_ids(page(alice, QUESTIONS + "?age=24h")) == ids[:2]
    assert question_ids(page(alice, QUESTIONS + "?age=3d")) == ids[:1]
    assert question_ids(page(alice, QUESTIONS + "?age=bogus")) == ids  # an unknown age: no filter
    body = page(alice, QUESTIONS + "?age=4h")
    assert '<option value="4h" selected>' in body and 'id="filter-clear"' in body


def test_late_is_against_each_workspaces_own_target(alice, agency, ml_account):
    Workspace.objects.filter(pk=ml_account.workspace_id).update(response_target_minutes=30)
    Workspace.objects.filter(pk=agency["workspace"].pk).update(response_target_minutes=600)
    late = ask(ml_account, age=timedelta(hours=2))
    in_time = ask(agency["sol"], age=timedelta(hours=2))
    very_late = ask(agency["lua"], age=timedelta(hours=12))

    body = page(alice, QUESTIONS + "?age=late")

    assert question_ids(body) == [very_late.pk, late.pk]
    assert in_time.pk not in question_ids(body)
    assert "2 questions waiting for an answer (filtered)" in body
    assert question_ids(page(alice, f"{QUESTIONS}?age=late&account={agency['sol'].pk}")) == []
    assert 'id="queue-empty"' in page(alice, f"{QUESTIONS}?age=late&account={agency['sol'].pk}")


def test_each_question_shows_its_age_against_the_target(alice, agency):
    Workspace.objects.filter(pk=agency["workspace"].pk).update(response_target_minutes=600)
    ok = ask(agency["sol"], age=timedelta(hours=1))
    soon = ask(agency["sol"], age=timedelta(hours=8))  # past three quarters of 10 h
    late = ask(agency["sol"], age=timedelta(hours=12))

    body = page(alice, QUESTIONS)

    assert f'class="panel desk-item question age-ok" id="question-{ok.pk}"' in body
    assert f'class="panel desk-item question age-soon" id="question-{soon.pk}"' in body
    assert f'class="panel desk-item question age-late" id="question-{late.pk}"' in body
    assert re.search(rf'<span class="age age-late" id="age-{late.pk}">Late: asked', body)
    assert re.search(rf'<span class="age age-soon" id="age-{soon.pk}">Answer soon: asked', body)
    assert re.search(rf'<span class="age age-ok" id="age-{ok.pk}">asked', body)


def test_the_item_title_and_link_come_from_the_listing(alice, ml_account):
    ListingItem.objects.create(
        id="MLB7",
        title="Caneca <azul>",
        permalink="https://produto.mercadolivre.com.br/MLB-7-caneca",
        thumbnail="https://http2.mlstatic.com/D_7.jpg",
        fetched_at=timezone.now(),
    )
    known = ask(ml_account, item_id="MLB7", age=timedelta(hours=2), buyer_nickname="COMPRADOR1")
    unknown = ask(ml_account, item_id="MLB8")

    body = page(alice, QUESTIONS)

    assert (
        '<a href="https://produto.mercadolivre.com.br/MLB-7-caneca" rel="noopener noreferrer" '
        'target="_blank">Caneca &lt;azul&gt;<span class="visually-hidden">'
    ) in body
    assert '<img src="https://http2.mlstatic.com/D_7.jpg"' in body
    # What the saved-reply picker fills in, escaped.
    assert re.search(
        rf'id="question-{known.pk}"\s+data-item-title="Caneca &lt;azul&gt;" data-buyer="COMPRADOR1"', body
    )
    assert "by COMPRADOR1" in body
    item = re.search(rf'id="question-{unknown.pk}".*?<p class="desk-item-title">\s*(.*?)\s*</p>', body, re.S)
    assert item.group(1) == "MLB8"  # never looked up: the item id, no link
    assert (
        f'href="{reverse("dashboard:account", args=[ml_account.pk])}">{ml_account.account_name}</a>' in body
    )


def test_the_queue_pages_by_25_and_the_links_keep_the_filters(alice, ml_account):
    now = timezone.now()
    Question.objects.bulk_create(
        Question(
            id=13_020_000_000 + n,
            account=ml_account,
            item_id="MLB1",
            text=f"Pergunta {n}",
            date_created=now - timedelta(hours=2, minutes=60 - n),
            seen_at=now,
        )
        for n in range(30)
    )
    ids = [13_020_000_000 + n for n in range(30)]
    filtered = f"{QUESTIONS}?account={ml_account.pk}&age=1h"

    first = page(alice, filtered)
    second = page(alice, filtered + "&page=2")

    assert question_ids(first) == ids[:25]
    assert question_ids(second) == ids[25:]
    assert "30 questions waiting for an answer (filtered)" in first
    assert "Page 1 of 2" in first and "Page 2 of 2" in second
    next_link = re.search(r'<a href="([^"]*)" rel="next" id="questions-next">', first).group(1)
    prev_link = re.search(r'<a href="([^"]*)" rel="prev" id="questions-prev">', second).group(1)
    assert html.unescape(next_link) == f"?account={ml_account.pk}&age=1h&page=2"
    assert html.unescape(prev_link) == f"?account={ml_account.pk}&age=1h"
    assert 'id="questions-next"' not in second
    # Each answer box comes back to the page it was sent from.
    assert f'<input type="hidden" name="next" value="{html.escape(filtered + "&page=2")}">' in second
    assert question_ids(page(alice, QUESTIONS + "?page=99")) == ids[25:]  # past the end: the last
    assert question_ids(page(alice, QUESTIONS + "?page=abc")) == ids[:25]


def test_the_count_reads_in_words(alice, ml_account):
    ask(ml_account)
    assert '<p class="page-lead" id="queue-total">1 question waiting for an answer</p>' in page(
        alice, QUESTIONS
    )
    ask(ml_account)
    assert '<p class="page-lead" id="queue-total">2 questions waiting for an answer</p>' in page(
        alice, QUESTIONS
    )


# --- answering -----------------------------------------------------------------------------------


@pytest.fixture
def waiting(ml_account):
    MLAccount.objects.filter(pk=ml_account.pk).update(cached_questions=3)
    return ask(ml_account, buyer_nickname="COMPRADOR1", age=timedelta(hours=2))


def test_an_answer_goes_to_mercado_livre_and_leaves_the_queue(alice, ml, user, ml_account, waiting):
    ml_accepts(ml, waiting.pk)
    back = f"{QUESTIONS}?age=1h"

    response = alice.post(answer_url(waiting), {"text": "  Temos sim, em estoque!  ", "next": back})

    assert response.status_code == 302 and response["Location"] == back
    assert messages_after(response) == [
        "Answer sent to COMPRADOR1 (Loja da Alice). The question left the queue."
    ]
    assert len(ml.calls) == 1
    sent = ml.calls[0].request
    assert sent.method == "POST" and sent.url == ANSWERS_URL
    assert json.loads(sent.body) == {"question_id": waiting.pk, "text": "Temos sim, em estoque!"}
    token = MLAccount.objects.get(pk=ml_account.pk).access_token
    assert sent.headers["Authorization"] == f"Bearer {token}"
    waiting.refresh_from_db()
    assert waiting.status == QuestionStatus.ANSWERED
    assert waiting.answered_by == user and waiting.answer_text == "Temos sim, em estoque!"
    assert MLAccount.objects.get(pk=ml_account.pk).cached_questions == 2
    body = page(alice, QUESTIONS)
    assert waiting.pk not in question_ids(body) and 'id="queue-empty"' in body
    assert len(ml.calls) == 1


@pytest.mark.parametrize(
    "target",
    ["https://evil.example.com/questions/", "//evil.example.com/", "http://testserver.evil.com/", ""],
)
def test_only_a_local_next_is_followed(alice, ml, waiting, target):
    ml_accepts(ml, waiting.pk)
    response = alice.post(answer_url(waiting), {"text": "Sim", "next": target})
    assert response.status_code == 302 and response["Location"] == QUESTIONS


def test_a_saved_reply_is_filled_in_and_sent(alice, ml, ml_account, waiting):
    ListingItem.objects.create(id="MLB1000", title="Caneca azul", fetched_at=timezone.now())
    reply = SavedReply.objects.create(
        workspace=ml_account.workspace,
        title="Estoque",
        text="Olá {buyer_nickname}, a {item_title} está em estoque.",
    )
    ml_accepts(ml, waiting.pk)

    body = page(alice, QUESTIONS)
    response = alice.post(answer_url(waiting), {"text": "  ", "reply": str(reply.pk)})

    assert f'<option value="{reply.pk}">Estoque</option>' in body
    assert response.status_code == 302
    assert json.loads(ml.calls[0].request.body) == {
        "question_id": waiting.pk,
        "text": "Olá COMPRADOR1, a Caneca azul está em estoque.",
    }
    waiting.refresh_from_db()
    assert waiting.answer_text == "Olá COMPRADOR1, a Caneca azul está em estoque."


@pytest.mark.parametrize(
    ("text", "sent"),
    [
        ("Olá {buyer_nickname}, temos {item_title}.", "Olá, temos Caneca."),
        ("Obrigado pela pergunta, {buyer_nickname}!", "Obrigado pela pergunta!"),
        ("{buyer_nickname} {item_title} disponível", "Caneca disponível"),
    ],
)
def test_an_unknown_nickname_is_left_out_of_a_saved_reply(alice, ml, ml_account, text, sent):
    ListingItem.objects.create(id="MLB1000", title="Caneca", fetched_at=timezone.now())
    question = ask(ml_account, buyer_nickname="")
    reply = SavedReply.objects.create(workspace=ml_account.workspace, title="R", text=text)
    ml_accepts(ml, question.pk)

    response = alice.post(answer_url(question), {"text": "", "reply": str(reply.pk)})

    assert json.loads(ml.calls[0].request.body) == {"question_id": question.pk, "text": sent}
    assert messages_after(response) == [
        "Answer sent to the buyer (Loja da Alice). The question left the queue."
    ]


def test_typed_text_wins_over_a_saved_reply(alice, ml, ml_account, waiting):
    reply = SavedReply.objects.create(workspace=ml_account.workspace, title="R", text="Pronta")
    ml_accepts(ml, waiting.pk)
    alice.post(answer_url(waiting), {"text": "Escrita", "reply": str(reply.pk)})
    assert json.loads(ml.calls[0].request.body)["text"] == "Escrita"


def test_a_saved_reply_of_another_workspace_is_not_used(alice, ml, agency, waiting):
    theirs = SavedReply.objects.create(workspace=agency["workspace"], title="R", text="De outro espaço")

    response = alice.post(answer_url(waiting), {"text": "", "reply": str(theirs.pk)})

    assert response.status_code == 302
    assert messages_after(response) == ["Write an answer."]
    assert len(ml.calls) == 0
    assert Question.objects.get(pk=waiting.pk).status == QuestionStatus.UNANSWERED


def test_a_question_already_answered_at_ml_leaves_the_queue_with_a_warning(alice, ml, ml_account, waiting):
    ml_refuses_as_answered(ml, waiting.pk)

    response = alice.post(answer_url(waiting), {"text": "Temos sim!"})

    assert response.status_code == 302 and response["Location"] == QUESTIONS
    [message] = get_messages(response.wsgi_request)
    assert message.level_tag == "warning"
    assert str(message) == (
        "Not sent to COMPRADOR1: This question was already answered (perhaps at Mercado Livre)."
    )
    assert [(c.request.method, c.request.url.split("?")[0]) for c in ml.calls] == [
        ("POST", ANSWERS_URL),
        ("GET", f"{API}/questions/{waiting.pk}"),
    ]
    # Answered at ML, not here: the mirror forgets it.
    assert not Question.objects.filter(pk=waiting.pk).exists()
    assert MLAccount.objects.get(pk=ml_account.pk).cached_questions == 2
    assert waiting.pk not in question_ids(page(alice, QUESTIONS))


def test_a_second_send_of_an_answered_question_changes_nothing(alice, ml, user, ml_account, waiting):
    ml_accepts(ml, waiting.pk)
    alice.post(answer_url(waiting), {"text": "Temos sim!"})
    page(alice, QUESTIONS)  # shows the first message
    ml.replace(
        responses.POST,
        ANSWERS_URL,
        status=400,
        json={"error": "not_unanswered_question", "message": "answered", "status": 400, "cause": []},
    )
    ml.get(f"{API}/questions/{waiting.pk}", json=ml_question(waiting.pk, "ANSWERED"))

    response = alice.post(answer_url(waiting), {"text": "De novo"})

    assert messages_after(response) == [
        "Not sent to COMPRADOR1: This question was already answered (perhaps at Mercado Livre)."
    ]
    waiting.refresh_from_db()
    assert (waiting.status, waiting.answer_text, waiting.answered_by) == (
        QuestionStatus.ANSWERED,
        "Temos sim!",
        user,
    )
    assert MLAccount.objects.get(pk=ml_account.pk).cached_questions == 2  # dropped once


def test_an_account_whose_grant_died_says_to_reconnect(alice, ml, ml_account, waiting):
    ml.post(ANSWERS_URL, status=401, json={"message": "invalid_token", "error": "not_found", "status": 401})
    ml.post(
        TOKEN_URL,
        status=400,
        json={"error": "invalid_grant", "error_description": "used", "status": 400, "cause": []},
    )

    response = alice.post(answer_url(waiting), {"text": "Temos sim!"})

    assert response.status_code == 302 and response["Location"] == QUESTIONS
    assert messages_after(response) == [
        "Mercado Livre no longer accepts this account's authorization, so nothing was sent. "
        "Reconnect the account, then answer again."
    ]
    assert [c.request.url for c in ml.calls] == [ANSWERS_URL, TOKEN_URL]
    assert MLAccount.objects.get(pk=ml_account.pk).status == "expired"
    assert Question.objects.get(pk=waiting.pk).status == QuestionStatus.UNANSWERED
    body = page(alice, QUESTIONS)
    assert f'id="reconnect-{waiting.pk}"' in body and answer_box(body, waiting) is None


@pytest.mark.parametrize(
    "failure",
    [
        {"body": requests.exceptions.ConnectTimeout()},
        {"body": requests.exceptions.ReadTimeout()},
        {
            "status": 503,
            "json": {"message": "unavailable", "error": "unavailable", "status": 503, "cause": []},
        },
    ],
)
def test_when_ml_fails_the_question_stays_and_the_text_is_kept(alice, ml, ml_account, waiting, failure):
    ml.post(ANSWERS_URL, **failure)
    back = f"{QUESTIONS}?account={ml_account.pk}"

    response = alice.post(answer_url(waiting), {"text": "Temos sim, <em>estoque</em>!", "next": back})

    assert response.status_code == 302 and response["Location"] == back
    [message] = get_messages(response.wsgi_request)
    assert message.level_tag == "error"
    assert str(message).startswith("Mercado Livre did not confirm the answer")
    assert [c.request.url for c in ml.calls] == [ANSWERS_URL]
    waiting.refresh_from_db()
    assert waiting.status == QuestionStatus.UNANSWERED and waiting.answered_by is None
    assert MLAccount.objects.get(pk=ml_account.pk).cached_questions == 3
    body = page(alice, back)
    assert answer_box(body, waiting) == "Temos sim, <em>estoque</em>!"
    assert "<em>estoque</em>" not in body  # escaped
    other = ask(ml_account)
    assert answer_box(page(alice, QUESTIONS), other) == ""  # only that question's box


def test_a_kept_draft_is_dropped_once_the_answer_goes_through(alice, ml, waiting):
    ml.post(ANSWERS_URL, status=503, json={"message": "x", "error": "x", "status": 503, "cause": []})
    alice.post(answer_url(waiting), {"text": "Primeira tentativa"})
    assert answer_box(page(alice, QUESTIONS), waiting) == "Primeira tentativa"
    ml.replace(responses.POST, ANSWERS_URL, json=ml_question(waiting.pk, "ANSWERED"))

    response = alice.post(answer_url(waiting), {"text": "Primeira tentativa"})

    assert Question.objects.get(pk=waiting.pk).status == QuestionStatus.ANSWERED
    assert response.wsgi_request.session.get("desk_drafts") == {}


@pytest.mark.parametrize(
    ("data", "error"),
    [
        ({"text": ""}, "Write an answer."),
        ({"text": "   \n "}, "Write an answer."),
        ({"text": "", "reply": ""}, "Write an answer."),
        ({"text": "", "reply": "abc"}, "Write an answer."),
        ({"text": "x" * 2001}, "At most 2000 characters (this one has 2001)."),
    ],
)
def test_an_empty_or_too_long_answer_is_not_sent(alice, ml, ml_account, waiting, data, error):
    response = alice.post(answer_url(waiting), data)

    assert response.status_code == 302 and response["Location"] == QUESTIONS
    [message] = get_messages(response.wsgi_request)
    assert message.level_tag == "error" and str(message) == error
    assert len(ml.calls) == 0
    assert Question.objects.get(pk=waiting.pk).status == QuestionStatus.UNANSWERED
    assert MLAccount.objects.get(pk=ml_account.pk).cached_questions == 3


def test_an_answer_of_exactly_2000_characters_is_sent(alice, ml, waiting):
    ml_accepts(ml, waiting.pk)
    alice.post(answer_url(waiting), {"text": "x" * 2000})
    assert json.loads(ml.calls[0].request.body)["text"] == "x" * 2000


def test_the_answer_action_takes_only_post(alice, ml, waiting):
    assert alice.get(answer_url(waiting)).status_code == 405
    assert len(ml.calls) == 0


# --- claims --------------------------------------------------------------------------------------


def test_claims_soonest_due_first_and_undated_last(alice, agency, ml_account, other_user):
    undated = claim(ml_account, action_responsible="")
    later = claim(agency["sol"], due_in=timedelta(days=3), type="return", stage="claim")
    soon = claim(ml_account, due_in=timedelta(hours=5), action_responsible="buyer")
    overdue = claim(agency["lua"], due_in=-timedelta(hours=6), stage="recontact")
    claim(MLAccountFactory(owner=other_user), due_in=timedelta(hours=1))  # not Alice's

    body = page(alice, CLAIMS)

    assert claim_ids(body) == [overdue.pk, soon.pk, later.pk, undated.pk]
    assert "4 open claims in which you respond" in body
    row = {pk: re.search(rf'<tr id="claim-{pk}"(.*?)</tr>', body, re.S).group(0) for pk in claim_ids(body)}
    assert row[overdue.pk].startswith(f'<tr id="claim-{overdue.pk}" class="is-overdue">')
    assert 'class="is-overdue"' not in row[soon.pk] + row[later.pk] + row[undated.pk]
    assert "Complaint" in row[soon.pk] and "Mediated by Mercado Livre" in row[soon.pk]
    assert "Return" in row[later.pk] and "Between you and the buyer" in row[later.pk]
    assert "Reopened" in row[overdue.pk]
    assert '<span class="badge badge-act">You</span>' in row[later.pk]
    assert '<span class="badge badge-muted">The buyer</span>' in row[soon.pk]
    assert "<code>PDD9528</code>" in row[soon.pk]
    assert "Loja Sol" in row[later.pk] and "Loja da Alice" in row[soon.pk]
    by_account = page(alice, f"{CLAIMS}?account={ml_account.pk}")
    assert claim_ids(by_account) == [soon.pk, undated.pk]


def test_claims_link_to_the_sale_at_each_site(alice, user):
    brazil = MLAccountFactory(owner=user, site_id="MLB")
    argentina = MLAccountFactory(owner=user, site_id="MLA")
    br = claim(brazil, resource_id=2_000_001, due_in=timedelta(hours=1))
    ar = claim(argentina, resource_id=2_000_002, due_in=timedelta(hours=2))
    payment = claim(brazil, resource="payment", resource_id=777, due_in=timedelta(hours=3))

    body = page(alice, CLAIMS)

    def link(c):
        return re.search(
            rf'<a href="([^"]*)" rel="noopener noreferrer" target="_blank" id="claim-link-{c.pk}">', body
        )

    assert link(br).group(1) == "https://www.mercadolivre.com.br/vendas/2000001/detalhe"
    assert link(ar).group(1) == "https://www.mercadolibre.com.ar/ventas/2000002/detalle"
    assert link(payment).group(1) == "https://www.mercadolivre.com.br/vendas/omni/lista"


def test_claims_page_by_50(alice, ml_account):
    now = timezone.now()
    Claim.objects.bulk_create(
        Claim(id=n, account=ml_account, date_created=now, due_date=now + timedelta(hours=n), seen_at=now)
        for n in range(1, 56)
    )
    filtered = f"{CLAIMS}?account={ml_account.pk}"

    first, second = page(alice, filtered), page(alice, filtered + "&page=2")

    assert claim_ids(first) == list(range(1, 51)) and claim_ids(second) == list(range(51, 56))
    next_link = re.search(r'<a href="([^"]*)" rel="next" id="claims-next">', first).group(1)
    assert html.unescape(next_link) == f"?account={ml_account.pk}&page=2"


# --- saved replies -------------------------------------------------------------------------------


def test_saved_replies_are_added_ordered_by_title(alice, user, ml_account):
    workspace = ml_account.workspace
    path = settings_url(workspace)
    assert 'id="no-replies"' in page(alice, path)

    first = alice.post(path, {"title": "  Prazo  ", "text": "Enviamos em 24 h."})
    second = alice.post(path, {"title": "Estoque", "text": "Temos {item_title}, {buyer_nickname}!"})

    assert first.status_code == second.status_code == 302 and first["Location"] == path
    assert messages_after(first) == ["Saved reply “Prazo” added."]
    rows = list(SavedReply.objects.values_list("workspace_id", "title", "text", "created_by_id"))
    assert sorted(rows) == [
        (workspace.pk, "Estoque", "Temos {item_title}, {buyer_nickname}!", user.pk),
        (workspace.pk, "Prazo", "Enviamos em 24 h.", user.pk),
    ]
    assert reply_titles(page(alice, path)) == ["Estoque", "Prazo"]


@pytest.mark.parametrize(
    ("data", "field", "error"),
    [
        ({"title": "FRETE", "text": "Outro"}, "title", "Another saved reply has this title."),
        ({"title": " frete ", "text": "Outro"}, "title", "Another saved reply has this title."),
        (
            {"title": "Novo", "text": "Oi {foo}"},
            "text",
            "Unknown placeholder: {foo}. Use {item_title} or {buyer_nickname}.",
        ),
        ({"title": "", "text": "Oi"}, "title", "Give the reply a title."),
        ({"title": "Novo", "text": "  "}, "text", "Write the reply."),
        ({"title": "x" * 81, "text": "Oi"}, "title", "At most 80 characters."),
        ({"title": "Novo", "text": "x" * 2001}, "text", "At most 2000 characters."),
    ],
)
def test_an_invalid_saved_reply_is_400_and_not_saved(alice, ml_account, data, field, error):
    workspace = ml_account.workspace
    SavedReply.objects.create(workspace=workspace, title="Frete", text="Grátis")

    response = alice.post(settings_url(workspace), data)

    assert response.status_code == 400
    body = response.content.decode()
    form = body[body.index('<form method="post" id="new-reply">') :]
    assert f'<p class="field-error">{html.escape(error)}</p>' in form
    assert f'<input id="new-{field}"' in form or f'<textarea id="new-{field}"' in form
    # What was typed is offered again.
    assert html.escape(data["title"], quote=True) in form
    assert list(SavedReply.objects.values_list("title", "text")) == [("Frete", "Grátis")]


def test_titles_are_unique_per_workspace_only(alice, agency, ml_account):
    SavedReply.objects.create(workspace=ml_account.workspace, title="Frete", text="Grátis")
    response = alice.post(settings_url(agency["workspace"]), {"title": "frete", "text": "Pago"})
    assert response.status_code == 302
    assert SavedReply.objects.filter(workspace=agency["workspace"], title="frete").exists()


def test_a_saved_reply_is_edited_and_deleted(alice, ml_account):
    workspace = ml_account.workspace
    reply = SavedReply.objects.create(workspace=workspace, title="Frete", text="Grátis")
    other = SavedReply.objects.create(workspace=workspace, title="Prazo", text="24 h")

    edited = alice.post(
        reply_url(reply), {"action": "save", "title": " Envio ", "text": " Em 24 h, {buyer_nickname}. "}
    )

    assert edited.status_code == 302 and edited["Location"] == settings_url(workspace)
    assert messages_after(edited) == ["Saved reply “Envio” saved."]
    reply.refresh_from_db()
    assert (reply.title, reply.text) == ("Envio", "Em 24 h, {buyer_nickname}.")

    assert reply_titles(page(alice, settings_url(workspace))) == ["Envio", "Prazo"]  # shows the message

    clash = alice.post(reply_url(reply), {"title": "PRAZO", "text": "x"})
    assert messages_after(clash) == ["Another saved reply has this title."]
    page(alice, settings_url(workspace))
    unknown = alice.post(reply_url(reply), {"title": "Envio", "text": "Oi {nome}"})
    assert messages_after(unknown) == ["Unknown placeholder: {nome}. Use {item_title} or {buyer_nickname}."]
    page(alice, settings_url(workspace))
    reply.refresh_from_db()
    assert (reply.title, reply.text) == ("Envio", "Em 24 h, {buyer_nickname}.")

    deleted = alice.post(reply_url(reply), {"action": "delete"})

    assert deleted.status_code == 302 and deleted["Location"] == settings_url(workspace)
    assert messages_after(deleted) == ["Saved reply “Envio” deleted."]
    assert list(SavedReply.objects.values_list("pk", flat=True)) == [other.pk]
    assert alice.post(reply_url(reply), {"action": "delete"}).status_code == 404


def test_a_workspace_keeps_at_most_100_replies_listed_50_a_page(alice, ml_account):
    workspace = ml_account.workspace
    SavedReply.objects.bulk_create(
        SavedReply(workspace=workspace, title=f"Resposta {n:03d}", text="Oi") for n in range(99)
    )
    path = settings_url(workspace)

    hundredth = alice.post(path, {"title": "Resposta 099", "text": "Oi"})
    refused = alice.post(path, {"title": "Resposta 100", "text": "Oi"})

    assert hundredth.status_code == 302
    assert refused.status_code == 400
    assert "A workspace keeps at most 100 saved replies." in refused.content.decode()
    assert SavedReply.objects.filter(workspace=workspace).count() == 100
    first, second = page(alice, path), page(alice, path + "?page=2")
    assert reply_titles(first) == [f"Resposta {n:03d}" for n in range(50)]
    assert reply_titles(second) == [f"Resposta {n:03d}" for n in range(50, 100)]
    assert 'id="replies-next"' in first and "Page 2 of 2" in second


# --- the cost of the lists -----------------------------------------------------------------------


def _accounts_with_questions_and_claims(user, n, *, first_id):
    """`n` accounts of `user` (a few queries), each with two questions and two claims."""
    now = timezone.now()
    accounts = MLAccount.objects.bulk_create(MLAccountFactory.build_batch(n, owner=user))
    questions = Question.objects.bulk_create(
        Question(
            id=first_id + 2 * i + k,
            account=account,
            item_id=f"MLB{first_id + 2 * i + k}",
            text="Tem?",
            date_created=now - timedelta(hours=1, minutes=i + k),
            seen_at=now,
        )
        for i, account in enumerate(accounts)
        for k in range(2)
    )
    ListingItem.objects.bulk_create(
        ListingItem(id=q.item_id, title=f"Item {q.pk}", permalink=f"https://x.example/{q.pk}", fetched_at=now)
        for q in questions[::2]
    )
    Claim.objects.bulk_create(
        Claim(
            id=first_id + 2 * i + k,
            account=account,
            date_created=now,
            due_date=now + timedelta(days=k),
            seen_at=now,
        )
        for i, account in enumerate(accounts)
        for k in range(2)
    )
    SavedReply.objects.create(workspace=accounts[0].workspace, title="Oi", text="Olá {buyer_nickname}")


@pytest.mark.parametrize(("path", "expected"), [(QUESTIONS, QUESTIONS_QUERIES), (CLAIMS, CLAIMS_QUERIES)])
def test_the_lists_cost_the_same_for_2_and_200_accounts(path, expected, django_assert_num_queries):
    few, many = UserFactory(), UserFactory()
    _accounts_with_questions_and_claims(few, 2, first_id=1_000)
    _accounts_with_questions_and_claims(many, 200, first_id=100_000)
    for person, rows in ((few, 4), (many, 25 if path == QUESTIONS else 50)):
        client = signed_in(person)
        client.get(path)  # the first visit remembers the current workspace
        with django_assert_num_queries(expected):
            body = page(client, path)
        assert len(question_ids(body) if path == QUESTIONS else claim_ids(body)) == rows


# --- links from the overview and the account page -------------------------------------------------


def test_the_account_page_links_its_counts_to_the_desk(alice, ml_account):
    MLAccount.objects.filter(pk=ml_account.pk).update(cached_questions=4, cached_claims=2)

    body = page(alice, reverse("dashboard:account", args=[ml_account.pk]))

    assert f'href="{QUESTIONS}?account={ml_account.pk}" id="questions-link">4</a>' in body
    assert f'href="{CLAIMS}?account={ml_account.pk}" id="claims-link">2</a>' in body


@pytest.mark.parametrize("accounts", [1, 8])
def test_the_overview_links_each_count_to_the_desk(alice, user, ml_account, accounts):
    for _ in range(accounts - 1):
        MLAccountFactory(owner=user)
    MLAccount.objects.filter(pk=ml_account.pk).update(cached_questions=4, cached_claims=2)

    body = page(alice, reverse("dashboard:overview"))

    assert f'href="{QUESTIONS}?account={ml_account.pk}" id="questions-link-{ml_account.pk}">' in body
    assert f'href="{CLAIMS}?account={ml_account.pk}" id="claims-link-{ml_account.pk}">' in body
    assert f'<a href="{QUESTIONS}" id="total-questions-queue">' in body
    assert f'<a href="{CLAIMS}" id="total-claims-list">' in body


def test_a_refused_edit_of_a_saved_reply_keeps_what_was_typed(alice, ml_account):
    workspace = ml_account.workspace
    reply = SavedReply.objects.create(workspace=workspace, title="Frete", text="Grátis")
    SavedReply.objects.create(workspace=workspace, title="Prazo", text="24 h")

    response = alice.post(reply_url(reply), {"title": "PRAZO", "text": "Enviamos em 24 h, {item_title}."})

    assert response.status_code == 400
    body = response.content.decode()
    assert 'value="PRAZO"' in body and "Enviamos em 24 h, {item_title}.</textarea>" in body
    assert "Another saved reply has this title." in body
    reply.refresh_from_db()
    assert (reply.title, reply.text) == ("Frete", "Grátis")
