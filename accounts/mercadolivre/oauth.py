"""OAuth 2.0 with Mercado Livre: PKCE, the authorization URL and the token endpoint (§1, §8).

Refresh tokens are single-use and rotate (§1.5): ``refresh_tokens`` is never retried
here, and the caller must store the returned pair before anything else can fail.
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.utils.translation import gettext_lazy as _

from .errors import MLBadResponse
from .http import request_json

TOKEN_PATH = "/oauth/token"  # noqa: S105 - a URL path, not a secret

# --- Sites (§8) ------------------------------------------------------------------------------

# Authorization host per site, from ML's SDKs (php-sdk Meli::$AUTH_URL). Sellers
# authorize on their own country's host; whether another site's host works is not
# documented, so the user picks the country. Cuba (no host) and Portugal (legacy) are
# left out; MCR and the Central American / Bolivian / Paraguayan hosts follow the SDK
# pattern, which ML does not document.
SITE_AUTH_HOSTS: dict[str, str] = {
    "MLB": "https://auth.mercadolivre.com.br",
    "MLA": "https://auth.mercadolibre.com.ar",
    "MLM": "https://auth.mercadolibre.com.mx",
    "MCO": "https://auth.mercadolibre.com.co",
    "MLC": "https://auth.mercadolibre.cl",
    "MLU": "https://auth.mercadolibre.com.uy",
    "MPE": "https://auth.mercadolibre.com.pe",
    "MEC": "https://auth.mercadolibre.com.ec",
    "MLV": "https://auth.mercadolibre.com.ve",
    "MCR": "https://auth.mercadolibre.com.cr",
    "MPA": "https://auth.mercadolibre.com.pa",
    "MRD": "https://auth.mercadolibre.com.do",
    "MBO": "https://auth.mercadolibre.com.bo",
    "MPY": "https://auth.mercadolibre.com.py",
    "MGT": "https://auth.mercadolibre.com.gt",
    "MHN": "https://auth.mercadolibre.com.hn",
    "MNI": "https://auth.mercadolibre.com.ni",
    "MSV": "https://auth.mercadolibre.com.sv",
    "CBT": "https://global-selling.mercadolibre.com",
}

# For a site picker: Brazil first (the default market), then ML's own order. Country names
# in the reader's language (lazy: read when shown); "Global Selling" is ML's cross-border site.
SITES: list[tuple[str, str]] = [
    ("MLB", _("Brazil")),
    ("MLA", _("Argentina")),
    ("MLM", _("Mexico")),
    ("MCO", _("Colombia")),
    ("MLC", _("Chile")),
    ("MLU", _("Uruguay")),
    ("MPE", _("Peru")),
    ("MEC", _("Ecuador")),
    ("MLV", _("Venezuela")),
    ("MCR", _("Costa Rica")),
    ("MPA", _("Panama")),
    ("MRD", _("Dominican Republic")),
    ("MBO", _("Bolivia")),
    ("MPY", _("Paraguay")),
    ("MGT", _("Guatemala")),
    ("MHN", _("Honduras")),
    ("MNI", _("Nicaragua")),
    ("MSV", _("El Salvador")),
    ("CBT", _("Global Selling")),
]


def authorization_host(site_id: str) -> str:
    """Return the authorization host for ``site_id``; ValueError for an unknown site."""
    try:
        return SITE_AUTH_HOSTS[site_id.upper()]
    except KeyError:
        raise ValueError(f"unknown Mercado Livre site: {site_id!r}") from None


# --- PKCE (RFC 7636, S256) -----------------------------------------------------------------

_VERIFIER_RE = re.compile(r"^[A-Za-z0-9\-._~]{43,128}$")


@dataclass(frozen=True, repr=False)
class PKCEPair:
    """An RFC 7636 code verifier and its S256 challenge."""

    verifier: str
    challenge: str

    def __repr__(self) -> str:
        # The verifier is a secret until the code is exchanged.
        return f"PKCEPair(challenge={self.challenge!r})"


def challenge_for(verifier: str) -> str:
    """Return the S256 code challenge: BASE64URL(SHA256(verifier)) without padding."""
    if not _VERIFIER_RE.match(verifier):
        raise ValueError("a PKCE verifier is 43-128 characters of [A-Za-z0-9-._~]")
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def make_pkce_pair() -> PKCEPair:
    """Make a fresh PKCE pair: a 64-character random verifier and its S256 challenge."""
    verifier = secrets.token_urlsafe(48)  # 48 random bytes -> 64 base64url characters
    return PKCEPair(verifier=verifier, challenge=challenge_for(verifier))


# --- Step 1: the authorization URL (§1.2) ------------------------------------------------------


def authorization_url(
    *, state: str, redirect_uri: str, code_challenge: str, site_id: str | None = None
) -> str:
    """Build the URL that sends the seller's browser to ML to authorize the app (§1.2).

    The host is ``settings.ML_AUTH_URL`` when set (the sandbox, or a fixed host), else
    the authorization host of ``site_id`` (default ``settings.ML_SITE_ID``). ML does not
    validate ``state``, it only echoes it: the callback must check it. No ``scope``
    parameter: scopes come from the app's configuration.
    """
    host = authorization_host(site_id or settings.ML_SITE_ID)
    override = (settings.ML_AUTH_URL or "").rstrip("/")
    if override:
        host = override
    query = urlencode(
        {
            "response_type": "code",
            "client_id": settings.ML_CLIENT_ID,
            "redirect_uri": redirect_uri,
            "state": state,
            "code_challenge": code_challenge,
            "code_challenge_method": "S256",
        }
    )
    return f"{host}/authorization?{query}"


# --- Step 2: the token endpoint (§1.3-§1.5) --------------------------------------------------


@dataclass(frozen=True, repr=False)
class TokenSet:
    """A token pair as ML issued it. ``expires_at`` is aware UTC."""

    access_token: str
    refresh_token: str | None
    expires_in: int
    expires_at: datetime
    user_id: int
    scopes: tuple[str, ...]
    token_type: str

    def __repr__(self) -> str:
        return f"TokenSet(user_id={self.user_id}, expires_at={self.expires_at.isoformat()})"

    __str__ = __repr__


def _positive_int(value: Any, field: str) -> int:
    # ML sends ids as numbers or as strings, for the same field (§0).
    if isinstance(value, bool):
        raise MLBadResponse(f"token response field {field!r} is not an integer")
    if isinstance(value, int):
        number = value
    elif isinstance(value, str) and value.strip().isdigit():
        number = int(value.strip())
    else:
        raise MLBadResponse(f"token response field {field!r} is missing or not an integer")
    if number <= 0:
        raise MLBadResponse(f"token response field {field!r} is not positive")
    return number


def parse_token_response(body: dict[str, Any], *, now: datetime | None = None) -> TokenSet:
    """Validate a token endpoint answer (§1.4) strictly and turn it into a ``TokenSet``."""
    access_token = body.get("access_token")
    if not isinstance(access_token, str) or not access_token:
        raise MLBadResponse("token response has no access_token")
    expires_in = _positive_int(body.get("expires_in"), "expires_in")
    user_id = _positive_int(body.get("user_id"), "user_id")

    refresh_token = body.get("refresh_token")
    if refresh_token is not None and not isinstance(refresh_token, str):
        raise MLBadResponse("token response field 'refresh_token' is not a string")
    # Absent when the app lacks offline_access (§1.4): the seller will have to reconnect.
    refresh_token = refresh_token or None

    # The docs print "bearer", live answers "Bearer" (§1.4).
    token_type = body.get("token_type", "bearer")
    if not isinstance(token_type, str) or token_type.lower() != "bearer":
        raise MLBadResponse("token response has a token_type other than bearer")

    scope = body.get("scope") or ""
    if isinstance(scope, str):
        scopes = tuple(scope.split())
    elif isinstance(scope, list) and all(isinstance(item, str) for item in scope):
        scopes = tuple(scope)
    else:
        raise MLBadResponse("token response field 'scope' is not a string")

    issued = now or datetime.now(UTC)
    return TokenSet(
        access_token=access_token,
        refresh_token=refresh_token,
        expires_in=expires_in,
        expires_at=issued.astimezone(UTC) + timedelta(seconds=expires_in),
        user_id=user_id,
        scopes=scopes,
        token_type=token_type.lower(),
    )


def _token_call(fields: dict[str, str], *, budget: bool = True) -> TokenSet:
    data = {
        "client_id": settings.ML_CLIENT_ID,
        "client_secret": settings.ML_CLIENT_SECRET,
        **fields,
    }
    # Form-encoded body, never JSON and never the query string (§1.3). POSTs are never
    # retried by the session (see http._GetOnlyRetry).
    body = request_json("POST", TOKEN_PATH, data=data, expected=(200,), budget=budget)
    return parse_token_response(body)


def exchange_code(*, code: str, redirect_uri: str, code_verifier: str) -> TokenSet:
    """Exchange an authorization code for a token pair (§1.3).

    ``redirect_uri`` must be the one used on the authorization URL. Raises
    ``MLInvalidGrant`` for a used, expired or foreign code.
    """
    fields = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri}
    if code_verifier:
        fields["code_verifier"] = code_verifier
    return _token_call(fields)


def refresh_tokens(*, refresh_token: str, budget: bool = True) -> TokenSet:
    """Trade a refresh token for a new pair (§1.5). The old refresh token is dead afterwards.

    ``budget=False`` when the caller already took this call's share of the rate budget
    (accounts.tokens takes it before its refresh lease, so the lease never waits for it).

    Raises ``MLInvalidGrant`` when ML no longer accepts ``refresh_token`` (used already,
    superseded by a newer one, revoked, older than six months).
    """
    return _token_call({"grant_type": "refresh_token", "refresh_token": refresh_token}, budget=budget)
