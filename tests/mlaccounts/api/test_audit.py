"""GET /api/audit (issue 16): the audit log for owners and managers, read only.

The cast: Alice owns the agency "Agência Sol" (two accounts) and her personal workspace;
Maria manages the agency, Sam manages only its first account, Bob operates, Victor views;
Charlie is the outsider.
"""

import uuid
from datetime import datetime, timedelta

import pytest
from django.utils import timezone

from accounts.models import AuditAction, AuditEntry
from tests.factories import MLAccountFactory, UserFactory, WorkspaceFactory, audit_entry, member
from tests.mlaccounts.api.conftest import assert_error, assert_unauthorized, body, client_for

pytestmark = pytest.mark.django_db

URL = "/api/audit"
# The user (the bearer token), the page of entries, their count (the memberships are
# subqueries of both).
LIST_QUERIES = 3


@pytest.fixture
def agency(user, other_user, ml_account):
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
    now = timezone.now()
    rows = {
        "first": audit_entry(workspace, first, at=now - timedelta(minutes=3)),
        "second": audit_entry(
            workspace, second, action=AuditAction.SYNC_NOW, changes={}, at=now - timedelta(minutes=2)
        ),
        "members": audit_entry(
            workspace,
            action=AuditAction.MEMBER_CHANGE,
            changes={"member": "bob@example.com", "role": ["viewer", "operator"]},
            at=now - timedelta(minutes=1),
        ),
        "personal": audit_entry(ml_account.workspace, ml_account, at=now),
    }
    return {
        "workspace": workspace,
        "first": first,
        "second": second,
        "rows": rows,
        **{name: client_for(person) for name, person in users.items()},
    }


def ids(response, agency) -> list[str]:
    assert response.status_code == 200, response.content
    names = {row.pk: name for name, row in agency["rows"].items()}
    data = body(response)["data"]
    assert data["total"] >= len(data["entries"])
    return [names[item["id"]] for item in data["entries"]]


def test_an_entry_as_the_contract_shows_it(agency):
    response = agency["alice"].get(URL, {"accountId": str(agency["first"].pk)})

    assert body(response) == {
        "success": True,
        "data": {
            "entries": [
                {
                    "id": agency["rows"]["first"].pk,
                    "action": "pause",
                    "actorEmail": "alice@example.com",
                    "accountId": str(agency["first"].pk),
                    "at": body(response)["data"]["entries"][0]["at"],
                    "ip": "198.51.100.4",
                    "changes": {"status": ["active", "paused"]},
                }
            ],
            "total": 1,
        },
    }
    at = datetime.fromisoformat(body(response)["data"]["entries"][0]["at"])
    assert at == agency["rows"]["first"].at


def test_without_filters_every_workspace_the_caller_owns_or_manages_newest_first(agency):
    assert ids(agency["alice"].get(URL), agency) == ["personal", "members", "second", "first"]
    assert ids(agency["maria"].get(URL), agency) == ["members", "second", "first"]
    # Scoped to the first account: its entries only, not the workspace's own.
    assert ids(agency["sam"].get(URL), agency) == ["first"]
    # Below manager everywhere, or a member of nothing: nothing to read, an empty list.
    for who in ("bob", "victor", "charlie"):
        assert body(agency[who].get(URL))["data"] == {"entries": [], "total": 0}


def test_filters_by_account_workspace_and_action(agency):
    alice, workspace = agency["alice"], agency["workspace"]
    assert ids(alice.get(URL, {"workspaceId": str(workspace.pk)}), agency) == ["members", "second", "first"]
    assert ids(alice.get(URL, {"accountId": str(agency["second"].pk)}), agency) == ["second"]
    assert ids(alice.get(URL, {"action": "member_change"}), agency) == ["members"]
    both = {"workspaceId": str(workspace.pk), "accountId": str(agency["first"].pk), "action": "pause"}
    assert ids(alice.get(URL, both), agency) == ["first"]
    assert ids(alice.get(URL, {"accountId": "", "workspaceId": ""}), agency) == [
        "personal",
        "members",
        "second",
        "first",
    ]


@pytest.mark.parametrize("who", ["bob", "victor"])
def test_operators_and_viewers_are_forbidden(agency, who):
    assert_error(agency[who].get(URL, {"accountId": str(agency["first"].pk)}), 403, "FORBIDDEN")
    assert_error(agency[who].get(URL, {"workspaceId": str(agency["workspace"].pk)}), 403, "FORBIDDEN")


def test_what_the_caller_cannot_see_is_not_found(agency):
    first, second, workspace = agency["first"], agency["second"], agency["workspace"]
    charlie, sam = agency["charlie"], agency["sam"]
    assert_error(charlie.get(URL, {"accountId": str(first.pk)}), 404, "NOT_FOUND")
    assert_error(charlie.get(URL, {"workspaceId": str(workspace.pk)}), 404, "NOT_FOUND")
    assert_error(sam.get(URL, {"accountId": str(second.pk)}), 404, "NOT_FOUND")  # outside the scope
    personal = agency["rows"]["personal"].account_id
    assert_error(
        agency["alice"].get(URL, {"workspaceId": str(workspace.pk), "accountId": str(personal)}),
        404,
        "NOT_FOUND",
    )
    for malformed in ("abc", "1", str(uuid.uuid4()), "%00"):
        assert_error(agency["alice"].get(URL, {"accountId": malformed}), 404, "NOT_FOUND")
        assert_error(agency["alice"].get(URL, {"workspaceId": malformed}), 404, "NOT_FOUND")


@pytest.mark.parametrize("query", [{"action": "drop"}, {"action": ""}, {"page": "x"}, {"page": ""}])
def test_a_bad_action_or_page_is_a_validation_error(agency, query):
    payload = assert_error(agency["alice"].get(URL, query), 400, "VALIDATION_ERROR")
    assert set(payload["errors"]) == set(query)


def test_fifty_a_page(agency):
    workspace, first = agency["workspace"], agency["first"]
    AuditEntry.objects.bulk_create(
        AuditEntry(
            at=timezone.now() - timedelta(hours=1, minutes=n),
            action="pause",
            workspace_id=workspace.pk,
            account_id=first.pk,
        )
        for n in range(117)
    )
    pages = [body(agency["maria"].get(URL, {"page": page}))["data"] for page in (1, 2, 3, 4)]
    assert [len(page["entries"]) for page in pages] == [50, 50, 20, 0]
    assert {page["total"] for page in pages} == {120}
    seen = [item["id"] for page in pages for item in page["entries"]]
    assert len(set(seen)) == 120
    assert [item["at"] for item in pages[0]["entries"]] == sorted(
        (item["at"] for item in pages[0]["entries"]), reverse=True
    )


def test_anonymous_is_unauthorized(api_client):
    assert_unauthorized(api_client.get(URL))


@pytest.mark.parametrize("method", ["post", "put", "patch", "delete"])
def test_entries_cannot_be_written_through_the_api(agency, method):
    row = agency["rows"]["first"]
    for path in (URL, f"{URL}/{row.pk}"):
        response = getattr(agency["alice"], method)(path, {"action": "resume"}, format="json")
        assert response.status_code in (404, 405)
        assert body(response)["success"] is False
    assert_error(
        getattr(agency["alice"], method)(URL, {"action": "resume"}, format="json"), 405, "METHOD_NOT_ALLOWED"
    )
    kept = AuditEntry.objects.get(pk=row.pk)
    assert (kept.action, kept.changes) == ("pause", {"status": ["active", "paused"]})
    assert AuditEntry.objects.count() == 4


def test_the_list_costs_the_same_for_4_and_304_entries(agency, django_assert_num_queries):
    alice, workspace = agency["alice"], agency["workspace"]
    with django_assert_num_queries(LIST_QUERIES):
        alice.get(URL)
    AuditEntry.objects.bulk_create(
        AuditEntry(
            at=timezone.now(), action="sync_now", workspace_id=workspace.pk, account_id=agency["first"].pk
        )
        for _ in range(300)
    )
    with django_assert_num_queries(LIST_QUERIES):
        response = alice.get(URL)
    assert len(body(response)["data"]["entries"]) == 50
