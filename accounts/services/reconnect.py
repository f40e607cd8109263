"""Reconnect links: a store's owner, with no login here, restores its dead grant (issue 16).

A manager makes a link (the dashboard, the API), or an alert email carries a fresh one; the
owner opens it, goes through Mercado Livre's authorization, and the callback accepts only the
link's own seller. The flow is the OAuth connect's (accounts.services.oauth), with the state
bound to the link instead of a user:

1. `reconnect_link_create`: a random token, only its hash stored, valid RECONNECT_LINK_DAYS.
   Links of the same account made earlier stay valid until used or expired: an owner may
   hold the one from an alert email while a manager makes another, and each one can only
   ever restore this seller into this account.
2. `reconnect_link_check`: the page's read; ReconnectLinkInvalid says why not (unknown,
   used, expired).
3. `reconnect_begin`: a single-use OAuth state and PKCE verifier for this browser session,
   bound to the link; returns ML's authorization URL.
4. `reconnect_complete`, from the callback: the state, the code exchange and /users/me (ML
   calls, no lock or transaction open), then the link is used and the account restored in
   one transaction. Another seller's authorization changes nothing: its fresh pair is
   dropped, the link stays unused.

The token is the link's only secret: it is never logged, stored or put in an audit entry.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from accounts.errors import OAuthDenied, OAuthStateInvalid, ReconnectLinkInvalid, ReconnectWrongSeller
from accounts.mercadolivre import oauth, resources
from accounts.mercadolivre.errors import MLBadResponse
from accounts.models import (
    RECONNECT_LINK_DAYS,
    AuditAction,
    MLAccount,
    OAuthState,
    ReconnectLink,
    User,
    Workspace,
)
from accounts.services.audit import audit_record
from accounts.services.mlaccounts import mlaccount_connect
from accounts.services.oauth import _session_hash, oauth_state_start

logger = logging.getLogger(__name__)

# What the audit entry of a restore says about how the account came back.
VIA = "reconnect link"
# Expired links are kept this long after expiring, so that opening one still says "expired"
# rather than "unknown"; reconnect_link_cleanup deletes them after.
KEEP_EXPIRED_DAYS = 30


def reconnect_token_hash(token: str) -> str:
    return hashlib.sha256(f"reconnect-link:{token}".encode()).hexdigest()


def reconnect_link_url(token: str, *, request=None) -> str:
    """The link's absolute address: from `request` when there is one (the page, the API),
    else from settings.SITE_URL (alert emails, sent by the worker)."""
    path = reverse("dashboard:reconnect", args=[token])
    if request is not None:
        return request.build_absolute_uri(path)
    return settings.SITE_URL.rstrip("/") + path


@transaction.atomic
def reconnect_link_create(
    *, account: MLAccount, by: User | None, now: datetime | None = None
) -> tuple[ReconnectLink, str]:
    """Make a single-use link that restores `account`; returns the link and its token.

    The token is returned once and only its hash is stored. `by` is the manager who made it
    (the caller checked their role), or None for a link an alert email carries; a person's
    link is recorded in the audit log.
    """
    now = now or timezone.now()
    token = secrets.token_urlsafe(32)
    link = ReconnectLink.objects.create(
        account=account,
        token_hash=reconnect_token_hash(token),
        created_by=by,
        created_at=now,
        expires_at=now + timedelta(days=RECONNECT_LINK_DAYS),
    )
    if by is not None:
        audit_record(
            action=AuditAction.RECONNECT_LINK,
            account=account,
            actor=by,
            changes={"expires_at": link.expires_at.isoformat()},
            at=now,
        )
    return link, token


def reconnect_link_for_alert(*, account: MLAccount) -> tuple[str, datetime]:
    """A fresh link for an alert email about `account`'s dead grant: (absolute URL, expiry)."""
    link, token = reconnect_link_create(account=account, by=None)
    return reconnect_link_url(token), link.expires_at


def _links():
    # The page shows the store and its workspace; it never needs the account's tokens.
    return ReconnectLink.objects.select_related("account__workspace").defer(
        *(f"account__{name}" for name in MLAccount.SECRET_FIELDS)
    )


def _usable(link: ReconnectLink, now: datetime) -> ReconnectLink:
    # Used first: a used link that has expired since says what happened to it.
    if link.used_at is not None:
        raise ReconnectLinkInvalid(ReconnectLinkInvalid.USED)
    if link.expires_at <= now:
        raise ReconnectLinkInvalid(ReconnectLinkInvalid.EXPIRED)
    return link


def reconnect_link_check(*, token, now: datetime | None = None) -> ReconnectLink:
    """The usable link of `token`, with its account and workspace.

    ReconnectLinkInvalid otherwise: UNKNOWN for a token no link has (never made, mistyped,
    or its account was removed: the link went with it), USED, EXPIRED.
    """
    now = now or timezone.now()
    link = None
    if isinstance(token, str) and 20 <= len(token) <= 100:
        link = _links().filter(token_hash=reconnect_token_hash(token)).first()
    if link is None:
        raise ReconnectLinkInvalid(ReconnectLinkInvalid.UNKNOWN)
    return _usable(link, now)


@transaction.atomic
def reconnect_begin(*, token, session_key: str, redirect_uri: str, now: datetime | None = None) -> str:
    """Start the authorization of a link's store: a single-use state bound to the link and
    to this browser session (nobody is signed in), with its PKCE verifier; returns ML's URL."""
    now = now or timezone.now()
    link = reconnect_link_check(token=token, now=now)
    account = link.account
    site_id = account.site_id if account.site_id in oauth.SITE_AUTH_HOSTS else settings.ML_SITE_ID
    return oauth_state_start(
        owner={"reconnect_link": link},
        workspace_id=account.workspace_id,
        session_key=session_key,
        site_id=site_id,
        redirect_uri=redirect_uri,
        now=now,
    )


def _valid_state(state) -> bool:
    return bool(state) and isinstance(state, str) and len(state) <= 64


def reconnect_state_pending(*, state) -> bool:
    """Whether `state` is a pending authorization started from a reconnect link: the callback
    then needs no login. A normal connect's state, or an unknown one, is not."""
    if not _valid_state(state):
        return False
    return OAuthState.objects.filter(state=state, reconnect_link__isnull=False).exists()


def _take_state(*, session_key: str, state) -> OAuthState:
    """Consume a reconnect link's state: it must exist, be this session's and be fresh.

    A normal connect's state is never taken here (nor a link's by oauth_complete, which wants
    the signed-in user's own), so neither flow can finish the other's authorization.
    """
    if not _valid_state(state):
        raise OAuthStateInvalid()
    with transaction.atomic():
        pending = (
            OAuthState.objects.select_for_update().filter(state=state, reconnect_link__isnull=False).first()
        )
        if pending is None:  # unknown, already used, or its link's account was removed
            raise OAuthStateInvalid()
        # Used once, whatever comes next: delete before checking the rest.
        pending.delete()
    too_old = timezone.now() - timedelta(seconds=OAuthState.LIFETIME_SECONDS)
    if (
        pending.user_id is not None
        or not secrets.compare_digest(pending.session_hash, _session_hash(session_key))
        or pending.created_at < too_old
    ):
        raise OAuthStateInvalid()
    return pending


def reconnect_complete(
    *, session_key: str, state, code: str | None, error: str | None = None, now: datetime | None = None
) -> MLAccount:
    """Finish a reconnect link's authorization: restore its account, or change nothing.

    Raises OAuthStateInvalid, ReconnectLinkInvalid (USED, EXPIRED, or REMOVED when the
    account went meanwhile), OAuthDenied, ReconnectWrongSeller, or an MLError from the code
    exchange or /users/me; in every one of those cases nothing is written (the link stays
    unused, the pair ML issued is dropped). The ML calls run before any transaction opens;
    the caller bounds them with its deadline.
    """
    pending = _take_state(session_key=session_key, state=state)
    link = _links().filter(pk=pending.reconnect_link_id).first()
    if link is None:  # the state outlived its link: the account was removed meanwhile
        raise ReconnectLinkInvalid(ReconnectLinkInvalid.REMOVED)
    _usable(link, now or timezone.now())
    if error or not code:
        raise OAuthDenied()
    token_set = oauth.exchange_code(
        code=code, redirect_uri=pending.redirect_uri, code_verifier=pending.code_verifier
    )
    me = resources.users_me(token_set.access_token)
    if me.id != token_set.user_id:
        raise MLBadResponse("the token's user_id and /users/me disagree")
    account = link.account
    if me.id != account.ml_user_id:
        # ML has just issued a grant for that other seller; it is not stored anywhere (and
        # no account is created): the link is for one store only.
        logger.info(
            "reconnect link: another seller authorized",
            extra={"event": "reconnect_wrong_seller", "link": str(link.pk), "account": str(account.pk)},
        )
        raise ReconnectWrongSeller(authorized=me.nickname or str(me.id), expected=account.nickname)
    restored = _restore(link=link, me=me, token_set=token_set, site_id=pending.site_id, now=now)
    logger.info(
        "reconnect link used",
        extra={"event": "reconnect_link_used", "link": str(link.pk), "account": str(restored.pk)},
    )
    return restored


@transaction.atomic
def _restore(*, link: ReconnectLink, me, token_set, site_id: str, now: datetime | None) -> MLAccount:
    """Use the link and store the pair on its account, through mlaccount_connect (active,
    next sync due now), in one transaction: a link is used exactly once however many
    callbacks race, and a refusal leaves it as it was."""
    now = now or timezone.now()
    # The workspace first, as mlaccount_connect and mlaccount_remove lock it: one lock order.
    workspace = Workspace.objects.select_for_update().filter(pk=link.account.workspace_id).first()
    taken = ReconnectLink.objects.filter(pk=link.pk, used_at__isnull=True).update(used_at=now)
    if not taken:
        # Another callback used it first, or the account (and the link with it) was removed.
        used = ReconnectLink.objects.filter(pk=link.pk).exists()
        raise ReconnectLinkInvalid(ReconnectLinkInvalid.USED if used else ReconnectLinkInvalid.REMOVED)
    account = MLAccount.objects.select_for_update().filter(pk=link.account_id, ml_user_id=me.id).first()
    if account is None or workspace is None:
        raise ReconnectLinkInvalid(ReconnectLinkInvalid.REMOVED)
    restored, _created = mlaccount_connect(
        workspace=workspace,
        # The owner has no login here: the account keeps who connected it.
        connected_by=account.connected_by,
        ml_user_id=me.id,
        nickname=me.nickname,
        email=me.email,
        site_id=me.site_id or site_id,
        access_token=token_set.access_token,
        refresh_token=token_set.refresh_token,
        token_expires_at=token_set.expires_at,
        scopes=" ".join(token_set.scopes),
        reconnect=True,
        now=now,
        via=VIA,
    )
    return restored


def reconnect_link_cleanup(*, now: datetime | None = None) -> int:
    """Delete links that expired more than KEEP_EXPIRED_DAYS ago; return how many."""
    now = now or timezone.now()
    return ReconnectLink.objects.filter(expires_at__lt=now - timedelta(days=KEEP_EXPIRED_DAYS)).delete()[0]
