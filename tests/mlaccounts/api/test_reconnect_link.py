"""POST /api/ml-accounts/:id/reconnect-link: managers and owners get a link for the store's owner."""

from datetime import datetime, timedelta
from urllib.parse import urlsplit

import pytest
from django.utils import timezone

from accounts import services
from accounts.models import AuditAction, AuditEntry, ReconnectLink
from tests.factories import MLAccountFactory, UserFactory, WorkspaceFactory, member
from tests.mlaccounts.api.conftest import assert_error, assert_unauthorized, body, client_for

pytestmark = pytest.mark.django_db


def url(account_id) -> str:
    return f"/api/ml-accounts/{account_id}/reconnect-link"


@pytest.fixture
def team(db):
    workspace = WorkspaceFactory(name="Agência Sol")
    account = MLAccountFactory(workspace=workspace, status="expired", nickname="LOJA_DA_ANA")
    people = {
        role: UserFactory(email=f"{role}@example.com") for role in ("owner", "manager", "operator", "viewer")
    }
    for role, person in people.items():
        member(workspace, person, role)
    return account, people


@pytest.mark.parametrize("role", ["owner", "manager"])
def test_managers_and_owners_get_a_link(team, role):
    account, people = team
    before = timezone.now()

    response = client_for(people[role]).post(url(account.pk))

    assert response.status_code == 201
    payload = body(response)
    assert payload["success"] is True
    assert set(payload["data"]) == {"url", "expiresAt"}
    link_url = urlsplit(payload["data"]["url"])
    assert (link_url.scheme, link_url.netloc) == ("http", "testserver")
    token = link_url.path.removeprefix("/reconnect/").rstrip("/")
    link = services.reconnect_link_check(token=token)
    assert (link.account, link.created_by) == (account, people[role])
    expires = datetime.fromisoformat(payload["data"]["expiresAt"])
    assert expires == link.expires_at
    assert timedelta(days=7) <= expires - before < timedelta(days=7, minutes=1)
    entry = AuditEntry.objects.get(action=AuditAction.RECONNECT_LINK)
    assert (entry.actor_email, entry.account_id) == (f"{role}@example.com", account.pk)


def test_each_call_makes_a_new_link_and_the_old_ones_stay_valid(team):
    account, people = team
    client = client_for(people["manager"])
    first = body(client.post(url(account.pk)))["data"]["url"]
    second = body(client.post(url(account.pk) + "/"))["data"]["url"]
    assert first != second
    assert ReconnectLink.objects.filter(account=account, used_at__isnull=True).count() == 2


@pytest.mark.parametrize("role", ["operator", "viewer"])
def test_operators_and_viewers_are_forbidden(team, role):
    account, people = team
    assert_error(client_for(people[role]).post(url(account.pk)), 403, "FORBIDDEN")
    assert not ReconnectLink.objects.exists()


@pytest.mark.parametrize("account_id", ["not-a-uuid", "00000000-0000-4000-8000-000000000000", "1"])
def test_malformed_or_missing_ids_are_not_found(team, account_id):
    _, people = team
    assert_error(client_for(people["manager"]).post(url(account_id)), 404, "NOT_FOUND")


def test_an_outsider_gets_not_found(team, charlie):
    account, _ = team
    assert_error(charlie.post(url(account.pk)), 404, "NOT_FOUND")
    assert not ReconnectLink.objects.exists()


def test_anonymous_is_unauthorized(team, api_client):
    account, _ = team
    assert_unauthorized(api_client.post(url(account.pk)))
    assert not ReconnectLink.objects.exists()


@pytest.mark.parametrize("method", ["get", "put", "patch", "delete"])
def test_other_methods_are_not_allowed(team, method):
    account, people = team
    response = getattr(client_for(people["manager"]), method)(url(account.pk))
    assert response.status_code == 405
    assert body(response)["success"] is False
    assert not ReconnectLink.objects.exists()
