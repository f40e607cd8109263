"""One answer shape for everything: unknown paths, DRF's own errors, crashes, limits, CORS."""

import logging

import pytest
from django.test import RequestFactory

from accounts import selectors
from mlaccounts.api.middleware import ApiErrorMiddleware
from tests.mlaccounts.api.conftest import RecordingAPIClient, assert_error, body, connect_payload

pytestmark = pytest.mark.django_db

ID = "9b2f7e0c-5d35-4a63-9a38-3c1b2f9b0c11"
ROUTES = [
    ("post", "/api/auth/register"),
    ("post", "/api/auth/login"),
    ("get", "/api/auth/me"),
    ("get", "/api/ml-accounts"),
    ("post", "/api/ml-accounts"),
    ("post", "/api/ml-accounts/sync-all"),
    ("get", f"/api/ml-accounts/{ID}"),
    ("put", f"/api/ml-accounts/{ID}"),
    ("patch", f"/api/ml-accounts/{ID}"),
    ("delete", f"/api/ml-accounts/{ID}"),
    ("post", f"/api/ml-accounts/{ID}/sync"),
    ("put", f"/api/ml-accounts/{ID}/pause"),
    ("post", f"/api/ml-accounts/{ID}/pause"),
    ("put", f"/api/ml-accounts/{ID}/resume"),
    ("post", f"/api/ml-accounts/{ID}/resume"),
    ("put", f"/api/ml-accounts/{ID}/refresh-token"),
    ("post", f"/api/ml-accounts/{ID}/refresh-token"),
    ("get", f"/api/ml-accounts/{ID}/token-info"),
]


@pytest.mark.parametrize(("method", "path"), ROUTES)
@pytest.mark.parametrize("slash", ["", "/"])
def test_every_route_answers_with_and_without_the_trailing_slash(api_client, method, path, slash):
    response = getattr(api_client, method)(path + slash, {})

    # Anonymous: the auth endpoints validate (400), the rest ask for credentials (401).
    # Never a redirect, never Django's HTML 404.
    assert response.status_code in (400, 401), (path + slash, response.status_code)
    assert body(response)["success"] is False


@pytest.mark.parametrize(("method", "path"), [r for r in ROUTES if "/auth/" not in r[1]])
def test_every_account_route_is_unauthorized_without_credentials(api_client, method, path):
    response = getattr(api_client, method)(path)

    assert_error(response, 401, "UNAUTHORIZED")
    assert response["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize(
    "path",
    [
        "/api/",
        "/api/nope",
        "/api/ml-accounts/x/y/z",
        "/api/auth",
        "/api/ml-accounts/sync-all/more",
        "/api/v2/ml-accounts",
    ],
)
@pytest.mark.parametrize("method", ["get", "post", "put", "delete", "patch"])
def test_unknown_api_paths_are_not_found_in_the_envelope(alice, path, method):
    assert_error(getattr(alice, method)(path), 404, "NOT_FOUND")


def test_unknown_api_paths_are_not_found_for_anonymous_callers_too(api_client):
    assert_error(api_client.get("/api/nope"), 404, "NOT_FOUND")


def test_a_verb_the_route_lacks_is_method_not_allowed(alice):
    response = alice.delete("/api/ml-accounts")

    assert_error(response, 405, "METHOD_NOT_ALLOWED")
    assert set(response["Allow"].replace(" ", "").split(",")) >= {"GET", "POST"}


@pytest.mark.parametrize(
    ("content_type", "raw"),
    [("text/plain", "hello"), ("application/x-www-form-urlencoded", "a=b"), ("application/xml", "<a/>")],
)
def test_a_body_that_is_not_json_is_unsupported_media_type(alice, content_type, raw):
    response = alice.post("/api/ml-accounts", raw, content_type=content_type)

    assert_error(response, 415, "UNSUPPORTED_MEDIA_TYPE")


@pytest.mark.parametrize(
    "raw",
    [
        "{",
        '{"mlUserId": }',
        '{"a": NaN}',
        '{"a": Infinity}',
        "[" * 100_000 + "]" * 100_000,
        '{"n": ' + "9" * 5000 + "}",
        b"\xff\xfe\x00garbage",
    ],
)
def test_malformed_json_is_a_parse_error(alice, raw):
    response = alice.post("/api/ml-accounts", raw, content_type="application/json")

    assert_error(response, 400, "PARSE_ERROR")


def test_a_charset_that_is_not_text_is_a_parse_error(alice):
    response = alice.post("/api/ml-accounts", b"{}", content_type="application/json; charset=bz2_codec")

    assert_error(response, 400, "PARSE_ERROR")


def test_a_body_over_the_limit_is_request_too_large(alice, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 10_000

    response = alice.post("/api/ml-accounts", connect_payload(nickname="x" * 20_000))

    assert_error(response, 413, "REQUEST_TOO_LARGE")


def test_a_body_over_the_limit_on_login_is_request_too_large(api_client, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1_000

    response = api_client.post("/api/auth/login", {"email": "a@example.com", "password": "p" * 5_000})

    assert_error(response, 413, "REQUEST_TOO_LARGE")


def test_an_unexpected_error_is_internal_error_with_a_logged_request_id(user, monkeypatch, caplog):
    def explode(**kwargs):
        raise RuntimeError("database password is hunter2")

    monkeypatch.setattr(selectors, "mlaccount_list_for_user", explode)
    client = RecordingAPIClient()
    client.force_authenticate(user)

    with caplog.at_level(logging.ERROR, logger="mlaccounts.api.exceptions"):
        response = client.get("/api/ml-accounts")

    payload = assert_error(response, 500, "INTERNAL_ERROR")
    assert payload["requestId"] == response["X-Request-ID"]
    assert "hunter2" not in response.content.decode()
    assert "RuntimeError" not in response.content.decode()
    record = next(r for r in caplog.records if getattr(r, "request_id", None) == payload["requestId"])
    assert record.exc_info[0] is RuntimeError
    assert record.path == "/api/ml-accounts"


def test_the_middleware_answers_escaped_api_errors_in_the_envelope():
    middleware = ApiErrorMiddleware(lambda request: None)
    request = RequestFactory().get("/api/ml-accounts")

    response = middleware.process_exception(request, ValueError("secret detail"))

    assert response.status_code == 500
    assert b'"code": "INTERNAL_ERROR"' in response.content
    assert b"secret" not in response.content


def test_the_middleware_leaves_other_paths_to_django():
    middleware = ApiErrorMiddleware(lambda request: None)

    assert middleware.process_exception(RequestFactory().get("/accounts/login/"), ValueError()) is None


def test_the_api_is_throttled_per_user(alice, charlie, settings):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], "user": "3/min"},
    }
    for _ in range(3):
        assert alice.get("/api/ml-accounts").status_code == 200

    response = alice.get("/api/auth/me")

    assert_error(response, 429, "RATE_LIMITED")
    assert 1 <= int(response["Retry-After"]) <= 60
    assert charlie.get("/api/ml-accounts").status_code == 200


def test_options_answers_in_the_envelope(alice):
    response = alice.options("/api/ml-accounts")

    assert response.status_code == 200
    payload = body(response)
    assert payload["success"] is True
    assert "application/json" in payload["data"]["renders"]


def test_a_request_that_accepts_no_json_is_not_acceptable(alice):
    response = alice.get("/api/ml-accounts", HTTP_ACCEPT="text/html")

    assert_error(response, 406, "NOT_ACCEPTABLE")


def test_cors_allows_the_configured_origins_on_the_api_only(settings, alice):
    settings.CORS_ALLOWED_ORIGINS = ["https://app.example.com"]

    api = alice.get("/api/ml-accounts", HTTP_ORIGIN="https://app.example.com")
    preflight = RecordingAPIClient().options(
        "/api/ml-accounts",
        HTTP_ORIGIN="https://app.example.com",
        HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST",
        HTTP_ACCESS_CONTROL_REQUEST_HEADERS="authorization, content-type",
    )
    other_origin = alice.get("/api/ml-accounts", HTTP_ORIGIN="https://evil.example.com")
    dashboard = RecordingAPIClient().get("/health/", HTTP_ORIGIN="https://app.example.com")

    assert api["Access-Control-Allow-Origin"] == "https://app.example.com"
    assert "Retry-After" in api["Access-Control-Expose-Headers"]
    assert preflight.status_code == 200
    assert "authorization" in preflight["Access-Control-Allow-Headers"]
    assert "Access-Control-Allow-Origin" not in other_origin
    assert "Access-Control-Allow-Origin" not in dashboard
