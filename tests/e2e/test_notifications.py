"""Issue 13 in a real browser: the sandbox notifies the live server, the overview's numbers
move by themselves (its live refresh, no reload, no sync), and the account page tells how
notifications are arriving. Screenshots at 1366 and 390 px land in test-artifacts/screenshots/.
"""

from datetime import timedelta

import pytest
import requests
from django.utils import timezone
from playwright.sync_api import expect

from accounts import services
from accounts.mercadolivre.resources import Counts
from accounts.models import MLAccount, Notification
from tests.e2e.test_layout import signed_in
from tests.factories import MLAccountFactory, UserFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

ANA = 241500733  # CASA_DA_ANA: 4 unanswered questions
VIEWPORTS = {"laptop": {"width": 1366, "height": 768}, "phone": {"width": 390, "height": 844}}


@pytest.fixture
def ana(e2e_settings, sandbox, live_server):
    """A user with CASA_DA_ANA connected (real sandbox tokens) and synced; the sandbox notifies the app."""
    user = UserFactory()
    pair = sandbox.state.mint(ANA)
    account = MLAccountFactory(
        owner=user,
        ml_user_id=ANA,
        nickname="CASA_DA_ANA",
        account_name="Casa da Ana",
        is_primary=True,
        access_token=pair["access_token"],
        refresh_token=pair["refresh_token"],
        token_expires_at=timezone.now() + timedelta(seconds=pair["expires_in"]),
    )
    services.mlaccount_record_sync_success(account_id=account.pk, counts=Counts(37, 58, 4, 1))
    url = f"{live_server.url}/webhooks/mercadolivre/{e2e_settings.ML_WEBHOOK_SECRET}/"
    # Processing runs inside the webhook's request here (eager): give it time before the
    # sandbox counts a slow answer as failed and sends the notification again.
    sandbox.state.configure(notifications_url=url, notification_timeout_ms=10_000)
    return user, MLAccount.objects.get(pk=account.pk)


@pytest.mark.parametrize("size", list(VIEWPORTS))
def test_a_new_question_shows_up_on_the_overview_by_itself(
    size, ana, live_server, sandbox, open_page, screenshot_dir, eager_tasks
):
    user, account = ana
    page = open_page(VIEWPORTS[size])
    signed_in(page, live_server, user)
    page.goto(live_server.url + "/")
    questions = page.locator(f"#account-{account.pk} .counts > div").nth(2).locator("dd")
    expect(questions).to_have_text("4")

    answer = requests.post(
        f"{sandbox.url}/_sandbox/activity", json={"user_id": ANA, "topic": "questions"}, timeout=10
    )
    assert answer.status_code == 200

    # The live refresh polls every 10 s: the new count arrives without a reload or a sync.
    expect(questions).to_have_text("5", timeout=30_000)
    assert Notification.objects.get(account=account).status == "done"
    assert MLAccount.objects.get(pk=account.pk).last_sync == account.last_sync
    page.screenshot(path=str(screenshot_dir / f"{size}-overview-after-notification.png"), full_page=True)

    page.goto(f"{live_server.url}/ml-accounts/{account.pk}/")
    panel = page.locator("#notifications")
    expect(panel).to_contain_text("Notificações do Mercado Livre")
    expect(panel).to_contain_text("1 recebida")
    expect(panel).to_contain_text("uma sincronização completa a cada 1 hora os confere")
    panel.scroll_into_view_if_needed()
    page.screenshot(path=str(screenshot_dir / f"{size}-account-notifications.png"), full_page=True)
    assert page.evaluate("document.documentElement.scrollWidth") <= VIEWPORTS[size]["width"]
    assert page.csp_violations == []
