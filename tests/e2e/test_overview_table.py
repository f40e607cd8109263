"""Issue 12 in a real browser: an agency with 300 accounts. Filter to errors, search, sort by
unanswered questions, pause a filtered set in bulk, and watch the live refresh update one row
without reloading the page (and send nothing while nothing changes).

Screenshots of the table at 1366 and 390 px, in pt-BR and English, land in
test-artifacts/screenshots/ for a reviewer to look at.
"""

import re
from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from accounts import services
from accounts.mercadolivre.resources import Counts
from accounts.models import MLAccount
from tests.e2e.test_layout import signed_in
from tests.factories import UserFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

LAPTOP = {"width": 1366, "height": 768}
PHONE = {"width": 390, "height": 844}
SITES = ["MLB", "MLB", "MLB", "MLA", "MLM"]


@pytest.fixture
def agency():
    """A user with 300 accounts: every ninth in error, every 25th to reconnect, some paused,
    across three countries, with questions waiting on some."""
    user = UserFactory()
    workspace = services.workspace_personal(user=user)
    now = timezone.now()

    def status(n):
        if n % 25 == 0:
            return "expired"
        if n % 9 == 0:
            return "error"
        if n % 13 == 0:
            return "paused"
        return "active"

    MLAccount.objects.bulk_create(
        MLAccount(
            workspace=workspace,
            ml_user_id=7_000_000_000 + n,
            nickname=f"LOJA_{n:03d}",
            email=f"loja{n}@example.com",
            account_name=f"Loja {n:03d}",
            site_id=SITES[n % len(SITES)],
            status=status(n),
            sync_enabled=status(n) != "paused",
            last_sync_status="failed" if status(n) == "error" else "success",
            error_count=6 if status(n) == "error" else 0,
            access_token=f"access-{n}",
            refresh_token=f"refresh-{n}",
            token_expires_at=now + timedelta(hours=5),
            token_obtained_at=now - timedelta(hours=1),
            cached_products=n * 3,
            cached_orders=n * 2,
            cached_questions=(n * 7) % 40,
            cached_claims=n % 4,
            cached_at=now,
            last_sync=now - timedelta(minutes=n % 50),
            next_sync=now + timedelta(minutes=5),
            is_primary=n == 1,
        )
        for n in range(1, 301)
    )
    return user


def row_names(page):
    return page.locator("#account-table tbody tr.account-row th a").all_inner_texts()


def test_an_agency_filters_searches_sorts_and_pauses_in_bulk(e2e_settings, live_server, open_page, agency):
    page = open_page(LAPTOP)
    signed_in(page, live_server, agency)
    base = live_server.url
    page.goto(base + "/")
    # Past a handful of accounts: a table, 50 rows a page, problems first (to reconnect first).
    expect(page.locator("#account-table tbody tr.account-row")).to_have_count(50)
    expect(page.locator("#account-table tbody tr.account-row").first).to_have_class(re.compile("is-expired"))

    # The "with errors" total is a link to that filter.
    page.locator("#total-error").click()
    expect(page).to_have_url(base + "/?status=error")
    errors = MLAccount.objects.filter(workspace__personal_for=agency, status="error").count()
    expect(page.locator("#accounts-title")).to_contain_text(str(errors))
    statuses = page.locator("#account-table tbody tr.account-row").evaluate_all(
        "rows => rows.map(row => row.className)"
    )
    assert statuses and all("is-error" in name for name in statuses)

    # Search by nickname, from the search box: the filter stays in the URL.
    page.locator("#filter-status").select_option("")
    page.locator("#filter-q").fill("loja_123")
    page.locator("#filter-apply").click()
    expect(page).to_have_url(base + "/?q=loja_123")
    assert row_names(page) == ["Loja 123"]

    # Sort by unanswered questions, the most first (the header: once up, once down).
    page.goto(base + "/")
    page.locator("#sort-questions").click()
    expect(page).to_have_url(base + "/?sort=questions")
    page.locator("#sort-questions").click()
    expect(page).to_have_url(base + "/?sort=-questions")
    expect(page.locator("th:has(#sort-questions)")).to_have_attribute("aria-sort", "descending")
    questions = page.locator("#account-table tbody tr.account-row td:nth-child(7)").all_inner_texts()
    numbers = [int(text) for text in questions]
    assert numbers == sorted(numbers, reverse=True) and numbers[0] == 39

    # Pause every active account in Argentina: filter, "all that match", pause.
    page.goto(base + "/?status=active&site=MLA")
    argentina = set(
        MLAccount.objects.filter(workspace__personal_for=agency, site_id="MLA", status="active").values_list(
            "pk", flat=True
        )
    )
    expect(page.locator("#bulk-matching-label")).to_contain_text(str(len(argentina)))
    page.locator("#bulk-matching").check()
    page.locator("#bulk-pause").click()
    expect(page.locator("#messages")).to_contain_text(f"{len(argentina)} pausadas")
    expect(page).to_have_url(base + "/?status=active&site=MLA")
    paused = set(MLAccount.objects.filter(pk__in=argentina, status="paused").values_list("pk", flat=True))
    assert paused == argentina
    # Nothing outside the filter was touched.
    assert not MLAccount.objects.filter(status="paused", site_id="MLB", account_name="Loja 003").exists()
    assert page.csp_violations == []


def test_the_live_refresh_updates_one_row_and_keeps_the_ticks(e2e_settings, live_server, open_page, agency):
    page = open_page(LAPTOP)
    signed_in(page, live_server, agency)
    answers = []
    page.on(
        "response",
        lambda response: answers.append(response.status) if "/ml-accounts/list/" in response.url else None,
    )
    page.goto(live_server.url + "/?sort=name")
    first, second = MLAccount.objects.filter(workspace__personal_for=agency).order_by("account_name")[:2]
    page.evaluate("window.notReloaded = true")
    page.locator(f"#account-{first.pk} input[data-select-row]").check()
    # An idle tab: the polls come back 304, with nothing to swap.
    page.wait_for_timeout(11_000)
    assert answers and set(answers) == {304}
    # A sync lands for the second row: only it changes, in place.
    services.mlaccount_record_sync_success(
        account_id=second.pk,
        counts=Counts(products=999, orders=12, questions=3, claims=0),
    )
    expect(page.locator(f"#account-{second.pk} td:nth-child(5)")).to_have_text("999", timeout=25_000)
    assert page.evaluate("window.notReloaded") is True
    expect(page.locator(f"#account-{first.pk} input[data-select-row]")).to_be_checked()


@pytest.mark.parametrize("language", ["pt-br", "en"])
@pytest.mark.parametrize("viewport", [LAPTOP, PHONE], ids=["1366", "390"])
def test_the_table_reads_well_on_a_laptop_and_a_phone(
    e2e_settings, live_server, open_page, agency, screenshot_dir, language, viewport
):
    page = open_page(viewport)
    signed_in(page, live_server, agency)
    page.context.add_cookies([{"name": "django_language", "value": language, "url": live_server.url}])
    page.goto(live_server.url + "/")
    expect(page.locator("html")).to_have_attribute("lang", language)
    expect(page.locator("#account-table tbody tr.account-row")).to_have_count(50)
    name = f"overview-table-{viewport['width']}-{language}"
    page.screenshot(path=str(screenshot_dir / f"{name}.png"), full_page=False)
    page.locator("#account-table").scroll_into_view_if_needed()
    page.screenshot(path=str(screenshot_dir / f"{name}-rows.png"), full_page=False)
    # Nothing sticks out sideways; at 390 px each row is a card of its own.
    assert page.evaluate("document.documentElement.scrollWidth") <= viewport["width"]
    # On the laptop the table fits its box: no scrolling sideways inside it either.
    if viewport is LAPTOP:
        wrap = page.locator(".table-wrap")
        assert wrap.evaluate("wrap => wrap.scrollWidth <= wrap.clientWidth"), wrap.evaluate(
            "w => w.scrollWidth"
        )
    row = page.locator("#account-table tbody tr.account-row").first
    assert row.bounding_box()["width"] <= viewport["width"]
    if viewport is PHONE:
        assert row.evaluate("row => getComputedStyle(row).display") == "grid"
    assert page.csp_violations == []
