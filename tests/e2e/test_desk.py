"""Issue 14 in a real browser: the seller's desk over two sandbox sellers, synced for real.

The owner answers MEGASTORE_BR's oldest question from the filtered queue (it leaves the
queue, both counts drop by one, the sandbox has it ANSWERED with that text); a viewer of the
same workspace reads the queue without answer boxes and a forced answer is refused (403);
a saved reply fills the answer box in the browser. Screenshots of /questions/ and /claims/
at 1366 and 390 px land in test-artifacts/screenshots/ for a reviewer to look at.
"""

import re
from datetime import timedelta

import pytest
import requests
from django.utils import timezone, translation
from django.utils.translation import gettext
from playwright.sync_api import expect

from accounts import services
from accounts.mercadolivre.sandbox import DEMO_SELLERS
from accounts.models import MLAccount, Question, QuestionStatus, Role
from sync import engine
from tests.e2e.test_layout import signed_in
from tests.factories import MLAccountFactory, UserFactory, member

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

SELLERS = {seller.nickname: seller for seller in DEMO_SELLERS}
ANA = SELLERS["CASA_DA_ANA"]  # 4 unanswered questions, 1 open claim
MEGA = SELLERS["MEGASTORE_BR"]  # 213 unanswered questions, 27 open claims
LAPTOP = {"width": 1366, "height": 768}
PHONE = {"width": 390, "height": 844}
SLOW = 30_000  # ms: a busy 2-core machine answers a POST that waits for the sandbox slowly
ANSWER = "Olá! Temos sim, pronta entrega. Enviamos no mesmo dia útil da compra."
REPLY = "Olá {buyer_nickname}! O {item_title} está disponível."


def pt_br(message, **values):
    """`message` as the pt-BR dashboard shows it (whatever the catalog has translated yet)."""
    with translation.override("pt-br"):
        return gettext(message) % values if values else gettext(message)


def number(text):
    """The first whole number in a text as the pt-BR page writes it ("1.234 perguntas" → 1234)."""
    found = re.search(r"\d[\d.]*", text)
    assert found, text
    return int(found.group(0).replace(".", ""))


def connect(owner, workspace, seller, sandbox, name):
    """The seller connected with a token pair the sandbox minted, then synced (the mirror filled)."""
    pair = sandbox.state.mint(seller.id)
    account = MLAccountFactory(
        owner=owner,
        workspace=workspace,
        ml_user_id=seller.id,
        nickname=seller.nickname,
        account_name=name,
        access_token=pair["access_token"],
        refresh_token=pair["refresh_token"],
        token_expires_at=timezone.now() + timedelta(seconds=pair["expires_in"]),
    )
    result = engine.sync_account(account.pk)
    assert result.ok, result.error
    return MLAccount.objects.get(pk=account.pk)


@pytest.fixture
def desk(e2e_settings, sandbox, live_server):
    """An owner with CASA_DA_ANA and MEGASTORE_BR in a shared workspace, both synced."""
    owner = UserFactory(email="dona@example.com", first_name="Olga", last_name="Dona")
    workspace = services.workspace_create(user=owner, name="Loja da Olga")
    services.workspace_switch(user=owner, workspace=workspace)
    ana = connect(owner, workspace, ANA, sandbox, "Casa da Ana")
    mega = connect(owner, workspace, MEGA, sandbox, "Megastore")
    assert (ana.cached_questions, mega.cached_questions) == (ANA.questions, MEGA.questions)
    assert Question.objects.filter(account=mega, status=QuestionStatus.UNANSWERED).count() == MEGA.questions
    return owner, workspace, ana, mega


def sandbox_question(sandbox, account, question_id):
    """The question as the sandbox has it, read over HTTP with the account's token."""
    account.refresh_from_db()
    response = requests.get(
        f"{sandbox.url}/questions/{question_id}",
        params={"api_version": 4},
        headers={"Authorization": f"Bearer {account.access_token}"},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    return response.json()


def test_the_owner_answers_the_oldest_question_of_one_account(desk, live_server, sandbox, open_page):
    owner, _, ana, mega = desk
    base = live_server.url
    page = open_page(LAPTOP)
    signed_in(page, live_server, owner)

    page.goto(f"{base}/ml-accounts/{mega.pk}/")
    expect(page.locator("html")).to_have_attribute("lang", "pt-br")
    count_before = number(page.locator("#questions-link").inner_text())
    assert count_before == MEGA.questions

    # The queue, filtered by the second account with the filter form.
    page.goto(f"{base}/questions/")
    expect(page.locator("li.question").first).to_be_visible()
    assert number(page.locator("#queue-total").inner_text()) == ANA.questions + MEGA.questions
    page.locator("#filter-account").select_option(str(mega.pk))
    page.locator("#filter-apply").click()
    expect(page).to_have_url(re.compile(rf"/questions/\?(.*&)?account={mega.pk}"))
    expect(page.locator("#filter-account")).to_have_value(str(mega.pk))
    total_before = number(page.locator("#queue-total").inner_text())
    assert total_before == MEGA.questions

    # Its oldest question comes first.
    oldest = page.locator("li.question").first
    question_id = int(oldest.get_attribute("id").removeprefix("question-"))
    expected_oldest = (
        Question.objects.filter(account=mega, status=QuestionStatus.UNANSWERED)
        .order_by("date_created")
        .first()
    )
    assert question_id == expected_oldest.pk
    buyer = oldest.get_attribute("data-buyer") or pt_br("the buyer")

    page.locator(f"#answer-{question_id}").fill(ANSWER)
    page.locator(f"#send-{question_id}").click()

    expect(page.locator("#messages .message-success")).to_contain_text(
        pt_br(
            "Answer sent to %(buyer)s (%(account)s). The question left the queue.",
            buyer=buyer,
            account="Megastore",
        ),
        timeout=SLOW,
    )
    # Back on the filtered queue, without that question, one fewer.
    expect(page.locator("#filter-account")).to_have_value(str(mega.pk))
    expect(page.locator(f"li#question-{question_id}")).to_have_count(0)
    expect(page.locator("li.question").first).to_be_visible()
    assert number(page.locator("#queue-total").inner_text()) == total_before - 1

    # The account's own count dropped too, before any sync.
    page.goto(f"{base}/ml-accounts/{mega.pk}/")
    assert number(page.locator("#questions-link").inner_text()) == count_before - 1

    # Mercado Livre (the sandbox) has it answered, with the text typed.
    at_ml = sandbox_question(sandbox, mega, question_id)
    assert at_ml["status"] == "ANSWERED"
    assert at_ml["answer"]["text"] == ANSWER
    assert sandbox.state.desk.find_question(question_id).answer["text"] == ANSWER
    stored = Question.objects.get(pk=question_id)
    assert (stored.status, stored.answer_text, stored.answered_by_id) == (
        QuestionStatus.ANSWERED,
        ANSWER,
        owner.pk,
    )
    # The other account was not touched.
    ana.refresh_from_db()
    assert ana.cached_questions == ANA.questions
    assert page.csp_violations == []


def test_a_viewer_reads_the_queue_but_cannot_answer(desk, live_server, sandbox, open_page):
    _, workspace, _, mega = desk
    viewer = UserFactory(email="leitora@example.com", first_name="Vera")
    member(workspace, viewer, Role.VIEWER)
    base = live_server.url
    page = open_page(LAPTOP)
    signed_in(page, live_server, viewer)

    page.goto(f"{base}/questions/?account={mega.pk}")
    questions = page.locator("li.question")
    expect(questions.first).to_be_visible()
    assert number(page.locator("#queue-total").inner_text()) == MEGA.questions
    question_id = int(questions.first.get_attribute("id").removeprefix("question-"))
    expect(page.locator(f"#read-only-{question_id}")).to_be_visible()
    expect(page.locator(f"#read-only-{question_id}")).to_have_text(
        pt_br("Your role in this workspace lets you read the questions but not answer them.")
    )
    expect(page.locator("#question-list textarea")).to_have_count(0)
    expect(page.locator("#question-list button[id^=send-]")).to_have_count(0)
    expect(page.locator("#question-list form")).to_have_count(0)

    # An answer forced from this browser (its session, its CSRF token) is refused: 403, and
    # not a CSRF refusal (the same request shape goes through for a POST a viewer may send).
    token = page.locator("input[name=csrfmiddlewaretoken]").first.input_value()

    def post(path, data):
        return page.request.post(
            base + path,
            form={"csrfmiddlewaretoken": token, **data},
            headers={"X-CSRFToken": token, "Referer": f"{base}/questions/"},
            max_redirects=0,
            timeout=SLOW,
        )

    allowed = post("/workspaces/switch/", {"workspace": str(workspace.pk)})
    assert allowed.status == 302, allowed.status
    response = post(f"/questions/{question_id}/answer/", {"text": ANSWER, "next": "/questions/"})
    assert response.status == 403, response.status
    assert pt_br("Please try again") not in response.text()

    assert sandbox_question(sandbox, mega, question_id)["status"] == "UNANSWERED"
    assert Question.objects.get(pk=question_id).status == QuestionStatus.UNANSWERED
    mega.refresh_from_db()
    assert mega.cached_questions == MEGA.questions
    page.reload()
    expect(page.locator(f"li#question-{question_id}")).to_be_visible()
    assert page.csp_violations == []


def test_a_saved_reply_fills_the_answer_box(desk, live_server, open_page):
    owner, workspace, _, _ = desk
    services.saved_reply_create(workspace=workspace, user=owner, title="Disponível", text=REPLY)
    base = live_server.url
    page = open_page(LAPTOP)
    signed_in(page, live_server, owner)

    page.goto(f"{base}/questions/")
    item = page.locator("li.question").first
    expect(item).to_be_visible()
    question_id = int(item.get_attribute("id").removeprefix("question-"))
    title = item.get_attribute("data-item-title")
    buyer = item.get_attribute("data-buyer")
    assert title, "the sync filled in the item's title"
    box = page.locator(f"#answer-{question_id}")
    expect(box).to_have_value("")

    page.locator(f"#reply-{question_id}").select_option(label="Disponível")

    expected = f"Olá {buyer}! O {title} está disponível." if buyer else f"Olá! O {title} está disponível."
    expect(box).to_have_value(expected)
    expect(box).to_be_focused()
    value = box.input_value()
    assert "{" not in value and "}" not in value
    assert page.csp_violations == []


def test_the_desk_pages_fit_a_laptop_and_a_phone(desk, live_server, open_page, screenshot_dir):
    owner, workspace, _, _ = desk
    services.saved_reply_create(workspace=workspace, user=owner, title="Disponível", text=REPLY)
    base = live_server.url
    for width, viewport in ((1366, LAPTOP), (390, PHONE)):
        page = open_page(viewport)
        signed_in(page, live_server, owner)

        page.goto(f"{base}/questions/")
        expect(page.locator("li.question")).to_have_count(25)
        expect(page.locator("#question-list textarea")).to_have_count(25)
        page.screenshot(path=str(screenshot_dir / f"desk-questions-{width}.png"), full_page=True)
        assert page.evaluate("document.documentElement.scrollWidth") <= width

        page.goto(f"{base}/claims/")
        expect(page.locator("#claim-table tbody tr")).to_have_count(ANA.claims + MEGA.claims)
        page.screenshot(path=str(screenshot_dir / f"desk-claims-{width}.png"), full_page=True)
        assert page.evaluate("document.documentElement.scrollWidth") <= width
        assert page.csp_violations == []
