"""List pages pin their query count: the overview costs the same with 1 account as with 100."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from accounts import selectors, services
from accounts.models import AccountEvent, MLAccount, Role, User
from tests.factories import AccountEventFactory, MLAccountFactory, UserFactory, WorkspaceFactory, member

pytestmark = pytest.mark.django_db

# The session, the user, their workspaces with their role (the switcher, which also names the
# current one), the totals (one aggregate), the page of accounts (with the newest event kind
# and the caller's role, in the same query: the membership checks are subqueries of it).
OVERVIEW_QUERIES = 5
# A filtered view also counts what matches, for its pages.
FILTERED_QUERIES = 6


def make_accounts(user, count):
    now = timezone.now()
    accounts = MLAccountFactory.create_batch(
        count,
        owner=user,
        cached_products=5,
        cached_orders=3,
        cached_questions=1,
        cached_claims=0,
        cached_at=now,
        last_sync=now - timedelta(minutes=2),
        last_sync_status="failed",
    )
    MLAccount.objects.filter(pk=accounts[0].pk).update(is_primary=True)
    for account in accounts[::3]:
        AccountEventFactory(account=account, kind="unavailable")
    return accounts


def queries_for(client, path, **kwargs):
    with CaptureQueriesContext(connection) as captured:
        response = client.get(path, **kwargs)
    assert response.status_code == 200
    return len(captured.captured_queries)


@pytest.mark.parametrize(
    ("path", "headers"),
    [(reverse("dashboard:overview"), {}), (reverse("dashboard:overview_list"), {"HX-Request": "true"})],
)
def test_overview_costs_the_same_for_1_and_100_accounts(client, path, headers, django_assert_num_queries):
    one, hundred = User.objects.create_user("one@example.com"), User.objects.create_user("many@example.com")
    make_accounts(one, 1)
    make_accounts(hundred, 100)
    client.force_login(one)
    queries_for(client, path, headers=headers)  # warm caches; remember the current workspace
    with django_assert_num_queries(OVERVIEW_QUERIES):
        small = client.get(path, headers=headers)
    client.force_login(hundred)
    queries_for(client, path, headers=headers)  # the first visit remembers the current workspace
    with django_assert_num_queries(OVERVIEW_QUERIES):
        large = client.get(path, headers=headers)
    assert small.content.decode().count('<li class="account-card ') == 1
    # Issue 12: past a handful of accounts, a table, 50 rows a page.
    assert large.content.decode().count('<tr class="account-row ') == 50


@pytest.mark.parametrize(
    "query", ["?status=active", "?q=seller&sort=-questions", "?site=MLB&page=2", "?has=questions"]
)
def test_a_filtered_overview_costs_the_same_for_1_and_300_accounts(client, query, django_assert_num_queries):
    one, many = User.objects.create_user("one@example.com"), User.objects.create_user("many@example.com")
    make_accounts(one, 1)
    make_accounts(many, 300)
    path = reverse("dashboard:overview_list") + query
    for user in (one, many):
        client.force_login(user)
        queries_for(client, path)  # the first visit remembers the current workspace
        with django_assert_num_queries(FILTERED_QUERIES):
            client.get(path)


def test_account_page_query_count_is_fixed(client_user, ml_account, django_assert_num_queries):
    for _ in range(15):
        AccountEventFactory(account=ml_account)
    path = reverse("dashboard:account", args=[ml_account.pk])
    client_user.get(path)
    # Session, user, the account (with the membership check and its workspace), its events,
    # its notifications of the last hour (one aggregate), the user's workspaces (the header's
    # switcher); its sales (the window's totals, the days), its newest reputation, 30 days of
    # reputation snapshots and of hourly counts (tests/mlaccounts/test_sales_pages.py pins
    # them with many orders and snapshots); its newest audit entries, the owner's "Activity"
    # (30 here, of which it shows 10).
    for _ in range(30):
        services.audit_record(action="pause", account=ml_account, actor=ml_account.connected_by)
    with django_assert_num_queries(12):
        response = client_user.get(path)
    assert response.content.decode().count('<tr id="audit-') == 10


def test_overview_selector_annotates_the_newest_event_kind_and_skips_tokens(user, other_user):
    quiet = MLAccountFactory(owner=user)
    troubled = MLAccountFactory(owner=user)
    old = AccountEventFactory(account=troubled, kind="unavailable")
    AccountEventFactory(account=troubled, kind="auth")
    AccountEventFactory(account=troubled, kind="rate_limited")
    AccountEvent.objects.filter(pk=old.pk).update(created_at=timezone.now() + timedelta(minutes=1))
    MLAccountFactory(owner=other_user)
    rows = {a.pk: a for a in selectors.mlaccount_list_for_overview(user=user)}
    assert set(rows) == {quiet.pk, troubled.pk}
    assert rows[quiet.pk].last_event_kind is None
    assert rows[troubled.pk].last_event_kind == "unavailable"
    assert {"access_token", "refresh_token"} <= rows[quiet.pk].get_deferred_fields()


# The session, the user, the workspaces (switcher), the workspace, its accounts (for the scope
# choices), a page of members and their count, their scopes, a page of invitations and their
# count, the owners.
MEMBERS_PAGE_QUERIES = 11


def test_the_members_page_costs_the_same_for_2_and_60_members(client, django_assert_num_queries):
    def agency(members, invitations):
        owner = UserFactory()
        workspace = WorkspaceFactory()
        member(workspace, owner, Role.OWNER)
        account = MLAccountFactory(workspace=workspace)
        for n in range(members - 1):
            member(workspace, UserFactory(), Role.VIEWER, accounts=[account] if n % 2 == 0 else None)
        for n in range(invitations):
            services.invitation_create(
                workspace=workspace,
                invited_by=owner,
                email=f"guest{n}-{workspace.pk}@example.com",
                role="viewer",
            )
        return owner, workspace

    counts = []
    for size in (2, 60):
        owner, workspace = agency(size, invitations=size // 2)
        client.force_login(owner)
        path = reverse("dashboard:members", args=[workspace.pk])
        queries_for(client, path)  # warm caches
        with CaptureQueriesContext(connection) as captured:
            response = client.get(path)
        counts.append(len(captured.captured_queries))
        body = response.content.decode()
        assert body.count('class="member-card"') == min(size, 25)
        assert body.count('<li id="invitation-') == min(size // 2, 25)
    assert counts == [MEMBERS_PAGE_QUERIES, MEMBERS_PAGE_QUERIES]
    second = client.get(reverse("dashboard:members", args=[workspace.pk]) + "?page=3").content.decode()
    assert second.count('class="member-card"') == 10
    assert 'href="?page=2&amp;invitations=1" rel="prev" id="members-prev"' in second
