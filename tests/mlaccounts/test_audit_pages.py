"""The audit log's pages (issue 16): a workspace's log, its CSV, the account page's
"Activity", and the admin, which shows entries and changes none.

The cast: Alice owns the agency "Agência Sol" with two accounts; Maria manages it, Sam
manages only its first account, Bob operates and Victor views; Charlie is an outsider.
"""

import csv
import io
from datetime import datetime, timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts.models import AuditAction, AuditEntry
from tests.factories import MLAccountFactory, UserFactory, WorkspaceFactory, audit_entry, member

pytestmark = pytest.mark.django_db

# The session, the user, the workspace with the caller's membership (the access helper), the
# accounts (the filter's choices), the user's workspaces (the header's switcher), the count
# of the entries and their page.
AUDIT_PAGE_QUERIES = 7


@pytest.fixture(autouse=True)
def _english(settings):
    settings.LANGUAGE_CODE = "en"


@pytest.fixture
def agency(user, other_user):
    workspace = WorkspaceFactory(name="Agência Sol")
    first = MLAccountFactory(workspace=workspace, account_name="Loja Um")
    second = MLAccountFactory(workspace=workspace, account_name="Loja Dois")
    member(workspace, user, "owner")
    users = {"alice": user, "charlie": other_user}
    for name, role in (("maria", "manager"), ("bob", "operator"), ("victor", "viewer")):
        users[name] = UserFactory(email=f"{name}@example.com")
        member(workspace, users[name], role)
    users["sam"] = UserFactory(email="sam@example.com")
    member(workspace, users["sam"], "manager", accounts=[first])
    clients = {}
    for name, person in users.items():
        clients[name] = Client()
        clients[name].force_login(person)
    return {"workspace": workspace, "first": first, "second": second, "users": users, **clients}


def audit_url(workspace, **params) -> str:
    query = "&".join(f"{key}={value}" for key, value in params.items())
    return reverse("dashboard:audit", args=[workspace.pk]) + (f"?{query}" if query else "")


def csv_url(workspace, **params) -> str:
    return audit_url(workspace, **params).replace("/audit/", "/audit.csv")


def rows_of(response) -> list[str]:
    """The ids of the entries a page lists, in order."""
    html = response.content.decode()
    return [int(part.split('"', 1)[0]) for part in html.split('<tr id="audit-')[1:]]


def csv_of(response) -> list[list[str]]:
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response.streaming
    return list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))


# --- who may read it ---------------------------------------------------------------------------


def test_anonymous_is_sent_to_sign_in(client, agency):
    for url in (audit_url(agency["workspace"]), csv_url(agency["workspace"])):
        response = client.get(url)
        assert response.status_code == 302 and reverse("account_login") in response["Location"]


@pytest.mark.parametrize(
    ("who", "status"),
    [("alice", 200), ("maria", 200), ("sam", 200), ("bob", 403), ("victor", 403), ("charlie", 404)],
)
def test_owners_and_managers_read_it_operators_and_viewers_cannot_outsiders_do_not_see_it(
    agency, who, status
):
    audit_entry(agency["workspace"], agency["first"])
    assert agency[who].get(audit_url(agency["workspace"])).status_code == status
    assert agency[who].get(csv_url(agency["workspace"])).status_code == status


def test_a_scoped_manager_sees_their_accounts_entries_only(agency):
    workspace, first, second = agency["workspace"], agency["first"], agency["second"]
    mine = audit_entry(workspace, first)
    audit_entry(workspace, second)
    audit_entry(workspace, action=AuditAction.MEMBER_CHANGE, changes={"member": "bob@example.com"})

    assert rows_of(agency["sam"].get(audit_url(workspace))) == [mine.pk]
    assert agency["sam"].get(audit_url(workspace, account=second.pk)).status_code == 404
    assert agency["alice"].get(audit_url(workspace, account="not-an-id")).status_code == 404
    assert len(csv_of(agency["sam"].get(csv_url(workspace)))) == 2  # the header and one row


def test_the_header_and_the_members_page_link_to_it_for_owners_and_managers(agency):
    workspace = agency["workspace"]
    link = f'href="{audit_url(workspace)}"'
    for who in ("alice", "maria", "bob"):
        agency[who].post(reverse("dashboard:workspace_switch"), {"workspace": workspace.pk})
    assert link in agency["alice"].get(reverse("dashboard:overview")).content.decode()
    assert link in agency["maria"].get(reverse("dashboard:overview")).content.decode()
    assert link not in agency["bob"].get(reverse("dashboard:overview")).content.decode()
    assert (
        'id="members-audit-link"'
        in agency["alice"].get(reverse("dashboard:members", args=[workspace.pk])).content.decode()
    )


# --- what it shows ------------------------------------------------------------------------------


def test_entries_show_who_when_what_and_the_changes_in_words(agency):
    workspace = agency["workspace"]
    audit_entry(
        workspace,
        action=AuditAction.MEMBER_CHANGE,
        changes={"member": "bob@example.com", "role": ["operator", "manager"], "scope": [None, "Loja Um"]},
    )
    audit_entry(
        workspace, agency["first"], action=AuditAction.SETTINGS, changes={"is_primary": [False, True]}
    )

    html = agency["alice"].get(audit_url(workspace)).content.decode()

    assert "role: Operator → Manager" in html
    assert "accounts: every account → Loja Um" in html
    assert "member: bob@example.com" in html
    assert "primary: no → yes" in html
    assert "Changed a member" in html and "Changed settings" in html
    assert "198.51.100.4" in html and "alice@example.com" in html and "Loja Um" in html
    assert 'id="audit-total"' in html and "2 entries" in html


def test_the_filters(agency):
    workspace, first, second = agency["workspace"], agency["first"], agency["second"]
    now = timezone.now()
    old = audit_entry(workspace, first, at=now - timedelta(days=5))
    paused = audit_entry(workspace, second, at=now - timedelta(days=1))
    synced = audit_entry(
        workspace, second, action=AuditAction.SYNC_NOW, actor_email="maria@example.com", at=now
    )
    alice = agency["alice"]
    today = timezone.localdate()

    assert rows_of(alice.get(audit_url(workspace))) == [synced.pk, paused.pk, old.pk]
    assert rows_of(alice.get(audit_url(workspace, account=first.pk))) == [old.pk]
    assert rows_of(alice.get(audit_url(workspace, action="sync_now"))) == [synced.pk]
    assert rows_of(alice.get(audit_url(workspace, actor="MARIA"))) == [synced.pk]
    assert rows_of(alice.get(audit_url(workspace, since=today - timedelta(days=2)))) == [synced.pk, paused.pk]
    assert rows_of(alice.get(audit_url(workspace, until=today - timedelta(days=1)))) == [paused.pk, old.pk]
    every_day = {"since": "0001-01-01", "until": "9999-12-31"}  # no overflow at the ends
    assert rows_of(alice.get(audit_url(workspace, **every_day))) == [synced.pk, paused.pk, old.pk]
    response = alice.get(audit_url(workspace, account=second.pk, action="pause"))
    assert rows_of(response) == [paused.pk]
    # The CSV link carries the same filters.
    assert f"audit.csv?account={second.pk}&amp;action=pause" in response.content.decode()


@pytest.mark.parametrize(
    "query",
    [{"since": "yesterday"}, {"action": "drop_table"}, {"since": "2026-12-02", "until": "2026-12-01"}],
)
def test_a_bad_filter_says_so_and_is_not_applied(agency, query):
    audit_entry(agency["workspace"], agency["first"])
    response = agency["alice"].get(audit_url(agency["workspace"], **query))
    assert response.status_code == 400
    assert 'class="field-error"' in response.content.decode()
    assert len(rows_of(response)) == 1


def test_fifty_a_page_and_the_links_keep_the_filters(agency):
    workspace = agency["workspace"]
    AuditEntry.objects.bulk_create(
        AuditEntry(
            at=timezone.now() - timedelta(minutes=n),
            action=AuditAction.PAUSE,
            workspace_id=workspace.pk,
            account_id=agency["first"].pk,
        )
        for n in range(120)
    )
    alice = agency["alice"]
    first_page = alice.get(audit_url(workspace, action="pause"))
    third = alice.get(audit_url(workspace, action="pause", page=3))

    assert len(rows_of(first_page)) == 50 and len(rows_of(third)) == 20
    assert 'href="?action=pause&amp;page=2"' in first_page.content.decode()
    assert 'href="?action=pause&amp;page=2"' in third.content.decode()  # "previous"
    assert "Page 3 of 3" in third.content.decode()


def test_an_empty_log_says_so(agency):
    html = agency["alice"].get(audit_url(agency["workspace"])).content.decode()
    assert 'id="audit-empty"' in html


def test_the_page_costs_the_same_for_3_and_120_entries(agency, django_assert_num_queries):
    workspace, alice = agency["workspace"], agency["alice"]

    def fill(count):
        AuditEntry.objects.bulk_create(
            AuditEntry(
                at=timezone.now(), action="pause", workspace_id=workspace.pk, account_id=agency["first"].pk
            )
            for _ in range(count)
        )

    alice.get(audit_url(workspace))  # the first visit remembers the current workspace
    fill(3)
    with django_assert_num_queries(AUDIT_PAGE_QUERIES):
        assert len(rows_of(alice.get(audit_url(workspace)))) == 3
    fill(117)
    with django_assert_num_queries(AUDIT_PAGE_QUERIES):
        assert len(rows_of(alice.get(audit_url(workspace)))) == 50


# --- the CSV -----------------------------------------------------------------------------------------


def test_the_csv_holds_every_filtered_entry_and_guards_against_formulas(agency):
    workspace, first = agency["workspace"], agency["first"]
    audit_entry(
        workspace,
        first,
        action=AuditAction.SETTINGS,
        changes={"account_name": ["Loja Um", '=HYPERLINK("x")']},
    )
    audit_entry(
        workspace, first, actor_email="@evil.example", user_agent="+cmd|' /C calc'!A0", account_label="-2+3"
    )
    audit_entry(workspace, agency["second"], action=AuditAction.SYNC_NOW)

    rows = csv_of(agency["alice"].get(csv_url(workspace, account=first.pk)))

    assert rows[0] == [
        "time",
        "action",
        "action code",
        "actor",
        "workspace",
        "account",
        "account id",
        "IP address",
        "user agent",
        "changes",
        "changes (JSON)",
    ]
    assert len(rows) == 3  # the header and the first account's two entries, newest first
    paused, settings = rows[1], rows[2]
    assert paused[1:4] == ["Paused an account", "pause", "'@evil.example"]
    assert paused[5] == "'-2+3" and paused[8] == "'+cmd|' /C calc'!A0"
    assert paused[6] == str(first.pk) and paused[7] == "198.51.100.4"
    assert settings[9] == 'name: Loja Um → =HYPERLINK("x")'  # inside the cell, not at its start
    assert settings[10] == '{"account_name": ["Loja Um", "=HYPERLINK(\\"x\\")"]}'
    assert datetime.fromisoformat(settings[0]).utcoffset() is not None
    for row in rows[1:]:
        assert not any(cell.startswith(("=", "+", "-", "@")) for cell in row)


def test_the_csv_is_named_after_the_workspace_and_the_day(agency):
    response = agency["maria"].get(csv_url(agency["workspace"]))
    assert response["Content-Disposition"].startswith(
        f'attachment; filename="audit-{agency["workspace"].pk}-'
    )


# --- the account page's "Activity" ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("who", "shown"), [("alice", True), ("maria", True), ("sam", True), ("bob", False), ("victor", False)]
)
def test_the_account_page_shows_the_activity_to_owners_and_managers(agency, who, shown):
    workspace, first = agency["workspace"], agency["first"]
    for n in range(12):
        audit_entry(
            workspace,
            first,
            at=timezone.now() - timedelta(minutes=n),
            changes={"status": ["active", "paused"]},
        )

    html = agency[who].get(reverse("dashboard:account", args=[first.pk])).content.decode()

    assert ('id="activity"' in html) is shown
    if shown:
        assert html.count('<tr id="audit-') == 10
        assert "status: Active → Paused" in html
        assert f"{reverse('dashboard:audit', args=[workspace.pk])}?account={first.pk}" in html


# --- the admin: read only ------------------------------------------------------------------------


@pytest.fixture
def admin_client(client):
    client.force_login(UserFactory(email="admin@example.com", is_staff=True, is_superuser=True))
    return client


def test_the_admin_lists_entries_and_changes_none(admin_client, agency):
    row = audit_entry(agency["workspace"], agency["first"], changes={"status": ["active", "paused"]})
    changelist = reverse("admin:accounts_auditentry_changelist")
    change = reverse("admin:accounts_auditentry_change", args=[row.pk])

    listing = admin_client.get(changelist)
    page = admin_client.get(change)
    filtered = admin_client.get(changelist, {"action__exact": "pause", "q": "Loja"})

    assert listing.status_code == 200 and "Loja Um" in listing.content.decode()
    assert "delete_selected" not in listing.content.decode()  # no bulk delete action
    assert filtered.status_code == 200 and "Loja Um" in filtered.content.decode()
    assert page.status_code == 200
    assert 'name="_save"' not in page.content.decode() and "deletelink" not in page.content.decode()
    # Changing, adding or deleting by hand is refused, and nothing changes.
    assert admin_client.post(change, {"action": "resume", "actor_email": "x@example.com"}).status_code == 403
    assert admin_client.get(reverse("admin:accounts_auditentry_add")).status_code == 403
    assert (
        admin_client.post(
            reverse("admin:accounts_auditentry_delete", args=[row.pk]), {"post": "yes"}
        ).status_code
        == 403
    )
    kept = AuditEntry.objects.get(pk=row.pk)
    assert (kept.action, kept.actor_email) == ("pause", "alice@example.com")
