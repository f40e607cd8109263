"""Issue 15 in a real browser: the "Vendas" page and an account's charts, over sandbox sellers.

Two demo sellers of one workspace are connected and synced for real until their orders
mirrors hold their last 90 days (MODA_PAULISTA sells in BRL, TECNO_BAIRES in ARS): the
"Vendas" page shows one total per currency, never one across them, and the account page
draws its revenue and orders per day, its reputation and its counts. Reputation and counts
have one point a day and an hour: the sandbox cannot move time, so the test adds the 29 days
and hours before today's first sync (`_history`), drifting from what the sync read.
Screenshots in pt-BR and English, at 1366 and 390 px, land in test-artifacts/screenshots/;
at 390 px nothing overflows the page sideways, and no Content-Security-Policy violation is
reported (the charts are SVG with classes only: no inline style, no script).
"""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from accounts.mercadolivre.sandbox import DEMO_SELLERS
from accounts.models import CountSnapshot, MLAccount, Order, ReputationSnapshot
from sync import engine
from tests.e2e.test_layout import scroll_width, signed_in
from tests.factories import MLAccountFactory, UserFactory, WorkspaceFactory, member

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

SELLERS = {seller.nickname: seller for seller in DEMO_SELLERS}
BRAZIL = SELLERS["MODA_PAULISTA"]
ARGENTINA = SELLERS["TECNO_BAIRES"]
LAPTOP = {"width": 1366, "height": 900}
PHONE = {"width": 390, "height": 844}
MAX_SYNCS = 30  # a first import reads 1,000 orders a sync


def connect_and_import(owner, workspace, seller, sandbox, name) -> MLAccount:
    """Connected with a token pair the sandbox minted, then synced until its orders are in."""
    pair = sandbox.state.mint(seller.id)
    account = MLAccountFactory(
        owner=owner,
        workspace=workspace,
        ml_user_id=seller.id,
        nickname=seller.nickname,
        account_name=name,
        site_id=seller.site_id,
        access_token=pair["access_token"],
        refresh_token=pair["refresh_token"],
        token_expires_at=timezone.now() + timedelta(hours=6),
    )
    for _ in range(MAX_SYNCS):
        result = engine.sync_account(account.pk)
        assert result.ok, result.error
        account.refresh_from_db()
        if account.orders_synced_at is not None:
            break
    assert account.orders_synced_at is not None, "the first import did not end"
    assert Order.objects.filter(account=account).exists()
    return account


def _history(account) -> None:
    """29 days of reputation and of hourly counts before today's, drifting from today's values."""
    today = ReputationSnapshot.objects.get(account=account)
    for days in range(1, 30):
        wave = Decimal(days % 7) / 1000
        ReputationSnapshot.objects.create(
            account=account,
            day=today.day - timedelta(days=days),
            taken_at=today.taken_at - timedelta(days=days),
            level_id=today.level_id,
            power_seller_status=today.power_seller_status,
            period=today.period,
            claims_rate=(today.claims_rate or 0) + wave,
            delayed_handling_rate=(today.delayed_handling_rate or 0) + wave * 3,
            cancellations_rate=(today.cancellations_rate or 0) + wave / 2,
        )
    now = timezone.now().replace(minute=0, second=0, microsecond=0)
    CountSnapshot.objects.bulk_create(
        CountSnapshot(
            account=account,
            hour=now - timedelta(hours=hours),
            products=account.cached_products - hours // 48,
            orders=account.cached_orders - hours // 24,
            questions=(account.cached_questions or 0) + (hours // 6) % 5,
            claims=(account.cached_claims or 0) + (hours // 24) % 3,
        )
        for hours in range(1, 30 * 24)
    )


@pytest.fixture
def agency(sandbox, e2e_settings):
    owner = UserFactory(email="owner@example.com", first_name="Olga")
    workspace = WorkspaceFactory(name="Agência Sol")
    member(workspace, owner, "owner")
    owner.current_workspace = workspace
    owner.save(update_fields=["current_workspace"])
    brazil = connect_and_import(owner, workspace, BRAZIL, sandbox, "Moda Paulista")
    argentina = connect_and_import(owner, workspace, ARGENTINA, sandbox, "Tecno Baires")
    _history(brazil)
    return owner, brazil, argentina


def _switch_to_english(page):
    """With the app's own switcher (a form in the header; a phone's menu shows it too)."""
    page.locator("#language-select").select_option("en")
    page.locator("form.language-form button[type=submit]").click()
    expect(page.locator("html")).to_have_attribute("lang", "en")


def _shoot(page, screenshot_dir, name, viewport) -> None:
    page.screenshot(path=str(screenshot_dir / f"{name}-{viewport['width']}.png"), full_page=True)
    if viewport is PHONE:
        assert scroll_width(page) <= PHONE["width"], f"{name} overflows a phone"
    assert page.csp_violations == []


@pytest.mark.parametrize("viewport", [LAPTOP, PHONE], ids=["laptop", "phone"])
def test_the_sales_page_shows_one_total_per_currency(
    agency, live_server, open_page, screenshot_dir, viewport
):
    owner, brazil, argentina = agency
    page = open_page(viewport)
    signed_in(page, live_server, owner)

    page.goto(live_server.url + "/sales/")
    expect(page.locator("html")).to_have_attribute("lang", "pt-br")
    expect(page.locator("#sales-brl")).to_be_visible()
    expect(page.locator("#sales-ars")).to_be_visible()
    # Money as the language writes it: "R$ 1.234,56"; pesos apart, with their own sign.
    assert page.locator("#totals-brl-revenue").inner_text().startswith("R$")
    assert page.locator("#totals-ars-revenue").inner_text().startswith("$")
    assert "," in page.locator("#totals-brl-revenue").inner_text()
    expect(page.locator("#revenue-brl-chart svg[role=img]")).to_be_visible()
    expect(page.locator("#orders-ars-chart svg[role=img]")).to_be_visible()
    expect(page.locator(f"#sales-{brazil.pk}")).to_be_visible()
    expect(page.locator(f"#sales-{argentina.pk}")).to_be_visible()
    _shoot(page, screenshot_dir, "sales-pt-br", viewport)

    page.locator("#window-7").click()
    expect(page.locator("#window-7")).to_have_attribute("aria-current", "true")
    _switch_to_english(page)
    page.goto(live_server.url + "/sales/")
    assert "." in page.locator("#totals-brl-revenue").inner_text()
    expect(page.locator("main")).to_contain_text("Sales in BRL")
    _shoot(page, screenshot_dir, "sales-en", viewport)


@pytest.mark.parametrize("viewport", [LAPTOP, PHONE], ids=["laptop", "phone"])
def test_the_account_page_draws_its_sales_reputation_and_counts(
    agency, live_server, open_page, screenshot_dir, viewport
):
    owner, brazil, _ = agency
    page = open_page(viewport)
    signed_in(page, live_server, owner)

    page.goto(f"{live_server.url}/ml-accounts/{brazil.pk}/#sales")
    for chart in (
        "revenue-chart",
        "orders-chart",
        "reputation-chart",
        "counts-sales-chart",
        "counts-desk-chart",
    ):
        expect(page.locator(f"#{chart} svg[role=img]")).to_be_visible()
    # Real bars: the sandbox's orders, imported by the syncs.
    assert page.locator("#revenue-chart .chart-bar").count() > 0
    expect(page.locator("#reputation-level")).to_be_visible()
    # The accessible fallback: the same data as a table.
    page.locator("#revenue-chart details summary").click()
    expect(page.locator("#revenue-chart table")).to_be_visible()
    page.locator("#sales").screenshot(
        path=str(screenshot_dir / f"account-sales-pt-br-{viewport['width']}.png")
    )
    _shoot(page, screenshot_dir, "account-charts-pt-br", viewport)

    _switch_to_english(page)
    page.goto(f"{live_server.url}/ml-accounts/{brazil.pk}/#reputation")
    expect(page.locator("#reputation-title")).to_have_text("Reputation")
    page.locator("#reputation").screenshot(
        path=str(screenshot_dir / f"account-reputation-en-{viewport['width']}.png")
    )
    _shoot(page, screenshot_dir, "account-charts-en", viewport)
