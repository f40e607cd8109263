"""The refresh lease: one refresh at ML, and no lock held while ML or the budget is awaited."""

import json
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
import responses
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from accounts import services, tokens
from accounts.mercadolivre import deadline, ratelimit
from accounts.mercadolivre.errors import MLInvalidGrant, MLUnavailable
from accounts.models import AccountEvent, MLAccount
from tests.accounts.refresh_race import WAIT, BlockedTokenEndpoint, in_thread
from tests.factories import MLAccountFactory
from tests.mlmock import API, RotatingTokenEndpoint, token_body

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.usefixtures("ml_settings")


def expiring(user, **fields):
    return MLAccountFactory(owner=user, token_expires_at=timezone.now() - timedelta(minutes=1), **fields)


def open_transactions() -> int:
    """PostgreSQL sessions of this test database sitting in an open transaction."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
            " AND state LIKE 'idle in transaction%%' AND pid <> pg_backend_pid()"
        )
        return cursor.fetchone()[0]


@pytest.mark.django_db(transaction=True)
def test_other_accounts_can_be_paused_and_edited_while_ml_holds_a_refresh(user, client):
    slow = expiring(user)
    other, third = MLAccountFactory(owner=user), MLAccountFactory(owner=user)
    client.force_login(user)
    with responses.RequestsMock() as rsps:
        endpoint = BlockedTokenEndpoint(user_id=slow.ml_user_id, current_refresh=slow.refresh_token)
        endpoint.install(rsps)
        thread, outcome = in_thread(lambda: tokens.get_fresh_access_token(slow.pk))
        try:
            assert endpoint.entered.wait(WAIT)
            # ML is "taking 10 seconds" to answer the refresh. On SQLite a transaction open
            # now would fail every write below with "database (table) is locked".
            if connection.vendor == "postgresql":
                assert open_transactions() == 0
            services.mlaccount_pause(account=other)
            services.mlaccount_update(account=third, account_name="Renamed")
            paused = client.post(reverse("dashboard:account_pause", args=[third.pk]))
            edited = client.post(
                reverse("dashboard:account", args=[other.pk]),
                {
                    "account_name": "Edited",
                    "account_type": "store",
                    "interval_value": "2",
                    "interval_unit": "minutes",
                },
            )
            assert paused.status_code == 302 and edited.status_code == 302
            assert thread.is_alive() and not endpoint.release.is_set()  # all while it was blocked
        finally:
            endpoint.release.set()
            thread.join(WAIT)
    assert outcome.get("error") is None
    assert MLAccount.objects.filter(pk=other.pk).values_list("status", "account_name", "sync_interval")[
        0
    ] == (
        "paused",
        "Edited",
        120,
    )
    assert MLAccount.objects.filter(pk=third.pk).values_list("status", "account_name")[0] == (
        "paused",
        "Renamed",
    )
    slow.refresh_from_db()
    assert endpoint.calls == 1 and outcome["result"] == slow.access_token == endpoint.last_access
    assert slow.refresh_claim is None and slow.refresh_lease_until is None


def test_on_a_sqlite_file_eight_callers_refresh_once_and_nothing_is_locked_meanwhile(tmp_path):
    """The same proofs on a real SQLite file (WAL, IMMEDIATE), with a 2 s busy timeout."""
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL"}}
    env.update(DATABASE_URL=f"sqlite:///{tmp_path}/db.sqlite3", VAR_DIR=str(tmp_path))
    result = subprocess.run(
        [sys.executable, "-m", "tests.accounts.refresh_race"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    findings = json.loads(result.stdout.strip().splitlines()[-1])
    assert findings["journal_mode"] == "wal"
    assert findings["eight"] == {
        "errors": [],
        "ml_calls": 1,
        "invalid_grants": 0,
        "all_got_the_stored_token": True,
        "refresh_token_saved": True,
    }
    assert findings["refresh_started"] and findings["still_blocked_after_writes"]
    assert findings["writes"] == {
        "service_pause": "ok",
        "service_update": "ok",
        "view_pause": 302,
        "view_settings": 302,
    }
    assert findings["slow_refresh"] == "ok"
    assert findings["rows"] == {"other": ["paused", "Edited", 120], "third": ["paused", "Renamed"]}


@pytest.mark.django_db
class TestLease:
    def test_the_budget_is_taken_once_before_the_lease_and_not_again_by_the_call(self, user, monkeypatch):
        account = expiring(user)
        leases_at_acquire = []

        def acquire(**kwargs):
            leases_at_acquire.append(MLAccount.objects.get(pk=account.pk).refresh_lease_until)

        monkeypatch.setattr(ratelimit, "acquire", acquire)
        with responses.RequestsMock() as rsps:
            RotatingTokenEndpoint(user_id=account.ml_user_id, current_refresh=account.refresh_token).install(
                rsps
            )
            tokens.get_fresh_access_token(account.pk)
        assert leases_at_acquire == [None]

    def test_a_waiter_returns_the_token_the_lease_holder_stored(self, user, monkeypatch):
        account = expiring(user)
        holder = services.mlaccount_refresh_claim(account_id=account.pk, lease_seconds=30)
        sleeps = []

        def other_process_finishes(seconds):
            sleeps.append(seconds)
            services.mlaccount_refresh_store(
                claim=holder, access_token="APP_USR-FROM-THE-HOLDER", refresh_token="TG-NEW",
                expires_at=timezone.now() + timedelta(hours=6),
            )  # fmt: skip

        monkeypatch.setattr(tokens.time, "sleep", other_process_finishes)
        with responses.RequestsMock() as rsps:  # no call to ML
            assert tokens.get_fresh_access_token(account.pk, force=True) == "APP_USR-FROM-THE-HOLDER"
            assert len(rsps.calls) == 0
        assert len(sleeps) == 1
        account.refresh_from_db()
        assert (account.refresh_token, account.refresh_claim, account.refresh_lease_until) == (
            "TG-NEW",
            None,
            None,
        )

    def test_an_expired_lease_is_taken_over(self, user):
        account = expiring(user)
        dead = services.mlaccount_refresh_claim(
            account_id=account.pk, lease_seconds=30, now=timezone.now() - timedelta(minutes=5)
        )
        assert dead is not None
        with responses.RequestsMock() as rsps:
            endpoint = RotatingTokenEndpoint(
                user_id=account.ml_user_id, current_refresh=account.refresh_token
            )
            endpoint.install(rsps)
            token = tokens.get_fresh_access_token(account.pk)
        assert token == endpoint.last_access and endpoint.calls == 1
        # The dead holder, should it wake up, can no longer store its (older) pair.
        assert not services.mlaccount_refresh_store(
            claim=dead, access_token="stale", refresh_token="TG-STALE", expires_at=timezone.now()
        )
        assert MLAccount.objects.get(pk=account.pk).access_token == token

    def test_a_waiter_gives_up_at_the_callers_deadline(self, user):
        account = expiring(user)
        assert services.mlaccount_refresh_claim(account_id=account.pk, lease_seconds=30)
        with responses.RequestsMock() as rsps, deadline.within(0.2), pytest.raises(MLUnavailable) as caught:
            tokens.get_fresh_access_token(account.pk)
        assert caught.value.code == "refresh_busy"
        assert len(rsps.calls) == 0

    def test_a_pair_stored_during_the_call_is_not_overwritten(self, user):
        account = expiring(user)

        def reconnect_meanwhile(request):
            MLAccount.objects.filter(pk=account.pk).update(
                access_token="APP_USR-RECONNECTED",
                refresh_token="TG-RECONNECTED",
                token_expires_at=timezone.now() + timedelta(hours=6),
            )
            return (200, {}, json.dumps(token_body(account.ml_user_id, 7)))

        with responses.RequestsMock() as rsps:
            rsps.add_callback(responses.POST, API + "/oauth/token", callback=reconnect_meanwhile)
            # Our answer was for the token the reconnect replaced: discarded, theirs returned.
            assert tokens.get_fresh_access_token(account.pk) == "APP_USR-RECONNECTED"
            assert len(rsps.calls) == 1
        account.refresh_from_db()
        assert (account.access_token, account.refresh_token) == ("APP_USR-RECONNECTED", "TG-RECONNECTED")
        assert account.refresh_claim is None

    def test_invalid_grant_for_a_token_replaced_meanwhile_does_not_mark_expired(self, user):
        account = expiring(user)

        def refuse_after_a_reconnect(request):
            MLAccount.objects.filter(pk=account.pk).update(
                refresh_token="TG-RECONNECTED", token_expires_at=timezone.now() + timedelta(hours=6)
            )
            return (400, {}, '{"error":"invalid_grant","error_description":"used","status":400,"cause":[]}')

        with responses.RequestsMock() as rsps:
            rsps.add_callback(responses.POST, API + "/oauth/token", callback=refuse_after_a_reconnect)
            assert tokens.get_fresh_access_token(account.pk) == account.access_token
        account.refresh_from_db()
        assert account.status == MLAccount.Status.ACTIVE and account.disconnected_at is None
        assert not AccountEvent.objects.exists()
        assert account.refresh_claim is None

    def test_invalid_grant_marks_expired_and_sets_disconnected_at(self, user):
        account = expiring(user)
        with responses.RequestsMock() as rsps:
            rsps.add(
                responses.POST,
                API + "/oauth/token",
                status=400,
                json={"error": "invalid_grant", "status": 400},
            )
            with pytest.raises(MLInvalidGrant):
                tokens.get_fresh_access_token(account.pk)
        account.refresh_from_db()
        assert account.status == MLAccount.Status.EXPIRED and account.disconnected_at is not None
        assert account.refresh_claim is None and account.refresh_lease_until is None

    def test_a_waiter_does_not_spend_a_refused_token_again(self, user, monkeypatch):
        account = expiring(user)
        holder = services.mlaccount_refresh_claim(account_id=account.pk, lease_seconds=30)

        def other_process_is_refused(seconds):
            services.mlaccount_refresh_refused(claim=holder, message="refused", http_status=400)

        monkeypatch.setattr(tokens.time, "sleep", other_process_is_refused)
        with responses.RequestsMock() as rsps, pytest.raises(MLInvalidGrant):
            tokens.get_fresh_access_token(account.pk)
        assert len(rsps.calls) == 0
        assert AccountEvent.objects.filter(account=account).count() == 1

    def test_a_transient_failure_releases_the_lease(self, user):
        account = expiring(user)
        with responses.RequestsMock() as rsps:
            rsps.add(responses.POST, API + "/oauth/token", status=503, body="down")
            with pytest.raises(MLUnavailable):
                tokens.get_fresh_access_token(account.pk)
        account.refresh_from_db()
        assert account.refresh_claim is None and account.refresh_lease_until is None
