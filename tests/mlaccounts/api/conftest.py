"""Fixtures of the API tests: clients for the cast, ML answers on the root `ml` mock, leak checks.

Every response an API client of this suite receives is kept, and after each test its
bodies are searched for the tokens stored in the database and for the markers every
test token carries ("secretaccess", "secretrefresh"): no answer may contain a token.
"""

import json
import uuid
from datetime import timedelta

import pytest
from django.core.cache import cache
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import MLAccount
from mlaccounts.api.authentication import access_token_for
from tests.mlmock import API, COUNT_URLS, TOKEN_URL, add_counts

TOKEN_MARKERS = ("secretaccess", "secretrefresh", "APP_USR-", "TESTACCESS", "TESTREFRESH")

MIN_SECRET_LENGTH = 16
_bodies: list[bytes] = []


def record_body(content: bytes) -> None:
    """Keep a response body for the leak check (also used by the fuzz test's transport)."""
    _bodies.append(content)


class RecordingAPIClient(APIClient):
    """An APIClient whose every response body goes to the leak check."""

    def request(self, **kwargs):
        response = super().request(**kwargs)
        if not response.streaming:  # static files (the docs' assets) stream
            record_body(response.content)
        return response


def body(response) -> dict:
    return json.loads(response.content)


def assert_error(response, status_code: int, code: str) -> dict:
    """The response is the failure envelope with this status and code."""
    assert response.status_code == status_code, response.content
    assert response["Content-Type"].startswith("application/json")
    payload = body(response)
    assert payload["success"] is False
    assert payload["code"] == code
    assert isinstance(payload["message"], str) and payload["message"]
    return payload


def assert_unauthorized(response) -> None:
    assert_error(response, 401, "UNAUTHORIZED")
    assert response["WWW-Authenticate"].startswith("Bearer")


@pytest.fixture(autouse=True)
def _api_settings(settings):
    settings.ML_API_URL = API
    # Messages follow the request's language (pt-BR by default); the assertions here read
    # the English source strings.
    settings.LANGUAGE_CODE = "en"
    settings.ML_REQUESTS_PER_SECOND = 0
    # Throttle counts live in the cache: every test starts from zero. Redis (CI) is shared
    # with other tests and the Celery broker, so a fresh key prefix, never FLUSHDB.
    default = settings.CACHES["default"]
    if "redis" in default["BACKEND"].lower():
        settings.CACHES = {
            **settings.CACHES,
            "default": {**default, "KEY_PREFIX": f"apitest-{uuid.uuid4().hex}"},
        }
    else:
        cache.clear()


@pytest.fixture(autouse=True)
def _no_token_in_any_response(db):
    # Depends on `db` so that it ends before the database is rolled back or flushed.
    start = len(_bodies)
    yield
    bodies = _bodies[start:]
    if not bodies:
        return
    secrets = set()
    for access, refresh in MLAccount.objects.values_list("access_token", "refresh_token"):
        # A fuzzer's token of a few characters ("a", "data") is found in any answer.
        secrets.update(token for token in (access, refresh) if token and len(token) >= MIN_SECRET_LENGTH)
    for content in bodies:
        text = content.decode("utf-8", "replace")
        for secret in (*secrets, *TOKEN_MARKERS):
            assert secret not in text, f"a response contains a token ({secret[:12]}…)"


@pytest.fixture
def api_client():
    return RecordingAPIClient()


def client_for(user) -> RecordingAPIClient:
    client = RecordingAPIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {access_token_for(user)}")
    return client


@pytest.fixture
def alice(user):
    """The owner's client (bearer token)."""
    return client_for(user)


@pytest.fixture
def charlie(other_user):
    """The outsider's client (bearer token)."""
    return client_for(other_user)


# --- Mercado Livre answers on the root `ml` mock (tests/mlmock.py) ----------------------------


def ml_counts(mock, *, products=12, orders=7, questions=3, claims=1):
    """ML answers the four count endpoints."""
    add_counts(mock, products=products, orders=orders, questions=questions, claims=claims)


def ml_counts_fail(mock, status: int, *, headers=None, payload=None):
    """Every count endpoint answers `status`."""
    payload = payload or {"message": "failure", "error": "failure", "status": status, "cause": []}
    for url in COUNT_URLS.values():
        mock.get(url, status=status, json=payload, headers=headers or {})


def ml_token_dead(mock):
    """The access token is rejected and the refresh token is dead (invalid_grant)."""
    ml_counts_fail(mock, 401, payload={"message": "invalid_token", "error": "not_found", "status": 401})
    mock.post(
        TOKEN_URL,
        status=400,
        json={"error": "invalid_grant", "error_description": "invalid refresh token", "status": 400},
    )


def token_answer(n: int = 1, *, expires_in: int = 21600) -> dict:
    return {
        "access_token": f"APP_USR-NEW-{n:04d}-secretaccess",
        "token_type": "Bearer",
        "expires_in": expires_in,
        "scope": "offline_access read write",
        "user_id": 4_000_000_000,
        "refresh_token": f"TG-NEW-{n:04d}-secretrefresh",
    }


def connect_payload(**overrides) -> dict:
    payload = {
        "mlUserId": "987654321012",
        "nickname": "LOJA_NOVA",
        "email": "loja.nova@example.com",
        "accessToken": "APP_USR-CONNECT-0001-secretaccess",
        "refreshToken": "TG-CONNECT-0001-secretrefresh",
        "tokenExpiresAt": (timezone.now() + timedelta(hours=6)).isoformat(),
    }
    payload.update(overrides)
    return payload
