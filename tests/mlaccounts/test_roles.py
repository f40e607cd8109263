"""Every page, endpoint and action by role: owner, manager, operator, viewer, scoped member
(an operator limited to the target account), a member scoped to another account, outsider.

The access helper answers 404 to whoever cannot see the account (or workspace), 403 to
whoever sees it but whose role does not allow the action, and the action itself to the
rest. A refusal changes nothing and calls Mercado Livre for nothing.
"""

import uuid

import pytest
from django.core import mail
from django.core.cache import cache
from django.urls import reverse

from accounts.models import Invitation, Membership, MLAccount, Workspace
from accounts.roles import Can, allows
from mlaccounts.api.authentication import access_token_for
from tests.factories import MLAccountFactory, UserFactory, WorkspaceFactory, member
from tests.mlaccounts.api.conftest import RecordingAPIClient, body, ml_counts, token_answer
from tests.mlmock import TOKEN_URL

pytestmark = pytest.mark.django_db

CAST = ["owner", "manager", "operator", "viewer", "scoped", "scoped_elsewhere", "outsider"]
# Role each member of the cast has in the workspace (None: not a member).
ROLE = {
    "owner": "owner",
    "manager": "manager",
    "operator": "operator",
    "viewer": "viewer",
    "scoped": "operator",
    "scoped_elsewhere": "manager",
    "outsider": None,
}
SEES_TARGET = {"owner", "manager", "operator", "viewer", "scoped"}


@pytest.fixture(autouse=True)
def _fresh_throttles(settings):
    settings.LANGUAGE_CODE = "en"
    default = settings.CACHES["default"]
    if "redis" in default["BACKEND"].lower():
        settings.CACHES = {
            **settings.CACHES,
            "default": {**default, "KEY_PREFIX": f"roles-{uuid.uuid4().hex}"},
        }
    else:
        cache.clear()


@pytest.fixture
def team(db):
    """A shared workspace with two accounts and a member of every kind."""
    workspace = WorkspaceFactory(name="Agência Sol")
    users = {name: UserFactory(email=f"{name}@example.com") for name in CAST}
    subject = UserFactory(email="subject@example.com")  # a member the owner acts upon
    target = MLAccountFactory(workspace=workspace, is_primary=True, account_name="Loja Alvo")
    second = MLAccountFactory(workspace=workspace, account_name="Loja Dois")
    for name in ("owner", "manager", "operator", "viewer"):
        member(workspace, users[name], ROLE[name])
    member(workspace, users["scoped"], "operator", accounts=[target])
    member(workspace, users["scoped_elsewhere"], "manager", accounts=[second])
    member(workspace, subject, "viewer")
    return {"workspace": workspace, "users": users, "target": target, "second": second, "subject": subject}


def api_as(user):
    client = RecordingAPIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {access_token_for(user)}")
    return client


def expected(who: str, need: Can, *, visible: bool) -> int:
    if not visible:
        return 404
    return 200 if allows(ROLE[who], need) else 403


# --- the account endpoints of the API -------------------------------------------------------

ACCOUNT_ACTIONS = [
    ("get", "", None, Can.VIEW),
    ("get", "/token-info", None, Can.VIEW),
    ("patch", "", {"accountName": "Renamed"}, Can.MANAGE),
    ("put", "/pause", None, Can.MANAGE),
    ("put", "/resume", None, Can.MANAGE),
    ("post", "/sync", None, Can.SYNC),
    ("put", "/refresh-token", None, Can.MANAGE),
    ("delete", "", None, Can.MANAGE),
]


@pytest.mark.parametrize("who", CAST)
@pytest.mark.parametrize(("method", "suffix", "payload", "need"), ACCOUNT_ACTIONS)
def test_api_account_actions_by_role(team, ml, who, method, suffix, payload, need):
    ml_counts(ml)
    ml.post(TOKEN_URL, json=token_answer())
    target = team["target"]
    before = MLAccount.objects.filter(pk=target.pk).values().get()
    client = api_as(team["users"][who])

    response = getattr(client, method)(f"/api/ml-accounts/{target.pk}{suffix}", payload, format="json")

    status = expected(who, need, visible=who in SEES_TARGET)
    assert response.status_code == status, response.content
    if status == 200:
        assert body(response)["success"] is True
        if method == "get" and not suffix:
            assert body(response)["data"]["role"] == ROLE[who]
        return
    assert body(response)["code"] == {403: "FORBIDDEN", 404: "NOT_FOUND"}[status]
    assert MLAccount.objects.filter(pk=target.pk).values().get() == before
    assert len(ml.calls) == 0


@pytest.mark.parametrize("who", CAST)
def test_api_list_shows_each_member_what_they_can_see_with_their_role(team, who):
    data = body(api_as(team["users"][who]).get("/api/ml-accounts"))["data"]

    seen = {item["id"]: item["role"] for item in data["accounts"]}
    expected_ids = {
        "outsider": set(),
        "scoped": {str(team["target"].pk)},
        "scoped_elsewhere": {str(team["second"].pk)},
    }.get(who, {str(team["target"].pk), str(team["second"].pk)})
    assert set(seen) == expected_ids
    assert data["total"] == len(expected_ids)
    assert set(seen.values()) <= {ROLE[who]}
    assert all(item["workspaceId"] == str(team["workspace"].pk) for item in data["accounts"])


@pytest.mark.parametrize("who", CAST)
def test_api_connect_into_a_workspace_by_role(team, who):
    payload = {
        "mlUserId": "555000111",
        "nickname": "NOVA",
        "email": "nova@example.com",
        "accessToken": "APP_USR-ROLE-0001-secretaccess",
        "refreshToken": "TG-ROLE-0001-secretrefresh",
        "tokenExpiresAt": "2099-01-01T00:00:00Z",
        "workspaceId": str(team["workspace"].pk),
    }
    response = api_as(team["users"][who]).post("/api/ml-accounts", payload, format="json")

    # Connecting is workspace-wide: a scoped manager may too (the account is theirs to see
    # only if the owner adds it to their scope).
    status = expected(who, Can.MANAGE, visible=ROLE[who] is not None)
    status = 201 if status == 200 else status
    assert response.status_code == status, response.content
    assert MLAccount.objects.filter(ml_user_id=555000111).exists() is (status == 201)


@pytest.mark.parametrize("who", CAST)
def test_api_sync_all_covers_the_accounts_the_role_may_sync(team, ml, who, settings):
    settings.SYNC_ALL_TIMEOUT = 0
    response = api_as(team["users"][who]).post(
        "/api/ml-accounts/sync-all", headers={"Prefer": "respond-async"}
    )

    assert response.status_code == 202
    ids = {item["accountId"] for item in body(response)["data"]["results"]}
    may_sync = {
        "owner": {team["target"], team["second"]},
        "manager": {team["target"], team["second"]},
        "operator": {team["target"], team["second"]},
        "viewer": set(),
        "scoped": {team["target"]},
        "scoped_elsewhere": {team["second"]},
        "outsider": set(),
    }[who]
    assert ids == {str(account.pk) for account in may_sync}


# --- the workspace endpoints -----------------------------------------------------------------


def _shared_state():
    """What a refused workspace action must leave as it was (personal workspaces made on a
    first visit aside): the shared workspace, its memberships, the invitations."""
    return (
        list(Workspace.objects.filter(personal_for=None).values_list("pk", "name")),
        list(
            Membership.objects.filter(workspace__personal_for=None)
            .order_by("pk")
            .values_list("pk", "role", "scoped")
        ),
        Invitation.objects.count(),
    )


def _workspace_actions(team):
    ws = team["workspace"].pk
    subject = team["subject"].pk
    return [
        ("get", f"/api/workspaces/{ws}", None, Can.VIEW),
        ("patch", f"/api/workspaces/{ws}", {"name": "Renamed"}, Can.ADMIN),
        ("get", f"/api/workspaces/{ws}/members", None, Can.ADMIN),
        ("patch", f"/api/workspaces/{ws}/members/{subject}", {"role": "operator"}, Can.ADMIN),
        ("delete", f"/api/workspaces/{ws}/members/{subject}", None, Can.ADMIN),
        ("get", f"/api/workspaces/{ws}/invitations", None, Can.ADMIN),
        (
            "post",
            f"/api/workspaces/{ws}/invitations",
            {"email": "new@example.com", "role": "viewer"},
            Can.ADMIN,
        ),
        ("delete", f"/api/workspaces/{ws}", None, Can.ADMIN),
    ]


@pytest.mark.parametrize("who", CAST)
@pytest.mark.parametrize("action", range(8))
def test_api_workspace_actions_by_role(team, who, action):
    method, path, payload, need = _workspace_actions(team)[action]
    before = _shared_state()

    response = getattr(api_as(team["users"][who]), method)(path, payload, format="json")

    status = expected(who, need, visible=ROLE[who] is not None)
    if status == 200 and method == "post":
        status = 201
    assert response.status_code == status, response.content
    if status >= 400:
        assert body(response)["code"] == {403: "FORBIDDEN", 404: "NOT_FOUND"}[status]
        after = _shared_state()
        assert after == before
        assert not mail.outbox


@pytest.mark.parametrize("who", CAST)
def test_api_workspace_list_shows_the_callers_memberships(team, who):
    data = body(api_as(team["users"][who]).get("/api/workspaces"))["data"]
    shared = [w for w in data["workspaces"] if w["id"] == str(team["workspace"].pk)]
    if ROLE[who] is None:
        assert shared == []
    else:
        assert shared == [
            {
                "id": str(team["workspace"].pk),
                "name": "Agência Sol",
                "role": ROLE[who],
                "isPersonal": False,
                "createdAt": shared[0]["createdAt"],
            }
        ]


# --- the dashboard ---------------------------------------------------------------------------


def _dashboard_account_actions(target):
    pk = target.pk
    return [
        ("get", reverse("dashboard:account", args=[pk]), None, Can.VIEW),
        ("post", reverse("dashboard:account_sync", args=[pk]), {}, Can.SYNC),
        ("post", reverse("dashboard:account_pause", args=[pk]), {}, Can.MANAGE),
        ("post", reverse("dashboard:account_resume", args=[pk]), {}, Can.MANAGE),
        ("post", reverse("dashboard:account_primary", args=[pk]), {}, Can.MANAGE),
        ("post", reverse("dashboard:account_renew", args=[pk]), {}, Can.MANAGE),
        (
            "post",
            reverse("dashboard:account", args=[pk]),
            {
                "account_name": "Renamed",
                "account_type": "store",
                "interval_value": "10",
                "interval_unit": "minutes",
            },
            Can.MANAGE,
        ),
        ("get", reverse("dashboard:account_remove", args=[pk]), None, Can.MANAGE),
        ("post", reverse("dashboard:account_remove", args=[pk]), {}, Can.MANAGE),
    ]


@pytest.mark.parametrize("who", CAST)
@pytest.mark.parametrize("action", range(9))
def test_dashboard_account_actions_by_role(client, team, ml, who, action):
    ml.post(TOKEN_URL, json=token_answer())
    target = team["target"]
    # The target is primary; make the other one primary so "make primary" has work to do.
    MLAccount.objects.filter(pk=target.pk).update(is_primary=False)
    MLAccount.objects.filter(pk=team["second"].pk).update(is_primary=True)
    method, path, data, need = _dashboard_account_actions(target)[action]
    before = MLAccount.objects.filter(pk=target.pk).values().get()
    client.force_login(team["users"][who])

    response = getattr(client, method)(path, data)

    status = expected(who, need, visible=who in SEES_TARGET)
    if status == 200:
        assert response.status_code in (200, 302), response.content[:500]
        return
    assert response.status_code == status
    assert MLAccount.objects.filter(pk=target.pk).values().get() == before
    assert len(ml.calls) == 0


@pytest.mark.parametrize("who", CAST)
def test_dashboard_hides_the_buttons_the_role_does_not_allow(client, team, who):
    client.force_login(team["users"][who])
    # The shared workspace is the dashboard's current one for every member.
    if ROLE[who] is not None:
        client.post(reverse("dashboard:workspace_switch"), {"workspace": team["workspace"].pk})
    html = client.get(reverse("dashboard:overview")).content.decode()
    pk = team["target"].pk
    visible = who in SEES_TARGET
    assert (f'id="account-{pk}"' in html) is visible
    assert (f'id="sync-{pk}"' in html) is (visible and allows(ROLE[who], Can.SYNC))
    assert (f'id="toggle-{pk}"' in html) is (visible and allows(ROLE[who], Can.MANAGE))
    if visible:
        assert f'id="role-{pk}"' in html


def _dashboard_workspace_actions(team):
    ws = team["workspace"].pk
    subject = team["subject"].pk
    return [
        ("post", reverse("dashboard:workspace_switch"), {"workspace": ws}, Can.VIEW),
        ("get", reverse("dashboard:members", args=[ws]), None, Can.ADMIN),
        (
            "post",
            reverse("dashboard:invite", args=[ws]),
            {"email": "new@example.com", "role": "viewer", "scope": "all"},
            Can.ADMIN,
        ),
        (
            "post",
            reverse("dashboard:member_update", args=[ws, subject]),
            {f"m{subject}-role": "operator", f"m{subject}-scope": "all"},
            Can.ADMIN,
        ),
        ("post", reverse("dashboard:member_remove", args=[ws, subject]), {}, Can.ADMIN),
        ("post", reverse("dashboard:workspace_rename", args=[ws]), {"name": "Renamed"}, Can.ADMIN),
        ("get", reverse("dashboard:workspace_delete", args=[ws]), None, Can.ADMIN),
        ("post", reverse("dashboard:workspace_delete", args=[ws]), {}, Can.ADMIN),
    ]


@pytest.mark.parametrize("who", CAST)
@pytest.mark.parametrize("action", range(8))
def test_dashboard_workspace_pages_by_role(client, team, who, action):
    method, path, data, need = _dashboard_workspace_actions(team)[action]
    before = _shared_state()
    client.force_login(team["users"][who])

    response = getattr(client, method)(path, data)

    status = expected(who, need, visible=ROLE[who] is not None)
    if status == 200:
        assert response.status_code in (200, 302), response.content[:500]
        return
    assert response.status_code == status
    after = _shared_state()
    assert after == before
    assert not mail.outbox


@pytest.mark.parametrize(
    "path",
    [
        "dashboard:overview",
        "dashboard:workspace_new",
    ],
)
def test_dashboard_pages_send_anonymous_visitors_to_sign_in(client, path):
    response = client.get(reverse(path))
    assert response.status_code == 302
    assert reverse("account_login") in response["Location"]


def test_workspace_pages_send_anonymous_visitors_to_sign_in(client, team):
    ws = team["workspace"].pk
    for path in (reverse("dashboard:members", args=[ws]), reverse("dashboard:workspace_delete", args=[ws])):
        response = client.get(path)
        assert response.status_code == 302
        assert reverse("account_login") in response["Location"]
    response = client.post(
        reverse("dashboard:invite", args=[ws]), {"email": "x@example.com", "role": "owner"}
    )
    assert response.status_code == 302
    assert not Invitation.objects.exists()
