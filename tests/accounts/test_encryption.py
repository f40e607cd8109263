import io

import pytest
from django.core.management import call_command
from django.db import connection

from accounts.models import MLAccount, TokenDecryptionError
from tests.factories import MLAccountFactory

pytestmark = pytest.mark.django_db

OLD_SECRET, NEW_SECRET = "old-secret-key-" + "x" * 40, "new-secret-key-" + "y" * 40


def raw_tokens(account):
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT access_token, refresh_token FROM accounts_mlaccount WHERE id = %s",
            [account.pk.hex if connection.vendor == "sqlite" else account.pk],
        )
        return cursor.fetchone()


@pytest.fixture
def keys(settings):
    def use(secret, fallbacks=(), salts=("salt-a",)):
        settings.SECRET_KEY = secret
        settings.SECRET_KEY_FALLBACKS = list(fallbacks)
        settings.SALT_KEY = list(salts)
        for name in MLAccount.SECRET_FIELDS:
            MLAccount._meta.get_field(name).reset_keys()

    yield use
    for name in MLAccount.SECRET_FIELDS:
        MLAccount._meta.get_field(name).reset_keys()


def test_raw_columns_hold_no_plain_token(ml_account):
    access, refresh = raw_tokens(ml_account)
    assert ml_account.access_token not in access
    assert ml_account.refresh_token not in refresh
    assert "secret" not in access + refresh


def test_rotating_the_secret_key_keeps_tokens_readable_and_reencrypts(keys, user):
    keys(OLD_SECRET)
    account = MLAccountFactory(owner=user, access_token="APP_USR-rotate-me", refresh_token="TG-rotate-me")
    before = raw_tokens(account)

    keys(NEW_SECRET, fallbacks=[OLD_SECRET])
    assert MLAccount.objects.get(pk=account.pk).access_token == "APP_USR-rotate-me"
    call_command("reencrypt_tokens", stdout=io.StringIO())
    assert raw_tokens(account) != before

    keys(NEW_SECRET)  # the old key is gone now
    reloaded = MLAccount.objects.get(pk=account.pk)
    assert (reloaded.access_token, reloaded.refresh_token) == ("APP_USR-rotate-me", "TG-rotate-me")


def test_rotating_the_salt_keeps_tokens_readable(keys, user):
    keys(OLD_SECRET, salts=["salt-a"])
    account = MLAccountFactory(owner=user, access_token="APP_USR-salted")
    keys(OLD_SECRET, salts=["salt-b", "salt-a"])
    call_command("reencrypt_tokens", stdout=io.StringIO())
    keys(OLD_SECRET, salts=["salt-b"])
    assert MLAccount.objects.get(pk=account.pk).access_token == "APP_USR-salted"


def test_a_missing_key_fails_loudly_instead_of_returning_ciphertext(keys, user):
    keys(OLD_SECRET)
    account = MLAccountFactory(owner=user)
    keys(NEW_SECRET)
    with pytest.raises(TokenDecryptionError):
        MLAccount.objects.get(pk=account.pk).access_token  # noqa: B018


def test_empty_refresh_token_is_stored_as_null(user):
    account = MLAccountFactory(owner=user, refresh_token=None)
    assert raw_tokens(account)[1] is None
    assert MLAccount.objects.get(pk=account.pk).refresh_token is None
