"""Workspaces end to end through the API and the dashboard: invitations, the rules that hold
whoever calls (last owner, personal workspace, scopes), and access that changes at once."""

import uuid
from datetime import timedelta

import pytest
from django.core import mail
from django.core.cache import cache
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from accounts import services
from accounts.errors import AccountValidationError, Forbidden, InvitationInvalid
from accounts.models import Invitation, Membership, MLAccount
from tests.factories import MLAccountFactory, UserFactory, WorkspaceFactory, member
from tests.mlaccounts.api.conftest import assert_error, body, client_for

pytestmark = pytest.mark.django_db


@pytest.fixture
def agency(user):
    """Alice owns a shared workspace with two accounts."""
    workspace = WorkspaceFactory(name="Agência Sol")
    member(workspace, user, "owner")
    first = MLAccountFactory(workspace=workspace, is_primary=True, account_name="Loja Um")
    second = MLAccountFactory(workspace=workspace, account_name="Loja Dois")
    return workspace, first, second


def _invite(alice, workspace, **payload):
    payload = {"email": "Bob@Example.com", "role": "operator", **payload}
    return alice.post(f"/api/workspaces/{workspace.pk}/invitations", payload, format="json")


def _token(response) -> str:
    return body(response)["data"]["acceptUrl"].rstrip("/").rsplit("/", 1)[1]


# --- invitations ---------------------------------------------------------------------------


def test_an_invitation_is_emailed_with_an_absolute_single_use_link(alice, agency):
    workspace, first, _ = agency
    response = _invite(alice, workspace, accountIds=[str(first.pk)])

    assert response.status_code == 201, response.content
    data = body(response)["data"]
    assert data["email"] == "bob@example.com"  # canonical form
    assert data["role"] == "operator"
    assert data["accountIds"] == [str(first.pk)]
    assert data["emailSent"] is True
    assert data["acceptUrl"].startswith("http://testserver/invitations/")
    token = _token(response)
    # Only a hash is stored; the token travels in the email alone.
    invitation = Invitation.objects.get()
    assert token not in invitation.token_hash
    assert invitation.expires_at - invitation.created_at == timedelta(days=7)
    (email,) = mail.outbox
    assert email.to == ["bob@example.com"]
    assert "Agência Sol" in email.subject
    assert data["acceptUrl"] in email.body
    assert "operator" in email.body.lower()


def test_the_invitation_email_is_in_the_inviters_language(alice, agency):
    workspace, _, _ = agency
    response = alice.post(
        f"/api/workspaces/{workspace.pk}/invitations",
        {"email": "bob@example.com", "role": "viewer"},
        format="json",
        headers={"Accept-Language": "pt-BR"},
    )
    assert response.status_code == 201
    assert "convid" in mail.outbox[0].subject.lower()  # "convidado/convite"


def test_accepting_gives_the_role_and_scope_once(alice, agency):
    workspace, first, second = agency
    token = _token(_invite(alice, workspace, accountIds=[str(first.pk)]))
    bob = UserFactory(email="bob@example.com")
    bob_api = client_for(bob)

    response = bob_api.post(f"/api/invitations/{token}/accept")

    assert response.status_code == 200, response.content
    assert body(response)["data"] == {"workspaceId": str(workspace.pk), "role": "operator"}
    seen = {item["id"] for item in body(bob_api.get("/api/ml-accounts"))["data"]["accounts"]}
    assert seen == {str(first.pk)}  # scoped: not second
    assert bob_api.get(f"/api/ml-accounts/{second.pk}").status_code == 404
    # Single use.
    assert_error(bob_api.post(f"/api/invitations/{token}/accept"), 400, "INVITATION_INVALID")
    assert Membership.objects.filter(workspace=workspace, user=bob).count() == 1


def test_an_invitation_for_another_address_is_refused_and_stays_usable(alice, agency, other_user):
    workspace, _, _ = agency
    token = _token(_invite(alice, workspace))

    assert_error(client_for(other_user).post(f"/api/invitations/{token}/accept"), 400, "INVITATION_INVALID")

    assert not Membership.objects.filter(workspace=workspace, user=other_user).exists()
    bob = UserFactory(email="bob@example.com")
    assert client_for(bob).post(f"/api/invitations/{token}/accept").status_code == 200


@pytest.mark.parametrize("state", ["expired", "revoked", "replaced"])
def test_expired_revoked_or_replaced_invitations_are_refused(alice, agency, state):
    workspace, _, _ = agency
    response = _invite(alice, workspace)
    token = _token(response)
    invitation = Invitation.objects.get(pk=body(response)["data"]["id"])
    if state == "expired":
        Invitation.objects.filter(pk=invitation.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    elif state == "revoked":
        assert alice.delete(f"/api/workspaces/{workspace.pk}/invitations/{invitation.pk}").status_code == 200
    else:
        _invite(alice, workspace, role="viewer")  # a new invitation to the same address
    bob = UserFactory(email="bob@example.com")

    assert_error(client_for(bob).post(f"/api/invitations/{token}/accept"), 400, "INVITATION_INVALID")
    assert not Membership.objects.filter(user=bob, workspace=workspace).exists()


def test_an_unknown_token_is_not_found_and_anonymous_callers_are_unauthorized(api_client, other_user):
    assert_error(client_for(other_user).post("/api/invitations/" + "x" * 43 + "/accept"), 404, "NOT_FOUND")
    assert api_client.post("/api/invitations/" + "x" * 43 + "/accept").status_code == 401


def test_inviting_a_member_or_a_bad_scope_is_a_validation_error(alice, agency, user):
    workspace, _, _ = agency
    foreign = MLAccountFactory()
    assert_error(_invite(alice, workspace, email=user.email), 400, "VALIDATION_ERROR")
    errors = assert_error(_invite(alice, workspace, accountIds=[str(foreign.pk)]), 400, "VALIDATION_ERROR")
    assert "accountIds" in errors["errors"]
    errors = assert_error(_invite(alice, workspace, role="owner", accountIds=[]), 400, "VALIDATION_ERROR")
    assert "accountIds" in errors["errors"]
    assert_error(_invite(alice, workspace, accountIds="all"), 400, "VALIDATION_ERROR")
    assert not Invitation.objects.exists()
    assert not mail.outbox


def test_a_failed_email_is_reported_not_a_500(alice, agency, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", 9, 2  # nothing listens
    workspace, _, _ = agency

    response = _invite(alice, workspace)

    assert response.status_code == 201
    assert body(response)["data"]["emailSent"] is False
    assert Invitation.objects.count() == 1


# --- the rules whoever calls --------------------------------------------------------------


def test_the_last_owner_cannot_leave_or_be_demoted(agency, user):
    workspace, _, _ = agency
    membership = Membership.objects.get(workspace=workspace, user=user)
    with pytest.raises(Forbidden):
        services.membership_update(membership=membership, role="manager")
    with pytest.raises(Forbidden):
        services.membership_remove(membership=membership)
    second_owner = UserFactory()
    member(workspace, second_owner, "owner")
    services.membership_update(membership=membership, role="manager")
    assert Membership.objects.get(pk=membership.pk).role == "manager"


def test_a_personal_workspace_keeps_its_owner_and_cannot_be_deleted(alice, user, other_user):
    personal = services.workspace_personal(user=user)
    member(personal, other_user, "owner")
    charlie = client_for(other_user)
    assert_error(charlie.delete(f"/api/workspaces/{personal.pk}/members/{user.pk}"), 403, "FORBIDDEN")
    assert_error(
        charlie.patch(f"/api/workspaces/{personal.pk}/members/{user.pk}", {"role": "viewer"}),
        403,
        "FORBIDDEN",
    )
    assert_error(alice.delete(f"/api/workspaces/{personal.pk}"), 403, "FORBIDDEN")
    assert Membership.objects.get(workspace=personal, user=user).role == "owner"


def test_an_owner_is_never_scoped(agency, other_user):
    workspace, first, _ = agency
    membership = member(workspace, other_user, "viewer", accounts=[first])
    with pytest.raises(AccountValidationError):
        services.membership_update(membership=membership, role="owner", account_ids=[str(first.pk)])
    services.membership_update(membership=membership, role="owner")
    membership.refresh_from_db()
    assert (membership.role, membership.scoped, membership.scope.count()) == ("owner", False, 0)


def test_deleting_a_workspace_removes_its_accounts_and_memberships(alice, agency, other_user):
    workspace, first, second = agency
    member(workspace, other_user, "viewer")
    assert alice.delete(f"/api/workspaces/{workspace.pk}").status_code == 200
    assert not MLAccount.objects.filter(pk__in=[first.pk, second.pk]).exists()
    assert not Membership.objects.filter(workspace_id=workspace.pk).exists()
    assert client_for(other_user).get(f"/api/workspaces/{workspace.pk}").status_code == 404


def test_malformed_workspace_and_member_ids_are_not_found(alice, agency):
    workspace, _, _ = agency
    for path in (
        "/api/workspaces/not-a-uuid",
        f"/api/workspaces/{uuid.uuid4()}",
        f"/api/workspaces/{workspace.pk}/members/abc",
        f"/api/workspaces/{workspace.pk}/members/99999999999999999999999",
        f"/api/workspaces/{workspace.pk}/invitations/xyz",
    ):
        method = alice.get if path.count("/") == 3 else alice.delete
        assert_error(method(path), 404, "NOT_FOUND")


@pytest.mark.parametrize("page", ["0", "-3", "1", "99999999999999999999"])
def test_workspace_lists_are_paged_and_bound_any_page(alice, agency, page):
    response = alice.get("/api/workspaces", {"page": page})
    assert response.status_code == 200
    assert body(response)["data"]["total"] == 2  # personal + the agency


def test_a_page_that_is_not_a_number_is_a_validation_error(alice):
    assert_error(alice.get("/api/workspaces", {"page": "two"}), 400, "VALIDATION_ERROR")


def test_member_list_query_count_is_fixed(alice, agency, django_assert_num_queries):
    workspace, first, _ = agency
    path = f"/api/workspaces/{workspace.pk}/members"
    alice.get(path)
    member(workspace, UserFactory(), "viewer", accounts=[first])
    with django_assert_num_queries(4) as few:
        alice.get(path)
    for _ in range(20):
        member(workspace, UserFactory(), "operator", accounts=[first])
    with django_assert_num_queries(len(few.captured_queries)):
        response = alice.get(path)
    assert body(response)["data"]["total"] == 22


# --- changes take effect on the next request, for bearer tokens and sessions ----------------


def test_removing_or_narrowing_a_member_takes_effect_on_their_next_request(alice, agency, other_user, client):
    workspace, first, _ = agency
    member(workspace, other_user, "manager")
    charlie = client_for(other_user)  # a bearer token issued while a manager
    client.force_login(other_user)  # and a session
    assert charlie.put(f"/api/ml-accounts/{first.pk}/pause").status_code == 200

    response = alice.patch(
        f"/api/workspaces/{workspace.pk}/members/{other_user.pk}", {"role": "viewer"}, format="json"
    )
    assert response.status_code == 200
    assert body(response)["data"]["role"] == "viewer"
    assert_error(charlie.put(f"/api/ml-accounts/{first.pk}/resume"), 403, "FORBIDDEN")
    assert client.post(reverse("dashboard:account_resume", args=[first.pk])).status_code == 403

    assert alice.delete(f"/api/workspaces/{workspace.pk}/members/{other_user.pk}").status_code == 200
    assert_error(charlie.get(f"/api/ml-accounts/{first.pk}"), 404, "NOT_FOUND")
    assert client.get(reverse("dashboard:account", args=[first.pk])).status_code == 404


# --- the dashboard's invitation page ------------------------------------------------------


def test_the_invitation_page_signed_out_offers_sign_in_and_sign_up(client, user, agency):
    workspace, _, _ = agency
    _invitation, token = services.invitation_create(
        workspace=workspace, invited_by=user, email="bob@example.com", role="viewer"
    )
    html = client.get(reverse("dashboard:invitation", args=[token])).content.decode()
    assert "Agência Sol" in html
    assert 'id="invitation-sign-in"' in html and 'id="invitation-sign-up"' in html
    assert f"next=/invitations/{token}/" in html.replace("%2F", "/")


def test_the_invitation_page_refuses_another_address_and_accepts_the_right_one(
    client, user, agency, other_user
):
    workspace, _, _ = agency
    _invitation, token = services.invitation_create(
        workspace=workspace, invited_by=user, email="bob@example.com", role="viewer"
    )
    url = reverse("dashboard:invitation", args=[token])
    client.force_login(other_user)
    assert client.post(url).status_code == 400
    assert not Membership.objects.filter(user=other_user, workspace=workspace).exists()

    bob = UserFactory(email="bob@example.com")
    client.force_login(bob)
    response = client.post(url)
    assert response.status_code == 302
    assert Membership.objects.get(user=bob, workspace=workspace).role == "viewer"
    bob.refresh_from_db()
    assert bob.current_workspace_id == workspace.pk  # the dashboard opens on it
    with pytest.raises(InvitationInvalid):
        services.invitation_accept(token=token, user=bob)
    assert client.get(url).status_code == 400


def test_an_unknown_invitation_link_is_a_404_page(client):
    assert client.get(reverse("dashboard:invitation", args=["x" * 43])).status_code == 404


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/api/workspaces"),
        ("post", "/api/workspaces"),
        ("get", "/api/workspaces/{ws}"),
        ("patch", "/api/workspaces/{ws}"),
        ("delete", "/api/workspaces/{ws}"),
        ("get", "/api/workspaces/{ws}/members"),
        ("patch", "/api/workspaces/{ws}/members/1"),
        ("delete", "/api/workspaces/{ws}/members/1"),
        ("get", "/api/workspaces/{ws}/invitations"),
        ("post", "/api/workspaces/{ws}/invitations"),
        ("delete", "/api/workspaces/{ws}/invitations/{ws}"),
    ],
)
def test_every_workspace_endpoint_refuses_anonymous_callers(api_client, agency, method, path):
    workspace, _, _ = agency
    response = getattr(api_client, method)(path.format(ws=workspace.pk), {"name": "x"}, format="json")
    assert_error(response, 401, "UNAUTHORIZED")
    assert workspace.memberships.count() == 1


def test_invitations_are_limited_per_user_across_the_api_and_the_dashboard(settings, user):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], "invite": "2/hour"},
    }
    cache.clear()
    workspace = WorkspaceFactory()
    member(workspace, user, "owner")
    api = APIClient()
    api.force_authenticate(user)
    path = f"/api/workspaces/{workspace.pk}/invitations"
    assert api.post(path, {"email": "one@example.com", "role": "viewer"}, format="json").status_code == 201
    page = Client()
    page.force_login(user)
    invite = reverse("dashboard:invite", args=[workspace.pk])
    assert (
        page.post(invite, {"email": "two@example.com", "role": "viewer", "scope": "all"}).status_code == 302
    )
    # The third, by either way in, is refused and sends nothing.
    refused = api.post(path, {"email": "three@example.com", "role": "viewer"}, format="json")
    assert refused.status_code == 429 and refused.json()["code"] == "RATE_LIMITED" and refused["Retry-After"]
    response = page.post(invite, {"email": "four@example.com", "role": "viewer", "scope": "all"})
    assert response.status_code == 429 and response["Retry-After"]
    emails = set(Invitation.objects.values_list("email", flat=True))
    assert emails == {"one@example.com", "two@example.com"}
