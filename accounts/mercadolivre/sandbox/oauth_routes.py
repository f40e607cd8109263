"""Routes of ML's authorization host and token endpoint (§1), as the sandbox plays them."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

from .errors import Reply, SandboxOAuthError, oauth_error_body
from .handler import BaseHandler, Route
from .pages import authorization_page, error_page
from .sellers import CALLBACK_PATH


def _redirect_uri_acceptable(uri: str) -> bool:
    """Stand-in for ML's exact match against the app's registered URIs (§1.1)."""
    try:
        parts = urlsplit(uri)
        parts.port  # noqa: B018 - raises ValueError for a malformed port
    except ValueError:
        return False
    if parts.query or parts.fragment or not parts.path.endswith(CALLBACK_PATH):
        return False  # ML forbids variable parts: context travels in `state`
    if parts.scheme == "https":
        return bool(parts.hostname)
    return parts.scheme == "http" and parts.hostname in {"127.0.0.1", "localhost"}


_CHALLENGE_RE = re.compile(r"^[A-Za-z0-9\-._~]{43,128}$")


class OAuthRoutes(BaseHandler):
    """The authorization host (§1.2) and the token endpoint (§1.3–§1.7)."""

    ROUTES: list[Route] = [
        (
            re.compile(r"/authorization/?"),
            {"GET": "auth_page", "POST": "auth_decision"},
            "authorization",
            "auth",
        ),
        (re.compile(r"/oauth/token/?"), {"POST": "token"}, "token_other", "token"),
    ]

    def _auth_params(self, source: dict[str, list[str]]) -> dict[str, str]:
        """Validate an authorization request; raise an HTML error page (400) when invalid."""
        params = {name: values[0] for name, values in source.items() if values}
        if params.get("response_type") != "code":
            raise Reply(400, error_page("response_type must be code."))
        if params.get("client_id") not in self.state.apps:
            raise Reply(400, error_page("Unknown application (client_id)."))
        app = self.state.apps[params["client_id"]]
        if not _redirect_uri_acceptable(params.get("redirect_uri", "")):
            raise Reply(400, error_page("The redirect_uri does not match the application's registered URIs."))
        method = params.get("code_challenge_method")
        challenge = params.get("code_challenge")
        if app.pkce:
            # PKCE is switched on for the sandbox app, which makes it mandatory (§1.1).
            if method not in {"S256", "plain"}:
                raise Reply(400, error_page("code_challenge_method must be S256 or plain."))
            if not challenge or not _CHALLENGE_RE.match(challenge):
                raise Reply(400, error_page("code_challenge is missing or invalid."))
        return params

    def route_auth_page(self) -> None:
        params = self._auth_params(self._query)
        self._reply(200, authorization_page(params, self.state.sellers))

    def route_auth_decision(self) -> None:
        form = parse_qs(self._body.decode("utf-8", "replace"), keep_blank_values=True)
        params = self._auth_params(form)
        decision = (form.get("decision") or [""])[0]
        extra: dict[str, str]
        if decision == "deny":
            # ML does not document its denial redirect (§1.2); this is the RFC 6749 form.
            extra = {
                "error": "access_denied",
                "error_description": "The user denied the authorization request",
            }
        elif decision == "allow":
            raw_user = (form.get("user_id") or [""])[0]
            if not raw_user.isdigit() or not self.state.is_demo_seller(int(raw_user)):
                raise Reply(400, error_page("Choose one of the seller accounts."))
            code = self.state.create_code(
                client_id=params["client_id"],
                user_id=int(raw_user),
                redirect_uri=params["redirect_uri"],
                code_challenge=params.get("code_challenge"),
                code_challenge_method=params.get("code_challenge_method"),
            )
            extra = {"code": code}
        else:
            raise Reply(400, error_page("Choose Allow or Deny."))
        if "state" in params:
            extra["state"] = params["state"]  # echoed untouched; ML never checks it
        parts = urlsplit(params["redirect_uri"])
        self._redirect(urlunsplit(parts._replace(query=urlencode(extra))))

    def route_token(self) -> None:
        if self._raw_query:
            # Old SDKs sent these in the query string; ML's best practices require the body.
            raise Reply(
                400, oauth_error_body("invalid_request", "Parameters must be sent in the request body.")
            )
        content_type = self.headers.get("Content-Type", "").split(";")[0].strip().lower()
        if content_type != "application/x-www-form-urlencoded":
            raise Reply(
                400,
                oauth_error_body(
                    "invalid_request", "The request body must be application/x-www-form-urlencoded."
                ),
            )
        duplicated = sorted(name for name, values in self._form.items() if len(values) > 1)
        if duplicated:
            raise Reply(400, oauth_error_body("invalid_request", f"Duplicated parameter: {duplicated[0]}"))
        form = {name: values[0] for name, values in self._form.items()}
        app = self.state.check_client(form.get("client_id"), form.get("client_secret"))
        if app is None:
            raise Reply(400, oauth_error_body("invalid_client", "Invalid client_id or client_secret."))
        grant = form.get("grant_type")
        try:
            if not grant:
                raise SandboxOAuthError("invalid_request", "grant_type is a required parameter")
            if grant == "authorization_code":
                for required in ("code", "redirect_uri"):
                    if not form.get(required):
                        raise SandboxOAuthError("invalid_request", f"{required} is a required parameter")
                if app.pkce and not form.get("code_verifier"):
                    raise SandboxOAuthError("invalid_request", "code_verifier is a required parameter")
                body = self.state.exchange_code(
                    app=app,
                    code=form["code"],
                    redirect_uri=form["redirect_uri"],
                    code_verifier=form.get("code_verifier"),
                )
            elif grant == "refresh_token":
                if not form.get("refresh_token"):
                    raise SandboxOAuthError("invalid_request", "refresh_token is a required parameter")
                body = self.state.refresh(app=app, refresh_token=form["refresh_token"])
            else:
                raise SandboxOAuthError("unsupported_grant_type", f"Unsupported grant_type: {grant}")
        except SandboxOAuthError as exc:
            raise Reply(exc.status, exc.body()) from None
        self._reply(200, body)
