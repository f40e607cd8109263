"""Workspaces, their members and invitations.

Who may call these is the access helper's business (accounts.selectors: an owner manages
members and invitations); the rules here are the ones that hold whoever calls: a workspace
keeps at least one owner, a personal workspace keeps the user it belongs to as its owner,
an owner is never limited to chosen accounts, a scope names only the workspace's accounts.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from datetime import timedelta

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.emails import InvalidEmail, canonical_email
from accounts.errors import (
    AccountValidationError,
    Forbidden,
    InvitationInvalid,
    InvitationNotFound,
    WorkspaceNotFound,
)
from accounts.models import (
    AuditAction,
    Invitation,
    Membership,
    MembershipAccount,
    MLAccount,
    Role,
    User,
    Workspace,
)
from accounts.services.audit import audit_record
from accounts.services.validation import check_text

# A scope longer than this is "every account" in practice; bounds what a request can write.
MAX_SCOPE = 1000


def _display_name(user: User) -> str:
    return (user.get_full_name().strip() or user.email)[: Workspace.MAX_NAME]


def _check_name(errors: dict, name) -> str:
    check_text(errors, "name", name, max_length=Workspace.MAX_NAME)
    return name.strip() if isinstance(name, str) else ""


def _check_role(errors: dict, role) -> str:
    if role not in Role.values:
        errors.setdefault("role", []).append(
            _("Must be one of: %(roles)s.") % {"roles": ", ".join(Role.values)}
        )
    return role


def _check_scope(errors: dict, workspace: Workspace, role, account_ids) -> list | None:
    """None (every account) or the list of the workspace's account ids `account_ids` names."""
    if account_ids is None:
        return None
    if not isinstance(account_ids, list | tuple | set):
        errors.setdefault("account_ids", []).append(_("Must be a list of account ids, or null."))
        return None
    if role == Role.OWNER:
        errors.setdefault("account_ids", []).append(_("An owner always sees every account: send null."))
        return None
    if len(account_ids) > MAX_SCOPE:
        errors.setdefault("account_ids", []).append(
            _("At most %(max)d accounts; send null for every account.") % {"max": MAX_SCOPE}
        )
        return None
    ids = []
    for value in account_ids:
        try:
            ids.append(
                value
                if isinstance(value, uuid.UUID)
                else uuid.UUID(value)
                if isinstance(value, str)
                else None
            )
        except ValueError:
            ids.append(None)
    if None in ids:
        errors.setdefault("account_ids", []).append(_("Every item must be an account id."))
        return None
    known = set(MLAccount.objects.filter(workspace=workspace, pk__in=ids).values_list("pk", flat=True))
    if known != set(ids):
        errors.setdefault("account_ids", []).append(_("Every account must belong to this workspace."))
        return None
    return sorted(known, key=str)


# --- workspaces ----------------------------------------------------------------------------------


def workspace_personal(*, user: User) -> Workspace:
    """The user's personal workspace, made (with their owner membership) if it is missing.

    Sign-up makes it; users created another way (createsuperuser, the admin) get it on
    first use. Idempotent and safe against a concurrent first use (unique personal_for).
    """
    workspace = Workspace.objects.filter(personal_for=user).first()
    if workspace is not None:
        return workspace
    try:
        with transaction.atomic():
            workspace = Workspace.objects.create(name=_display_name(user), personal_for=user)
            Membership.objects.create(workspace=workspace, user=user, role=Role.OWNER)
    except IntegrityError:
        workspace = Workspace.objects.get(personal_for=user)
    return workspace


def workspace_current(*, user: User) -> Workspace:
    """The workspace the dashboard shows: the user's last choice while they are still a
    member of it, their personal workspace otherwise. Carries `role` and `can`."""
    from accounts import selectors

    if user.current_workspace_id is not None:
        try:
            return selectors.workspace_get_for_user(user=user, workspace_id=user.current_workspace_id)
        except (WorkspaceNotFound, Forbidden):
            pass  # no longer a member (removed, or the workspace was deleted): fall back
    workspace = workspace_personal(user=user)
    workspace_switch(user=user, workspace=workspace)
    return selectors.workspace_get_for_user(user=user, workspace_id=workspace.pk)


def workspace_switch(*, user: User, workspace: Workspace) -> None:
    """Remember `workspace` as the one the dashboard shows `user` (checked by the caller)."""
    User.objects.filter(pk=user.pk).update(current_workspace=workspace)
    user.current_workspace_id = workspace.pk


@transaction.atomic
def workspace_create(*, user: User, name) -> Workspace:
    """A new workspace with `user` as its owner."""
    errors: dict[str, list[str]] = {}
    name = _check_name(errors, name)
    if errors:
        raise AccountValidationError(errors)
    workspace = Workspace.objects.create(name=name)
    Membership.objects.create(workspace=workspace, user=user, role=Role.OWNER)
    return workspace


@transaction.atomic
def workspace_rename(*, workspace: Workspace, name) -> Workspace:
    errors: dict[str, list[str]] = {}
    name = _check_name(errors, name)
    if errors:
        raise AccountValidationError(errors)
    was = workspace.name
    Workspace.objects.filter(pk=workspace.pk).update(name=name)
    workspace.name = name
    if was != name:
        audit_record(action=AuditAction.SETTINGS, workspace=workspace, changes={"name": [was, name]})
    return workspace


@transaction.atomic
def workspace_delete(*, workspace: Workspace) -> int:
    """Delete a workspace with its accounts and members; returns how many accounts went.

    A personal workspace cannot be deleted: every user keeps one.
    """
    if workspace.personal_for_id is not None:
        raise Forbidden(_("A personal workspace cannot be deleted."))
    accounts = MLAccount.objects.filter(workspace=workspace).count()
    Workspace.objects.filter(pk=workspace.pk).delete()
    return accounts


# --- members -------------------------------------------------------------------------------------


def _lock_workspace(workspace: Workspace) -> None:
    """Serialise member changes of one workspace (the last-owner rule is read, then written)."""
    Workspace.objects.select_for_update().filter(pk=workspace.pk).values_list("pk", flat=True).first()


def _scope_labels(account_ids) -> str | None:
    """A scope as the audit log keeps it: the accounts' names then, in one text (a list would
    read as a change from one value to another), or None for every account."""
    if account_ids is None:
        return None
    accounts = MLAccount.objects.filter(pk__in=list(account_ids)).only("account_name", "nickname")
    return ", ".join(
        account.account_name or account.nickname for account in accounts.order_by("account_name", "pk")
    )


def _set_scope(membership: Membership, account_ids: list | None) -> None:
    MembershipAccount.objects.filter(membership=membership).delete()
    if account_ids is not None:
        MembershipAccount.objects.bulk_create(
            MembershipAccount(membership=membership, account_id=account_id) for account_id in account_ids
        )


_UNSET = object()


@transaction.atomic
def membership_update(*, membership: Membership, role=_UNSET, account_ids=_UNSET) -> Membership:
    """Change a member's role and/or account scope (None: every account).

    Refused: demoting the last owner, or the user whose personal workspace it is.
    """
    workspace = membership.workspace
    _lock_workspace(workspace)
    membership.refresh_from_db()
    errors: dict[str, list[str]] = {}
    new_role = membership.role if role is _UNSET else _check_role(errors, role)
    if account_ids is _UNSET:
        # Becoming owner widens the scope to every account; otherwise the scope stays.
        scope = None if new_role == Role.OWNER or not membership.scoped else _UNSET
    else:
        scope = _check_scope(errors, workspace, new_role, account_ids)
    if errors:
        raise AccountValidationError(errors)
    if membership.role == Role.OWNER and new_role != Role.OWNER:
        if workspace.personal_for_id == membership.user_id:
            raise Forbidden(_("The owner of a personal workspace stays its owner."))
        if Membership.objects.filter(workspace=workspace, role=Role.OWNER).count() <= 1:
            raise Forbidden(_("A workspace needs at least one owner: make someone else owner first."))
    changes = {}
    if new_role != membership.role:
        changes["role"] = [membership.role, new_role]
    fields = {"role": new_role}
    if scope is not _UNSET:
        was = None
        if membership.scoped:
            was = list(
                MembershipAccount.objects.filter(membership=membership).values_list("account_id", flat=True)
            )
        if (was is None) != (scope is None) or (scope is not None and set(was) != set(scope)):
            changes["scope"] = [_scope_labels(was), _scope_labels(scope)]
        fields["scoped"] = scope is not None
        _set_scope(membership, scope)
    Membership.objects.filter(pk=membership.pk).update(**fields)
    membership.refresh_from_db()
    if changes:
        changes["member"] = membership.user.email
        audit_record(action=AuditAction.MEMBER_CHANGE, workspace=workspace, changes=changes)
    return membership


@transaction.atomic
def membership_remove(*, membership: Membership) -> None:
    """Remove a member (or let a member leave). Their access ends with the next request."""
    workspace = membership.workspace
    _lock_workspace(workspace)
    if workspace.personal_for_id == membership.user_id:
        raise Forbidden(_("The owner of a personal workspace cannot leave it."))
    if (
        membership.role == Role.OWNER
        and Membership.objects.filter(workspace=workspace, role=Role.OWNER).count() <= 1
    ):
        raise Forbidden(_("A workspace needs at least one owner: make someone else owner first."))
    audit_record(
        action=AuditAction.MEMBER_REMOVE,
        workspace=workspace,
        changes={"member": membership.user.email, "role": membership.role},
    )
    Membership.objects.filter(pk=membership.pk).delete()
    User.objects.filter(pk=membership.user_id, current_workspace=workspace).update(current_workspace=None)


# --- invitations ---------------------------------------------------------------------------------


def invitation_token_hash(token: str) -> str:
    return hashlib.sha256(f"invitation:{token}".encode()).hexdigest()


@transaction.atomic
def invitation_create(
    *, workspace: Workspace, invited_by: User, email, role, account_ids=None, now=None
) -> tuple[Invitation, str]:
    """Invite `email` to `workspace`; returns the invitation and its token (never stored).

    Refused: an address that is already a member. A pending invitation for the same
    address is replaced (revoked), so one link at a time is valid.
    """
    now = now or timezone.now()
    errors: dict[str, list[str]] = {}
    check_text(errors, "email", email, max_length=254)
    if "email" not in errors:
        try:
            email = canonical_email(email)
            validate_email(email)
        except (InvalidEmail, ValidationError):
            errors.setdefault("email", []).append(_("Enter a valid email address."))
    role = _check_role(errors, role)
    scope = _check_scope(errors, workspace, role, account_ids)
    if "email" not in errors and Membership.objects.filter(workspace=workspace, user__email=email).exists():
        errors.setdefault("email", []).append(_("This person is already a member of the workspace."))
    if errors:
        raise AccountValidationError(errors)
    Invitation.objects.filter(
        workspace=workspace, email=email, accepted_at__isnull=True, revoked_at__isnull=True
    ).update(revoked_at=now)
    token = secrets.token_urlsafe(32)
    invitation = Invitation.objects.create(
        workspace=workspace,
        email=email,
        role=role,
        account_ids=None if scope is None else [str(pk) for pk in scope],
        token_hash=invitation_token_hash(token),
        invited_by=invited_by,
        created_at=now,
        expires_at=now + timedelta(days=Invitation.LIFETIME_DAYS),
    )
    audit_record(
        action=AuditAction.INVITE,
        workspace=workspace,
        changes={"email": email, "role": role, "scope": _scope_labels(scope)},
    )
    return invitation, token


def invitation_revoke(*, invitation: Invitation, now=None) -> None:
    """Revoke a pending invitation (an accepted one stays as it was)."""
    revoked = Invitation.objects.filter(
        pk=invitation.pk, accepted_at__isnull=True, revoked_at__isnull=True
    ).update(revoked_at=now or timezone.now())
    if revoked:
        audit_record(
            action=AuditAction.INVITE_REVOKE,
            workspace=invitation.workspace,
            changes={"email": invitation.email, "role": invitation.role},
        )


def invitation_check(*, token, user: User | None = None, now=None) -> Invitation:
    """The pending invitation of `token`, for `user` if given.

    InvitationNotFound for a token no invitation ever had; InvitationInvalid for one that is
    used, expired, revoked or meant for another address.
    """
    now = now or timezone.now()
    invitation = None
    if isinstance(token, str) and 20 <= len(token) <= 100:
        invitation = (
            Invitation.objects.select_related("workspace", "invited_by")
            .filter(token_hash=invitation_token_hash(token))
            .first()
        )
    if invitation is None:
        # No invitation ever had this token: nothing to see (404), like any unknown id.
        raise InvitationNotFound()
    if (
        invitation.accepted_at is not None
        or invitation.revoked_at is not None
        or invitation.expires_at <= now
        or (user is not None and user.email != invitation.email)
    ):
        raise InvitationInvalid()
    return invitation


@transaction.atomic
def invitation_accept(*, token, user: User, now=None) -> Membership:
    """Accept an invitation as `user`, who must be signed in with the invited address.

    Single use: a conditional UPDATE marks it accepted, so two acceptances at once cannot
    both succeed. A user who is a member already keeps their membership as it is.
    """
    now = now or timezone.now()
    invitation = invitation_check(token=token, user=user, now=now)
    taken = Invitation.objects.filter(
        pk=invitation.pk, accepted_at__isnull=True, revoked_at__isnull=True
    ).update(accepted_at=now, accepted_by=user)
    if not taken:
        raise InvitationInvalid()
    membership = Membership.objects.filter(workspace=invitation.workspace, user=user).first()
    if membership is None:
        scope = invitation.account_ids
        if scope is not None:
            # Accounts removed since the invitation was sent are dropped from the scope.
            scope = list(
                MLAccount.objects.filter(workspace=invitation.workspace, pk__in=scope).values_list(
                    "pk", flat=True
                )
            )
        membership = Membership.objects.create(
            workspace=invitation.workspace, user=user, role=invitation.role, scoped=scope is not None
        )
        _set_scope(membership, scope)
        audit_record(
            action=AuditAction.MEMBER_JOIN,
            workspace=invitation.workspace,
            changes={"member": user.email, "role": membership.role, "scope": _scope_labels(scope)},
            actor=user,
        )
    # The link reached this mailbox: the address is proven, as allauth's confirmation would.
    from allauth.account.models import EmailAddress

    EmailAddress.objects.filter(user=user, email=user.email).update(verified=True)
    workspace_switch(user=user, workspace=invitation.workspace)
    return membership
