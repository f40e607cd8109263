"""Issue 16 in a real browser: the header's bell, the alerts inbox and the alert settings.

A demo seller is connected with tokens the sandbox minted, then the sandbox revokes its grant:
the next sync finds it dead, and the owner's bell counts the alert. The inbox lists it with
its account, marking it read empties the bell, and the settings page saves a member's channel.
Screenshots in pt-BR and English, at 1366 and 390 px, land in test-artifacts/screenshots/;
at 390 px nothing overflows sideways, and no Content-Security-Policy violation is reported.
"""

from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from accounts.mercadolivre.sandbox import DEMO_SELLERS
from accounts.models import AlertSubscription, MLAccount
from sync import engine
from tests.e2e.test_layout import scroll_width, signed_in
from tests.factories import MLAccountFactory, UserFactory, WorkspaceFactory, member

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

LAPTOP = {"width": 1366, "height": 900}
PHONE = {"width": 390, "height": 844}
SELLER = DEMO_SELLERS[0]


@pytest.fixture
def owner_with_a_dead_grant(e2e_settings, sandbox):
    owner = UserFactory(email="dona@agencia.test", first_name="Dona", last_name="Agência")
    workspace = WorkspaceFactory(name="Agência Paulista")
    member(workspace, owner, "owner")
    pair = sandbox.state.mint(SELLER.id)
    account = MLAccountFactory(
        owner=owner,
        workspace=workspace,
        ml_user_id=SELLER.id,
        nickname=SELLER.nickname,
        account_name="Casa da Ana",
        access_token=pair["access_token"],
        refresh_token=pair["refresh_token"],
        token_expires_at=timezone.now() + timedelta(hours=6),
    )
    sandbox.state.revoke(SELLER.id)  # the seller revoked the app at Mercado Livre
    result = engine.sync_account(account.pk)
    assert not result.ok
    assert MLAccount.objects.get(pk=account.pk).status == "expired"
    owner.current_workspace = workspace
    owner.save(update_fields=["current_workspace"])
    return owner, account


@pytest.mark.parametrize(
    ("language", "viewport"), [("pt-br", LAPTOP), ("en", PHONE), ("pt-br", PHONE), ("en", LAPTOP)]
)
def test_the_bell_the_inbox_and_the_settings(
    owner_with_a_dead_grant, live_server, open_page, screenshot_dir, language, viewport
):
    owner, _account = owner_with_a_dead_grant
    page = open_page(viewport)
    signed_in(page, live_server, owner)
    page.context.add_cookies([{"name": "django_language", "value": language, "url": live_server.url}])
    page.goto(live_server.url + "/")
    expect(page.locator("#bell-count")).to_contain_text("1")

    page.locator("#bell").click()
    entry = page.locator(".alert-item").first
    expect(entry).to_contain_text("Casa da Ana")
    assert "alert-unread" in entry.get_attribute("class")
    width = viewport["width"]
    page.screenshot(path=str(screenshot_dir / f"alerts-{language}-{width}.png"), full_page=True)
    assert scroll_width(page) <= width

    entry.locator("button").click()
    expect(page.locator("#bell-count")).to_have_count(0)
    assert "alert-unread" not in page.locator(".alert-item").first.get_attribute("class")

    page.locator("#alert-settings").click()
    page.locator("#channel-new_claim").select_option("digest")
    page.locator("#channels-save").click()
    expect(page.locator("#channel-new_claim")).to_have_value("digest")
    assert AlertSubscription.objects.filter(
        membership__user=owner, kind="new_claim", channel="digest"
    ).exists()
    page.screenshot(path=str(screenshot_dir / f"alert-settings-{language}-{width}.png"), full_page=True)
    assert scroll_width(page) <= width
    assert page.csp_violations == []
