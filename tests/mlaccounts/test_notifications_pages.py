"""Notifications where people see them: the account page's panel and the admin's list."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from accounts.models import Notification
from sync import tasks
from tests.factories import MLAccountFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _english(client, settings):
    # Pages open in pt-BR; these read the English wording (one test checks the Portuguese).
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"


def _note(account, **fields):
    now = timezone.now()
    values = {
        "topic": "questions",
        "resource": "/questions/13000000001",
        "ml_user_id": account.ml_user_id,
        "account": account,
        "arrived_at": now,
        "status": "done",
        "processed_at": now,
        "lag_ms": 1500,
    }
    return Notification.objects.create(**{**values, **fields})


# --- the account page ------------------------------------------------------------------------------


def test_account_page_shows_the_last_notification_and_the_delay(client_user, ml_account, settings):
    settings.ML_WEBHOOK_SECRET = "a" * 24
    ml_account.last_notification_at = timezone.now() - timedelta(minutes=3)
    ml_account.save(update_fields=["last_notification_at"])
    _note(ml_account, lag_ms=1000)
    _note(ml_account, lag_ms=3000)
    _note(ml_account, status="failed", reason="Mercado Livre: boom", lag_ms=None)

    html = client_user.get(reverse("dashboard:account", args=[ml_account.pk])).content.decode()

    assert 'id="notifications"' in html
    assert "3 received" in html and "1 failed" in html
    assert "2.0 s on average in the last hour" in html
    assert "a full sync every 1 hour checks them" in html  # reconciliation: hourly
    assert "without a notification from Mercado Livre" not in html


def test_account_page_warns_when_syncs_find_changes_no_notification_announced(
    client_user, ml_account, settings
):
    settings.ML_WEBHOOK_SECRET = "a" * 24
    ml_account.last_poll_change_at = timezone.now() - timedelta(minutes=10)
    ml_account.poll_change_mask = 4
    ml_account.save(update_fields=["last_poll_change_at", "poll_change_mask"])

    html = client_user.get(reverse("dashboard:account", args=[ml_account.pk])).content.decode()

    assert "without a notification from Mercado Livre" in html
    assert "No notifications lately: the account is synced at its own interval." in html
    assert "none yet" in html


def test_account_page_says_notifications_are_off_without_a_secret(client_user, ml_account, settings):
    settings.ML_WEBHOOK_SECRET = ""
    ml_account.last_poll_change_at = timezone.now()
    ml_account.save(update_fields=["last_poll_change_at"])

    html = client_user.get(reverse("dashboard:account", args=[ml_account.pk])).content.decode()

    assert "Notifications are off in this installation" in html
    assert "without a notification from Mercado Livre" not in html


def test_account_page_panel_is_in_portuguese(client_user, ml_account, settings):
    settings.ML_WEBHOOK_SECRET = "a" * 24
    client_user.cookies[settings.LANGUAGE_COOKIE_NAME] = "pt-br"
    html = client_user.get(reverse("dashboard:account", args=[ml_account.pk])).content.decode()
    assert "Notificações do Mercado Livre" in html and "nenhuma ainda" in html


def test_account_page_is_not_shown_to_an_outsider_or_anonymous(client, other_user, ml_account):
    _note(ml_account)
    path = reverse("dashboard:account", args=[ml_account.pk])
    assert client.get(path).status_code == 302
    client.force_login(other_user)
    assert client.get(path).status_code == 404


# --- the admin ---------------------------------------------------------------------------------------


@pytest.fixture
def admin_client(client):
    client.force_login(UserFactory(email="admin@example.com", is_staff=True, is_superuser=True))
    return client


def test_admin_lists_notifications_with_filters_and_never_tokens(admin_client, ml_account):
    _note(ml_account, resource="/questions/777")
    _note(
        ml_account, resource="/orders/888", topic="orders_v2", status="failed", reason="Mercado Livre: boom"
    )

    url = reverse("admin:accounts_notification_changelist")
    html = admin_client.get(url).content.decode()
    failed = admin_client.get(url, {"status__exact": "failed"}).content.decode()

    assert "/questions/777" in html and "/orders/888" in html
    assert "/orders/888" in failed and "/questions/777" not in failed
    assert ml_account.access_token not in html and ml_account.refresh_token not in html


def test_admin_cannot_add_or_change_a_notification(admin_client, ml_account):
    note = _note(ml_account)
    assert admin_client.get(reverse("admin:accounts_notification_add")).status_code == 403
    response = admin_client.post(
        reverse("admin:accounts_notification_change", args=[note.pk]), {"topic": "items", "status": "pending"}
    )
    assert response.status_code == 403
    note.refresh_from_db()
    assert (note.topic, note.status) == ("questions", "done")


def test_admin_retry_failed_requeues_failed_notifications(
    admin_client, ml_account, monkeypatch, django_capture_on_commit_callbacks
):
    sent = []
    monkeypatch.setattr(
        tasks.process_account_notifications,
        "apply_async",
        lambda args=(), kwargs=None, **kw: sent.append(tuple(args)),
    )
    failed = _note(ml_account, status="failed", reason="Mercado Livre: boom", tries=8, lag_ms=None)
    done = _note(ml_account)

    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(
            reverse("admin:accounts_notification_changelist"),
            {"action": "retry_failed", "_selected_action": [failed.pk, done.pk]},
            follow=True,
        )

    assert response.status_code == 200
    failed.refresh_from_db()
    done.refresh_from_db()
    assert (failed.status, failed.tries, failed.reason) == ("pending", 0, "")
    assert done.status == "done"
    assert sent == [(str(ml_account.pk),)]


def test_admin_warns_about_silent_topics(admin_client, ml_account, settings):
    settings.ML_WEBHOOK_SECRET = "a" * 24
    ml_account.last_poll_change_at = timezone.now()
    ml_account.poll_change_mask = 4  # the questions count
    ml_account.save(update_fields=["last_poll_change_at", "poll_change_mask"])

    html = admin_client.get(reverse("admin:accounts_notification_changelist")).content.decode()

    assert "No notification of questions arrived lately" in html


def test_admin_notifications_send_anonymous_visitors_to_the_login(client, ml_account):
    _note(ml_account)
    for url in (
        reverse("admin:accounts_notification_changelist"),
        reverse("admin:accounts_notification_change", args=[Notification.objects.get().pk]),
    ):
        response = client.get(url)
        assert response.status_code == 302 and reverse("admin:login") in response["Location"]


def test_admin_notifications_are_not_for_sellers(client_user, ml_account):
    response = client_user.get(reverse("admin:accounts_notification_changelist"))
    assert response.status_code == 302


def test_admin_account_shows_the_reconciliation_interval(admin_client, settings):
    account = MLAccountFactory(last_notification_at=timezone.now(), sync_interval=300)
    html = admin_client.get(reverse("admin:accounts_mlaccount_change", args=[account.pk])).content.decode()
    assert "60 min (reconciliation: notifications arrive)" in html


def test_admin_counts_the_notifications_of_other_applications(admin_client, ml_account, settings):
    from sync import notifications

    settings.ML_APPLICATION_ID = 5503910054141466
    body = {
        "topic": "items",
        "resource": "/items/MLB1",
        "user_id": ml_account.ml_user_id,
        "application_id": 1,
    }
    before = notifications.foreign_count()
    for _ in range(2):
        assert notifications.receive(body).outcome == "foreign"

    html = admin_client.get(reverse("admin:accounts_notification_changelist")).content.decode()

    assert notifications.foreign_count() == before + 2
    assert f"{before + 2} notifications of other Mercado Livre applications were dropped." in html
