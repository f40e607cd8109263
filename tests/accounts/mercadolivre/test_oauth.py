"""oauth.py: PKCE, the authorization URL and the token endpoint (§1, §8)."""

import base64
import re
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from django.utils import translation

from accounts.mercadolivre import oauth, ratelimit
from accounts.mercadolivre.errors import (
    MLBadRequest,
    MLBadResponse,
    MLForbidden,
    MLInvalidGrant,
    MLRateLimited,
    MLUnavailable,
)
from accounts.mercadolivre.sandbox import CALLBACK_PATH
from tests.mlmock import API, load_fixture, ml_error

# Every answer registered on the `ml` mock must be asked for.
pytestmark = pytest.mark.ml_every_answer_used

TOKEN_URL = f"{API}/oauth/token"
REDIRECT_URI = f"https://accounts.example.com{CALLBACK_PATH}"


def form_of(call) -> dict[str, list[str]]:
    return parse_qs(call.request.body, keep_blank_values=True)


# --- PKCE ---------------------------------------------------------------------------------------


def test_pkce_verifier_is_64_characters_of_the_rfc_charset():
    pair = oauth.make_pkce_pair()

    assert len(pair.verifier) == 64
    assert re.fullmatch(r"[A-Za-z0-9\-._~]{43,128}", pair.verifier)


def test_pkce_pairs_are_random():
    assert oauth.make_pkce_pair().verifier != oauth.make_pkce_pair().verifier


def test_pkce_challenge_matches_rfc7636_appendix_b():
    # The verifier is the base64url of the RFC's 32 example octets; both strings are
    # printed in RFC 7636 Appendix B.
    octets = bytes(
        [116, 24, 223, 180, 151, 153, 224, 37, 79, 250, 96, 125, 216, 173, 187, 186,
         22, 212, 37, 77, 105, 214, 191, 240, 91, 88, 5, 88, 83, 132, 141, 121]
    )  # fmt: skip
    verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
    assert base64.urlsafe_b64encode(octets).rstrip(b"=").decode() == verifier

    assert oauth.challenge_for(verifier) == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"


def test_pkce_pair_challenge_is_the_s256_of_its_verifier():
    pair = oauth.make_pkce_pair()

    assert pair.challenge == oauth.challenge_for(pair.verifier)
    assert "=" not in pair.challenge
    assert len(pair.challenge) == 43


@pytest.mark.parametrize("verifier", ["short", "x" * 129, "has space" + "x" * 40, "plus+" + "x" * 40])
def test_challenge_for_rejects_invalid_verifiers(verifier):
    with pytest.raises(ValueError, match="43-128"):
        oauth.challenge_for(verifier)


def test_pkce_repr_hides_the_verifier():
    pair = oauth.make_pkce_pair()

    assert pair.verifier not in repr(pair)
    assert pair.challenge in repr(pair)


# --- Authorization URL --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("site_id", "host"),
    [
        ("MLB", "auth.mercadolivre.com.br"),
        ("MLA", "auth.mercadolibre.com.ar"),
        ("MLM", "auth.mercadolibre.com.mx"),
        ("MCO", "auth.mercadolibre.com.co"),
        ("MLC", "auth.mercadolibre.cl"),
        ("MLU", "auth.mercadolibre.com.uy"),
        ("MPE", "auth.mercadolibre.com.pe"),
        ("MEC", "auth.mercadolibre.com.ec"),
        ("MLV", "auth.mercadolibre.com.ve"),
        ("MPA", "auth.mercadolibre.com.pa"),
        ("MRD", "auth.mercadolibre.com.do"),
        ("CBT", "global-selling.mercadolibre.com"),
        ("mla", "auth.mercadolibre.com.ar"),
    ],
)
def test_authorization_url_uses_the_site_host(site_id, host):
    url = oauth.authorization_url(state="s", redirect_uri=REDIRECT_URI, code_challenge="c", site_id=site_id)

    parts = urlsplit(url)
    assert (parts.scheme, parts.netloc, parts.path) == ("https", host, "/authorization")


def test_authorization_url_carries_the_documented_parameters():
    url = oauth.authorization_url(state="st4te", redirect_uri=REDIRECT_URI, code_challenge="ch4llenge")

    assert parse_qs(urlsplit(url).query) == {
        "response_type": ["code"],
        "client_id": ["123"],
        "redirect_uri": [REDIRECT_URI],
        "state": ["st4te"],
        "code_challenge": ["ch4llenge"],
        "code_challenge_method": ["S256"],
    }
    assert "scope" not in url
    assert "s3cret" not in url


def test_authorization_url_defaults_to_the_configured_site(settings):
    settings.ML_SITE_ID = "MLM"

    url = oauth.authorization_url(state="s", redirect_uri=REDIRECT_URI, code_challenge="c")

    assert urlsplit(url).netloc == "auth.mercadolibre.com.mx"


def test_authorization_url_prefers_ml_auth_url(settings):
    settings.ML_AUTH_URL = "http://127.0.0.1:8001/"

    url = oauth.authorization_url(state="s", redirect_uri=REDIRECT_URI, code_challenge="c", site_id="MLA")

    assert url.startswith("http://127.0.0.1:8001/authorization?")


def test_authorization_url_rejects_an_unknown_site():
    with pytest.raises(ValueError, match="XYZ"):
        oauth.authorization_url(state="s", redirect_uri=REDIRECT_URI, code_challenge="c", site_id="XYZ")


def test_sites_start_with_brazil_and_all_have_an_auth_host():
    with translation.override("en"):
        assert oauth.SITES[0] == ("MLB", "Brazil")
    with translation.override("pt-br"):
        assert oauth.SITES[0] == ("MLB", "Brasil")
    assert {site_id for site_id, _ in oauth.SITES} == set(oauth.SITE_AUTH_HOSTS)
    assert len({site_id for site_id, _ in oauth.SITES}) == len(oauth.SITES)


# --- Token endpoint: requests -------------------------------------------------------------------


def test_exchange_code_posts_a_form_body(ml):
    ml.post(TOKEN_URL, json=load_fixture("oauth_token"))

    oauth.exchange_code(
        code="TG-66b1c2d3e4f5a6000b7c8d9e-314000111", redirect_uri=REDIRECT_URI, code_verifier="v" * 64
    )

    call = ml.calls[0]
    assert call.request.method == "POST"
    assert urlsplit(call.request.url).path == "/oauth/token"
    assert urlsplit(call.request.url).query == ""
    assert call.request.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert call.request.headers["Accept"] == "application/json"
    assert "Authorization" not in call.request.headers
    assert form_of(call) == {
        "grant_type": ["authorization_code"],
        "client_id": ["123"],
        "client_secret": ["s3cret"],
        "code": ["TG-66b1c2d3e4f5a6000b7c8d9e-314000111"],
        "redirect_uri": [REDIRECT_URI],
        "code_verifier": ["v" * 64],
    }


def test_exchange_code_without_pkce_omits_the_verifier(ml):
    ml.post(TOKEN_URL, json=load_fixture("oauth_token"))

    oauth.exchange_code(code="TG-1", redirect_uri=REDIRECT_URI, code_verifier="")

    assert "code_verifier" not in form_of(ml.calls[0])


def test_refresh_tokens_posts_a_form_body(ml):
    ml.post(TOKEN_URL, json=load_fixture("oauth_token"))

    oauth.refresh_tokens(refresh_token="TG-old-refresh-987654321")

    call = ml.calls[0]
    assert call.request.method == "POST"
    assert urlsplit(call.request.url).query == ""
    assert "TG-old-refresh" not in call.request.url
    assert call.request.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert form_of(call) == {
        "grant_type": ["refresh_token"],
        "client_id": ["123"],
        "client_secret": ["s3cret"],
        "refresh_token": ["TG-old-refresh-987654321"],
    }


def test_token_calls_spend_the_rate_budget(ml, monkeypatch):
    taken = []
    monkeypatch.setattr(ratelimit, "acquire", lambda **kwargs: taken.append(1))
    ml.post(TOKEN_URL, json=load_fixture("oauth_token"))

    oauth.refresh_tokens(refresh_token="TG-1")
    oauth.exchange_code(code="TG-2", redirect_uri=REDIRECT_URI, code_verifier="v" * 43)

    assert len(taken) == 2


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_refresh_is_never_retried_on_5xx(ml, status):
    ml.post(TOKEN_URL, json={"message": "oops", "error": "internal_error", "status": status}, status=status)

    with pytest.raises(MLUnavailable):
        oauth.refresh_tokens(refresh_token="TG-1")

    assert len(ml.calls) == 1


def test_refresh_is_never_retried_on_a_timeout(ml):
    ml.post(TOKEN_URL, body=requests.ReadTimeout("read timed out"))

    with pytest.raises(MLUnavailable) as caught:
        oauth.refresh_tokens(refresh_token="TG-1")

    assert caught.value.code == "timeout"
    assert len(ml.calls) == 1


# --- Token endpoint: responses ------------------------------------------------------------------


def test_token_response_becomes_a_token_set(ml):
    ml.post(TOKEN_URL, json=load_fixture("oauth_token"))
    before = datetime.now(UTC)

    tokens = oauth.exchange_code(code="TG-1", redirect_uri=REDIRECT_URI, code_verifier="v" * 43)

    assert tokens.access_token == load_fixture("oauth_token")["access_token"]
    assert tokens.refresh_token == "TG-65f2a0c1e4b0a1000123abcd-987654321"
    assert tokens.expires_in == 21600
    assert tokens.user_id == 987654321
    assert tokens.scopes == ("offline_access", "read", "write")
    assert tokens.token_type == "bearer"
    assert tokens.expires_at.tzinfo is not None
    assert tokens.expires_at.utcoffset() == timedelta(0)
    assert (
        before + timedelta(seconds=21600) <= tokens.expires_at <= datetime.now(UTC) + timedelta(seconds=21600)
    )


def test_token_response_tolerates_string_user_id_and_lowercase_type():
    body = {**load_fixture("oauth_token"), "user_id": "987654321", "token_type": "bearer"}
    now = datetime(2025, 3, 14, 12, 0, tzinfo=UTC)

    tokens = oauth.parse_token_response(body, now=now)

    assert tokens.user_id == 987654321
    assert tokens.expires_at == datetime(2025, 3, 14, 18, 0, tzinfo=UTC)


def test_token_response_splits_urn_scopes():
    scope = (
        "offline_access read urn:global:admin:info:/read-only urn:ml:mktp:orders-shipments:/read-only "
        "urn:ml:mktp:comunication:/read-write write"
    )

    tokens = oauth.parse_token_response({**load_fixture("oauth_token"), "scope": scope})

    assert tokens.scopes == (
        "offline_access",
        "read",
        "urn:global:admin:info:/read-only",
        "urn:ml:mktp:orders-shipments:/read-only",
        "urn:ml:mktp:comunication:/read-write",
        "write",
    )


def test_token_response_without_offline_access_has_no_refresh_token():
    body = {**load_fixture("oauth_token"), "scope": "read write"}
    del body["refresh_token"]

    tokens = oauth.parse_token_response(body)

    assert tokens.refresh_token is None


@pytest.mark.parametrize(
    "change",
    [
        {"access_token": None},
        {"access_token": ""},
        {"expires_in": None},
        {"expires_in": "soon"},
        {"expires_in": 0},
        {"expires_in": True},
        {"user_id": None},
        {"user_id": "abc"},
        {"user_id": -5},
        {"token_type": "mac"},
        {"refresh_token": 12345},
        {"scope": 7},
    ],
)
def test_malformed_token_response_is_a_bad_response(ml, change):
    body = {**load_fixture("oauth_token"), **change}
    body = {key: value for key, value in body.items() if value is not None}
    ml.post(TOKEN_URL, json=body)

    with pytest.raises(MLBadResponse):
        oauth.refresh_tokens(refresh_token="TG-1")


def test_token_set_repr_hides_both_tokens():
    tokens = oauth.parse_token_response(load_fixture("oauth_token"))

    for text in (repr(tokens), str(tokens)):
        assert tokens.access_token not in text
        assert tokens.refresh_token not in text
        assert "987654321" in text


# --- Token endpoint: errors (§1.7) --------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "body_name", "error_class", "code"),
    [
        (400, "invalid_grant", MLInvalidGrant, "invalid_grant"),
        (400, "invalid_grant_legacy", MLInvalidGrant, "invalid_grant"),
        (400, "invalid_client", MLBadRequest, "invalid_client"),
        (401, "invalid_client", MLBadRequest, "invalid_client"),
        (400, "invalid_request", MLBadRequest, "invalid_request"),
        (400, "invalid_scope", MLBadRequest, "invalid_scope"),
        (400, "unsupported_grant_type", MLBadRequest, "unsupported_grant_type"),
        (400, "unauthorized_client", MLBadRequest, "unauthorized_client"),
        (403, "forbidden_token", MLForbidden, "forbidden"),
        (429, "local_rate_limited", MLRateLimited, "local_rate_limited"),
    ],
)
def test_token_endpoint_errors_are_typed(ml, status, body_name, error_class, code):
    ml.post(TOKEN_URL, json=ml_error(body_name), status=status)

    with pytest.raises(error_class) as caught:
        oauth.refresh_tokens(refresh_token="TG-65f2a0c1e4b0a1000123abcd-987654321")

    assert type(caught.value) is error_class
    assert caught.value.code == code
    assert caught.value.status == status
    assert caught.value.message == (
        ml_error(body_name).get("error_description") or ml_error(body_name)["message"]
    )
    assert "TG-65f2" not in str(caught.value)
    assert len(ml.calls) == 1


def test_missing_code_verifier_reads_error_description(ml):
    ml.post(TOKEN_URL, json=ml_error("invalid_request"), status=400)

    with pytest.raises(MLBadRequest, match="code_verifier is a required parameter"):
        oauth.exchange_code(code="TG-1", redirect_uri=REDIRECT_URI, code_verifier="")


def test_local_rate_limited_honours_retry_after(ml, monkeypatch):
    penalties = []
    monkeypatch.setattr(ratelimit, "penalize", penalties.append)
    ml.post(TOKEN_URL, json=ml_error("local_rate_limited"), status=429, headers={"Retry-After": "4"})

    with pytest.raises(MLRateLimited) as caught:
        oauth.exchange_code(code="TG-1", redirect_uri=REDIRECT_URI, code_verifier="v" * 43)

    assert caught.value.retry_after == 4.0
    assert penalties == [4.0]
