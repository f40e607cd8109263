"""Reconnect links through the pages: the account page's button, the public link page and the
connect callback, with ML mocked at the HTTP boundary (and once the real sandbox)."""

import logging
import re
from datetime import timedelta
from html import unescape
from types import SimpleNamespace
from urllib.parse import parse_qs, urlsplit

import pytest
import responses
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts import services
from accounts.mercadolivre import sandbox
from accounts.models import AuditAction, AuditEntry, MLAccount, OAuthState, ReconnectLink
from sync import engine
from tests import sandbox_oauth
from tests.accounts.test_encryption import raw_tokens
from tests.factories import MLAccountFactory, UserFactory, WorkspaceFactory, member
from tests.mlmock import API, token_body
from tests.test_gunicorn_conf import _gunicorn_config, _load

pytestmark = pytest.mark.django_db
CALLBACK = reverse("dashboard:connect_callback")


@pytest.fixture(autouse=True)
def _english(settings):
    settings.LANGUAGE_CODE = "en"  # the assertions read the English source strings


@pytest.fixture
def agency(db):
    """A shared workspace whose store died, with a member of every role."""
    workspace = WorkspaceFactory(name="Agência Sol")
    account = MLAccountFactory(
        workspace=workspace,
        status="expired",
        next_sync=None,
        nickname="LOJA_DA_ANA",
        account_name="Loja da Ana",
    )
    cast = {
        role: UserFactory(email=f"{role}@example.com") for role in ("owner", "manager", "operator", "viewer")
    }
    for role, person in cast.items():
        member(workspace, person, role)
    return SimpleNamespace(workspace=workspace, account=account, **cast)


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def make_link(client, account) -> str:
    response = client.post(reverse("dashboard:account_reconnect_link", args=[account.pk]))
    assert response.status_code == 200
    return re.search(r'id="reconnect-url" readonly value="([^"]+)"', response.content.decode())[1]


def go_to_ml(owner: Client, url: str) -> str:
    """The owner opens the link and continues to Mercado Livre; returns the state ML gets."""
    response = owner.post(urlsplit(url).path)
    assert response.status_code == 302
    return parse_qs(urlsplit(response["Location"]).query)["state"][0]


def ml_answers(mock, *, user_id, n=1, nickname="LOJA_DA_ANA"):
    mock.add(responses.POST, API + "/oauth/token", json=token_body(user_id, n))
    mock.add(
        responses.GET,
        API + "/users/me",
        json={"id": user_id, "nickname": nickname, "email": "ana@example.com", "site_id": "MLB"},
    )


def text(response) -> str:
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", response.content.decode())).split())


# --- the whole way, ML mocked at the HTTP boundary ---------------------------------------------


def test_a_manager_link_brings_the_store_back_for_its_owner(
    agency, ml, queued, django_capture_on_commit_callbacks
):
    account = agency.account
    url = make_link(signed_in(agency.manager), account)
    assert url.startswith("http://testserver/reconnect/")

    owner = Client(HTTP_USER_AGENT="OwnersBrowser/1.0")  # a fresh browser, nobody signed in
    page = owner.get(urlsplit(url).path)
    assert page.status_code == 200
    assert "Reconnect LOJA_DA_ANA to ML Accounts" in text(page)
    assert "Agência Sol" in text(page) and "Brazil" in text(page)
    assert "Continue to Mercado Livre" in text(page)

    response = owner.post(urlsplit(url).path)
    assert response.status_code == 302
    location = urlsplit(response["Location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == (
        "https://auth.mercadolivre.com.br/authorization"
    )
    query = {k: v[0] for k, v in parse_qs(location.query).items()}
    assert query["redirect_uri"] == "http://testserver" + CALLBACK
    assert query["code_challenge_method"] == "S256"

    ml_answers(ml, user_id=account.ml_user_id)
    with django_capture_on_commit_callbacks(execute=True):
        done = owner.get(CALLBACK, {"code": "TG-abc-1", "state": query["state"]})

    assert done.status_code == 200
    assert "LOJA_DA_ANA is connected again" in text(done)
    account.refresh_from_db()
    fresh = token_body(account.ml_user_id, 1)
    assert (account.access_token, account.refresh_token) == (fresh["access_token"], fresh["refresh_token"])
    assert fresh["access_token"] not in raw_tokens(account)[0]  # encrypted at rest
    assert fresh["refresh_token"] not in raw_tokens(account)[1]
    assert account.status == MLAccount.Status.ACTIVE
    assert account.next_sync <= timezone.now()
    assert queued == [str(account.pk)]  # its first sync, at once
    assert ReconnectLink.objects.get().used_at is not None
    made = AuditEntry.objects.get(action=AuditAction.RECONNECT_LINK)
    assert (made.actor_email, made.account_id) == ("manager@example.com", account.pk)
    back = AuditEntry.objects.get(action=AuditAction.RECONNECT)
    assert (back.actor_id, back.ip, back.user_agent) == (None, "127.0.0.1", "OwnersBrowser/1.0")
    assert back.changes["via"] == "reconnect link"
    # The owner got no access to the dashboard.
    assert owner.get(reverse("dashboard:account", args=[account.pk])).status_code == 302


def test_the_link_works_once(agency, ml):
    account = agency.account
    url = make_link(signed_in(agency.owner), account)
    owner, second_tab = Client(), Client()
    state = go_to_ml(owner, url)
    late_state = go_to_ml(second_tab, url)  # started before the first one finished
    ml_answers(ml, user_id=account.ml_user_id)
    owner.get(CALLBACK, {"code": "TG-abc-1", "state": state})
    stored = MLAccount.objects.get(pk=account.pk).access_token
    calls = len(ml.calls)

    again = owner.get(urlsplit(url).path)
    assert again.status_code == 410
    assert "This link was already used" in text(again)
    assert owner.post(urlsplit(url).path).status_code == 410
    late = second_tab.get(CALLBACK, {"code": "TG-abc-2", "state": late_state})

    assert late.status_code == 410
    assert "already used" in text(late)
    assert len(ml.calls) == calls
    assert MLAccount.objects.get(pk=account.pk).access_token == stored
    assert AuditEntry.objects.filter(action=AuditAction.RECONNECT).count() == 1


def test_authorizing_as_another_seller_changes_nothing(agency, ml):
    account = agency.account
    before = MLAccount.objects.values().get(pk=account.pk)
    url = make_link(signed_in(agency.manager), account)
    owner = Client()
    state = go_to_ml(owner, url)
    ml_answers(ml, user_id=account.ml_user_id + 7, nickname="OUTRA_LOJA")

    response = owner.get(CALLBACK, {"code": "TG-abc-1", "state": state})

    assert response.status_code == 409
    assert "You authorized as OUTRA_LOJA; this link is for LOJA_DA_ANA. Nothing was changed." in text(
        response
    )
    assert "Sign out of Mercado Livre and try again with the login of LOJA_DA_ANA" in text(response)
    assert MLAccount.objects.values().get(pk=account.pk) == before
    assert MLAccount.objects.count() == 1
    assert ReconnectLink.objects.get().used_at is None
    assert owner.get(urlsplit(url).path).status_code == 200  # the link still works


def test_an_expired_link_is_refused(agency, ml):
    _link, token = services.reconnect_link_create(
        account=agency.account, by=agency.manager, now=timezone.now() - timedelta(days=8)
    )
    owner = Client()
    page = owner.get(reverse("dashboard:reconnect", args=[token]))
    assert page.status_code == 410
    assert "This link has expired" in text(page)
    assert "Ask the person who sent it for a new one" in text(page)
    assert owner.post(reverse("dashboard:reconnect", args=[token])).status_code == 410
    assert not OAuthState.objects.exists()
    assert len(ml.calls) == 0


def test_an_unknown_link_is_not_found_and_its_token_is_not_logged(client, caplog):
    token = "Zx" * 22
    with caplog.at_level(logging.DEBUG):
        response = client.get(reverse("dashboard:reconnect", args=[token]))
    assert response.status_code == 404
    assert "This link is not valid" in text(response)
    assert token not in caplog.text


def test_failures_at_the_callback_leave_the_link_usable(agency, ml):
    url = make_link(signed_in(agency.manager), agency.account)
    owner = Client()
    denied = owner.get(CALLBACK, {"error": "access_denied", "state": go_to_ml(owner, url)})
    assert denied.status_code == 400
    assert "open it again" in text(denied)
    ml.add(responses.POST, API + "/oauth/token", status=503, body="down")
    down = owner.get(CALLBACK, {"code": "TG-abc-1", "state": go_to_ml(owner, url)})
    assert down.status_code == 502
    assert "not answering" in text(down)
    assert ReconnectLink.objects.get().used_at is None
    assert MLAccount.objects.get().status == MLAccount.Status.EXPIRED


def test_a_reconnect_state_needs_no_login_and_a_connect_state_still_does(agency, ml, client):
    url = make_link(signed_in(agency.manager), agency.account)
    owner = Client()
    state = go_to_ml(owner, url)
    # Another browser (or a signed-in member) cannot finish the owner's authorization.
    response = signed_in(agency.manager).get(CALLBACK, {"code": "TG-abc-1", "state": state})
    assert response.status_code == 400
    assert len(ml.calls) == 0
    # An anonymous callback with any other state is sent to sign in, as before.
    response = client.get(CALLBACK, {"code": "TG-abc-1", "state": "not-a-reconnect-state"})
    assert response.status_code == 302
    assert reverse("account_login") in response["Location"]


def test_the_link_page_is_csrf_protected_and_refusals_keep_the_token_out_of_the_log(agency, caplog):
    _, token = services.reconnect_link_create(account=agency.account, by=agency.manager)
    page = reverse("dashboard:reconnect", args=[token])
    owner = Client(enforce_csrf_checks=True)
    with caplog.at_level(logging.DEBUG):
        assert owner.get(page).status_code == 200
        forged = owner.post(page)
        other_method = Client().put(page)
    assert forged.status_code == 403
    assert other_method.status_code == 405
    assert not OAuthState.objects.exists()
    assert "CSRF check failed" in caplog.text
    assert token not in caplog.text


def test_the_access_log_masks_the_token(monkeypatch, tmp_path):
    log_file = tmp_path / "access.log"
    conf = _load(monkeypatch)
    config = _gunicorn_config(conf, accesslog=str(log_file))
    logger = config.logger_class(config)
    path = "/reconnect/Sup3r-s3cret-reconnect-token-of-43-characters/"
    environ = {
        "REQUEST_METHOD": "GET",
        "RAW_URI": path,
        "PATH_INFO": path,
        "QUERY_STRING": "",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "203.0.113.7",
    }
    logger.access(
        SimpleNamespace(status="200 OK", headers=[], sent=9),
        SimpleNamespace(headers=[]),
        environ,
        timedelta(0),
    )
    for handler in logger.access_log.handlers:
        handler.flush()
    line = log_file.read_text()
    assert '"GET /reconnect/***/ HTTP/1.1" 200' in line
    assert "s3cret" not in line


# --- the account page's button --------------------------------------------------------------


@pytest.mark.parametrize("role", ["owner", "manager"])
def test_managers_and_owners_see_the_button_and_get_a_link(agency, role):
    client = signed_in(getattr(agency, role))
    page = client.get(reverse("dashboard:account", args=[agency.account.pk]))
    assert 'id="make-reconnect-link"' in page.content.decode()
    response = client.post(reverse("dashboard:account_reconnect_link", args=[agency.account.pk]))
    assert response.status_code == 200
    assert "It is shown only now: copy it." in text(response)
    assert response["Cache-Control"].startswith("max-age=0")
    assert ReconnectLink.objects.get().created_by == getattr(agency, role)


def test_the_button_is_there_for_an_active_account_too(agency):
    MLAccount.objects.filter(pk=agency.account.pk).update(status="active")
    page = signed_in(agency.manager).get(reverse("dashboard:account", args=[agency.account.pk]))
    assert "Ask the store's owner to authorize again" in text(page)


@pytest.mark.parametrize("role", ["operator", "viewer"])
def test_operators_and_viewers_neither_see_nor_make_a_link(agency, role):
    client = signed_in(getattr(agency, role))
    page = client.get(reverse("dashboard:account", args=[agency.account.pk]))
    assert page.status_code == 200
    assert "make-reconnect-link" not in page.content.decode()
    response = client.post(reverse("dashboard:account_reconnect_link", args=[agency.account.pk]))
    assert response.status_code == 403
    assert not ReconnectLink.objects.exists()


def test_outsiders_and_anonymous_get_nothing(agency, other_user, client):
    url = reverse("dashboard:account_reconnect_link", args=[agency.account.pk])
    assert signed_in(other_user).post(url).status_code == 404
    response = client.post(url)
    assert response.status_code == 302 and reverse("account_login") in response["Location"]
    assert signed_in(agency.manager).get(url).status_code == 405
    assert not ReconnectLink.objects.exists()


# --- the real sandbox, over HTTP ----------------------------------------------------------------

SELLER = next(s for s in sandbox.DEMO_SELLERS if s.id > 2**32)
OTHER = next(s for s in sandbox.DEMO_SELLERS if s.id != SELLER.id)


@pytest.fixture
def ml_sandbox(settings):
    with sandbox.start_sandbox(port=0) as server:
        sandbox_oauth.point_at(settings, server)
        yield server


def test_a_reconnect_link_against_the_sandbox(agency, ml_sandbox):
    account = agency.account
    MLAccount.objects.filter(pk=account.pk).update(ml_user_id=SELLER.id, nickname=SELLER.nickname)
    url = make_link(signed_in(agency.manager), account)
    owner = Client()

    wrong = owner.get(CALLBACK, sandbox_oauth.authorize(owner.post(urlsplit(url).path)["Location"], OTHER.id))
    assert wrong.status_code == 409
    assert f"You authorized as {OTHER.nickname}; this link is for {SELLER.nickname}" in text(wrong)
    assert MLAccount.objects.get(pk=account.pk).status == MLAccount.Status.EXPIRED

    done = owner.get(CALLBACK, sandbox_oauth.authorize(owner.post(urlsplit(url).path)["Location"], SELLER.id))
    assert done.status_code == 200
    assert f"{SELLER.nickname} is connected again" in text(done)
    assert MLAccount.objects.get(pk=account.pk).status == MLAccount.Status.ACTIVE
    assert engine.sync_account(account.pk).ok
