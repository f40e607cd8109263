"""What each workspace role may do. The access helper (accounts.selectors) enforces it.

Roles are ordered: each one can do everything the roles below it can.

- owner: everything, the members, invitations and the workspace itself included;
- manager: connect, reconnect, remove, pause and resume accounts, change their settings, and
  read the audit log (of the accounts in their scope);
- operator: sync now, and act on the seller's to-do items (questions, claims);
- viewer: read only.
"""

from __future__ import annotations

from enum import StrEnum

from accounts.models import Role


class Can(StrEnum):
    """An action on an account or a workspace, as the access helper checks it."""

    VIEW = "view"
    SYNC = "sync"  # sync now
    ACT = "act"  # answer questions, handle claims
    MANAGE = "manage"  # connect, reconnect, remove, pause, resume, settings, primary, renew token
    ADMIN = "admin"  # members, invitations, rename or delete the workspace
    AUDIT = "audit"  # read the audit log (who did what, from where)


RANK = {Role.VIEWER: 0, Role.OPERATOR: 1, Role.MANAGER: 2, Role.OWNER: 3}
LEAST_ROLE = {
    Can.VIEW: Role.VIEWER,
    Can.SYNC: Role.OPERATOR,
    Can.ACT: Role.OPERATOR,
    Can.MANAGE: Role.MANAGER,
    Can.ADMIN: Role.OWNER,
    Can.AUDIT: Role.MANAGER,
}


def allows(role: str | None, action: Can) -> bool:
    """Whether `role` may do `action` (None, not a member: nothing)."""
    if role not in RANK:
        return False
    return RANK[role] >= RANK[LEAST_ROLE[action]]


def abilities(role: str | None) -> frozenset[str]:
    """Every action `role` allows, for templates: `{% if "manage" in account.can %}`."""
    return frozenset(action.value for action in Can if allows(role, action))
