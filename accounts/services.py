"""Writes. The dashboard, the API, the admin and the background tasks all call these.

Conventions: keyword-only arguments, `<entity>_<verb>` names, one transaction each. Writes
that can race with a sync or with another request use row locks or conditional UPDATEs on
the columns they own, never a read-modify-write `save()` of the whole row.
"""

from __future__ import annotations

import hashlib
import math
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from allauth.account.adapter import get_adapter as get_allauth_adapter
from allauth.account.models import EmailAddress
from allauth.account.utils import filter_users_by_email
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.db.models import Case, F, Q, Value, When, Window
from django.db.models.functions import RowNumber
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts import selectors
from accounts.errors import AccountExists, AccountValidationError, EmailExists, OAuthDenied, OAuthStateInvalid
from accounts.mercadolivre import oauth, resources
from accounts.mercadolivre.errors import MLBadResponse
from accounts.models import (
    ERROR_STATUS_AFTER,
    MAX_EVENTS_PER_ACCOUNT,
    MAX_SYNC_INTERVAL,
    MIN_SYNC_INTERVAL,
    AccountEvent,
    AccountStatus,
    AccountType,
    EventKind,
    MLAccount,
    OAuthState,
    SyncStatus,
    User,
)

MAX_ML_USER_ID = 2**63 - 1
MAX_ERROR_BACKOFF = 3600  # an account in error is retried at least hourly
MAX_TEXT = 255
MAX_TOKEN_LENGTH = 2000


@dataclass(frozen=True)
class SyncCounts:
    """The four numbers a sync brings back (see accounts.mercadolivre.resources.Counts)."""

    products: int
    orders: int
    questions: int
    claims: int


# --- validation ---------------------------------------------------------------------------


def _check_text(errors, field, value, *, required=True, max_length=MAX_TEXT):
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            errors.setdefault(field, []).append(_("This field is required."))
        return
    if not isinstance(value, str):
        errors.setdefault(field, []).append(_("Must be text."))
    elif len(value) > max_length:
        errors.setdefault(field, []).append(
            _("Ensure this value has at most %(max)d characters.") % {"max": max_length}
        )


def _check_interval(errors, value):
    if isinstance(value, bool) or not isinstance(value, int):
        errors.setdefault("sync_interval", []).append(_("Must be a whole number of seconds."))
    elif not MIN_SYNC_INTERVAL <= value <= MAX_SYNC_INTERVAL:
        errors.setdefault("sync_interval", []).append(
            _("Must be between %(min)d seconds and %(max)d seconds.")
            % {"min": MIN_SYNC_INTERVAL, "max": MAX_SYNC_INTERVAL}
        )


def _check_account_type(errors, value):
    if value not in AccountType.values:
        errors.setdefault("account_type", []).append(
            _("Must be one of: %(choices)s.") % {"choices": ", ".join(AccountType.values)}
        )


def _parse_ml_user_id(errors, value):
    # ML user ids exceed 32 bits and arrive as numbers or strings; accept digits only.
    if isinstance(value, bool):
        value = None
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if not isinstance(value, int) or not 0 < value <= MAX_ML_USER_ID:
        errors.setdefault("ml_user_id", []).append(_("Must be a positive whole number (digits only)."))
        return None
    return value


def _check_expiry(errors, value):
    if not isinstance(value, datetime) or timezone.is_naive(value):
        errors.setdefault("token_expires_at", []).append(_("Must be a date and time with a time zone."))


# --- events -------------------------------------------------------------------------------


def event_record(*, account_id, kind: str, message: str, http_status: int | None = None) -> AccountEvent:
    """Append to an account's error history, keeping only the newest MAX_EVENTS_PER_ACCOUNT."""
    if kind not in EventKind.values:
        kind = EventKind.OTHER
    with transaction.atomic():
        event = AccountEvent.objects.create(
            account_id=account_id, kind=kind, message=str(message)[:2000], http_status=http_status
        )
        keep = AccountEvent.objects.filter(account_id=account_id).order_by("-created_at", "-id")
        stale = list(keep.values_list("id", flat=True)[MAX_EVENTS_PER_ACCOUNT:])
        if stale:
            AccountEvent.objects.filter(id__in=stale).delete()
    return event


# --- connect --------------------------------------------------------------------------------


def _lock_owner(owner: User) -> None:
    """Serialise the primary-flag bookkeeping of one owner (a row lock on the user)."""
    User.objects.select_for_update().filter(pk=owner.pk).values_list("pk", flat=True).first()


@transaction.atomic
def mlaccount_connect(
    *,
    owner: User,
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
    now: datetime | None = None,
) -> tuple[MLAccount, bool]:
    """Connect a seller account to `owner` with a token pair; returns (account, created).

    The owner's first account becomes primary. A seller this owner already has is
    reconnected (new tokens, status active, next sync due now) when `reconnect` is true,
    and refused with AccountExists otherwise (the REST contract's 409).
    """
    now = now or timezone.now()
    errors: dict[str, list[str]] = {}
    ml_user_id = _parse_ml_user_id(errors, ml_user_id)
    _check_text(errors, "nickname", nickname)
    _check_text(errors, "email", email, required=False, max_length=254)
    if isinstance(email, str) and email.strip():
        try:
            validate_email(email.strip())
        except ValidationError:
            errors.setdefault("email", []).append(_("Enter a valid email address."))
    _check_text(errors, "access_token", access_token, max_length=MAX_TOKEN_LENGTH)
    _check_text(errors, "refresh_token", refresh_token, required=False, max_length=MAX_TOKEN_LENGTH)
    _check_expiry(errors, token_expires_at)
    _check_text(errors, "account_name", account_name, required=False)
    _check_account_type(errors, account_type)
    if sync_interval is not None:
        _check_interval(errors, sync_interval)
    if not isinstance(site_id, str) or not (2 <= len(site_id) <= 4 and site_id.isalpha()):
        errors.setdefault("site_id", []).append(_("Must be a Mercado Livre site id such as MLB."))
    if errors:
        raise AccountValidationError(errors)

    _lock_owner(owner)
    token_fields = {
        "access_token": access_token,
        "refresh_token": refresh_token or None,
        "token_expires_at": token_expires_at,
        "token_obtained_at": now,
        "token_scopes": scopes[:2000],
    }
    existing = MLAccount.objects.filter(owner=owner, ml_user_id=ml_user_id).first()
    if existing is not None:
        if not reconnect:
            raise AccountExists()
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
            ]
        )
        return existing, False

    has_primary = MLAccount.objects.filter(owner=owner, is_primary=True).exists()
    try:
        with transaction.atomic():
            account = MLAccount.objects.create(
                owner=owner,
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
    return account, True


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
    """Change an account's settings; only the arguments given are touched."""
    errors: dict[str, list[str]] = {}
    changes = {}
    if account_name is not _UNSET:
        _check_text(errors, "account_name", account_name)
        changes["account_name"] = account_name.strip() if isinstance(account_name, str) else account_name
    if account_type is not _UNSET:
        _check_account_type(errors, account_type)
        changes["account_type"] = account_type
    if sync_interval is not _UNSET:
        _check_interval(errors, sync_interval)
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
    if changes:
        MLAccount.objects.filter(pk=account.pk).update(**changes, updated_at=timezone.now())
    if is_primary is True:
        mlaccount_make_primary(account=account)
    account.refresh_from_db()
    return account


@transaction.atomic
def mlaccount_make_primary(*, account: MLAccount) -> MLAccount:
    """Make `account` its owner's primary, demoting the previous one in the same transaction."""
    _lock_owner(account.owner)
    # Demote first: the partial unique index allows only one primary per owner at any time.
    MLAccount.objects.filter(owner_id=account.owner_id, is_primary=True).exclude(pk=account.pk).update(
        is_primary=False, updated_at=timezone.now()
    )
    MLAccount.objects.filter(pk=account.pk).update(is_primary=True, updated_at=timezone.now())
    account.is_primary = True
    return account


@transaction.atomic
def mlaccount_pause(*, account: MLAccount) -> MLAccount:
    """Stop scheduled syncs until resumed."""
    MLAccount.objects.filter(pk=account.pk).update(
        status=AccountStatus.PAUSED, sync_enabled=False, next_sync=None, updated_at=timezone.now()
    )
    account.refresh_from_db()
    return account


@transaction.atomic
def mlaccount_resume(*, account: MLAccount) -> MLAccount:
    """Resume from any status, `expired` included: the next sync is due now.

    For an expired account this is an explicit request to try again; a token that is
    still dead is found, and the account marked again, by that sync.
    """
    now = timezone.now()
    MLAccount.objects.filter(pk=account.pk).update(
        status=AccountStatus.ACTIVE,
        sync_enabled=True,
        next_sync=now,
        error_count=0,
        updated_at=now,
    )
    account.refresh_from_db()
    return account


@transaction.atomic
def mlaccount_remove(*, account: MLAccount) -> None:
    """Delete an account; if it was primary, the oldest remaining one becomes primary."""
    _lock_owner(account.owner)
    was_primary = MLAccount.objects.filter(pk=account.pk, is_primary=True).exists()
    MLAccount.objects.filter(pk=account.pk).delete()
    if was_primary:
        successor = (
            MLAccount.objects.filter(owner_id=account.owner_id)
            .order_by("created_at", "id")
            .values("pk")
            .first()
        )
        if successor:
            MLAccount.objects.filter(pk=successor["pk"]).update(is_primary=True, updated_at=timezone.now())


# --- sync bookkeeping (the engine's writes) ---------------------------------------------------


def mlaccount_claim(*, account_id, lease_seconds: int, now: datetime | None = None) -> bool:
    """Take the sync claim with one conditional UPDATE; False if another sync holds it.

    A claim older than the lease counts as abandoned (its worker died) and may be taken.
    """
    now = now or timezone.now()
    stale = now - timedelta(seconds=lease_seconds)
    taken = (
        MLAccount.objects.filter(pk=account_id)
        .filter(Q(sync_started_at__isnull=True) | Q(sync_started_at__lt=stale))
        .update(sync_started_at=now, last_sync_status=SyncStatus.IN_PROGRESS)
    )
    return taken == 1


def mlaccount_release(*, account_id, claimed_at: datetime) -> None:
    """Drop our claim if we still hold it (no-op after success/failure already released it)."""
    MLAccount.objects.filter(pk=account_id, sync_started_at=claimed_at).update(
        sync_started_at=None,
        last_sync_status=Case(
            When(last_sync_status=SyncStatus.IN_PROGRESS, then=Value(SyncStatus.FAILED)),
            default=F("last_sync_status"),
        ),
    )


@transaction.atomic
def mlaccount_record_sync_success(
    *, account_id, counts: SyncCounts, synced_at: datetime | None = None
) -> None:
    """Save the counts of a successful sync, reset the error streak and schedule the next one."""
    synced_at = synced_at or timezone.now()
    account = (
        MLAccount.objects.select_for_update()
        .only("status", "sync_enabled", "sync_interval")
        .filter(pk=account_id)
        .first()
    )
    if account is None:  # removed while it synced
        return
    # An account in error recovers on its first success; paused/expired stay as they are
    # (the user may have paused it while this sync ran).
    status = AccountStatus.ACTIVE if account.status == AccountStatus.ERROR else account.status
    next_sync = synced_at + timedelta(seconds=account.sync_interval) if account.sync_enabled else None
    MLAccount.objects.filter(pk=account_id).update(
        cached_products=counts.products,
        cached_orders=counts.orders,
        cached_questions=counts.questions,
        cached_claims=counts.claims,
        cached_at=synced_at,
        last_sync=synced_at,
        last_activity=synced_at,
        last_sync_status=SyncStatus.SUCCESS,
        last_sync_error="",
        error_count=0,
        sync_started_at=None,
        status=status,
        next_sync=next_sync,
        updated_at=synced_at,
    )


def error_backoff_seconds(*, sync_interval: int, error_count: int) -> int:
    """Interval before the next try of an account in `error`: its own, doubling, at most an hour."""
    doublings = max(0, error_count - ERROR_STATUS_AFTER + 1)
    return int(
        min(max(sync_interval, 1) * math.pow(2, min(doublings, 20)), max(MAX_ERROR_BACKOFF, sync_interval))
    )


@transaction.atomic
def mlaccount_record_sync_failure(
    *,
    account_id,
    kind: str,
    message: str,
    http_status: int | None = None,
    auth_failure: bool = False,
    failed_at: datetime | None = None,
    record_event: bool = True,
) -> MLAccount | None:
    """Record a failed sync: an event, the error streak, and the status it leads to.

    An authorization failure (the token cannot be renewed) marks the account `expired`.
    Transient failures mark it `error` after ERROR_STATUS_AFTER in a row; it keeps being
    tried with a growing interval. Tokens are never touched here.
    """
    failed_at = failed_at or timezone.now()
    account = (
        MLAccount.objects.select_for_update().defer(*MLAccount.SECRET_FIELDS).filter(pk=account_id).first()
    )
    if account is None:  # removed while it synced
        return None
    if record_event:
        event_record(account_id=account_id, kind=kind, message=message, http_status=http_status)
    error_count = account.error_count + 1
    status = account.status
    if auth_failure:
        status = AccountStatus.EXPIRED
    elif error_count >= ERROR_STATUS_AFTER and status == AccountStatus.ACTIVE:
        status = AccountStatus.ERROR
    if status == AccountStatus.ERROR:
        delay = error_backoff_seconds(sync_interval=account.sync_interval, error_count=error_count)
    else:
        delay = account.sync_interval
    next_sync = failed_at + timedelta(seconds=delay) if account.sync_enabled else None
    MLAccount.objects.filter(pk=account_id).update(
        error_count=error_count,
        status=status,
        last_sync_status=SyncStatus.FAILED,
        last_sync_error=str(message)[:2000],
        sync_started_at=None,
        next_sync=next_sync,
        updated_at=failed_at,
    )
    account.refresh_from_db()
    return account


@transaction.atomic
def mlaccount_mark_expired(*, account_id, message: str, http_status: int | None = None) -> None:
    """The token can no longer be renewed: reconnect needed. Tokens are kept for diagnosis."""
    event_record(account_id=account_id, kind=EventKind.AUTH, message=message, http_status=http_status)
    MLAccount.objects.filter(pk=account_id).update(status=AccountStatus.EXPIRED, updated_at=timezone.now())


def mlaccount_store_tokens(
    *,
    account_id,
    access_token: str,
    refresh_token: str | None,
    expires_at: datetime,
    scopes: str = "",
    refreshed_at: datetime | None = None,
) -> None:
    """Save a renewed token pair; the caller holds the row lock (accounts.tokens)."""
    refreshed_at = refreshed_at or timezone.now()
    account = MLAccount(pk=account_id)
    account.access_token = access_token
    # ML rotates the refresh token on every use; keep the old one only if none came back.
    fields = ["access_token", "token_expires_at", "token_obtained_at", "last_token_refresh", "updated_at"]
    if refresh_token:
        account.refresh_token = refresh_token
        fields.append("refresh_token")
    if scopes:
        account.token_scopes = scopes[:2000]
        fields.append("token_scopes")
    account.token_expires_at = expires_at
    account.token_obtained_at = refreshed_at
    account.last_token_refresh = refreshed_at
    account.updated_at = refreshed_at
    MLAccount.objects.filter(pk=account_id).update(**{f: getattr(account, f) for f in fields})


# --- connect with OAuth (mercadolivre-api.md §1) ------------------------------------------------


def _session_hash(session_key: str) -> str:
    return hashlib.sha256(f"oauth-state:{session_key}".encode()).hexdigest()


@transaction.atomic
def oauth_begin(*, user: User, session_key: str, site_id: str, redirect_uri: str) -> str:
    """Start connecting a seller: store a single-use state and PKCE verifier, return ML's URL."""
    if site_id not in oauth.SITE_AUTH_HOSTS:
        raise AccountValidationError({"site_id": [_("Unknown Mercado Livre site.")]})
    now = timezone.now()
    # Forget this user's abandoned attempts; they could not be completed anyway.
    OAuthState.objects.filter(
        user=user, created_at__lt=now - timedelta(seconds=OAuthState.LIFETIME_SECONDS)
    ).delete()
    pkce = oauth.make_pkce_pair()
    state = secrets.token_urlsafe(32)
    OAuthState.objects.create(
        state=state,
        user=user,
        session_hash=_session_hash(session_key),
        code_verifier=pkce.verifier,
        site_id=site_id,
        redirect_uri=redirect_uri,
        created_at=now,
    )
    return oauth.authorization_url(
        state=state, redirect_uri=redirect_uri, code_challenge=pkce.challenge, site_id=site_id
    )


def _oauth_take_state(*, user: User, session_key: str, state: str) -> OAuthState:
    """Consume a state: it must exist, be this user's and this session's, and be fresh."""
    if not state or not isinstance(state, str) or len(state) > 64:
        raise OAuthStateInvalid()
    with transaction.atomic():
        pending = OAuthState.objects.select_for_update().filter(state=state).first()
        if pending is None:  # unknown, or already used
            raise OAuthStateInvalid()
        # Used once, whatever comes next: delete before checking the rest.
        pending.delete()
    too_old = timezone.now() - timedelta(seconds=OAuthState.LIFETIME_SECONDS)
    if (
        pending.user_id != user.pk
        or not secrets.compare_digest(pending.session_hash, _session_hash(session_key))
        or pending.created_at < too_old
    ):
        raise OAuthStateInvalid()
    return pending


def oauth_complete(
    *, user: User, session_key: str, state: str, code: str | None, error: str | None = None
) -> tuple[MLAccount, bool]:
    """Finish connecting: check the state, exchange the code, read /users/me, connect.

    Nothing is written unless every step succeeds. Raises OAuthStateInvalid, OAuthDenied,
    AccountValidationError, or an MLError from the exchange or /users/me.
    """
    pending = _oauth_take_state(user=user, session_key=session_key, state=state)
    if error or not code:
        raise OAuthDenied()
    token_set = oauth.exchange_code(
        code=code, redirect_uri=pending.redirect_uri, code_verifier=pending.code_verifier
    )
    me = resources.users_me(token_set.access_token)
    if me.id != token_set.user_id:
        raise MLBadResponse("the token's user_id and /users/me disagree")
    return mlaccount_connect(
        owner=user,
        ml_user_id=me.id,
        nickname=me.nickname,
        email=me.email,
        site_id=me.site_id or pending.site_id,
        access_token=token_set.access_token,
        refresh_token=token_set.refresh_token,
        token_expires_at=token_set.expires_at,
        scopes=" ".join(token_set.scopes),
        reconnect=True,
    )


# --- users ------------------------------------------------------------------------------------

MAX_NAME_LENGTH = 150  # AbstractUser.first_name / last_name
MAX_PASSWORD_LENGTH = 1024  # bounds the hashing and similarity checks an anonymous caller can cause


@transaction.atomic
def user_register(*, email, password, first_name="", last_name="") -> User:
    """Create a user by the dashboard sign-up's rules (django-allauth), for the REST API.

    The email must be valid and not in use, compared case-insensitively against users and
    allauth's email addresses alike; the password must pass allauth's and Django's
    validators (similarity to the email and names included). Like allauth's sign-up, the
    address is recorded as the user's primary, unverified EmailAddress. Raises
    AccountValidationError (errors keyed by field name) or EmailExists.
    """
    adapter = get_allauth_adapter()
    errors: dict[str, list[str]] = {}
    _check_text(errors, "email", email, max_length=254)
    if "email" not in errors:
        email = User.objects.normalize_email(email)
        try:
            validate_email(email)
            email = adapter.clean_email(email)
        except ValidationError as exc:
            errors.setdefault("email", []).extend(exc.messages)
    _check_text(errors, "first_name", first_name, required=False, max_length=MAX_NAME_LENGTH)
    _check_text(errors, "last_name", last_name, required=False, max_length=MAX_NAME_LENGTH)
    first_name = first_name.strip() if isinstance(first_name, str) else ""
    last_name = last_name.strip() if isinstance(last_name, str) else ""
    if not isinstance(password, str) or not password:
        errors.setdefault("password", []).append(_("This field is required."))
    elif len(password) > MAX_PASSWORD_LENGTH:
        errors.setdefault("password", []).append(
            _("Ensure this value has at most %(max)d characters.") % {"max": MAX_PASSWORD_LENGTH}
        )
    else:
        candidate = User(
            email=email if "email" not in errors else "", first_name=first_name, last_name=last_name
        )
        try:
            adapter.clean_password(password, user=candidate)
        except ValidationError as exc:
            errors.setdefault("password", []).extend(exc.messages)
    if errors:
        raise AccountValidationError(errors)

    if filter_users_by_email(email):
        raise EmailExists()
    try:
        with transaction.atomic():
            user = User.objects.create_user(email, password, first_name=first_name, last_name=last_name)
            EmailAddress.objects.create(user=user, email=user.email, primary=True, verified=False)
    except IntegrityError:
        # Another sign-up took the address between our check and the insert.
        raise EmailExists() from None
    return user


# --- the background jobs (sync/tasks.py) --------------------------------------------------------


@transaction.atomic
def mlaccount_dispatch_due(
    *,
    lease_seconds: int,
    limit: int | None = None,
    now: datetime | None = None,
    lookahead_seconds: float = 0,
) -> list[str]:
    """Pick the accounts whose scheduled sync should start now; return their ids.

    Due (selectors.mlaccount_due_q) by `now` + `lookahead_seconds`, and not held by a
    running sync, or held longer than the lease (its worker died). Least recently synced
    first (never synced before all), then the longest overdue, so that with a `limit` (the
    rate budget) nobody starves.

    The picked accounts' next_sync moves to now + lease: the next dispatch does not pick
    them again while their sync waits in the queue, and the sync, when it ends, sets the
    real next_sync. Should the queued sync be lost (a worker killed, an expired message),
    the account is simply due again when the lease runs out. Two dispatchers running at
    once pick disjoint accounts: SKIP LOCKED on PostgreSQL; SQLite serialises writers.
    """
    now = now or timezone.now()
    stale = now - timedelta(seconds=lease_seconds)
    due = (
        MLAccount.objects.select_for_update(skip_locked=True)
        .filter(selectors.mlaccount_due_q(now=now + timedelta(seconds=lookahead_seconds)))
        .filter(Q(sync_started_at__isnull=True) | Q(sync_started_at__lt=stale))
        .order_by(F("last_sync").asc(nulls_first=True), "next_sync", "id")
        .values_list("id", flat=True)
    )
    if limit is not None:
        due = due[: max(0, limit)]
    ids = list(due)
    if ids:
        MLAccount.objects.filter(id__in=ids).update(next_sync=now + timedelta(seconds=lease_seconds))
    return [str(account_id) for account_id in ids]


def mlaccount_release_stale_claims(*, lease_seconds: int, now: datetime | None = None) -> int:
    """Free sync claims older than the lease (their worker died mid-sync); return how many.

    An abandoned claim already lets the next sync in (mlaccount_claim); freeing it also
    stops the account showing `in_progress` in the meantime: it shows `failed` instead.
    A sync that is merely slow loses nothing: its own release and result still apply.
    """
    now = now or timezone.now()
    return MLAccount.objects.filter(sync_started_at__lt=now - timedelta(seconds=lease_seconds)).update(
        sync_started_at=None,
        last_sync_status=Case(
            When(last_sync_status=SyncStatus.IN_PROGRESS, then=Value(SyncStatus.FAILED)),
            default=F("last_sync_status"),
        ),
    )


EVENT_MAX_AGE_DAYS = 30
_CLEANUP_CHUNK = 1000


def event_cleanup(
    *, max_age_days: int = EVENT_MAX_AGE_DAYS, keep_per_account: int = MAX_EVENTS_PER_ACCOUNT, now=None
) -> int:
    """Drop error-history entries older than `max_age_days` or beyond each account's newest
    `keep_per_account`; return how many were deleted.

    event_record already trims on every write; this catches what it cannot (age, and rows
    written by anything else), in chunks so that a large backlog never holds a long lock.
    """
    now = now or timezone.now()
    deleted = AccountEvent.objects.filter(created_at__lt=now - timedelta(days=max_age_days)).delete()[0]
    surplus = (
        AccountEvent.objects.annotate(
            rank=Window(
                RowNumber(), partition_by=[F("account_id")], order_by=[F("created_at").desc(), F("id").desc()]
            )
        )
        .filter(rank__gt=keep_per_account)
        .values_list("id", flat=True)
    )
    ids = list(surplus)
    for start in range(0, len(ids), _CLEANUP_CHUNK):
        deleted += AccountEvent.objects.filter(id__in=ids[start : start + _CLEANUP_CHUNK]).delete()[0]
    return deleted
