"""Every action of a person leaves one audit entry (issue 16), whichever way it was taken.

Each test takes the action through a real entry point (a dashboard page, the API or the
admin) from a known address and browser, then reads the entry: who, which workspace and
account, from where, and what changed. The background work the action starts (the queued
sync, the renewal job) records nothing of its own. The cast: `user` (Alice) owns
`ml_account` in her personal workspace; `agency` is a shared workspace she owns.
"""

import uuid
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
import responses
from django.core.cache import cache
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts.models import AuditEntry, Invitation, MLAccount, Question, QuestionStatus, Workspace
from mlaccounts.api.authentication import access_token_for
from sync import tasks
from tests.conftest import PASSWORD
from tests.desk_helpers import ask, ml_accepts
from tests.factories import MLAccountFactory, UserFactory, WorkspaceFactory, member
from tests.mlaccounts.api.conftest import RecordingAPIClient, body, ml_counts, token_answer
from tests.mlmock import API, TOKEN_URL, token_body

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("ml_settings")]

IP = "203.0.113.7"
AGENT = "Mozilla/5.0 (audit test) Firefox/140.0"
CALLBACK = reverse("dashboard:connect_callback")


@pytest.fixture(autouse=True)
def _fresh(settings):
    settings.LANGUAGE_CODE = "en"
    # ML actions and invitations count against per-user limits kept in the cache.
    default = settings.CACHES["default"]
    if "redis" in default["BACKEND"].lower():
        settings.CACHES = {
            **settings.CACHES,
            "default": {**default, "KEY_PREFIX": f"audit-{uuid.uuid4().hex}"},
        }
    else:
        cache.clear()


def browser(user) -> Client:
    """A signed-in dashboard session from IP with AGENT (force_login's sign-in has no address)."""
    client = Client(REMOTE_ADDR=IP, HTTP_USER_AGENT=AGENT)
    client.force_login(user)
    return client


def api(user) -> RecordingAPIClient:
    client = RecordingAPIClient(REMOTE_ADDR=IP, HTTP_USER_AGENT=AGENT)
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {access_token_for(user)}")
    return client


@pytest.fixture
def admin_browser(db):
    admin = UserFactory(email="admin@example.com", is_staff=True, is_superuser=True)
    return admin, browser(admin)


@pytest.fixture
def agency(user):
    workspace = WorkspaceFactory(name="Agência Sol")
    member(workspace, user, "owner")
    first = MLAccountFactory(workspace=workspace, is_primary=True, account_name="Loja Um")
    second = MLAccountFactory(workspace=workspace, account_name="Loja Dois")
    return workspace, first, second


def the_entry(action) -> AuditEntry:
    entries = list(AuditEntry.objects.filter(action=action))
    assert len(entries) == 1, [(e.action, e.account_label, e.changes) for e in entries]
    return entries[0]


def assert_by(entry, user, *, account=None, workspace=None, changes=None):
    assert (entry.actor_id, entry.actor_email) == (user.pk, user.email)
    assert (entry.ip, entry.user_agent) == (IP, AGENT)
    if account is not None:
        assert (entry.account_id, entry.account_label) == (account.pk, account.account_name)
        workspace = workspace or account.workspace
    if workspace is not None:
        assert (entry.workspace_id, entry.workspace_name) == (workspace.pk, workspace.name)
    if changes is not None:
        assert entry.changes == changes
    assert abs(entry.at - timezone.now()) < timedelta(minutes=1)


# --- connect, reconnect, remove ---------------------------------------------------------------


def test_connecting_with_pasted_tokens_on_the_dashboard(user):
    typed = {"ml_user_id": "2500000001234", "nickname": "LOJA", "email": "loja@example.com"}
    payload = {
        "site": "MLB",
        "access_token": "APP_USR-x",
        "refresh_token": "TG-x",
        "account_type": "individual",
    }
    response = browser(user).post(reverse("dashboard:connect_new"), {**payload, **typed})

    assert response.status_code == 302
    account = MLAccount.objects.get(ml_user_id=2_500_000_001_234)
    assert_by(the_entry("connect"), user, account=account, changes={"ml_user_id": 2_500_000_001_234})


def test_connecting_through_the_api(user):
    response = api(user).post(
        "/api/ml-accounts",
        {
            "mlUserId": "987654321012",
            "nickname": "LOJA_NOVA",
            "email": "loja.nova@example.com",
            "accessToken": "APP_USR-CONNECT-0001-secretaccess",
            "refreshToken": "TG-CONNECT-0001-secretrefresh",
            "tokenExpiresAt": (timezone.now() + timedelta(hours=6)).isoformat(),
        },
        format="json",
    )

    assert response.status_code == 201, response.content
    account = MLAccount.objects.get(ml_user_id=987_654_321_012)
    entry = the_entry("connect")
    assert_by(entry, user, account=account)
    assert "secret" not in str(entry.changes)


def test_reconnecting_through_oauth(user):
    dead = MLAccountFactory(owner=user, ml_user_id=2_500_000_001_234, status="expired", account_name="Loja")
    client = browser(user)
    authorize = urlsplit(client.get(reverse("dashboard:connect"), {"site": "MLB"})["Location"])
    state = parse_qs(authorize.query)["state"][0]
    with responses.RequestsMock() as rsps:
        rsps.add(responses.POST, TOKEN_URL, json=token_body(dead.ml_user_id, 1))
        rsps.add(
            responses.GET,
            API + "/users/me",
            json={"id": dead.ml_user_id, "nickname": "LOJA", "email": "l@example.com", "site_id": "MLB"},
        )
        client.get(CALLBACK, {"code": "TG-abc-1", "state": state})

    assert MLAccount.objects.get(pk=dead.pk).status == "active"
    entry = the_entry("reconnect")
    assert_by(entry, user, account=dead, changes={"status": ["expired", "active"]})
    assert not AuditEntry.objects.filter(action__in=["connect", "sync_now"]).exists()


def test_removing_on_the_dashboard_keeps_the_entry_of_the_account(user, ml_account):
    response = browser(user).post(reverse("dashboard:account_remove", args=[ml_account.pk]))

    assert response.status_code == 302 and not MLAccount.objects.filter(pk=ml_account.pk).exists()
    assert_by(the_entry("remove"), user, account=ml_account, changes={"ml_user_id": ml_account.ml_user_id})


# --- pause, resume, settings ------------------------------------------------------------------


def test_pausing_on_the_dashboard(user, ml_account):
    browser(user).post(reverse("dashboard:account_pause", args=[ml_account.pk]))
    assert_by(the_entry("pause"), user, account=ml_account, changes={"status": ["active", "paused"]})


def test_resuming_through_the_api(user, ml_account):
    MLAccount.objects.filter(pk=ml_account.pk).update(status="paused", sync_enabled=False)
    assert api(user).put(f"/api/ml-accounts/{ml_account.pk}/resume").status_code == 200
    assert_by(the_entry("resume"), user, account=ml_account, changes={"status": ["paused", "active"]})


def test_settings_on_the_dashboard_name_only_what_changed(user, ml_account):
    form = {"account_name": "Loja Nova", "account_type": "individual", "interval_value": "5"}
    form.update(interval_unit="minutes", notifications_enabled="on", email_notifications_enabled="on")
    browser(user).post(reverse("dashboard:account", args=[ml_account.pk]), form)

    entry = the_entry("settings")
    assert_by(
        entry, user, workspace=ml_account.workspace, changes={"account_name": ["Loja da Alice", "Loja Nova"]}
    )
    assert entry.account_id == ml_account.pk

    # The same settings again: nothing changed, nothing recorded.
    browser(user).post(reverse("dashboard:account", args=[ml_account.pk]), form)
    assert AuditEntry.objects.filter(action="settings").count() == 1


def test_settings_through_the_api_and_making_primary(user, agency):
    _workspace, _first, second = agency
    client = api(user)

    client.patch(f"/api/ml-accounts/{second.pk}", {"syncInterval": 600_000, "isPrimary": True}, format="json")
    client.patch(f"/api/ml-accounts/{second.pk}", {"isPrimary": True}, format="json")  # already is

    entry = the_entry("settings")
    assert_by(entry, user, account=second, changes={"sync_interval": [300, 600], "is_primary": [False, True]})


def test_making_primary_on_the_dashboard(user, agency):
    _workspace, _first, second = agency
    browser(user).post(reverse("dashboard:account_primary", args=[second.pk]))
    assert_by(the_entry("settings"), user, account=second, changes={"is_primary": [False, True]})


def _admin_form_data(page) -> dict:
    """What the admin's change form posts back as it is shown."""
    form = page.context["adminform"].form
    data = {}
    for name, field in form.fields.items():
        value = form[name].value()
        widget = type(field.widget).__name__
        if widget == "CheckboxInput":
            if value:
                data[name] = "on"
        elif widget == "AdminSplitDateTime":
            local = timezone.localtime(value) if value else None
            data[f"{name}_0"] = local.date().isoformat() if local else ""
            data[f"{name}_1"] = local.time().isoformat() if local else ""
        else:
            data[name] = "" if value is None else str(value)
    for inline in page.context["inline_admin_formsets"]:
        management = inline.formset.management_form
        data.update({f"{inline.formset.prefix}-{key}": value for key, value in management.initial.items()})
    return data


def test_changing_an_account_in_the_admin(user, ml_account, admin_browser):
    admin, client = admin_browser
    url = reverse("admin:accounts_mlaccount_change", args=[ml_account.pk])
    data = {**_admin_form_data(client.get(url)), "account_name": "Renomeada"}

    response = client.post(url, data)

    assert response.status_code == 302, response.content.decode()[:3000]
    entry = the_entry("settings")
    assert_by(entry, admin, account=MLAccount.objects.get(pk=ml_account.pk))
    assert entry.changes == {"account_name": ["Loja da Alice", "Renomeada"]}
    client.post(url, _admin_form_data(client.get(url)))  # saved as it is: nothing changed
    assert AuditEntry.objects.filter(action="settings").count() == 1


def test_workspace_settings_rename_response_target_and_margin(user, agency):
    workspace, _, _ = agency
    api(user).patch(f"/api/workspaces/{workspace.pk}", {"name": "Agência Lua"}, format="json")
    client = browser(user)
    desk = reverse("dashboard:desk_settings", args=[workspace.pk])
    client.post(desk, {"action": "target", "minutes": "30"})
    client.post(desk, {"action": "margin", "percent": "35"})
    client.post(desk, {"action": "margin", "percent": "35"})  # unchanged: no entry

    entries = list(AuditEntry.objects.filter(action="settings").order_by("id"))
    assert [entry.changes for entry in entries] == [
        {"name": ["Agência Sol", "Agência Lua"]},
        {"response_target_minutes": [60, 30]},
        {"reputation_margin_percent": [20, 35]},
    ]
    for entry in entries:
        assert entry.account_id is None and entry.workspace_id == workspace.pk
        assert (entry.actor_email, entry.ip, entry.user_agent) == (user.email, IP, AGENT)


# --- sync now, token renewals ---------------------------------------------------------------


def test_sync_now_on_the_dashboard(user, ml_account, queued, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        browser(user).post(reverse("dashboard:account_sync", args=[ml_account.pk]))
    assert queued == [str(ml_account.pk)]
    assert_by(the_entry("sync_now"), user, account=ml_account, changes={})


def test_sync_all_and_bulk_sync_on_the_dashboard(user, agency, queued):
    workspace, first, second = agency
    MLAccount.objects.filter(pk=second.pk).update(status="paused")
    client = browser(user)
    client.post(reverse("dashboard:workspace_switch"), {"workspace": workspace.pk})

    client.post(reverse("dashboard:sync_all"))
    assert [e.account_id for e in AuditEntry.objects.filter(action="sync_now")] == [
        first.pk
    ]  # not the paused

    client.post(reverse("dashboard:bulk"), {"action": "sync", "ids": [str(first.pk), str(second.pk)]})
    entries = AuditEntry.objects.filter(action="sync_now").order_by("id")
    assert [e.account_id for e in entries] == [first.pk, first.pk]
    for entry in entries:
        assert_by(entry, user, account=first)


def test_sync_through_the_api_and_sync_all(user, ml_account, ml, queued, settings):
    settings.SYNC_ALL_TIMEOUT = 0.01
    ml_counts(ml)
    client = api(user)

    assert client.post(f"/api/ml-accounts/{ml_account.pk}/sync").status_code == 200
    assert client.post("/api/ml-accounts/sync-all", headers={"Prefer": "respond-async"}).status_code == 202

    entries = list(AuditEntry.objects.filter(action="sync_now"))
    assert len(entries) == 2
    for entry in entries:
        assert_by(entry, user, account=ml_account, changes={})
    # The sync itself (its token, its counts) is not a person's action.
    assert set(AuditEntry.objects.values_list("action", flat=True)) == {"sync_now"}


def test_sync_now_and_renew_in_the_admin(user, ml_account, admin_browser, queued, monkeypatch):
    admin, client = admin_browser
    renewals = []
    monkeypatch.setattr(tasks.refresh_account_token, "delay_on_commit", lambda *a, **k: renewals.append(a))
    changelist = reverse("admin:accounts_mlaccount_changelist")

    client.post(changelist, {"action": "sync_now", "_selected_action": [ml_account.pk]})
    client.post(changelist, {"action": "refresh_tokens", "_selected_action": [ml_account.pk]})

    assert renewals == [(str(ml_account.pk),)]
    assert_by(the_entry("sync_now"), admin, account=ml_account)
    assert_by(the_entry("refresh"), admin, account=ml_account)


def test_renewing_through_the_api_and_the_dashboard_but_not_the_background_job(user, ml_account, ml):
    ml.add(responses.POST, TOKEN_URL, json=token_answer(1))
    ml.add(responses.POST, TOKEN_URL, json=token_answer(2))
    ml.add(responses.POST, TOKEN_URL, json=token_answer(3))

    assert api(user).put(f"/api/ml-accounts/{ml_account.pk}/refresh-token").status_code == 200
    browser(user).post(reverse("dashboard:account_renew", args=[ml_account.pk]))
    tasks.refresh_account_token.apply(args=(str(ml_account.pk),), kwargs={"force": True})

    entries = list(AuditEntry.objects.filter(action="refresh"))
    assert len(entries) == 2 and len(ml.calls) == 3
    for entry in entries:
        assert_by(entry, user, account=ml_account, changes={})
        assert "secret" not in str(entry.changes)


# --- answers -------------------------------------------------------------------------------


def test_answering_on_the_dashboard_keeps_the_question_not_the_text(user, ml_account, ml):
    question = ask(ml_account, item_id="MLB777")
    ml_accepts(ml, question.pk)

    browser(user).post(reverse("dashboard:question_answer", args=[question.pk]), {"text": "Temos sim, azul!"})

    assert Question.objects.get(pk=question.pk).status == QuestionStatus.ANSWERED
    entry = the_entry("answer")
    assert_by(entry, user, account=ml_account, changes={"question": question.pk, "item": "MLB777"})
    assert "azul" not in str(entry.changes)


def test_answering_through_the_api(user, ml_account, ml):
    question = ask(ml_account)
    ml_accepts(ml, question.pk)
    response = api(user).post(f"/api/questions/{question.pk}/answer", {"text": "Sim"}, format="json")
    assert response.status_code == 200, response.content
    assert_by(
        the_entry("answer"), user, account=ml_account, changes={"question": question.pk, "item": "MLB1000"}
    )


# --- members and invitations ------------------------------------------------------------------


def test_inviting_accepting_and_revoking(user, agency):
    workspace, first, _ = agency
    owner = api(user)
    response = owner.post(
        f"/api/workspaces/{workspace.pk}/invitations",
        {"email": "bob@example.com", "role": "operator", "accountIds": [str(first.pk)]},
        format="json",
    )
    token = body(response)["data"]["acceptUrl"].rstrip("/").rsplit("/", 1)[1]
    assert_by(
        the_entry("invite"),
        user,
        workspace=workspace,
        changes={"email": "bob@example.com", "role": "operator", "scope": "Loja Um"},
    )

    bob = UserFactory(email="bob@example.com")
    assert api(bob).post(f"/api/invitations/{token}/accept").status_code == 200
    assert_by(
        the_entry("member_join"),
        bob,
        workspace=workspace,
        changes={"member": "bob@example.com", "role": "operator", "scope": "Loja Um"},
    )

    browser(user).post(
        reverse("dashboard:invite", args=[workspace.pk]),
        {"email": "c@example.com", "role": "viewer", "scope": "all"},
    )
    invitation = Invitation.objects.get(email="c@example.com")
    browser(user).post(reverse("dashboard:invitation_revoke", args=[workspace.pk, invitation.pk]))
    browser(user).post(reverse("dashboard:invitation_revoke", args=[workspace.pk, invitation.pk]))  # no-op
    assert_by(
        the_entry("invite_revoke"),
        user,
        workspace=workspace,
        changes={"email": "c@example.com", "role": "viewer"},
    )


def test_changing_and_removing_a_member(user, agency, other_user):
    workspace, _first, second = agency
    member(workspace, other_user, "operator")
    prefix = f"m{other_user.pk}"
    update = reverse("dashboard:member_update", args=[workspace.pk, other_user.pk])
    client = browser(user)

    client.post(
        update, {f"{prefix}-role": "manager", f"{prefix}-scope": "chosen", f"{prefix}-accounts": [second.pk]}
    )
    client.post(
        update, {f"{prefix}-role": "manager", f"{prefix}-scope": "chosen", f"{prefix}-accounts": [second.pk]}
    )
    assert api(user).delete(f"/api/workspaces/{workspace.pk}/members/{other_user.pk}").status_code == 200

    assert_by(
        the_entry("member_change"),
        user,
        workspace=workspace,
        changes={"member": other_user.email, "role": ["operator", "manager"], "scope": [None, "Loja Dois"]},
    )
    assert_by(
        the_entry("member_remove"),
        user,
        workspace=workspace,
        changes={"member": other_user.email, "role": "manager"},
    )


# --- sign-ins -------------------------------------------------------------------------------


def test_signing_in_on_the_login_page_the_admin_and_the_api(user, ml_account):
    staff = UserFactory(email="staff@example.com", is_staff=True)
    dashboard = Client(REMOTE_ADDR=IP, HTTP_USER_AGENT=AGENT)
    admin = Client(REMOTE_ADDR=IP, HTTP_USER_AGENT=AGENT)
    client = RecordingAPIClient(REMOTE_ADDR=IP, HTTP_USER_AGENT=AGENT)

    assert (
        dashboard.post(reverse("account_login"), {"login": user.email, "password": PASSWORD}).status_code
        == 302
    )
    response = admin.post(
        reverse("admin:login"), {"username": staff.email, "password": PASSWORD, "next": "/admin/"}
    )
    assert response.status_code == 302
    assert (
        client.post("/api/auth/login", {"email": user.email, "password": PASSWORD}, format="json").status_code
        == 200
    )
    assert (
        client.post("/api/auth/login", {"email": user.email, "password": "wrong"}, format="json").status_code
        == 401
    )

    entries = list(AuditEntry.objects.filter(action="sign_in").order_by("id"))
    assert [(e.actor_email, e.changes) for e in entries] == [
        (user.email, {"via": "dashboard"}),
        (staff.email, {"via": "admin"}),
        (user.email, {"via": "api"}),
    ]
    for entry in entries:
        assert (entry.ip, entry.user_agent, entry.account_id) == (IP, AGENT, None)
    # In the user's own personal workspace, where they (and nobody else) read it.
    assert entries[0].workspace_id == Workspace.objects.get(personal_for=user).pk
