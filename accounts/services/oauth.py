"""Connecting a seller with OAuth 2.0 and PKCE (mercadolivre-api.md §1)."""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts import selectors
from accounts.errors import (
    AccountConnectedElsewhere,
    AccountValidationError,
    Forbidden,
    OAuthDenied,
    OAuthStateInvalid,
    WorkspaceNotFound,
)
from accounts.mercadolivre import oauth, resources
from accounts.mercadolivre.errors import MLBadResponse
from accounts.models import MLAccount, OAuthState, User, Workspace
from accounts.roles import Can
from accounts.services.mlaccounts import mlaccount_connect
from accounts.services.workspaces import workspace_personal


def _session_hash(session_key: str) -> str:
    return hashlib.sha256(f"oauth-state:{session_key}".encode()).hexdigest()


@transaction.atomic
def oauth_begin(
    *, user: User, workspace: Workspace, session_key: str, site_id: str, redirect_uri: str
) -> str:
    """Start connecting a seller into `workspace` (the caller checked the user may): store a
    single-use state and PKCE verifier, return ML's URL."""
    if site_id not in oauth.SITE_AUTH_HOSTS:
        raise AccountValidationError({"site_id": [_("Unknown Mercado Livre site.")]})
    return oauth_state_start(
        owner={"user": user},
        workspace_id=workspace.pk,
        session_key=session_key,
        site_id=site_id,
        redirect_uri=redirect_uri,
    )


def oauth_state_start(
    *, owner: dict, workspace_id, session_key: str, site_id: str, redirect_uri: str, now=None
) -> str:
    """Store a single-use state and PKCE verifier bound to this browser session and to
    `owner` (`{"user": …}` for a connect, `{"reconnect_link": …}` for a reconnect link);
    return ML's authorization URL. The owner's abandoned attempts are forgotten first: they
    could not be completed anyway."""
    now = now or timezone.now()
    OAuthState.objects.filter(
        **owner, created_at__lt=now - timedelta(seconds=OAuthState.LIFETIME_SECONDS)
    ).delete()
    pkce = oauth.make_pkce_pair()
    state = secrets.token_urlsafe(32)
    OAuthState.objects.create(
        state=state,
        **owner,
        workspace_id=workspace_id,
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

    A seller already connected in another workspace keeps its account there: the new pair
    (the only valid one now) is stored on it, and unless the user can see that account,
    AccountConnectedElsewhere names the workspace (never its members), after the commit.
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
    try:
        workspace = selectors.workspace_get_for_user(
            user=user, workspace_id=pending.workspace_id, need=Can.MANAGE
        )
    except (WorkspaceNotFound, Forbidden):
        # Started before workspaces existed, or the user's role there ended meanwhile.
        workspace = workspace_personal(user=user)
    account, created = mlaccount_connect(
        workspace=workspace,
        connected_by=user,
        fresh_grant=True,
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
    visible = selectors.mlaccount_visible_to(user=user).filter(pk=account.pk).exists()
    if account.workspace_id != workspace.pk and not visible:
        raise AccountConnectedElsewhere(workspace_name=Workspace.objects.get(pk=account.workspace_id).name)
    return account, created


def oauth_state_purge_expired(*, now=None) -> int:
    """Delete pending authorizations older than their lifetime; return how many.

    A user who starts connecting and never comes back leaves a row (with an encrypted PKCE
    verifier) that nothing else removes: oauth_begin only forgets the same user's.
    """
    now = now or timezone.now()
    expired = OAuthState.objects.filter(created_at__lt=now - timedelta(seconds=OAuthState.LIFETIME_SECONDS))
    return expired.delete()[0]
