from datetime import timedelta

import pytest
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from accounts import selectors, services
from accounts.errors import AccountConnectedElsewhere, AccountExists, AccountNotFound, AccountValidationError
from accounts.mercadolivre.resources import Counts
from accounts.models import AccountEvent, MLAccount
from tests.factories import AccountEventFactory, MLAccountFactory

pytestmark = pytest.mark.django_db


def connect(owner, **overrides):
    """Connect a seller into `owner`'s personal workspace (or `workspace=`), as `owner`."""
    fields = {
        "workspace": services.workspace_personal(user=owner),
        "connected_by": owner,
        "ml_user_id": "5000000001",
        "nickname": "LOJA_TESTE",
        "email": "loja@example.com",
        "access_token": "APP_USR-plain-access",
        "refresh_token": "TG-plain-refresh",
        "token_expires_at": timezone.now() + timedelta(hours=6),
    }
    fields.update(overrides)
    return services.mlaccount_connect(**fields)


class TestConnect:
    def test_first_account_becomes_primary_and_is_due_now(self, user):
        account, created = connect(user)
        assert created
        assert account.is_primary
        assert account.account_name == "LOJA_TESTE"
        assert account.ml_user_id == 5_000_000_001
        assert account.status == MLAccount.Status.ACTIVE
        assert account.next_sync <= timezone.now()

    def test_second_account_is_not_primary(self, user):
        connect(user)
        second, _ = connect(user, ml_user_id=77, nickname="OUTRA")
        assert not second.is_primary
        assert MLAccount.objects.filter(workspace__personal_for=user, is_primary=True).count() == 1

    def test_connecting_a_known_seller_replaces_tokens_and_reactivates(self, user):
        account, _ = connect(user)
        services.mlaccount_mark_expired(account_id=account.pk, message="revoked")
        again, created = connect(user, access_token="APP_USR-new", refresh_token="TG-new")
        assert not created
        assert again.pk == account.pk
        again.refresh_from_db()
        assert again.status == MLAccount.Status.ACTIVE
        assert again.access_token == "APP_USR-new"
        assert again.refresh_token == "TG-new"
        assert MLAccount.objects.filter(workspace__personal_for=user).count() == 1

    def test_known_seller_is_refused_when_reconnect_is_off(self, user):
        connect(user)
        with pytest.raises(AccountExists):
            connect(user, reconnect=False, access_token="APP_USR-other")
        assert MLAccount.objects.get(workspace__personal_for=user).access_token == "APP_USR-plain-access"

    def test_a_token_pair_for_a_seller_of_another_workspace_is_refused_and_nothing_stored(
        self, user, other_user
    ):
        account, _ = connect(user)
        with pytest.raises(AccountConnectedElsewhere):
            connect(other_user, access_token="APP_USR-intruder", refresh_token="TG-intruder")
        account.refresh_from_db()
        assert account.access_token == "APP_USR-plain-access"
        assert account.workspace.personal_for == user
        assert MLAccount.objects.count() == 1
        assert not account.events.exists()

    def test_a_fresh_grant_for_a_seller_of_another_workspace_keeps_it_alive_there(self, user, other_user):
        # OAuth: Mercado Livre has just issued the only valid pair and killed the stored one.
        account, _ = connect(user)
        services.mlaccount_mark_expired(account_id=account.pk, message="invalid_grant")
        again, created = connect(
            other_user, fresh_grant=True, access_token="APP_USR-new", refresh_token="TG-new"
        )
        assert not created
        assert again.pk == account.pk
        account.refresh_from_db()
        assert account.workspace.personal_for == user
        assert account.connected_by == user  # the other user was given nothing
        assert account.access_token == "APP_USR-new"
        assert account.status == MLAccount.Status.ACTIVE
        assert account.events.filter(message__contains="connecting from another workspace").exists()

    @pytest.mark.parametrize(
        ("overrides", "field"),
        [
            ({"nickname": ""}, "nickname"),
            ({"access_token": None}, "access_token"),
            ({"token_expires_at": "2026-13-45T00:00:00"}, "token_expires_at"),
            ({"token_expires_at": timezone.now().replace(tzinfo=None)}, "token_expires_at"),
            ({"ml_user_id": "12ab"}, "ml_user_id"),
            ({"ml_user_id": -4}, "ml_user_id"),
            ({"ml_user_id": 2**64}, "ml_user_id"),
            ({"ml_user_id": True}, "ml_user_id"),
            ({"account_type": "megastore"}, "account_type"),
            ({"sync_interval": 59}, "sync_interval"),
            ({"sync_interval": 10**12}, "sync_interval"),
            ({"email": "not-an-email"}, "email"),
            ({"nickname": "x" * 300}, "nickname"),
            ({"site_id": "M1"}, "site_id"),
        ],
    )
    def test_bad_input_names_the_field_and_writes_nothing(self, user, overrides, field):
        with pytest.raises(AccountValidationError) as excinfo:
            connect(user, **overrides)
        assert field in excinfo.value.errors
        assert not MLAccount.objects.exists()

    def test_tokens_are_not_stored_in_plain_text(self, user):
        account, _ = connect(user)
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT access_token, refresh_token FROM accounts_mlaccount WHERE id = %s",
                [account.pk.hex if connection.vendor == "sqlite" else account.pk],
            )
            raw_access, raw_refresh = cursor.fetchone()
        assert raw_access and raw_refresh
        assert "plain-access" not in raw_access
        assert "plain-refresh" not in raw_refresh
        assert raw_access.startswith("gAAAA")  # a Fernet token
        account.refresh_from_db()
        assert account.access_token == "APP_USR-plain-access"


class TestSelectors:
    def test_foreign_missing_and_malformed_ids_are_alike(self, user, other_user, ml_account):
        for account_id in [ml_account.pk, "not-a-uuid", "00000000-0000-0000-0000-000000000000", None, 12]:
            with pytest.raises(AccountNotFound):
                selectors.mlaccount_get_for_user(user=other_user, account_id=account_id)
        assert selectors.mlaccount_get_for_user(user=user, account_id=str(ml_account.pk)) == ml_account

    def test_list_is_primary_first_then_oldest(self, user):
        first = MLAccountFactory(owner=user)
        second = MLAccountFactory(owner=user)
        primary = MLAccountFactory(owner=user, is_primary=True)
        MLAccountFactory()  # somebody else's
        assert list(selectors.mlaccount_list_for_user(user=user)) == [primary, first, second]


class TestSettings:
    def test_update_changes_only_given_fields(self, ml_account):
        services.mlaccount_update(account=ml_account, account_name="Loja Nova", sync_interval=600)
        ml_account.refresh_from_db()
        assert ml_account.account_name == "Loja Nova"
        assert ml_account.sync_interval == 600
        assert ml_account.account_type == MLAccount.AccountType.INDIVIDUAL

    def test_update_rejects_bad_values_without_writing(self, ml_account):
        with pytest.raises(AccountValidationError) as excinfo:
            services.mlaccount_update(
                account=ml_account, account_name="", sync_interval="300", account_type="x"
            )
        assert set(excinfo.value.errors) == {"account_name", "sync_interval", "account_type"}
        ml_account.refresh_from_db()
        assert ml_account.account_name == "Loja da Alice"

    def test_update_is_primary_true_demotes_the_previous(self, user, ml_account):
        other = MLAccountFactory(owner=user)
        services.mlaccount_update(account=other, is_primary=True)
        ml_account.refresh_from_db()
        other.refresh_from_db()
        assert other.is_primary and not ml_account.is_primary

    def test_update_is_primary_false_is_refused(self, ml_account):
        with pytest.raises(AccountValidationError) as excinfo:
            services.mlaccount_update(account=ml_account, is_primary=False)
        assert "is_primary" in excinfo.value.errors


class TestLifecycle:
    def test_pause_and_resume(self, ml_account):
        services.mlaccount_pause(account=ml_account)
        assert ml_account.status == MLAccount.Status.PAUSED
        assert not ml_account.sync_enabled
        assert ml_account.next_sync is None
        services.mlaccount_resume(account=ml_account)
        assert ml_account.status == MLAccount.Status.ACTIVE
        assert ml_account.sync_enabled
        assert ml_account.next_sync <= timezone.now()

    def test_resume_from_expired(self, ml_account):
        services.mlaccount_mark_expired(account_id=ml_account.pk, message="invalid_grant")
        services.mlaccount_resume(account=ml_account)
        assert ml_account.status == MLAccount.Status.ACTIVE

    def test_remove_primary_promotes_the_oldest_remaining(self, user, ml_account):
        older = MLAccountFactory(owner=user)
        newer = MLAccountFactory(owner=user)
        MLAccount.objects.filter(pk=newer.pk).update(created_at=timezone.now() + timedelta(days=1))
        services.mlaccount_remove(account=ml_account)
        assert not MLAccount.objects.filter(pk=ml_account.pk).exists()
        older.refresh_from_db()
        newer.refresh_from_db()
        assert older.is_primary and not newer.is_primary

    def test_remove_last_account_leaves_none(self, user, ml_account):
        services.mlaccount_remove(account=ml_account)
        assert not MLAccount.objects.filter(workspace__personal_for=user).exists()


class TestSyncBookkeeping:
    def test_success_saves_counts_and_schedules_next(self, ml_account):
        MLAccount.objects.filter(pk=ml_account.pk).update(error_count=3, status="error")
        now = timezone.now()
        services.mlaccount_record_sync_success(
            account_id=ml_account.pk, counts=Counts(10, 4, 2, 1), synced_at=now
        )
        ml_account.refresh_from_db()
        assert (ml_account.cached_products, ml_account.cached_orders) == (10, 4)
        assert ml_account.cached_issues == 3
        assert ml_account.error_count == 0
        assert ml_account.status == MLAccount.Status.ACTIVE
        assert ml_account.last_sync_status == "success"
        assert ml_account.next_sync == now + timedelta(seconds=ml_account.sync_interval)

    def test_success_schedules_by_the_interval_the_account_has_when_it_lands(self, ml_account):
        # The database computes next_sync as it writes: an interval changed during the sync counts.
        now = timezone.now()
        MLAccount.objects.filter(pk=ml_account.pk).update(sync_interval=3600)
        services.mlaccount_record_sync_success(
            account_id=ml_account.pk, counts=Counts(1, 1, 1, 1), synced_at=now
        )
        assert MLAccount.objects.get(pk=ml_account.pk).next_sync == now + timedelta(seconds=3600)

    def test_success_of_a_removed_account_writes_nothing(self, ml_account):
        MLAccount.objects.filter(pk=ml_account.pk).delete()
        services.mlaccount_record_sync_success(account_id=ml_account.pk, counts=Counts(1, 1, 1, 1))
        assert not MLAccount.objects.filter(pk=ml_account.pk).exists()

    def test_success_keeps_a_pause_made_during_the_sync(self, ml_account):
        services.mlaccount_pause(account=ml_account)
        services.mlaccount_record_sync_success(account_id=ml_account.pk, counts=Counts(1, 1, 1, 1))
        ml_account.refresh_from_db()
        assert ml_account.status == MLAccount.Status.PAUSED
        assert ml_account.next_sync is None

    def test_five_transient_failures_mark_error_with_growing_backoff(self, ml_account):
        delays = []
        for _ in range(7):
            now = timezone.now()
            account = services.mlaccount_record_sync_failure(
                account_id=ml_account.pk, kind="unavailable", message="503", http_status=503, failed_at=now
            )
            delays.append((account.next_sync - now).total_seconds())
        assert account.status == MLAccount.Status.ERROR
        assert account.error_count == 7
        assert delays[:4] == [300] * 4
        assert delays[4:] == [600, 1200, 2400]
        assert account.access_token  # never touched

    def test_backoff_is_capped_at_an_hour(self):
        assert services.error_backoff_seconds(sync_interval=300, error_count=30) == 3600
        assert services.error_backoff_seconds(sync_interval=7200, error_count=30) == 7200

    def test_auth_failure_marks_expired(self, ml_account):
        account = services.mlaccount_record_sync_failure(
            account_id=ml_account.pk, kind="auth", message="invalid_grant", http_status=400, auth_failure=True
        )
        assert account.status == MLAccount.Status.EXPIRED
        assert account.refresh_token == ml_account.refresh_token
        assert AccountEvent.objects.get(account=ml_account).kind == "auth"

    def test_claim_is_exclusive_until_the_lease_runs_out(self, ml_account):
        now = timezone.now()
        assert services.mlaccount_claim(account_id=ml_account.pk, lease_seconds=300, now=now)
        assert not services.mlaccount_claim(account_id=ml_account.pk, lease_seconds=300, now=now)
        later = now + timedelta(seconds=301)
        assert services.mlaccount_claim(account_id=ml_account.pk, lease_seconds=300, now=later)

    def test_claim_returns_the_fields_asked_for_as_the_orm_reads_them(self, ml_account):
        # Asked for in another order than the model's: each value still lands in its field.
        claimed = services.mlaccount_claim(
            account_id=ml_account.pk,
            lease_seconds=300,
            fields=("token_expires_at", "access_token", "site_id"),
        )
        assert (
            claimed.pk,
            claimed.ml_user_id,
            claimed.access_token,
            claimed.token_expires_at,
            claimed.site_id,
        ) == (
            ml_account.pk,
            ml_account.ml_user_id,
            ml_account.access_token,  # decrypted
            ml_account.token_expires_at,  # an aware datetime on SQLite too
            ml_account.site_id,
        )
        assert claimed.get_deferred_fields() >= {"refresh_token", "status"}

    def test_release_frees_only_our_own_claim(self, ml_account):
        now = timezone.now()
        services.mlaccount_claim(account_id=ml_account.pk, lease_seconds=300, now=now)
        services.mlaccount_release(account_id=ml_account.pk, claimed_at=now - timedelta(seconds=1))
        ml_account.refresh_from_db()
        assert ml_account.sync_started_at == now
        services.mlaccount_release(account_id=ml_account.pk, claimed_at=now)
        ml_account.refresh_from_db()
        assert ml_account.sync_started_at is None
        assert ml_account.last_sync_status == "failed"


class TestEvents:
    def test_only_the_last_twenty_are_kept(self, ml_account):
        for i in range(25):
            services.event_record(account_id=ml_account.pk, kind="other", message=f"event {i}")
        messages = list(AccountEvent.objects.filter(account=ml_account).values_list("message", flat=True))
        assert len(messages) == 20
        assert messages[0] == "event 24"
        assert "event 4" not in messages

    def test_other_accounts_events_are_untouched(self, ml_account):
        foreign = AccountEventFactory()
        for i in range(21):
            services.event_record(account_id=ml_account.pk, kind="other", message=f"e{i}")
        assert AccountEvent.objects.filter(pk=foreign.pk).exists()

    def test_unknown_kind_is_recorded_as_other(self, ml_account):
        event = services.event_record(account_id=ml_account.pk, kind="weird", message="x")
        assert event.kind == "other"


class TestDatabaseConstraints:
    """The rules hold in the database itself, not only in the services."""

    def test_two_primaries_are_refused(self, user, ml_account):
        with pytest.raises(IntegrityError), transaction.atomic():
            MLAccountFactory(owner=user, is_primary=True)

    def test_same_seller_twice_is_refused(self, ml_account, other_user):
        # One grant per seller in the whole installation (mercadolivre-api.md §1.5).
        with pytest.raises(IntegrityError), transaction.atomic():
            MLAccountFactory(owner=other_user, ml_user_id=ml_account.ml_user_id)

    @pytest.mark.parametrize(
        ("field", "value"),
        [("sync_interval", 59), ("status", "deleted"), ("last_sync_status", "ok"), ("ml_user_id", 0)],
    )
    def test_bad_values_are_refused(self, ml_account, field, value):
        with pytest.raises(IntegrityError), transaction.atomic():
            MLAccount.objects.filter(pk=ml_account.pk).update(**{field: value})

    def test_ml_user_id_holds_64_bit_ids(self, user):
        account = MLAccountFactory(owner=user, ml_user_id=2**62 + 5)
        account.refresh_from_db()
        assert account.ml_user_id == 2**62 + 5

    def test_email_is_unique_ignoring_case(self, user):
        from accounts.models import User

        with pytest.raises(IntegrityError), transaction.atomic():
            User.objects.bulk_create([User(email="ALICE@example.com")])
