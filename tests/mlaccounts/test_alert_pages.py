"""The alerts inbox, the header's bell and the alert settings page."""

import re

import pytest
from django.conf import settings
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from accounts import services
from accounts.models import AlertDelivery, AlertKind, AlertSubscription, Membership, MLAccount, Role, User
from tests.factories import MLAccountFactory, UserFactory, WorkspaceFactory, member

pytestmark = pytest.mark.django_db

INBOX = reverse("dashboard:alerts")
READ = reverse("dashboard:alerts_read")
SETTINGS = reverse("dashboard:alert_settings")


def signed_in(user, workspace=None) -> Client:
    """A client of `user`, in `workspace` (the settings page is the current workspace's)."""
    if workspace is not None:
        services.workspace_switch(user=user, workspace=workspace)
    client = Client()
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    client.force_login(user)
    return client


def _expire(account):
    services.mlaccount_record_sync_failure(
        account_id=account.pk, kind="auth", message="invalid_grant", http_status=400, auth_failure=True
    )


def entry_ids(body: str) -> list[int]:
    return [int(pk) for pk in re.findall(r'<li class="alert-item [^"]*" id="alert-(\d+)"', body)]


@pytest.fixture
def agency(db):
    workspace = WorkspaceFactory(name="Agência Sol")
    cast = {}
    for name, role in (("alice", Role.OWNER), ("mary", Role.MANAGER), ("vera", Role.VIEWER)):
        cast[name] = UserFactory(email=f"{name}@agency.test")
        member(workspace, cast[name], role)
    account = MLAccountFactory(workspace=workspace, account_name="Loja Sol")
    return workspace, account, cast


def test_anonymous_visitors_are_sent_to_sign_in(client):
    for path in (INBOX, SETTINGS):
        response = client.get(path)
        assert response.status_code == 302 and reverse("account_login") in response["Location"]
    response = client.post(READ, {"all": "1"})
    assert response.status_code == 302 and reverse("account_login") in response["Location"]


def test_the_inbox_lists_the_users_alerts_and_the_bell_counts_them(agency):
    _workspace, account, cast = agency
    _expire(account)
    client = signed_in(cast["vera"])
    body = client.get(INBOX).content.decode()
    [entry] = entry_ids(body)
    assert "Loja Sol" in body and "no longer accepts the authorization" in body
    assert 'id="bell-count"' in body and ">1</span>" in body
    assert AlertDelivery.objects.get(pk=entry).user == cast["vera"]


def test_an_outsider_sees_nothing_and_cannot_mark_anothers_alert(agency):
    _workspace, account, cast = agency
    _expire(account)
    outsider = UserFactory(email="charlie@example.com")
    client = signed_in(outsider)
    body = client.get(INBOX).content.decode()
    assert entry_ids(body) == [] and 'id="no-alerts"' in body and "Loja Sol" not in body
    theirs = AlertDelivery.objects.get(user=cast["alice"])
    client.post(READ, {"delivery": str(theirs.pk)})
    theirs.refresh_from_db()
    assert theirs.read_at is None


def test_marking_read_one_then_all(agency):
    workspace, account, cast = agency
    _expire(account)
    _expire(MLAccountFactory(workspace=workspace))
    client = signed_in(cast["alice"])
    first, second = AlertDelivery.objects.filter(user=cast["alice"]).order_by("id")
    response = client.post(READ, {"delivery": str(first.pk)})
    assert response.status_code == 302 and response["Location"] == INBOX
    first.refresh_from_db()
    assert first.read_at is not None
    assert User.objects.get(pk=cast["alice"].pk).unread_alerts == 1
    assert entry_ids(client.get(INBOX + "?unread=1").content.decode()) == [second.pk]
    client.post(READ, {"all": "1"})
    assert User.objects.get(pk=cast["alice"].pk).unread_alerts == 0
    body = client.get(INBOX).content.decode()
    assert 'id="bell-count"' not in body and len(entry_ids(body)) == 2


def test_bad_ids_to_mark_read_change_nothing(agency):
    _workspace, account, cast = agency
    _expire(account)
    client = signed_in(cast["alice"])
    for junk in ("abc", "-1", "9" * 40, ""):
        assert client.post(READ, {"delivery": junk}).status_code == 302
    assert User.objects.get(pk=cast["alice"].pk).unread_alerts == 1
    assert client.get(READ).status_code == 405


def _inbox_of(user, alerts: int):
    workspace = WorkspaceFactory()
    member(workspace, user, Role.OWNER)
    for _ in range(alerts):
        _expire(MLAccountFactory(workspace=workspace))


def test_the_inbox_costs_the_same_for_2_and_60_alerts(db, django_assert_num_queries):
    few, many = UserFactory(), UserFactory()
    _inbox_of(few, 2)
    _inbox_of(many, 60)
    for person, rows in ((few, 2), (many, 25)):
        client = signed_in(person)
        client.get(INBOX)  # the first visit remembers the current workspace
        with django_assert_num_queries(5):
            body = client.get(INBOX).content.decode()
        assert len(entry_ids(body)) == rows
    assert 'id="alerts-next"' in body


def test_the_bell_costs_no_query(agency):
    """The unread count lives on the user row, which every request reads anyway."""
    workspace, account, cast = agency
    client = signed_in(cast["alice"], workspace)
    client.get(reverse("dashboard:sales"))
    with CaptureQueriesContext(connection) as quiet:
        before = client.get(reverse("dashboard:sales")).content.decode()
    _expire(account)
    with CaptureQueriesContext(connection) as alerted:
        after = client.get(reverse("dashboard:sales")).content.decode()
    assert 'id="bell-count"' not in before and 'id="bell-count"' in after
    assert len(alerted) == len(quiet)


def test_a_member_chooses_how_to_get_each_alert(agency):
    workspace, _account, cast = agency
    client = signed_in(cast["vera"], workspace)
    body = client.get(SETTINGS).content.decode()
    assert 'id="channels-form"' in body and 'id="rules-form"' not in body  # a viewer: no rules
    form = {"action": "channels", **{f"channel-{kind}": "inbox" for kind in AlertKind.values}}
    form["channel-new_claim"] = "digest"
    form["channel-recovered"] = "off"
    response = client.post(SETTINGS, form)
    assert response.status_code == 302
    membership = Membership.objects.get(workspace=workspace, user=cast["vera"])
    assert dict(AlertSubscription.objects.filter(membership=membership).values_list("kind", "channel")) == {
        "new_claim": "digest",
        "recovered": "off",
    }


def test_a_bad_channel_is_refused_naming_the_alert(agency):
    workspace, _account, cast = agency
    client = signed_in(cast["vera"], workspace)
    response = client.post(SETTINGS, {"action": "channels", "channel-reconnect": "pigeon"})
    assert response.status_code == 400
    assert 'aria-invalid="true"' in response.content.decode()
    assert not AlertSubscription.objects.exists()


def test_managers_switch_the_workspaces_alerts(agency):
    workspace, _account, cast = agency
    client = signed_in(cast["mary"], workspace)
    enabled = [kind for kind in AlertKind.values if kind != "recovered"]
    response = client.post(SETTINGS, {"action": "rules", "enabled": enabled, "failing_hours": "12"})
    assert response.status_code == 302
    workspace.refresh_from_db()
    assert (workspace.alerts_off, workspace.failing_alert_hours) == (["recovered"], 12)
    for hours in ("0", "abc", "99999999999999999999", ""):
        response = client.post(SETTINGS, {"action": "rules", "enabled": enabled, "failing_hours": hours})
        assert response.status_code == 400
    workspace.refresh_from_db()
    assert workspace.failing_alert_hours == 12


def test_a_viewer_cannot_switch_the_workspaces_alerts(agency):
    workspace, _account, cast = agency
    response = signed_in(cast["vera"], workspace).post(
        SETTINGS, {"action": "rules", "enabled": [], "failing_hours": "2"}
    )
    assert response.status_code == 403
    workspace.refresh_from_db()
    assert (workspace.alerts_off, workspace.failing_alert_hours) == ([], 6)


def test_the_email_language_is_a_choice_from_the_list(agency):
    _workspace, _account, cast = agency
    client = signed_in(cast["vera"])
    assert client.post(SETTINGS, {"action": "language", "language": "es"}).status_code == 302
    assert User.objects.get(pk=cast["vera"].pk).language == "es"
    assert client.post(SETTINGS, {"action": "language", "language": "xx"}).status_code == 400
    assert User.objects.get(pk=cast["vera"].pk).language == "es"


def test_the_account_settings_switch_its_alerts(agency):
    _workspace, account, cast = agency
    client = signed_in(cast["mary"])
    form = {
        "account_name": "Loja Sol",
        "account_type": "individual",
        "interval_value": "5",
        "interval_unit": "minutes",
    }
    response = client.post(
        reverse("dashboard:account", args=[account.pk]), {**form, "notifications_enabled": "on"}
    )
    assert response.status_code == 302
    account = MLAccount.objects.get(pk=account.pk)
    assert (account.notifications_enabled, account.email_notifications_enabled) == (True, False)
    body = client.get(reverse("dashboard:account", args=[account.pk])).content.decode()
    assert 'name="notifications_enabled" id="id_notifications_enabled" checked' in body
