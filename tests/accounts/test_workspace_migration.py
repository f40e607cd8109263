"""Migrations 0006 to 0008: accounts move into their owners' personal workspaces, nothing lost,
and a seller connected by two users is resolved to the one live grant."""

from datetime import timedelta

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from accounts.models import AccountEvent, Membership, MLAccount, Workspace

BEFORE = [("accounts", "0005_security_canonical_email_token_version")]
AFTER = [("accounts", "0008_one_grant_per_seller")]


def _migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


def _leaf_nodes():
    return MigrationExecutor(connection).loader.graph.leaf_nodes()


@pytest.mark.django_db(transaction=True)
def test_accounts_move_to_personal_workspaces_and_duplicate_sellers_keep_the_newest_grant(capsys):
    old = _migrate(BEFORE)
    User = old.get_model("accounts", "User")
    Account = old.get_model("accounts", "MLAccount")
    Event = old.get_model("accounts", "AccountEvent")
    now = timezone.now()
    try:
        alice = User.objects.create(email="alice@example.com", password="x", first_name="Alice")
        bob = User.objects.create(email="bob@example.com", password="x")
        carol = User.objects.create(email="carol@example.com", password="x")

        def account(owner, ml_user_id, *, primary, obtained, **fields):
            return Account.objects.create(
                owner=owner,
                ml_user_id=ml_user_id,
                nickname=f"S{ml_user_id}",
                account_name=f"Store {ml_user_id}",
                is_primary=primary,
                access_token=f"APP_USR-{owner.pk}-{ml_user_id}",
                refresh_token=f"TG-{owner.pk}-{ml_user_id}",
                token_expires_at=now + timedelta(hours=6),
                token_obtained_at=obtained,
                **fields,
            )

        # Alice connected seller 111 first (her pair is dead now) and made it primary; Bob
        # connected it later, so his pair is the one Mercado Livre honours.
        alice_111 = account(alice, 111, primary=True, obtained=now - timedelta(days=3), cached_orders=9)
        alice_222 = account(alice, 222, primary=False, obtained=now - timedelta(days=3), cached_products=5)
        bob_111 = account(bob, 111, primary=True, obtained=now - timedelta(hours=1), cached_orders=12)
        Event.objects.create(account=alice_111, kind="auth", message="invalid_grant", http_status=400)
        Event.objects.create(account=bob_111, kind="unavailable", message="503", http_status=503)

        _migrate(AFTER)
        _migrate(_leaf_nodes())

        # Every user has a personal workspace with an owner membership (Carol too, with none).
        for user in (alice, bob, carol):
            workspace = Workspace.objects.get(personal_for_id=user.pk)
            assert Membership.objects.filter(workspace=workspace, user_id=user.pk, role="owner").exists()
        alice_ws = Workspace.objects.get(personal_for_id=alice.pk)
        bob_ws = Workspace.objects.get(personal_for_id=bob.pk)

        # Seller 111: Bob's row (the newest pair) stays with its tokens and counts; Alice is
        # a manager of Bob's workspace and her row's history moved over.
        kept = MLAccount.objects.get(ml_user_id=111)
        assert kept.pk == bob_111.pk
        assert kept.workspace_id == bob_ws.pk
        assert kept.connected_by_id == bob.pk
        assert kept.access_token == f"APP_USR-{bob.pk}-111"
        assert kept.cached_orders == 12
        assert kept.is_primary
        assert Membership.objects.get(workspace=bob_ws, user_id=alice.pk).role == "manager"
        assert set(AccountEvent.objects.filter(account=kept).values_list("message", flat=True)) == {
            "invalid_grant",
            "503",
        }
        # Alice's other account is in her workspace, untouched, and became its primary.
        other = MLAccount.objects.get(pk=alice_222.pk)
        assert other.workspace_id == alice_ws.pk
        assert other.cached_products == 5
        assert other.refresh_token == f"TG-{alice.pk}-222"
        assert other.is_primary
        out = capsys.readouterr().out
        assert f"seller 111: kept account {bob_111.pk}" in out
        assert f"removed account {alice_111.pk} of user {alice.pk}" in out
    finally:
        _migrate(_leaf_nodes())
