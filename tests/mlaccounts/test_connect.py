"""Connect with OAuth (PKCE) through the dashboard, with ML mocked at the HTTP boundary."""

from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
import responses
from django.urls import reverse
from django.utils import timezone

from accounts.mercadolivre.oauth import challenge_for
from accounts.models import MLAccount, OAuthState
from tests.factories import MLAccountFactory
from tests.mlmock import API, token_body

pytestmark = pytest.mark.django_db
CONNECT = reverse("dashboard:connect")
CALLBACK = reverse("dashboard:connect_callback")
ML_USER = 2_500_000_001_234


@pytest.fixture(autouse=True)
def _ml(ml_settings):
    settings = ml_settings
    # The dashboard speaks pt-BR by default; these assertions read the English source strings.
    settings.LANGUAGE_CODE = "en"


def start(client, site="MLB"):
    response = client.get(CONNECT, {"site": site})
    assert response.status_code == 302
    location = urlsplit(response["Location"])
    return location, {k: v[0] for k, v in parse_qs(location.query).items()}


def ml_answers(rsps, *, user_id=ML_USER, nickname="LOJA_NOVA"):
    rsps.add(responses.POST, API + "/oauth/token", json=token_body(user_id, 1))
    rsps.add(
        responses.GET,
        API + "/users/me",
        json={"id": user_id, "nickname": nickname, "email": "nova@example.com", "site_id": "MLB"},
    )


def messages_of(response):
    return [str(m) for m in response.context["messages"]] if response.context else []


def test_anonymous_is_sent_to_login(client):
    for url in (CONNECT, CALLBACK):
        response = client.get(url)
        assert response.status_code == 302
        assert reverse("account_login") in response["Location"]


def test_connect_redirects_to_the_sites_authorization_page_with_pkce(client_user):
    location, query = start(client_user, site="MLA")
    assert f"{location.scheme}://{location.netloc}" == "https://auth.mercadolibre.com.ar"
    assert location.path == "/authorization"
    assert query["response_type"] == "code"
    assert query["client_id"] == "123"
    assert query["code_challenge_method"] == "S256"
    assert query["redirect_uri"] == "http://testserver" + CALLBACK
    pending = OAuthState.objects.get(state=query["state"])
    assert challenge_for(pending.code_verifier) == query["code_challenge"]
    assert pending.code_verifier not in location.geturl()


def test_configured_redirect_uri_is_used(client_user, settings):
    settings.ML_REDIRECT_URI = f"https://accounts.example.com{CALLBACK}"
    _, query = start(client_user)
    assert query["redirect_uri"] == settings.ML_REDIRECT_URI


def test_unknown_site_is_refused(client_user):
    response = client_user.get(CONNECT, {"site": "XXX"}, follow=True)
    assert not OAuthState.objects.exists()
    assert any("country" in m for m in messages_of(response))


def test_callback_connects_the_seller(client_user, user):
    _, query = start(client_user)
    with responses.RequestsMock() as rsps:
        ml_answers(rsps)
        response = client_user.get(CALLBACK, {"code": "TG-abc-1", "state": query["state"]}, follow=True)
        exchange = parse_qs(rsps.calls[0].request.body)
    account = MLAccount.objects.get(workspace__personal_for=user)
    assert account.ml_user_id == ML_USER
    assert account.nickname == "LOJA_NOVA"
    assert account.is_primary
    assert account.refresh_token == token_body(ML_USER, 1)["refresh_token"]
    assert exchange["grant_type"] == ["authorization_code"]
    assert exchange["code_verifier"][0]
    assert exchange["redirect_uri"] == ["http://testserver" + CALLBACK]
    assert any("LOJA_NOVA" in m for m in messages_of(response))
    assert not OAuthState.objects.exists()


def test_callback_reconnects_a_known_seller(client_user, user):
    existing = MLAccountFactory(owner=user, ml_user_id=ML_USER, status="expired", is_primary=True)
    _, query = start(client_user)
    with responses.RequestsMock() as rsps:
        ml_answers(rsps)
        client_user.get(CALLBACK, {"code": "TG-abc-1", "state": query["state"]})
    existing.refresh_from_db()
    assert existing.status == MLAccount.Status.ACTIVE
    assert existing.access_token == token_body(ML_USER, 1)["access_token"]
    assert MLAccount.objects.filter(workspace__personal_for=user).count() == 1


def test_reused_state_is_refused(client_user, user):
    _, query = start(client_user)
    with responses.RequestsMock() as rsps:
        ml_answers(rsps)
        client_user.get(CALLBACK, {"code": "TG-abc-1", "state": query["state"]})
    MLAccount.objects.all().delete()
    with responses.RequestsMock() as rsps:
        response = client_user.get(CALLBACK, {"code": "TG-abc-1", "state": query["state"]}, follow=True)
        assert len(rsps.calls) == 0
    assert not MLAccount.objects.exists()
    assert any("no longer valid" in m for m in messages_of(response))


@pytest.mark.parametrize("state", ["", "forged-state", "x" * 500])
def test_missing_or_forged_state_writes_nothing(client_user, state):
    start(client_user)
    with responses.RequestsMock() as rsps:
        client_user.get(CALLBACK, {"code": "TG-abc-1", "state": state})
        assert len(rsps.calls) == 0
    assert not MLAccount.objects.exists()


def test_state_of_another_user_is_refused(client, user, other_user):
    client.force_login(user)
    _, query = start(client)
    client.force_login(other_user)
    with responses.RequestsMock() as rsps:
        client.get(CALLBACK, {"code": "TG-abc-1", "state": query["state"]})
        assert len(rsps.calls) == 0
    assert not MLAccount.objects.exists()


def test_state_from_another_session_of_the_same_user_is_refused(client, user):
    from django.test import Client

    client.force_login(user)
    _, query = start(client)
    other_browser = Client()
    other_browser.force_login(user)
    with responses.RequestsMock() as rsps:
        other_browser.get(CALLBACK, {"code": "TG-abc-1", "state": query["state"]})
        assert len(rsps.calls) == 0
    assert not MLAccount.objects.exists()


def test_expired_state_is_refused(client_user):
    _, query = start(client_user)
    OAuthState.objects.update(created_at=timezone.now() - timedelta(minutes=11))
    with responses.RequestsMock() as rsps:
        client_user.get(CALLBACK, {"code": "TG-abc-1", "state": query["state"]})
        assert len(rsps.calls) == 0
    assert not MLAccount.objects.exists()


def test_denied_consent_writes_nothing_and_says_so(client_user):
    _, query = start(client_user)
    with responses.RequestsMock() as rsps:
        response = client_user.get(CALLBACK, {"error": "access_denied", "state": query["state"]}, follow=True)
        assert len(rsps.calls) == 0
    assert not MLAccount.objects.exists()
    assert any("not authorised" in m for m in messages_of(response))


def test_failed_exchange_writes_nothing(client_user):
    _, query = start(client_user)
    with responses.RequestsMock() as rsps:
        rsps.add(
            responses.POST,
            API + "/oauth/token",
            status=400,
            json={"error": "invalid_grant", "error_description": "used", "status": 400, "cause": []},
        )
        response = client_user.get(CALLBACK, {"code": "TG-used-1", "state": query["state"]}, follow=True)
    assert not MLAccount.objects.exists()
    assert any("did not accept" in m for m in messages_of(response))


def test_ml_down_writes_nothing_and_says_so(client_user):
    _, query = start(client_user)
    with responses.RequestsMock() as rsps:
        rsps.add(responses.POST, API + "/oauth/token", status=503, body="down")
        response = client_user.get(CALLBACK, {"code": "TG-abc-1", "state": query["state"]}, follow=True)
    assert not MLAccount.objects.exists()
    assert any("not answering" in m for m in messages_of(response))


def test_users_me_failure_after_exchange_writes_nothing(client_user):
    _, query = start(client_user)
    with responses.RequestsMock() as rsps:
        rsps.add(responses.POST, API + "/oauth/token", json=token_body(ML_USER, 1))
        rsps.add(responses.GET, API + "/users/me", status=500, json={"message": "boom"})
        client_user.get(CALLBACK, {"code": "TG-abc-1", "state": query["state"]})
    assert not MLAccount.objects.exists()
