"""Issue 16 in a real browser: a reconnect link from the manager's page to the store owner's
authorization at the sandbox, then the audit log that recorded both.

The manager makes the link on the account page of an `expired` account; the store's owner
opens it in another browser (no session here), goes through the sandbox's authorization page
as another seller first (refused, nothing changes), then as the right one: the account is
`active` again. The workspace's audit log lists the link and the reconnect, and filters by
action. Screenshots in pt-BR and English, at 1366 and 390 px; nothing overflows sideways and no
Content-Security-Policy violation is reported.
"""

from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from accounts.mercadolivre.sandbox import DEMO_SELLERS
from accounts.models import AuditEntry, MLAccount, ReconnectLink
from tests.e2e.test_layout import scroll_width, signed_in
from tests.factories import MLAccountFactory, UserFactory, WorkspaceFactory, member

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

LAPTOP = {"width": 1366, "height": 900}
PHONE = {"width": 390, "height": 844}
SELLER, OTHER = DEMO_SELLERS[0], DEMO_SELLERS[2]


@pytest.fixture
def manager_with_an_expired_account(e2e_settings, sandbox):
    manager = UserFactory(email="gerente@agencia.test", first_name="Gil", last_name="Gerente")
    workspace = WorkspaceFactory(name="Agência Paulista")
    member(workspace, manager, "manager")
    account = MLAccountFactory(
        workspace=workspace,
        ml_user_id=SELLER.id,
        nickname=SELLER.nickname,
        account_name="Casa da Ana",
        status="expired",
        token_expires_at=timezone.now() - timedelta(hours=1),
    )
    manager.current_workspace = workspace
    manager.save(update_fields=["current_workspace"])
    return manager, workspace, account


@pytest.mark.parametrize(("language", "viewport"), [("pt-br", PHONE), ("en", LAPTOP)])
def test_a_reconnect_link_restores_the_account_and_the_audit_log_says_so(
    manager_with_an_expired_account, live_server, open_page, screenshot_dir, language, viewport
):
    manager, workspace, account = manager_with_an_expired_account
    width = viewport["width"]
    page = open_page(viewport)
    signed_in(page, live_server, manager)
    page.context.add_cookies([{"name": "django_language", "value": language, "url": live_server.url}])
    page.goto(f"{live_server.url}/ml-accounts/{account.pk}/")
    page.locator("#make-reconnect-link").click()
    link = page.locator("#reconnect-url").input_value()
    assert link.startswith(live_server.url + "/reconnect/")
    page.screenshot(path=str(screenshot_dir / f"reconnect-made-{language}-{width}.png"), full_page=True)
    assert scroll_width(page) <= width

    owner = open_page(viewport)  # the store's owner: another browser, no session here
    owner.context.add_cookies([{"name": "django_language", "value": language, "url": live_server.url}])
    owner.goto(link)
    expect(owner.locator("#reconnect-store")).to_contain_text(SELLER.nickname)
    owner.screenshot(path=str(screenshot_dir / f"reconnect-link-{language}-{width}.png"), full_page=True)
    assert scroll_width(owner) <= width
    owner.locator("#reconnect-continue").click()
    owner.locator(f"#seller-{OTHER.id}").check()  # the wrong login first
    owner.locator("#allow").click()
    expect(owner.locator("#reconnect-wrong-seller")).to_be_visible()
    assert MLAccount.objects.get(pk=account.pk).status == "expired"
    assert ReconnectLink.objects.get(account=account).used_at is None

    owner.goto(link)
    owner.locator("#reconnect-continue").click()
    owner.locator(f"#seller-{SELLER.id}").check()
    owner.locator("#allow").click()
    expect(owner.locator("#reconnect-done")).to_be_visible()
    owner.screenshot(path=str(screenshot_dir / f"reconnect-done-{language}-{width}.png"), full_page=True)
    assert MLAccount.objects.get(pk=account.pk).status == "active"

    page.goto(f"{live_server.url}/workspaces/{workspace.pk}/audit/")
    body = page.locator("main")
    expect(body).to_contain_text("Casa da Ana")
    actions = set(AuditEntry.objects.filter(account_id=account.pk).values_list("action", flat=True))
    assert {"reconnect_link", "reconnect"} <= actions
    page.screenshot(path=str(screenshot_dir / f"audit-{language}-{width}.png"), full_page=True)
    assert scroll_width(page) <= width
    assert page.csp_violations == [] and owner.csp_violations == []
