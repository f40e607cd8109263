from datetime import timedelta

import pytest
import responses
from django.db import connection
from django.utils import timezone

from accounts import tokens
from accounts.errors import NoRefreshToken
from accounts.mercadolivre.errors import MLInvalidGrant, MLUnavailable
from accounts.models import AccountEvent, MLAccount
from tests.factories import MLAccountFactory
from tests.mlmock import API, RotatingTokenEndpoint
from tests.threads import run_together

NOW = timezone.now()

pytestmark = pytest.mark.usefixtures("ml_settings")


def account_with(**fields):
    return MLAccount(created_at=NOW - timedelta(days=3), **fields)


class TestHealth:
    def test_fresh_token_is_full_health(self):
        health = tokens.token_health(
            account_with(token_obtained_at=NOW, token_expires_at=NOW + timedelta(hours=6)), now=NOW
        )
        assert health.health_percent == 100
        assert health.time_to_expiry == 6 * 3600
        assert not health.is_expired
        assert not health.needs_refresh

    def test_half_way_is_fifty_percent(self):
        account = account_with(
            token_obtained_at=NOW - timedelta(hours=3), token_expires_at=NOW + timedelta(hours=3)
        )
        assert tokens.token_health(account, now=NOW).health_percent == 50

    def test_needs_refresh_within_the_margin(self, settings):
        settings.ML_TOKEN_REFRESH_MARGIN = 3600
        account = account_with(
            token_obtained_at=NOW - timedelta(hours=5), token_expires_at=NOW + timedelta(minutes=59)
        )
        assert tokens.token_health(account, now=NOW).needs_refresh
        account.token_expires_at = NOW + timedelta(minutes=61)
        assert not tokens.token_health(account, now=NOW).needs_refresh

    def test_expired_token_is_negative_and_zero_percent(self):
        account = account_with(
            token_obtained_at=NOW - timedelta(hours=7), token_expires_at=NOW - timedelta(seconds=90)
        )
        health = tokens.token_health(account, now=NOW)
        assert health.time_to_expiry == -90
        assert health.health_percent == 0
        assert health.is_expired and health.needs_refresh

    def test_never_refreshed_token_is_measured_from_when_it_was_stored(self):
        account = account_with(token_expires_at=NOW + timedelta(hours=1))
        account.created_at = NOW - timedelta(hours=1)
        assert tokens.token_health(account, now=NOW).health_percent == 50

    def test_no_expiry_known_counts_as_expired(self):
        health = tokens.token_health(account_with(token_expires_at=None), now=NOW)
        assert health.is_expired and health.health_percent == 0 and health.time_to_expiry is None

    @pytest.mark.django_db
    def test_token_info_has_the_contract_keys(self, ml_account):
        info = tokens.token_info(ml_account)
        assert set(info) == {
            "accountId", "mlUserId", "tokenExpiry", "timeToExpiry",
            "healthPercent", "isExpired", "needsRefresh", "lastTokenRefresh",
        }  # fmt: skip
        assert info["mlUserId"] == str(ml_account.ml_user_id)


@pytest.mark.django_db
class TestRefresh:
    def test_healthy_token_is_returned_without_calling_ml(self, ml_account):
        with responses.RequestsMock() as rsps:
            assert tokens.get_fresh_access_token(ml_account.pk) == ml_account.access_token
            assert len(rsps.calls) == 0

    def test_expiring_token_is_renewed_and_both_tokens_saved(self, ml_account):
        MLAccount.objects.filter(pk=ml_account.pk).update(
            token_expires_at=timezone.now() + timedelta(minutes=5)
        )
        with responses.RequestsMock() as rsps:
            endpoint = RotatingTokenEndpoint(
                user_id=ml_account.ml_user_id, current_refresh=ml_account.refresh_token
            )
            endpoint.install(rsps)
            new_access = tokens.get_fresh_access_token(ml_account.pk)
        ml_account.refresh_from_db()
        assert new_access == ml_account.access_token != "APP_USR-TESTACCESS"
        assert ml_account.refresh_token == endpoint.current
        assert ml_account.last_token_refresh is not None
        assert ml_account.token_expires_at > timezone.now() + timedelta(hours=5)
        assert tokens.token_health(ml_account).health_percent == 100

    def test_invalid_grant_marks_expired_and_keeps_tokens(self, ml_account):
        old = (ml_account.access_token, ml_account.refresh_token)
        with responses.RequestsMock() as rsps:
            rsps.add(
                responses.POST,
                API + "/oauth/token",
                status=400,
                json={"error": "invalid_grant", "error_description": "revoked", "status": 400, "cause": []},
            )
            with pytest.raises(MLInvalidGrant):
                tokens.get_fresh_access_token(ml_account.pk, force=True)
        ml_account.refresh_from_db()
        assert ml_account.status == MLAccount.Status.EXPIRED
        assert (ml_account.access_token, ml_account.refresh_token) == old
        assert AccountEvent.objects.get(account=ml_account).kind == "auth"

    def test_transient_failure_leaves_the_account_unchanged(self, ml_account):
        before = MLAccount.objects.values().get(pk=ml_account.pk)
        with responses.RequestsMock() as rsps:
            rsps.add(responses.POST, API + "/oauth/token", status=503, body="upstream down")
            with pytest.raises(MLUnavailable):
                tokens.get_fresh_access_token(ml_account.pk, force=True)
        assert MLAccount.objects.values().get(pk=ml_account.pk) == before
        assert not AccountEvent.objects.exists()

    def test_no_refresh_token(self, ml_account):
        MLAccount.objects.filter(pk=ml_account.pk).update(
            refresh_token=None, token_expires_at=timezone.now() - timedelta(minutes=1)
        )
        with pytest.raises(NoRefreshToken):
            tokens.get_fresh_access_token(ml_account.pk)

    def test_forced_refresh_coalesces_with_one_that_finished_meanwhile(self, ml_account):
        MLAccount.objects.filter(pk=ml_account.pk).update(
            last_token_refresh=timezone.now() + timedelta(seconds=5)
        )
        with responses.RequestsMock() as rsps:
            assert tokens.get_fresh_access_token(ml_account.pk, force=True) == ml_account.access_token
            assert len(rsps.calls) == 0


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_eight_threads_cause_exactly_one_refresh(user):
    assert connection.vendor == "postgresql"
    account = MLAccountFactory(owner=user, token_expires_at=timezone.now() - timedelta(minutes=1))
    with responses.RequestsMock() as rsps:
        endpoint = RotatingTokenEndpoint(user_id=account.ml_user_id, current_refresh=account.refresh_token)
        endpoint.install(rsps)
        results, errors = run_together([lambda: tokens.get_fresh_access_token(account.pk)] * 8, timeout=30)
    account.refresh_from_db()
    assert errors == []
    assert endpoint.calls == 1
    assert endpoint.invalid_grants == 0
    assert results == [account.access_token] * 8
    assert account.refresh_token == endpoint.current
