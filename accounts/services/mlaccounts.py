"""Connect, change, pause, resume, make primary and remove ML accounts."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.errors import AccountConnectedElsewhere, AccountExists, AccountValidationError
from accounts.mercadolivre import resources
from accounts.models import AccountStatus, AccountType, AuditAction, EventKind, MLAccount, User, Workspace
from accounts.services.audit import audit_record
from accounts.services.events import event_record
from accounts.services.validation import (
    MAX_TOKEN_LENGTH,
    check_account_type,
    check_expiry,
    check_interval,
    check_site_id,
    check_text,
    parse_ml_user_id,
)


def _lock_workspace(workspace_id) -> None:
    """Serialise the primary-flag bookkeeping of one workspace (a row lock on it)."""
    Workspace.objects.select_for_update().filter(pk=workspace_id).values_list("pk", flat=True).first()


REAUTHORIZED_ELSEWHERE = (
    "Re-authorized at Mercado Livre by a user of this installation connecting from another "
    "workspace; the new token pair (the only one Mercado Livre still honours) was kept here, "
    "and the account stays in this workspace."
)


@transaction.atomic
def mlaccount_connect(
    *,
    workspace: Workspace,
    connected_by: User | None,
    ml_user_id,
    nickname: str,
    email: str,
    access_token: str,
    refresh_token: str | None,
    token_expires_at: datetime,
    site_id: str = "MLB",
    account_name: str | None = None,
    account_type: str = AccountType.INDIVIDUAL,
    sync_interval: int | None = None,
    scopes: str = "",
    reconnect: bool = True,
    fresh_grant: bool = False,
    now: datetime | None = None,
    via: str = "",
) -> tuple[MLAccount, bool]:
    """Connect a seller account to `workspace` with a token pair; returns (account, created).

    The workspace's first account becomes primary. A seller this workspace already has is
    reconnected (new tokens, status active, next sync due now) when `reconnect` is true,
    and refused with AccountExists otherwise (the REST contract's 409).

    One grant per seller (mercadolivre-api.md §1.5): a seller connected in another
    workspace is refused with AccountConnectedElsewhere and nothing is stored, unless
    `fresh_grant` (an OAuth authorization just made): Mercado Livre has then just issued
    the only valid pair and killed the stored one, so the pair is stored on the existing
    account, keeping it alive, with an event saying so. The caller decides what the
    connecting user may see of it (accounts.services.oauth).
    """
    now = now or timezone.now()
    errors: dict[str, list[str]] = {}
    ml_user_id = parse_ml_user_id(errors, ml_user_id)
    check_text(errors, "nickname", nickname)
    check_text(errors, "email", email, required=False, max_length=254)
    if isinstance(email, str) and email.strip():
        try:
            validate_email(email.strip())
        except ValidationError:
            errors.setdefault("email", []).append(_("Enter a valid email address."))
    check_text(errors, "access_token", access_token, max_length=MAX_TOKEN_LENGTH)
    check_text(errors, "refresh_token", refresh_token, required=False, max_length=MAX_TOKEN_LENGTH)
    check_expiry(errors, token_expires_at)
    check_text(errors, "account_name", account_name, required=False)
    check_account_type(errors, account_type)
    if sync_interval is not None:
        check_interval(errors, sync_interval)
    check_site_id(errors, site_id)
    if errors:
        raise AccountValidationError(errors)

    _lock_workspace(workspace.pk)
    token_fields = {
        "access_token": access_token,
        "refresh_token": refresh_token or None,
        "token_expires_at": token_expires_at,
        "token_obtained_at": now,
        "token_scopes": scopes[:2000],
    }
    existing = MLAccount.objects.select_related("workspace").filter(ml_user_id=ml_user_id).first()
    elsewhere = existing is not None and existing.workspace_id != workspace.pk
    if elsewhere and not fresh_grant:
        raise AccountConnectedElsewhere()
    if existing is not None:
        if not reconnect and not elsewhere:
            raise AccountExists()
        changes = {"status": [existing.status, AccountStatus.ACTIVE.value]}
        if existing.status == AccountStatus.ACTIVE:
            changes = {}
        if elsewhere:
            event_record(account_id=existing.pk, kind=EventKind.AUTH, message=REAUTHORIZED_ELSEWHERE)
            # In the account's own workspace's log: its managers see who re-authorized it.
            changes["connected_from"] = workspace.name
        else:
            existing.connected_by = connected_by
        for field, value in token_fields.items():
            setattr(existing, field, value)
        existing.nickname = nickname.strip()
        existing.email = (email or "").strip()
        existing.site_id = site_id.upper()
        existing.status = AccountStatus.ACTIVE
        existing.sync_enabled = True
        existing.error_count = 0
        existing.next_sync = now
        existing.disconnected_at = None
        existing.save(
            update_fields=[
                *token_fields,
                "nickname",
                "email",
                "site_id",
                "status",
                "sync_enabled",
                "error_count",
                "next_sync",
                "disconnected_at",
                "updated_at",
                *([] if elsewhere else ["connected_by"]),
            ]
        )
        if via:  # how it came back, when not by its managers' hand ("reconnect link")
            changes["via"] = via
        audit_record(action=AuditAction.RECONNECT, account=existing, changes=changes)
        return existing, False

    has_primary = MLAccount.objects.filter(workspace=workspace, is_primary=True).exists()
    try:
        with transaction.atomic():
            account = MLAccount.objects.create(
                workspace=workspace,
                connected_by=connected_by,
                ml_user_id=ml_user_id,
                nickname=nickname.strip(),
                email=(email or "").strip(),
                site_id=site_id.upper(),
                account_name=(account_name or "").strip() or nickname.strip(),
                account_type=account_type,
                sync_interval=sync_interval or MLAccount._meta.get_field("sync_interval").default,
                is_primary=not has_primary,
                next_sync=now,
                **token_fields,
            )
    except IntegrityError:
        # Another request connected the same seller between our check and insert.
        raise AccountExists() from None
    account.workspace = workspace
    audit_record(action=AuditAction.CONNECT, account=account, changes={"ml_user_id": ml_user_id})
    return account, True


# An access token's lifetime at Mercado Livre (mercadolivre-api.md §1.4: expires_in 21600).
ACCESS_TOKEN_LIFETIME = timedelta(hours=6)


def mlaccount_connect_pasted(
    *,
    workspace: Workspace,
    connected_by: User | None,
    access_token: str,
    refresh_token: str | None,
    site_id: str,
    ml_user_id=None,
    nickname: str = "",
    email: str = "",
    token_expires_at: datetime | None = None,
    account_name: str | None = None,
    account_type: str = AccountType.INDIVIDUAL,
    now: datetime | None = None,
) -> tuple[MLAccount, bool]:
    """Connect (or reconnect) a seller from a token pair pasted on the dashboard, filling in
    what the person left out; returns (account, created) like mlaccount_connect.

    A user id, nickname or email left empty is read from Mercado Livre's `/users/me` with
    the access token (§3). That is an ML call: it runs before any transaction opens, and the
    caller bounds it with a deadline; ML's errors propagate (MLUnauthorized: the token is not
    valid). A user id that was typed must be the token's own, or AccountValidationError
    says so and nothing is stored. An expiry left empty is six hours from now, an access
    token's lifetime (§1.4): should the token be older, the first sync's 401 renews it.
    """
    now = now or timezone.now()
    errors: dict[str, list[str]] = {}
    typed_id = None if ml_user_id in (None, "") else parse_ml_user_id(errors, ml_user_id)
    check_text(errors, "access_token", access_token, max_length=MAX_TOKEN_LENGTH)
    if errors:
        raise AccountValidationError(errors)  # before spending an ML call on it
    if typed_id is None or not (nickname or "").strip() or not (email or "").strip():
        me = resources.users_me(access_token)
        if typed_id is not None and typed_id != me.id:
            raise AccountValidationError(
                {
                    "ml_user_id": [
                        _(
                            "This access token belongs to the Mercado Livre user %(token_user)s, not to "
                            "%(typed)s. Correct the user id, or leave it empty to use the token's."
                        )
                        % {"token_user": me.id, "typed": typed_id}
                    ]
                }
            )
        typed_id = me.id
        nickname = (nickname or "").strip() or me.nickname
        email = (email or "").strip() or me.email
    return mlaccount_connect(
        workspace=workspace,
        connected_by=connected_by,
        ml_user_id=typed_id,
        nickname=nickname,
        email=email,
        access_token=access_token,
        refresh_token=refresh_token,
        token_expires_at=token_expires_at or now + ACCESS_TOKEN_LIFETIME,
        site_id=site_id,
        account_name=account_name,
        account_type=account_type,
        reconnect=True,
        now=now,
    )


# --- settings ----------------------------------------------------------------------------------

_UNSET = object()


@transaction.atomic
def mlaccount_update(
    *,
    account: MLAccount,
    account_name=_UNSET,
    account_type=_UNSET,
    sync_interval=_UNSET,
    notifications_enabled=_UNSET,
    email_notifications_enabled=_UNSET,
    is_primary=_UNSET,
) -> MLAccount:
    """Change an account's settings; only the arguments given are touched.

    The audit log gets one SETTINGS entry naming each field that really changed, from the
    value `account` carries (read by the caller's access helper) to the new one; none when
    nothing changed.
    """
    errors: dict[str, list[str]] = {}
    changes = {}
    if account_name is not _UNSET:
        check_text(errors, "account_name", account_name)
        changes["account_name"] = account_name.strip() if isinstance(account_name, str) else account_name
    if account_type is not _UNSET:
        check_account_type(errors, account_type)
        changes["account_type"] = account_type
    if sync_interval is not _UNSET:
        check_interval(errors, sync_interval)
        changes["sync_interval"] = sync_interval
    for name, value in (
        ("notifications_enabled", notifications_enabled),
        ("email_notifications_enabled", email_notifications_enabled),
    ):
        if value is not _UNSET:
            if not isinstance(value, bool):
                errors.setdefault(name, []).append(_("Must be true or false."))
            changes[name] = value
    if is_primary is not _UNSET and is_primary is not True:
        errors.setdefault("is_primary", []).append(
            _("Only true is accepted: make another account primary instead.")
        )
    if errors:
        raise AccountValidationError(errors)

    if "sync_interval" in changes and account.sync_enabled and account.last_sync:
        # A shorter interval takes effect at once, not after the old one runs out.
        changes["next_sync"] = max(
            account.last_sync + timedelta(seconds=changes["sync_interval"]), timezone.now()
        )
    changed = {
        field: [getattr(account, field), value]
        for field, value in changes.items()
        if field != "next_sync" and getattr(account, field) != value
    }
    if changes:
        MLAccount.objects.filter(pk=account.pk).update(**changes, updated_at=timezone.now())
    if is_primary is True and _promote(account):
        changed["is_primary"] = [False, True]
    if changed:
        audit_record(action=AuditAction.SETTINGS, account=account, changes=changed)
    account.refresh_from_db()
    return account


@transaction.atomic
def mlaccount_make_primary(*, account: MLAccount) -> MLAccount:
    """Make `account` its workspace's primary, demoting the previous one in the same transaction."""
    if _promote(account):
        audit_record(action=AuditAction.SETTINGS, account=account, changes={"is_primary": [False, True]})
    return account


def _promote(account: MLAccount) -> bool:
    """Make `account` primary (inside the caller's transaction); whether it was not already."""
    _lock_workspace(account.workspace_id)
    # Demote first: the partial unique index allows only one primary per workspace at any time.
    MLAccount.objects.filter(workspace_id=account.workspace_id, is_primary=True).exclude(
        pk=account.pk
    ).update(is_primary=False, updated_at=timezone.now())
    promoted = MLAccount.objects.filter(pk=account.pk, is_primary=False).update(
        is_primary=True, updated_at=timezone.now()
    )
    account.is_primary = True
    return bool(promoted)


@transaction.atomic
def mlaccount_pause(*, account: MLAccount) -> MLAccount:
    """Stop scheduled syncs until resumed."""
    was = account.status
    MLAccount.objects.filter(pk=account.pk).update(
        status=AccountStatus.PAUSED, sync_enabled=False, next_sync=None, updated_at=timezone.now()
    )
    audit_record(action=AuditAction.PAUSE, account=account, changes=_status_change(was, AccountStatus.PAUSED))
    account.refresh_from_db()
    return account


def _status_change(was: str, now: str) -> dict:
    return {"status": [str(was), str(now)]} if was != now else {}


@transaction.atomic
def mlaccount_resume(*, account: MLAccount) -> MLAccount:
    """Resume from any status, `expired` included: the next sync is due now.

    For an expired account this is an explicit request to try again; a token that is
    still dead is found, and the account marked again, by that sync.
    """
    now = timezone.now()
    was = account.status
    MLAccount.objects.filter(pk=account.pk).update(
        status=AccountStatus.ACTIVE,
        sync_enabled=True,
        next_sync=now,
        error_count=0,
        updated_at=now,
    )
    changes = _status_change(was, AccountStatus.ACTIVE)
    audit_record(action=AuditAction.RESUME, account=account, changes=changes)
    account.refresh_from_db()
    return account


@transaction.atomic
def mlaccount_remove(*, account: MLAccount) -> None:
    """Delete an account; if it was primary, the workspace's oldest remaining one becomes primary.

    Its audit entry is written first and outlives it (ids and labels, no foreign key).
    """
    _lock_workspace(account.workspace_id)
    audit_record(action=AuditAction.REMOVE, account=account, changes={"ml_user_id": account.ml_user_id})
    was_primary = MLAccount.objects.filter(pk=account.pk, is_primary=True).exists()
    MLAccount.objects.filter(pk=account.pk).delete()
    if was_primary:
        successor = (
            MLAccount.objects.filter(workspace_id=account.workspace_id)
            .order_by("created_at", "id")
            .values("pk")
            .first()
        )
        if successor:
            MLAccount.objects.filter(pk=successor["pk"]).update(is_primary=True, updated_at=timezone.now())
