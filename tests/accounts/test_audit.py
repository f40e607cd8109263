"""The audit log's rows and reads: append-only, and read by owners and managers only.

The entries themselves, written through the real entry points, are the subject of
tests/mlaccounts/test_audit_actions.py; the pages and the API of test_audit_pages.py and
api/test_audit.py.
"""

from datetime import timedelta

import pytest
from django.db import DatabaseError, connection, transaction
from django.test import RequestFactory
from django.utils import timezone

from accounts import selectors, services
from accounts.errors import AccountNotFound, Forbidden, WorkspaceNotFound
from accounts.models import AuditAction, AuditEntry
from tests.factories import MLAccountFactory, UserFactory, WorkspaceFactory, member

pytestmark = pytest.mark.django_db


def entry(**fields) -> AuditEntry:
    values = {"at": timezone.now(), "action": AuditAction.PAUSE, "actor_email": "a@example.com"}
    return AuditEntry.objects.create(**{**values, **fields})


# --- append-only ----------------------------------------------------------------------------


def test_an_entry_cannot_be_changed_or_deleted_through_the_model():
    row = entry()
    row.action = AuditAction.RESUME
    with pytest.raises(TypeError):
        row.save()
    with pytest.raises(TypeError):
        row.delete()
    with pytest.raises(TypeError):
        AuditEntry.objects.filter(pk=row.pk).update(action=AuditAction.RESUME)
    with pytest.raises(TypeError):
        AuditEntry.objects.filter(pk=row.pk).delete()
    assert AuditEntry.objects.get(pk=row.pk).action == AuditAction.PAUSE


@pytest.mark.postgres
@pytest.mark.skipif(connection.vendor != "postgresql", reason="the trigger exists on PostgreSQL only")
def test_on_postgresql_a_trigger_refuses_update_and_delete_in_raw_sql():
    row = entry()
    for statement in (
        "UPDATE accounts_auditentry SET action = 'resume' WHERE id = %s",
        "DELETE FROM accounts_auditentry WHERE id = %s",
    ):
        with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(statement, [row.pk])
    assert AuditEntry.objects.get(pk=row.pk).action == AuditAction.PAUSE


# --- writing -------------------------------------------------------------------------------


def test_without_a_request_or_an_actor_nothing_is_recorded(ml_account):
    # A Celery task, a command: nobody's action.
    assert services.audit_record(action=AuditAction.PAUSE, account=ml_account) is None
    assert services.audit_record_many(action=AuditAction.SYNC_NOW, accounts=[ml_account]) == 0
    services.mlaccount_pause(account=ml_account)
    assert not AuditEntry.objects.exists()


def test_a_named_actor_is_recorded_without_a_request(ml_account, user):
    recorded = services.audit_record(action=AuditAction.PAUSE, account=ml_account, actor=user)
    assert (recorded.actor_email, recorded.ip, recorded.user_agent) == (user.email, None, "")
    assert (recorded.workspace_id, recorded.account_label) == (ml_account.workspace_id, "Loja da Alice")


def test_many_entries_are_written_at_once_with_the_request_s_address(user, django_assert_num_queries):
    workspace = WorkspaceFactory()
    accounts = MLAccountFactory.create_batch(40, workspace=workspace)
    request = RequestFactory().get("/", REMOTE_ADDR="2001:db8::1", HTTP_USER_AGENT="x" * 900)
    request.user = user
    with services.audit_context(request), django_assert_num_queries(2):  # the names, one insert
        assert services.audit_record_many(action=AuditAction.SYNC_NOW, accounts=accounts) == 40
    rows = list(AuditEntry.objects.all())
    assert {row.account_id for row in rows} == {account.pk for account in accounts}
    assert {(row.ip, len(row.user_agent), row.workspace_name) for row in rows} == {
        ("2001:db8::1", 500, workspace.name)
    }


# --- reading -------------------------------------------------------------------------------


@pytest.fixture
def agency(user):
    """Alice owns it; Maria manages it; Sam manages only `first`; Bob operates; Victor views."""
    workspace = WorkspaceFactory(name="Agência Sol")
    first = MLAccountFactory(workspace=workspace, account_name="Loja Um")
    second = MLAccountFactory(workspace=workspace, account_name="Loja Dois")
    member(workspace, user, "owner")
    people = {"alice": user}
    for name, role in (("maria", "manager"), ("bob", "operator"), ("victor", "viewer")):
        people[name] = UserFactory(email=f"{name}@example.com")
        member(workspace, people[name], role)
    people["sam"] = UserFactory(email="sam@example.com")
    member(workspace, people["sam"], "manager", accounts=[first])
    now = timezone.now()
    rows = {
        "first": entry(workspace_id=workspace.pk, account_id=first.pk, at=now - timedelta(days=3)),
        "second": entry(workspace_id=workspace.pk, account_id=second.pk, at=now - timedelta(days=1)),
        "members": entry(
            workspace_id=workspace.pk,
            action=AuditAction.MEMBER_CHANGE,
            actor_email="alice@example.com",
            at=now,
        ),
        "elsewhere": entry(workspace_id=WorkspaceFactory().pk, at=now),
    }
    return {"workspace": workspace, "first": first, "second": second, "people": people, "rows": rows}


def _read(agency, who, **filters):
    user = agency["people"][who]
    workspace = selectors.workspace_get_for_user(user=user, workspace_id=agency["workspace"].pk)
    entries = selectors.audit_entries_for_workspace(user=user, workspace=workspace, **filters)
    names = {row.pk: name for name, row in agency["rows"].items()}
    return [names[row.pk] for row in entries]


def test_owners_and_managers_read_the_workspace_s_log_newest_first(agency):
    assert _read(agency, "alice") == ["members", "second", "first"]
    assert _read(agency, "maria") == ["members", "second", "first"]


def test_a_scoped_manager_reads_only_their_accounts_entries(agency):
    # Not the second account's, nor the workspace-level entries (members, invitations).
    assert _read(agency, "sam") == ["first"]
    with pytest.raises(AccountNotFound):
        _read(agency, "sam", account_id=agency["second"].pk)


@pytest.mark.parametrize("who", ["bob", "victor"])
def test_operators_and_viewers_cannot_read_it(agency, who):
    with pytest.raises(Forbidden):
        _read(agency, who)
    with pytest.raises(Forbidden):
        selectors.audit_entries_for_user(user=agency["people"][who], account_id=agency["first"].pk)
    assert not selectors.audit_entries_for_user(user=agency["people"][who]).exists()


def test_an_outsider_gets_not_found(agency, other_user):
    with pytest.raises(WorkspaceNotFound):
        selectors.audit_entries_for_user(user=other_user, workspace_id=agency["workspace"].pk)
    with pytest.raises(AccountNotFound):
        selectors.audit_entries_for_user(user=other_user, account_id=agency["first"].pk)
    assert not selectors.audit_entries_for_user(user=other_user).exists()


def test_an_account_of_another_workspace_is_not_found_in_this_one(agency, user):
    mine = MLAccountFactory(owner=user)
    with pytest.raises(AccountNotFound):
        _read(agency, "alice", account_id=mine.pk)


def test_the_filters(agency):
    today = timezone.localdate()
    assert _read(agency, "alice", account_id=agency["second"].pk) == ["second"]
    assert _read(agency, "alice", action=AuditAction.MEMBER_CHANGE) == ["members"]
    assert _read(agency, "alice", actor="ALICE@") == ["members"]
    assert _read(agency, "alice", since=today - timedelta(days=1)) == ["members", "second"]
    assert _read(agency, "alice", until=today - timedelta(days=1)) == ["second", "first"]
    assert _read(agency, "alice", since=today - timedelta(days=2), until=today - timedelta(days=2)) == []


def test_without_filters_the_api_reads_every_workspace_the_user_manages(agency):
    people = agency["people"]
    names = {row.pk: name for name, row in agency["rows"].items()}
    assert [names[e.pk] for e in selectors.audit_entries_for_user(user=people["maria"])] == [
        "members",
        "second",
        "first",
    ]
    assert [names[e.pk] for e in selectors.audit_entries_for_user(user=people["sam"])] == ["first"]


def test_the_account_page_shows_the_newest_ten_to_owners_and_managers_only(agency, django_assert_num_queries):
    first = agency["first"]
    for _ in range(12):
        entry(workspace_id=first.workspace_id, account_id=first.pk)
    for who, shown in (("alice", 10), ("sam", 10), ("bob", None), ("victor", None)):
        account = selectors.mlaccount_get_for_user(user=agency["people"][who], account_id=first.pk)
        with django_assert_num_queries(1 if shown else 0):
            latest = selectors.audit_latest_for_account(account=account)
        assert (len(latest) if latest is not None else None) == shown
