"""Key rotation covers the PKCE verifiers; abandoned authorizations are purged (issue 9, 7)."""

import io
from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.utils import timezone

from accounts import services
from accounts.models import MLAccount, OAuthState
from sync import tasks
from tests.factories import MLAccountFactory

pytestmark = pytest.mark.django_db

OLD_SECRET, NEW_SECRET = "old-secret-key-" + "x" * 40, "new-secret-key-" + "y" * 40
ENCRYPTED = [*(MLAccount._meta.get_field(name) for name in MLAccount.SECRET_FIELDS)]
ENCRYPTED.append(OAuthState._meta.get_field("code_verifier"))


@pytest.fixture
def keys(settings):
    def use(secret, fallbacks=()):
        settings.SECRET_KEY = secret
        settings.SECRET_KEY_FALLBACKS = list(fallbacks)
        for field in ENCRYPTED:
            field.reset_keys()

    yield use
    for field in ENCRYPTED:
        field.reset_keys()


def pending(user, *, age_seconds=0, verifier="v" * 64) -> OAuthState:
    return OAuthState.objects.create(
        state=f"state-{age_seconds}-{OAuthState.objects.count()}",
        user=user,
        session_hash="h" * 64,
        code_verifier=verifier,
        site_id="MLB",
        redirect_uri="https://app.example/callback/",
        created_at=timezone.now() - timedelta(seconds=age_seconds),
    )


def raw_verifier(state: OAuthState) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT code_verifier FROM accounts_oauthstate WHERE id = %s", [state.pk])
        return cursor.fetchone()[0]


def test_reencrypt_tokens_also_rewrites_the_pkce_verifiers(keys, user):
    keys(OLD_SECRET)
    state = pending(user, verifier="the-verifier-" + "z" * 40)
    before = raw_verifier(state)

    keys(NEW_SECRET, fallbacks=[OLD_SECRET])
    out = io.StringIO()
    call_command("reencrypt_tokens", stdout=out)
    assert raw_verifier(state) != before
    assert "1 pending authorization(s)" in out.getvalue()

    keys(NEW_SECRET)  # the old key is gone now: the verifier still opens
    assert OAuthState.objects.get(pk=state.pk).code_verifier == "the-verifier-" + "z" * 40


def test_reencrypt_rewrites_accounts_with_no_refresh_in_flight(keys, user):
    keys(OLD_SECRET)
    account = MLAccountFactory(owner=user, refresh_token="TG-keep")
    keys(NEW_SECRET, fallbacks=[OLD_SECRET])
    out = io.StringIO()
    call_command("reencrypt_tokens", stdout=out)
    assert "1 account(s)" in out.getvalue()
    keys(NEW_SECRET)
    assert MLAccount.objects.get(pk=account.pk).refresh_token == "TG-keep"


def test_reencrypt_leaves_an_account_alone_while_its_token_is_being_renewed(keys, user, monkeypatch):
    from accounts.management.commands import reencrypt_tokens

    keys(OLD_SECRET)
    account = MLAccountFactory(owner=user)
    claim = services.mlaccount_refresh_claim(account_id=account.pk, lease_seconds=30)
    monkeypatch.setattr(reencrypt_tokens, "refresh_lease_seconds", lambda: 0)
    keys(NEW_SECRET, fallbacks=[OLD_SECRET])
    with pytest.raises(CommandError, match="kept renewing"):
        call_command("reencrypt_tokens", stdout=io.StringIO())
    # The refresh in flight can still save its pair: the ciphertext it spent is unchanged.
    assert services.mlaccount_refresh_store(
        claim=claim, access_token="APP_USR-NEW", refresh_token="TG-NEW", expires_at=timezone.now()
    )


def test_abandoned_authorizations_are_purged_after_their_lifetime(user):
    fresh = pending(user, age_seconds=OAuthState.LIFETIME_SECONDS - 60)
    pending(user, age_seconds=OAuthState.LIFETIME_SECONDS + 60)
    pending(user, age_seconds=30 * 24 * 3600)

    assert services.oauth_state_purge_expired() == 2
    assert list(OAuthState.objects.values_list("pk", flat=True)) == [fresh.pk]


def test_the_cleanup_job_purges_abandoned_authorizations(user):
    pending(user, age_seconds=OAuthState.LIFETIME_SECONDS + 60)
    tasks.cleanup_events.apply()
    assert not OAuthState.objects.exists()
