"""States that tell the truth: a success means active, a dead grant never looks healthy,
and `disconnected_at` says when the grant was found dead."""

from datetime import timedelta

import pytest
from django.utils import timezone

from accounts import selectors, services, tokens
from accounts.mercadolivre.resources import Counts
from accounts.models import MLAccount
from tests.factories import MLAccountFactory

pytestmark = pytest.mark.django_db


def test_a_success_brings_an_expired_account_back_to_active_and_scheduled(ml_account):
    services.mlaccount_mark_expired(account_id=ml_account.pk, message="revoked")
    now = timezone.now()
    services.mlaccount_record_sync_success(account_id=ml_account.pk, counts=Counts(1, 2, 3, 4), synced_at=now)
    ml_account.refresh_from_db()
    assert ml_account.status == MLAccount.Status.ACTIVE
    assert ml_account.disconnected_at is None
    assert ml_account.next_sync == now + timedelta(seconds=ml_account.sync_interval)
    assert (
        MLAccount.objects.filter(pk=ml_account.pk)
        .filter(selectors.mlaccount_due_q(now=now + timedelta(days=1)))
        .exists()
    )


def test_a_success_leaves_a_paused_account_paused(ml_account):
    services.mlaccount_pause(account=ml_account)
    services.mlaccount_record_sync_success(account_id=ml_account.pk, counts=Counts(1, 1, 1, 1))
    assert MLAccount.objects.get(pk=ml_account.pk).status == MLAccount.Status.PAUSED


def test_marking_expired_records_when_the_grant_died_once(ml_account):
    services.mlaccount_mark_expired(account_id=ml_account.pk, message="revoked")
    first = MLAccount.objects.get(pk=ml_account.pk).disconnected_at
    assert first is not None
    services.mlaccount_mark_expired(account_id=ml_account.pk, message="revoked again")
    assert MLAccount.objects.get(pk=ml_account.pk).disconnected_at == first


def test_an_auth_failure_of_a_sync_sets_disconnected_at(ml_account):
    services.mlaccount_record_sync_failure(
        account_id=ml_account.pk, kind="auth", message="no refresh token", auth_failure=True
    )
    ml_account.refresh_from_db()
    assert ml_account.status == MLAccount.Status.EXPIRED and ml_account.disconnected_at is not None


def test_a_transient_failure_does_not_set_disconnected_at(ml_account):
    services.mlaccount_record_sync_failure(account_id=ml_account.pk, kind="unavailable", message="down")
    assert MLAccount.objects.get(pk=ml_account.pk).disconnected_at is None


def test_reconnecting_clears_disconnected_at(user):
    account = MLAccountFactory(owner=user)
    services.mlaccount_mark_expired(account_id=account.pk, message="revoked")
    services.mlaccount_connect(
        workspace=services.workspace_personal(user=user),
        connected_by=user,
        ml_user_id=account.ml_user_id,
        nickname=account.nickname,
        email="",
        access_token="APP_USR-NEW",
        refresh_token="TG-NEW",
        token_expires_at=timezone.now() + timedelta(hours=6),
        reconnect=True,
    )
    account.refresh_from_db()
    assert account.status == MLAccount.Status.ACTIVE and account.disconnected_at is None


def test_a_dead_grant_never_looks_healthy(ml_account):
    # A token renewed a minute ago: by its clock, full health.
    MLAccount.objects.filter(pk=ml_account.pk).update(
        token_obtained_at=timezone.now() - timedelta(minutes=1),
        token_expires_at=timezone.now() + timedelta(hours=6),
    )
    ml_account.refresh_from_db()
    assert tokens.token_health(ml_account).health_percent >= 99
    services.mlaccount_mark_expired(account_id=ml_account.pk, message="invalid_grant")
    ml_account.refresh_from_db()
    health = tokens.token_health(ml_account)
    assert (health.health_percent, health.needs_refresh, health.is_expired) == (0, True, True)
    assert health.time_to_expiry > 5 * 3600  # the access token's own clock is still reported
    info = tokens.token_info(ml_account)
    assert (info["healthPercent"], info["needsRefresh"], info["isExpired"]) == (0, True, True)
