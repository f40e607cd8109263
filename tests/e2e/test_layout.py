"""Nothing sticks out sideways, in a real browser: the sandbox banner opened and the account
cards on a 390 px phone, the admin's list of Mercado Livre accounts on a 1366 px laptop.

Screenshots land in test-artifacts/screenshots/ for a reviewer to look at.
"""

import pytest
from django.conf import settings
from django.test import Client
from django.utils import timezone
from playwright.sync_api import expect

from accounts.models import AccountEvent, MLAccount
from tests.factories import AccountEventFactory, MLAccountFactory, UserFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

PHONE = {"width": 390, "height": 844}
LAPTOP = {"width": 1366, "height": 768}


def signed_in(page, live_server, user):
    """The browser carries `user`'s session (made by Django's test client, no login form)."""
    client = Client()
    client.force_login(user)
    cookie = client.cookies[settings.SESSION_COOKIE_NAME].value
    page.context.add_cookies(
        [{"name": settings.SESSION_COOKIE_NAME, "value": cookie, "url": live_server.url}]
    )


def scroll_width(page):
    return page.evaluate("document.documentElement.scrollWidth")


def test_the_opened_sandbox_banner_fits_a_phone(e2e_settings, live_server, open_page, screenshot_dir):
    page = open_page(PHONE)
    page.goto(live_server.url + "/accounts/login/")
    page.locator(".sandbox-banner summary").click()
    expect(page.locator(".sandbox-banner ol")).to_be_visible()
    page.screenshot(path=str(screenshot_dir / "phone-sandbox-banner.png"), full_page=True)
    assert scroll_width(page) <= PHONE["width"]
    assert page.csp_violations == []


def test_long_badges_leave_the_card_title_whole_on_a_phone(
    e2e_settings, live_server, open_page, screenshot_dir
):
    user = UserFactory()
    # The longest badges there are: primary, "Reconexão necessária", "Proprietário".
    account = MLAccountFactory(
        owner=user, is_primary=True, nickname="TECNO_BAIRES", account_name="TECNO_BAIRES", status="expired"
    )
    page = open_page(PHONE)
    signed_in(page, live_server, user)
    page.goto(live_server.url + "/")
    card = page.locator(f"#account-{account.pk}")
    expect(card.locator(".status")).to_have_text("Reconexão necessária")
    page.screenshot(path=str(screenshot_dir / "phone-long-badges.png"), full_page=True)
    title = card.locator(".card-title h3 a")
    # One line: the name is not broken mid-word ("TECNO_BAIRE / S") to make room for the badges.
    assert title.evaluate("link => link.getClientRects().length") == 1
    card_width = card.bounding_box()["width"]
    assert card.locator(".card-title").bounding_box()["width"] >= card_width / 2
    assert scroll_width(page) <= PHONE["width"]


def test_the_admin_account_list_fits_a_laptop(e2e_settings, live_server, open_page, screenshot_dir):
    admin = UserFactory(email="admin@example.com", is_staff=True, is_superuser=True)
    owner = UserFactory(first_name="Mariana", last_name="Albuquerque de Oliveira")
    now = timezone.now()
    for n, (nickname, name) in enumerate(
        [
            ("CASA_DA_ANA_UTILIDADES", "Casa da Ana Utilidades Domésticas"),
            ("MEGASTORE_BRASIL_OFICIAL", "Megastore Brasil Loja Oficial"),
            ("TECNO_BAIRES", "Tecno Baires Importados"),
        ]
    ):
        account = MLAccountFactory(
            owner=owner,
            nickname=nickname,
            account_name=name,
            is_primary=n == 0,
            status=["active", "error", "expired"][n],
            last_sync=now,
            error_count=n * 3,
        )
        AccountEventFactory(account=account, kind=AccountEvent.Kind.UNAVAILABLE)
    assert MLAccount.objects.count() == 3
    page = open_page(LAPTOP)
    signed_in(page, live_server, admin)
    page.goto(live_server.url + "/admin/accounts/mlaccount/")
    expect(page.locator("#result_list tbody tr")).to_have_count(3)
    page.screenshot(path=str(screenshot_dir / "laptop-admin-accounts.png"), full_page=True)
    assert scroll_width(page) <= LAPTOP["width"]
    # The admin scrolls a table that is too wide inside its own box: every column must show.
    results = page.locator("#changelist .results")
    assert (
        results.evaluate("box => [box.scrollWidth, box.clientWidth]")
        == [results.evaluate("box => box.clientWidth")] * 2
    )
