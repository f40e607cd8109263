"""Reconnect links, the services (accounts.services.reconnect), with ML mocked at the HTTP boundary."""

import json
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
import responses
from django.contrib.auth.models import AnonymousUser
from django.db import connection
from django.test import RequestFactory
from django.utils import timezone

from accounts import services
from accounts.errors import OAuthStateInvalid, ReconnectLinkInvalid, ReconnectWrongSeller
from accounts.models import AuditAction, AuditEntry, MLAccount, OAuthState, ReconnectLink
from accounts.services.reconnect import reconnect_token_hash
from tests.factories import MLAccountFactory
from tests.mlmock import API, token_body
from tests.threads import run_together

pytestmark = pytest.mark.django_db
REDIRECT = "https://accounts.example.com/ml-accounts/connect/callback/"
SESSION = "browser-session-of-the-owner"


@pytest.fixture
def account(user):
    return MLAccountFactory(owner=user, status="expired", next_sync=None, nickname="LOJA_DA_ANA")


def begin(token, session=SESSION) -> str:
    url = services.reconnect_begin(token=token, session_key=session, redirect_uri=REDIRECT)
    return parse_qs(urlsplit(url).query)["state"][0]


def ml_answers(mock, *, user_id, n=1, nickname="LOJA_DA_ANA"):
    mock.add(responses.POST, API + "/oauth/token", json=token_body(user_id, n))
    mock.add(
        responses.GET,
        API + "/users/me",
        json={"id": user_id, "nickname": nickname, "email": "ana@example.com", "site_id": "MLB"},
    )


def complete(state, session=SESSION, code="TG-abc-1"):
    """The callback's service, in an anonymous request (the owner has no login here)."""
    request = RequestFactory().get(
        "/callback/", HTTP_USER_AGENT="OwnersBrowser/1.0", REMOTE_ADDR="203.0.113.9"
    )
    request.user = AnonymousUser()
    with services.audit_context(request):
        return services.reconnect_complete(session_key=session, state=state, code=code)


def test_a_link_stores_only_the_hash_of_a_long_random_token(account, user):
    link, token = services.reconnect_link_create(account=account, by=user)

    assert len(token) >= 43  # 32 random bytes, URL-safe
    link.refresh_from_db()
    assert link.token_hash == reconnect_token_hash(token) != token
    assert token not in str(ReconnectLink.objects.filter(pk=link.pk).values().get())
    assert link.expires_at - link.created_at == timedelta(days=7)
    assert (link.created_by, link.used_at) == (user, None)
    entry = AuditEntry.objects.get(action=AuditAction.RECONNECT_LINK)
    assert (entry.actor_id, entry.account_id) == (user.pk, account.pk)
    assert token not in str(entry.changes)


def test_a_link_for_an_alert_uses_site_url_and_is_nobodys_action(account, settings):
    settings.SITE_URL = "https://accounts.example.com"

    url, expires_at = services.reconnect_link_for_alert(account=account)

    assert url.startswith("https://accounts.example.com/reconnect/")
    token = urlsplit(url).path.split("/")[2]
    link = services.reconnect_link_check(token=token)
    assert (link.account, link.created_by, link.expires_at) == (account, None, expires_at)
    assert not AuditEntry.objects.exists()


def test_the_url_comes_from_the_request_when_there_is_one(settings):
    settings.SITE_URL = "https://elsewhere.example.com"
    request = RequestFactory().get("/", HTTP_HOST="testserver")
    assert services.reconnect_link_url("t0k3n", request=request) == "http://testserver/reconnect/t0k3n/"
    assert services.reconnect_link_url("t0k3n") == "https://elsewhere.example.com/reconnect/t0k3n/"


def test_earlier_links_stay_valid(account, user):
    _, first = services.reconnect_link_create(account=account, by=user)
    _, second = services.reconnect_link_create(account=account, by=None)
    assert services.reconnect_link_check(token=first).account == account
    assert services.reconnect_link_check(token=second).account == account


@pytest.mark.parametrize("token", ["", None, 123, "x" * 500, "not-a-link-token-at-all-but-long-enough"])
def test_an_unknown_token_is_unknown(token):
    with pytest.raises(ReconnectLinkInvalid) as refused:
        services.reconnect_link_check(token=token)
    assert refused.value.reason == ReconnectLinkInvalid.UNKNOWN


def test_a_used_or_expired_link_says_so(account, user):
    link, token = services.reconnect_link_create(account=account, by=user)
    with pytest.raises(ReconnectLinkInvalid) as refused:
        services.reconnect_link_check(token=token, now=timezone.now() + timedelta(days=8))
    assert refused.value.reason == ReconnectLinkInvalid.EXPIRED
    ReconnectLink.objects.filter(pk=link.pk).update(used_at=timezone.now())
    with pytest.raises(ReconnectLinkInvalid) as refused:
        services.reconnect_link_check(token=token)
    assert refused.value.reason == ReconnectLinkInvalid.USED


def test_removing_the_account_removes_its_links(account, user):
    _, token = services.reconnect_link_create(account=account, by=user)
    services.mlaccount_remove(account=account)
    with pytest.raises(ReconnectLinkInvalid) as refused:
        services.reconnect_link_check(token=token)
    assert refused.value.reason == ReconnectLinkInvalid.UNKNOWN


def test_begin_binds_a_state_to_the_link_and_no_user(account, user):
    link, token = services.reconnect_link_create(account=account, by=user)
    state = begin(token)
    pending = OAuthState.objects.get(state=state)
    assert (pending.user_id, pending.reconnect_link_id, pending.workspace_id) == (
        None,
        link.pk,
        account.workspace_id,
    )
    assert (pending.site_id, pending.redirect_uri) == ("MLB", REDIRECT)
    assert services.reconnect_state_pending(state=state)


def test_the_right_seller_restores_the_account(account, user, ml):
    link, token = services.reconnect_link_create(account=account, by=user)
    state = begin(token)
    ml_answers(ml, user_id=account.ml_user_id)

    restored = complete(state)

    assert restored.pk == account.pk
    account.refresh_from_db()
    assert account.status == MLAccount.Status.ACTIVE
    assert account.access_token == token_body(account.ml_user_id, 1)["access_token"]
    assert account.refresh_token == token_body(account.ml_user_id, 1)["refresh_token"]
    assert account.next_sync <= timezone.now() and account.sync_enabled
    assert account.connected_by == user  # kept: the owner has no login here
    link.refresh_from_db()
    assert link.used_at is not None
    assert not OAuthState.objects.exists()
    entry = AuditEntry.objects.get(action=AuditAction.RECONNECT)
    assert entry.changes == {"status": ["expired", "active"], "via": "reconnect link"}
    assert (entry.account_id, entry.actor_id, entry.actor_email) == (account.pk, None, "")
    assert (entry.ip, entry.user_agent) == ("203.0.113.9", "OwnersBrowser/1.0")
    # The code went to ML with the PKCE verifier and the same redirect URI.
    exchange = parse_qs(ml.calls[0].request.body)
    assert exchange["redirect_uri"] == [REDIRECT] and exchange["code_verifier"][0]


def test_another_seller_changes_nothing(account, user, ml):
    link, token = services.reconnect_link_create(account=account, by=user)
    before = MLAccount.objects.values().get(pk=account.pk)
    other_seller = account.ml_user_id + 1
    ml_answers(ml, user_id=other_seller, nickname="OUTRA_LOJA")

    with pytest.raises(ReconnectWrongSeller) as refused:
        complete(begin(token))

    assert "OUTRA_LOJA" in str(refused.value.message) and "LOJA_DA_ANA" in str(refused.value.message)
    assert MLAccount.objects.values().get(pk=account.pk) == before
    assert not MLAccount.objects.filter(ml_user_id=other_seller).exists()
    assert MLAccount.objects.count() == 1
    link.refresh_from_db()
    assert link.used_at is None
    assert not AuditEntry.objects.filter(action=AuditAction.RECONNECT).exists()
    # The link still works for the right seller.
    ml.replace(responses.POST, API + "/oauth/token", json=token_body(account.ml_user_id, 2))
    ml.replace(
        responses.GET,
        API + "/users/me",
        json={"id": account.ml_user_id, "nickname": "LOJA_DA_ANA", "email": "", "site_id": "MLB"},
    )
    assert complete(begin(token)).status == MLAccount.Status.ACTIVE


def test_a_second_use_is_refused_before_any_ml_call(account, user, ml):
    _, token = services.reconnect_link_create(account=account, by=user)
    first, second = begin(token), begin(token, session="a-second-tab")
    ml_answers(ml, user_id=account.ml_user_id)
    complete(first)
    stored = MLAccount.objects.get(pk=account.pk).access_token
    calls = len(ml.calls)

    with pytest.raises(ReconnectLinkInvalid) as refused:
        complete(second, session="a-second-tab", code="TG-abc-2")

    assert refused.value.reason == ReconnectLinkInvalid.USED
    assert len(ml.calls) == calls
    assert MLAccount.objects.get(pk=account.pk).access_token == stored
    assert AuditEntry.objects.filter(action=AuditAction.RECONNECT).count() == 1


def test_an_expired_link_is_refused_at_the_callback_too(account, user, ml):
    link, token = services.reconnect_link_create(account=account, by=user)
    state = begin(token)
    ReconnectLink.objects.filter(pk=link.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    with pytest.raises(ReconnectLinkInvalid) as refused:
        complete(state)
    assert refused.value.reason == ReconnectLinkInvalid.EXPIRED
    assert len(ml.calls) == 0
    assert MLAccount.objects.get(pk=account.pk).status == MLAccount.Status.EXPIRED


def test_an_account_removed_during_the_authorization_is_not_brought_back(account, user, ml):
    _, token = services.reconnect_link_create(account=account, by=user)
    state = begin(token)

    def removed_meanwhile(request):
        MLAccount.objects.filter(pk=account.pk).delete()
        return 200, {}, json.dumps(token_body(account.ml_user_id, 1))

    ml.add_callback(responses.POST, API + "/oauth/token", callback=removed_meanwhile)
    ml_answers(ml, user_id=account.ml_user_id)
    with pytest.raises(ReconnectLinkInvalid) as refused:
        complete(state)
    assert refused.value.reason == ReconnectLinkInvalid.REMOVED
    assert not MLAccount.objects.exists()


def test_the_state_only_works_in_the_session_that_started_it(account, user, ml):
    _, token = services.reconnect_link_create(account=account, by=user)
    state = begin(token)
    with pytest.raises(OAuthStateInvalid):
        complete(state, session="another-browser")
    assert len(ml.calls) == 0
    assert not OAuthState.objects.exists()  # used once, whatever happened


def test_a_link_state_and_a_connect_state_cannot_stand_in_for_each_other(account, user, other_user, ml):
    _, token = services.reconnect_link_create(account=account, by=user)
    link_state = begin(token)
    connect_url = services.oauth_begin(
        user=other_user,
        workspace=services.workspace_personal(user=other_user),
        session_key=SESSION,
        site_id="MLB",
        redirect_uri=REDIRECT,
    )
    connect_state = parse_qs(urlsplit(connect_url).query)["state"][0]
    assert not services.reconnect_state_pending(state=connect_state)

    with pytest.raises(OAuthStateInvalid):
        services.oauth_complete(user=other_user, session_key=SESSION, state=link_state, code="TG-abc-1")
    with pytest.raises(OAuthStateInvalid):
        complete(connect_state)

    assert len(ml.calls) == 0
    assert MLAccount.objects.get(pk=account.pk).status == MLAccount.Status.EXPIRED


def test_cleanup_deletes_links_long_expired(account, user):
    old, _ = services.reconnect_link_create(account=account, by=user, now=timezone.now() - timedelta(days=40))
    recent, _ = services.reconnect_link_create(
        account=account, by=user, now=timezone.now() - timedelta(days=8)
    )
    assert services.reconnect_link_cleanup() == 1
    assert list(ReconnectLink.objects.values_list("pk", flat=True)) == [recent.pk]
    assert old.pk != recent.pk


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_racing_callbacks_use_the_link_once(account, user, ml):
    assert connection.vendor == "postgresql"
    link, token = services.reconnect_link_create(account=account, by=user)
    states = [begin(token, session=f"tab-{n}") for n in range(2)]
    ml_answers(ml, user_id=account.ml_user_id)

    results, errors = run_together(
        [lambda n=n: complete(states[n], session=f"tab-{n}", code=f"TG-abc-{n}") for n in range(2)]
    )

    assert len([r for r in results if r is not None]) == 1
    assert len(errors) == 1 and isinstance(errors[0], ReconnectLinkInvalid)
    assert errors[0].reason == ReconnectLinkInvalid.USED
    link.refresh_from_db()
    assert link.used_at is not None
    assert MLAccount.objects.get(pk=account.pk).status == MLAccount.Status.ACTIVE
    assert AuditEntry.objects.filter(action=AuditAction.RECONNECT).count() == 1
