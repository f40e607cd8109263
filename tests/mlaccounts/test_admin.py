import re

import pytest
from django.urls import reverse

from accounts.models import Membership, MLAccount, User
from tests.factories import AccountEventFactory, MLAccountFactory, UserFactory, WorkspaceFactory, member

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client):
    admin = UserFactory(email="admin@example.com", is_staff=True, is_superuser=True)
    client.force_login(admin)
    return client


def test_anonymous_is_sent_to_the_admin_login(client, ml_account):
    response = client.get(reverse("admin:accounts_mlaccount_changelist"))
    assert response.status_code == 302
    assert reverse("admin:login") in response["Location"]


def test_a_seller_who_is_not_staff_cannot_enter(client_user, ml_account):
    response = client_user.get(reverse("admin:accounts_mlaccount_change", args=[ml_account.pk]))
    assert response.status_code == 302


def test_list_shows_accounts_but_never_tokens(admin_client, ml_account):
    response = admin_client.get(reverse("admin:accounts_mlaccount_changelist"))
    html = response.content.decode()
    assert response.status_code == 200
    assert ml_account.nickname in html
    assert ml_account.access_token not in html and ml_account.refresh_token not in html


def test_change_form_never_shows_tokens_and_shows_events(admin_client, ml_account):
    AccountEventFactory(account=ml_account, message="Mercado Livre answered 503")
    response = admin_client.get(reverse("admin:accounts_mlaccount_change", args=[ml_account.pk]))
    html = response.content.decode()
    assert response.status_code == 200
    assert "Mercado Livre answered 503" in html
    assert ml_account.access_token not in html and ml_account.refresh_token not in html
    assert 'name="access_token"' not in html and 'name="refresh_token"' not in html


def test_saving_the_change_form_keeps_the_tokens(admin_client, ml_account):
    url = reverse("admin:accounts_mlaccount_change", args=[ml_account.pk])
    data = {
        "workspace": ml_account.workspace_id,
        "nickname": ml_account.nickname,
        "email": ml_account.email,
        "site_id": "MLB",
        "account_name": "Renamed in admin",
        "account_type": "store",
        "sync_enabled": "on",
        "sync_interval": 600,
        "notifications_enabled": "on",
        "events-TOTAL_FORMS": 0,
        "events-INITIAL_FORMS": 0,
        "events-MIN_NUM_FORMS": 0,
        "events-MAX_NUM_FORMS": 1000,
    }
    response = admin_client.post(url, data)
    assert response.status_code == 302, response.content.decode()[:2000]
    reloaded = MLAccount.objects.get(pk=ml_account.pk)
    assert reloaded.account_name == "Renamed in admin"
    assert reloaded.access_token == ml_account.access_token
    assert reloaded.refresh_token == ml_account.refresh_token


@pytest.mark.parametrize("term", ["LOJA_ALICE", "alice@example.com", "4000000"])
def test_search_by_nickname_email_and_ml_user_id(admin_client, ml_account, term):
    MLAccountFactory(nickname="SOMEBODY_ELSE")
    if term == "4000000":
        term = str(ml_account.ml_user_id)
    response = admin_client.get(reverse("admin:accounts_mlaccount_changelist"), {"q": term})
    html = response.content.decode()
    assert ml_account.nickname in html
    assert "SOMEBODY_ELSE" not in html


def test_filters(admin_client, ml_account):
    MLAccountFactory(nickname="PAUSED_ONE", status="paused")
    response = admin_client.get(reverse("admin:accounts_mlaccount_changelist"), {"status__exact": "paused"})
    html = response.content.decode()
    assert "PAUSED_ONE" in html and ml_account.nickname not in html


def test_pause_and_resume_actions(admin_client, ml_account):
    url = reverse("admin:accounts_mlaccount_changelist")
    admin_client.post(url, {"action": "pause_accounts", "_selected_action": [ml_account.pk]})
    ml_account.refresh_from_db()
    assert ml_account.status == "paused" and not ml_account.sync_enabled
    admin_client.post(url, {"action": "resume_accounts", "_selected_action": [ml_account.pk]})
    ml_account.refresh_from_db()
    assert ml_account.status == "active" and ml_account.sync_enabled


def test_users_are_listed(admin_client, user):
    response = admin_client.get(reverse("admin:accounts_user_changelist"))
    assert user.email in response.content.decode()


def test_the_admin_shows_and_edits_workspaces_with_their_members(admin_client, ml_account, user, other_user):
    workspace = ml_account.workspace
    listing = admin_client.get(reverse("admin:accounts_workspace_changelist"))
    assert listing.status_code == 200
    assert workspace.name in listing.content.decode()
    page = admin_client.get(reverse("admin:accounts_workspace_change", args=[workspace.pk]))
    assert page.status_code == 200
    membership = workspace.memberships.get()
    response = admin_client.post(
        reverse("admin:accounts_workspace_change", args=[workspace.pk]),
        {
            "name": "Renamed in admin",
            "personal_for": user.pk,
            "response_target_minutes": "60",
            "reputation_margin_percent": "20",
            "memberships-TOTAL_FORMS": "2",
            "memberships-INITIAL_FORMS": "1",
            "memberships-MIN_NUM_FORMS": "0",
            "memberships-MAX_NUM_FORMS": "1000",
            "memberships-0-id": membership.pk,
            "memberships-0-workspace": workspace.pk,
            "memberships-0-user": user.pk,
            "memberships-0-role": "owner",
            "memberships-1-workspace": workspace.pk,
            "memberships-1-user": other_user.pk,
            "memberships-1-role": "viewer",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    workspace.refresh_from_db()
    assert workspace.name == "Renamed in admin"
    assert workspace.memberships.get(user=other_user).role == "viewer"


def test_the_admin_lists_invitations_without_their_token(admin_client, ml_account, user):
    from accounts import services

    invitation, token = services.invitation_create(
        workspace=ml_account.workspace, invited_by=user, email="bob@example.com", role="viewer"
    )
    listing = admin_client.get(reverse("admin:accounts_invitation_changelist")).content.decode()
    page = admin_client.get(
        reverse("admin:accounts_invitation_change", args=[invitation.pk])
    ).content.decode()
    assert "bob@example.com" in listing and "bob@example.com" in page
    for html in (listing, page):
        assert token not in html and invitation.token_hash not in html


# --- in the reader's language (issue 12) -------------------------------------------------------------


def admin_text(client, url, language):
    client.cookies["django_language"] = language
    html = client.get(url).content.decode()
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


@pytest.mark.parametrize(
    ("language", "header"),
    [
        ("pt-br", "Administração do ML Accounts"),
        ("es", "Administración de ML Accounts"),
        ("en", "ML Accounts administration"),
    ],
)
def test_the_admin_is_named_after_the_product(admin_client, language, header, settings):
    text = admin_text(admin_client, reverse("admin:index"), language)
    assert header in text and "Django" not in text
    settings.SITE_NAME = "Contas da Loja"
    assert "Contas da Loja" in admin_text(admin_client, reverse("admin:index"), language)


@pytest.mark.parametrize(
    ("language", "words"),
    [
        (
            "pt-br",
            ["Usuários e contas do Mercado Livre", "Tarefas periódicas", "Intervalos", "Eventos solares"],
        ),
        (
            "es",
            ["Usuarios y cuentas de Mercado Libre", "Tareas periódicas", "Intervalos", "Eventos solares"],
        ),
    ],
)
def test_the_admin_index_names_every_app_and_model_in_the_readers_language(admin_client, language, words):
    text = admin_text(admin_client, reverse("admin:index"), language)
    for word in words:
        assert word in text
    for english in ["Periodic Tasks", "Periodic tasks", "Solar events", "Clocked", "Accounts"]:
        assert english not in text.replace("ML Accounts", "")


def test_the_admins_columns_and_labels_are_translated(admin_client, ml_account):
    workspaces = admin_text(admin_client, reverse("admin:accounts_workspace_changelist"), "pt-br")
    assert "Espaço pessoal de" in workspaces and "Personal for" not in workspaces
    workspace = admin_text(
        admin_client, reverse("admin:accounts_workspace_change", args=[ml_account.workspace_id]), "pt-br"
    )
    assert "Usuário" in workspace and " User " not in workspace
    account = admin_text(
        admin_client, reverse("admin:accounts_mlaccount_change", args=[ml_account.pk]), "pt-br"
    )
    assert "Conectada por" in account and "Connected by" not in account
    tasks = admin_text(admin_client, reverse("admin:django_celery_beat_periodictask_changelist"), "pt-br")
    assert "Ativar as tarefas selecionadas" in tasks and "a cada 60 segundos" in tasks
    for english in ["Enable selected tasks", "Start Datetime", "One-off Task", "every 60 seconds"]:
        assert english not in tasks


def test_the_account_list_has_short_columns(admin_client, ml_account):
    text = admin_text(admin_client, reverse("admin:accounts_mlaccount_changelist"), "pt-br")
    assert "Intervalo real de sincronização" not in text and "Erros seguidos" not in text
    assert f"@{ml_account.nickname}" in text


def test_the_only_owner_of_a_shared_workspace_cannot_be_deleted(admin_client, user, other_user):
    shared = WorkspaceFactory(name="Agência Sul")
    member(shared, user, "owner")
    member(shared, other_user, "manager")
    MLAccountFactory(workspace=shared)
    url = reverse("admin:accounts_user_delete", args=[user.pk])
    page = admin_client.get(url).content.decode()
    # Listed as protected, with no confirmation button.
    assert "Agência Sul" in page and 'name="post"' not in page
    admin_client.post(url, {"post": "yes"})
    assert User.objects.filter(pk=user.pk).exists()
    # The bulk action refuses too.
    changelist = reverse("admin:accounts_user_changelist")
    admin_client.post(changelist, {"action": "delete_selected", "_selected_action": [user.pk], "post": "yes"})
    assert User.objects.filter(pk=user.pk).exists()
    # With a second owner, the user can go (their personal workspace with them).
    Membership.objects.filter(workspace=shared, user=other_user).update(role="owner")
    admin_client.post(url, {"post": "yes"})
    assert not User.objects.filter(pk=user.pk).exists()
    assert Membership.objects.filter(workspace=shared, user=other_user, role="owner").exists()
