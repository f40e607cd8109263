"""Connect with OAuth end to end over real HTTP, against the bundled sandbox."""

import time

import pytest
import requests
from django.urls import reverse

from accounts import tokens
from accounts.mercadolivre import sandbox
from accounts.mercadolivre.sandbox.sellers import standing_orders
from accounts.models import MLAccount
from sync import engine
from tests import sandbox_oauth

pytestmark = pytest.mark.django_db
CALLBACK = reverse("dashboard:connect_callback")
SELLER = next(s for s in sandbox.DEMO_SELLERS if s.id > 2**32)


@pytest.fixture
def ml(settings):
    with sandbox.start_sandbox(port=0) as server:
        sandbox_oauth.point_at(settings, server)
        settings.LANGUAGE_CODE = "en"  # the assertions read the English source strings
        yield server


def authorize(client, seller_id=SELLER.id, decision="allow"):
    """Start the connect flow and answer the sandbox's authorization page like a seller."""
    start = client.get(reverse("dashboard:connect"), {"site": "MLB"})
    return sandbox_oauth.authorize(start["Location"], seller_id, decision)


def test_connect_then_sync_against_the_sandbox(client_user, user, ml):
    params = authorize(client_user)
    client_user.get(CALLBACK, params)
    account = MLAccount.objects.get(workspace__personal_for=user)
    assert (account.ml_user_id, account.nickname) == (SELLER.id, SELLER.nickname)
    frozen = time.time()  # the sandbox's orders stand still; the sync counts from its own clock
    ml.state.clock = lambda: frozen
    assert engine.sync_account(account.pk).ok
    done = time.time()
    account.refresh_from_db()
    assert account.cached_products == SELLER.listings
    assert account.cached_orders in {
        standing_orders(SELLER, since=moment - 30 * 86400, now=frozen) for moment in (frozen, done)
    }
    assert (account.cached_questions, account.cached_claims) == (SELLER.questions, SELLER.claims)


def test_reconnect_replaces_the_tokens_of_the_same_account(client_user, user, ml):
    client_user.get(CALLBACK, authorize(client_user))
    first = MLAccount.objects.get(workspace__personal_for=user)
    MLAccount.objects.filter(pk=first.pk).update(status="expired")
    client_user.get(CALLBACK, authorize(client_user))
    again = MLAccount.objects.get(workspace__personal_for=user)
    assert again.pk == first.pk
    assert again.status == "active"
    assert again.refresh_token != first.refresh_token
    # The new authorization killed the old refresh token, as ML does.
    dead = requests.post(
        ml.url + "/oauth/token",
        data={
            "grant_type": "refresh_token",
            "client_id": sandbox.SANDBOX_CLIENT_ID,
            "client_secret": sandbox.SANDBOX_CLIENT_SECRET,
            "refresh_token": first.refresh_token,
        },
        timeout=10,
    )
    assert dead.json()["error"] == "invalid_grant"


def test_tampered_state_writes_nothing(client_user, ml):
    params = authorize(client_user)
    params["state"] = params["state"][:-2] + "xx"
    client_user.get(CALLBACK, params)
    assert not MLAccount.objects.exists()


def test_reused_state_writes_nothing(client_user, user, ml):
    params = authorize(client_user)
    client_user.get(CALLBACK, params)
    MLAccount.objects.all().delete()
    client_user.get(CALLBACK, params)
    assert not MLAccount.objects.exists()


def test_reused_code_is_refused_by_ml_and_writes_nothing(client_user, user, ml):
    used = authorize(client_user)
    client_user.get(CALLBACK, used)
    account = MLAccount.objects.get(workspace__personal_for=user)
    fresh = authorize(client_user)  # a valid new state, but the old, spent code
    response = client_user.get(CALLBACK, {"code": used["code"], "state": fresh["state"]}, follow=True)
    assert MLAccount.objects.get(workspace__personal_for=user).access_token == account.access_token
    assert any("did not accept" in str(m) for m in response.context["messages"])


def test_denied_consent_writes_nothing(client_user, ml):
    params = authorize(client_user, decision="deny")
    assert params["error"] == "access_denied"
    response = client_user.get(CALLBACK, params, follow=True)
    assert not MLAccount.objects.exists()
    assert any("not authorised" in str(m) for m in response.context["messages"])


def test_a_second_user_authorizing_a_seller_keeps_the_first_users_account_alive(
    client, client_user, user, other_user, ml
):
    """One grant per (application, seller): B's authorization of S must not kill A's account.

    Mercado Livre has just given B the only valid pair, and invalidated A's: the pair goes
    onto A's account (which keeps syncing), B gets no access and is told, by workspace
    name, where the seller is managed; ML never answers invalid_grant.
    """
    client_user.get(CALLBACK, authorize(client_user))
    account = MLAccount.objects.get(workspace__personal_for=user)
    assert engine.sync_account(account.pk).ok
    ml.state.reset_stats()

    client.force_login(other_user)
    response = client.get(CALLBACK, authorize(client), follow=True)

    text = " ".join(str(m) for m in response.context["messages"])
    assert "managed in the workspace “Alice Owner”" in text
    assert "alice@example.com" not in text  # the workspace's name, never its members
    assert list(MLAccount.objects.values_list("pk", flat=True)) == [account.pk]
    account.refresh_from_db()
    assert account.workspace.personal_for == user
    assert account.connected_by == user
    assert account.events.filter(message__contains="connecting from another workspace").exists()
    # B sees nothing of it, on the dashboard or through the API.
    assert SELLER.nickname not in client.get(reverse("dashboard:overview")).content.decode()
    assert client.get(reverse("dashboard:account", args=[account.pk])).status_code == 404
    # A's account keeps syncing, renewing its token included, with the pair B's consent made.
    assert engine.sync_account(account.pk).ok
    tokens.get_fresh_access_token(account.pk, force=True)
    assert engine.sync_account(account.pk).ok
    assert ml.state.stats()["answered_invalid_grant"] == 0
