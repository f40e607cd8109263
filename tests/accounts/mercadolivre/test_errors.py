"""errors.py: building typed errors from ML responses (§1.7, §2, §5.1)."""

import json
from datetime import UTC, datetime

import pytest
import requests
from requests.structures import CaseInsensitiveDict

from accounts.mercadolivre.errors import (
    MLBadRequest,
    MLBadResponse,
    MLError,
    MLForbidden,
    MLInvalidGrant,
    MLRateLimited,
    MLUnauthorized,
    MLUnavailable,
    error_from_response,
    parse_retry_after,
)
from tests.mlmock import ml_error


def make_response(status, body=None, *, text=None, headers=None, reason="") -> requests.Response:
    response = requests.Response()
    response.status_code = status
    response.reason = reason
    response.headers = CaseInsensitiveDict(headers or {})
    if text is not None:
        response._content = text.encode()
    else:
        response._content = json.dumps(body).encode()
        response.headers.setdefault("Content-Type", "application/json")
    return response


@pytest.mark.parametrize(
    ("status", "body_name", "error_class", "code", "message"),
    [
        # §1.7 token endpoint
        (400, "invalid_grant", MLInvalidGrant, "invalid_grant", "Error validating grant."),
        (400, "invalid_grant_legacy", MLInvalidGrant, "invalid_grant", "Error validating grant."),
        (400, "invalid_client", MLBadRequest, "invalid_client", "invalid client_id"),
        (401, "invalid_client", MLBadRequest, "invalid_client", "invalid client_id"),
        (400, "invalid_request", MLBadRequest, "invalid_request", "code_verifier is a required parameter"),
        (400, "invalid_scope", MLBadRequest, "invalid_scope", "the scope is not valid"),
        (400, "unsupported_grant_type", MLBadRequest, "unsupported_grant_type", "grant type"),
        (400, "unauthorized_client", MLBadRequest, "unauthorized_client", "not authorized"),
        (403, "forbidden_token", MLForbidden, "forbidden", "forbidden"),
        (429, "local_rate_limited", MLRateLimited, "local_rate_limited", "too many requests"),
        # §2 invalid token: the odd "not_found" code with message "invalid_token"
        (401, "invalid_token", MLUnauthorized, "not_found", "invalid_token"),
        # §5.1 and §4.4 variants
        (403, "forbidden", MLForbidden, "forbidden", "forbidden"),
        (403, "policy_agent", MLForbidden, "PA_UNAUTHORIZED_RESULT_FROM_POLICIES", "At least one policy"),
        (403, "access_denied", MLForbidden, "access_denied", "access to the requested resource"),
        (429, "too_many_requests", MLRateLimited, "too_many_requests", "Too Many Requests"),
        (400, "claims_invalid_query", MLBadRequest, "invalid_query", "at least any of these filters"),
        (404, "not_found", MLBadRequest, "not_found", "Response time not found"),
        (500, "internal_error", MLUnavailable, "internal_error", "Internal server error"),
        (503, "service_unavailable", MLUnavailable, "service_unavailable", "Service unavailable"),
    ],
)
def test_error_from_response_maps_documented_bodies(status, body_name, error_class, code, message):
    error = error_from_response(make_response(status, ml_error(body_name)))

    assert type(error) is error_class
    assert error.status == status
    assert error.code == code
    assert error.message.startswith(message) or message in error.message


def test_invalid_grant_is_not_an_unauthorized_error():
    error = error_from_response(make_response(400, ml_error("invalid_grant")))

    assert isinstance(error, MLError)
    assert not isinstance(error, MLUnauthorized)


def test_error_description_is_read_when_message_is_absent():
    error = error_from_response(make_response(400, {"error": "invalid_request", "error_description": "why"}))

    assert error.message == "why"


def test_message_is_preferred_when_both_texts_are_present():
    body = {"error": "invalid_grant", "message": "from message", "error_description": "from description"}

    error = error_from_response(make_response(400, body))

    assert error.message == "from message"


def test_code_falls_back_to_the_code_field():
    error = error_from_response(make_response(403, ml_error("policy_agent")))

    assert error.code == "PA_UNAUTHORIZED_RESULT_FROM_POLICIES"


@pytest.mark.parametrize(
    ("status", "error_class", "code"),
    [
        (502, MLUnavailable, "unavailable"),
        (504, MLUnavailable, "unavailable"),
        (400, MLBadRequest, "bad_request"),
        (401, MLUnauthorized, "unauthorized"),
        (403, MLForbidden, "forbidden"),
        (404, MLBadRequest, "not_found"),
        (429, MLRateLimited, "too_many_requests"),
    ],
)
def test_non_json_bodies_are_tolerated(status, error_class, code):
    response = make_response(status, text="<html><body>Bad Gateway</body></html>", reason="Bad Gateway")

    error = error_from_response(response)

    assert type(error) is error_class
    assert error.code == code
    assert error.message == f"HTTP {status} Bad Gateway"


def test_json_that_is_not_an_object_is_tolerated():
    error = error_from_response(make_response(500, ["unexpected"]))

    assert isinstance(error, MLUnavailable)
    assert error.code == "unavailable"


def test_unexpected_status_is_a_bad_response():
    error = error_from_response(make_response(302, text="", reason="Found"))

    assert isinstance(error, MLBadResponse)
    assert error.status == 302


def test_rate_limited_reads_retry_after_seconds():
    response = make_response(429, ml_error("too_many_requests"), headers={"Retry-After": "7"})

    error = error_from_response(response)

    assert isinstance(error, MLRateLimited)
    assert error.retry_after == 7.0


def test_rate_limited_without_retry_after_has_none():
    error = error_from_response(make_response(429, ml_error("too_many_requests")))

    assert error.retry_after is None


def test_parse_retry_after_accepts_an_http_date():
    now = datetime(2025, 3, 10, 16, 0, 0, tzinfo=UTC)

    assert parse_retry_after("Mon, 10 Mar 2025 16:00:30 GMT", now=now) == 30.0


@pytest.mark.parametrize(
    ("value", "expected"),
    [("2.5", 2.5), (" 3 ", 3.0), ("-4", 0.0), ("", None), (None, None), ("soon", None), ("inf", None)],
)
def test_parse_retry_after_handles_odd_values(value, expected):
    assert parse_retry_after(value) == expected


def test_past_http_date_means_no_wait():
    now = datetime(2025, 3, 10, 16, 0, 0, tzinfo=UTC)

    assert parse_retry_after("Mon, 10 Mar 2025 15:00:00 GMT", now=now) == 0.0


def test_error_message_never_contains_a_token():
    body = {
        "error": "not_found",
        "message": "invalid access token APP_USR-1234567890123456-031418-0a1b2c3d-987 for TG-65f2a0c1-98",
    }

    error = error_from_response(make_response(401, body))

    assert "APP_USR-1234" not in error.message
    assert "TG-65f2" not in str(error)
    assert "APP_USR" not in repr(error)
    assert "[redacted]" in error.message


def test_str_is_readable():
    error = error_from_response(make_response(401, ml_error("invalid_token")))

    assert str(error) == "invalid_token (HTTP 401, not_found)"
    assert str(MLUnavailable(code="timeout")) == "Mercado Livre is unavailable (timeout)"


def test_long_messages_are_truncated():
    error = error_from_response(make_response(400, {"error": "x", "message": "a" * 5000}))

    assert len(error.message) <= 500
