"""/api/auth/register, /api/auth/login, /api/auth/me, and how the API authenticates."""

from datetime import UTC, datetime

import jwt
import pytest
from allauth.account.models import EmailAddress
from django.conf import settings as django_settings
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import AccessToken

from accounts.models import User
from tests.conftest import PASSWORD
from tests.mlaccounts.api.conftest import RecordingAPIClient, assert_error, assert_unauthorized, body

pytestmark = pytest.mark.django_db

STRONG = "a-long passphrase 4 tests"


def _claims(token: str) -> dict:
    return jwt.decode(token, django_settings.SECRET_KEY, algorithms=["HS256"])


# --- register ----------------------------------------------------------------------------------


def test_register_creates_the_user_and_returns_a_working_token(api_client):
    response = api_client.post(
        "/api/auth/register",
        {"email": "New.User@Example.com", "password": STRONG, "firstName": "Nova", "lastName": "Pessoa"},
    )

    assert response.status_code == 201, response.content
    payload = body(response)
    assert payload["success"] is True
    user = User.objects.get(email="new.user@example.com")
    assert payload["data"]["user"] == {
        "id": str(user.pk),
        "email": "new.user@example.com",
        "firstName": "Nova",
        "lastName": "Pessoa",
    }
    assert user.check_password(STRONG)
    # Like allauth's sign-up: a primary, unverified address the dashboard can manage.
    address = EmailAddress.objects.get(user=user)
    assert (address.email, address.primary, address.verified) == ("new.user@example.com", True, False)
    me = RecordingAPIClient()
    me.credentials(HTTP_AUTHORIZATION=f"Bearer {payload['data']['token']}")
    assert body(me.get("/api/auth/me"))["data"]["email"] == "new.user@example.com"


def test_register_names_are_optional(api_client):
    response = api_client.post("/api/auth/register", {"email": "solo@example.com", "password": STRONG})

    assert response.status_code == 201
    assert body(response)["data"]["user"]["firstName"] == ""


def test_register_refuses_an_email_in_use_whatever_its_case(api_client, user):
    response = api_client.post("/api/auth/register", {"email": "ALICE@Example.COM", "password": STRONG})

    assert_error(response, 409, "EMAIL_EXISTS")
    assert User.objects.filter(email__iexact="alice@example.com").count() == 1


def test_register_refuses_an_email_known_only_to_allauth(api_client, user):
    EmailAddress.objects.create(user=user, email="alias@example.com", primary=False, verified=True)

    response = api_client.post("/api/auth/register", {"email": "Alias@example.com", "password": STRONG})

    assert_error(response, 409, "EMAIL_EXISTS")


@pytest.mark.parametrize(
    ("payload", "fields"),
    [
        ({"email": "not-an-email", "password": STRONG}, {"email"}),
        ({"email": "weak@example.com", "password": "123"}, {"password"}),
        ({"email": "weak@example.com", "password": "password123"}, {"password"}),
        ({"email": "weak@example.com", "password": "84736251940"}, {"password"}),
        ({"email": "similar.name@example.com", "password": "similar.name"}, {"password"}),
        ({}, {"email", "password"}),
        ({"email": ["a@b.c"], "password": 12345678901}, {"email", "password"}),
        ({"email": "ok@example.com", "password": STRONG, "firstName": 7}, {"firstName"}),
        ({"email": "ok@example.com", "password": STRONG, "lastName": "x" * 151}, {"lastName"}),
        ({"email": "ok@example.com", "password": "x" * 1025}, {"password"}),
    ],
)
def test_register_rejects_invalid_input_naming_the_fields(api_client, payload, fields):
    response = api_client.post("/api/auth/register", payload)

    errors = assert_error(response, 400, "VALIDATION_ERROR")["errors"]
    assert set(errors) == fields
    assert not User.objects.exists()


@pytest.mark.parametrize("raw", ["[]", '"text"', "null", "42"])
def test_register_rejects_a_body_that_is_not_an_object(api_client, raw):
    response = api_client.post("/api/auth/register", raw, content_type="application/json")

    assert_error(response, 400, "VALIDATION_ERROR")


def test_register_is_throttled_per_ip(api_client, settings):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {
            **settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"],
            "register_ip": "2/hour",
        },
    }
    for n in range(2):
        api_client.post("/api/auth/register", {"email": f"u{n}@example.com", "password": STRONG})

    response = api_client.post("/api/auth/register", {"email": "u3@example.com", "password": STRONG})

    assert_error(response, 429, "RATE_LIMITED")
    assert int(response["Retry-After"]) >= 1
    assert not User.objects.filter(email="u3@example.com").exists()


def test_register_is_throttled_per_email(settings):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {
            **settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"],
            "register_email": "2/min",
        },
    }
    for n in range(2):
        RecordingAPIClient(REMOTE_ADDR=f"10.0.0.{n}").post(
            "/api/auth/register", {"email": "same@example.com", "password": "x"}
        )

    response = RecordingAPIClient(REMOTE_ADDR="10.0.0.9").post(
        "/api/auth/register", {"email": "SAME@example.com", "password": STRONG}
    )

    assert_error(response, 429, "RATE_LIMITED")


# --- login -----------------------------------------------------------------------------------


def test_login_returns_the_user_and_a_token_valid_for_a_day(api_client, user):
    response = api_client.post("/api/auth/login", {"email": "Alice@Example.com", "password": PASSWORD})

    assert response.status_code == 200, response.content
    data = body(response)["data"]
    assert data["user"] == {
        "id": str(user.pk),
        "email": "alice@example.com",
        "firstName": "Alice",
        "lastName": "Owner",
    }
    claims = _claims(data["token"])
    assert claims["user_id"] == str(user.pk)
    assert claims["exp"] - claims["iat"] >= 24 * 3600
    user.refresh_from_db()
    assert user.last_login is not None


@pytest.mark.parametrize(
    "payload",
    [
        {},
        {"email": "alice@example.com"},
        {"password": PASSWORD},
        {"email": "", "password": ""},
        {"email": 5, "password": []},
    ],
)
def test_login_without_credentials_is_missing_credentials(api_client, user, payload):
    response = api_client.post("/api/auth/login", payload)

    assert_error(response, 400, "MISSING_CREDENTIALS")


@pytest.mark.parametrize("raw", ["[]", '"alice"', "null"])
def test_login_with_a_body_that_is_not_an_object_is_missing_credentials(api_client, raw):
    response = api_client.post("/api/auth/login", raw, content_type="application/json")

    assert_error(response, 400, "MISSING_CREDENTIALS")


@pytest.mark.parametrize(
    ("email", "password"),
    [("alice@example.com", "wrong password"), ("nobody@example.com", PASSWORD)],
)
def test_login_with_wrong_credentials_is_invalid_credentials(api_client, user, email, password):
    response = api_client.post("/api/auth/login", {"email": email, "password": password})

    assert_error(response, 401, "INVALID_CREDENTIALS")
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_login_of_an_inactive_user_is_invalid_credentials(api_client, user):
    User.objects.filter(pk=user.pk).update(is_active=False)

    response = api_client.post("/api/auth/login", {"email": "alice@example.com", "password": PASSWORD})

    assert_error(response, 401, "INVALID_CREDENTIALS")


def _lower_rates(settings, **rates):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], **rates},
    }


def test_login_is_refused_after_repeated_failures_for_the_email(settings, user):
    _lower_rates(settings, login_failures="3/min")
    for n in range(3):
        response = RecordingAPIClient(REMOTE_ADDR=f"10.0.1.{n}").post(
            "/api/auth/login", {"email": "alice@example.com", "password": "guess"}
        )
        assert response.status_code == 401

    # Now even the right password is refused, from anywhere, until the window passes.
    response = RecordingAPIClient(REMOTE_ADDR="10.0.1.99").post(
        "/api/auth/login", {"email": "ALICE@example.com", "password": PASSWORD}
    )

    assert_error(response, 429, "RATE_LIMITED")
    assert int(response["Retry-After"]) >= 1


def test_successful_logins_do_not_count_as_failures(api_client, settings, user):
    _lower_rates(settings, login_failures="2/min")
    for _ in range(4):
        assert (
            api_client.post(
                "/api/auth/login", {"email": "alice@example.com", "password": PASSWORD}
            ).status_code
            == 200
        )


def test_failures_for_one_email_do_not_lock_another(settings, user, other_user):
    _lower_rates(settings, login_failures="2/min")
    for _ in range(3):
        RecordingAPIClient().post("/api/auth/login", {"email": "alice@example.com", "password": "guess"})

    response = RecordingAPIClient().post(
        "/api/auth/login", {"email": "charlie@example.com", "password": PASSWORD}
    )

    assert response.status_code == 200


def test_login_is_throttled_per_ip(settings, user):
    _lower_rates(settings, login_ip="3/min")
    client = RecordingAPIClient(REMOTE_ADDR="10.0.2.1")
    for n in range(3):
        client.post("/api/auth/login", {"email": f"x{n}@example.com", "password": "guess"})

    assert_error(
        client.post("/api/auth/login", {"email": "alice@example.com", "password": PASSWORD}),
        429,
        "RATE_LIMITED",
    )
    # Another address is not affected.
    assert (
        RecordingAPIClient(REMOTE_ADDR="10.0.2.2")
        .post("/api/auth/login", {"email": "alice@example.com", "password": PASSWORD})
        .status_code
        == 200
    )


def test_login_ignores_a_spoofed_forwarded_for_header(settings, user):
    _lower_rates(settings, login_ip="2/min")
    for n in range(2):
        RecordingAPIClient(HTTP_X_FORWARDED_FOR=f"203.0.113.{n}").post(
            "/api/auth/login", {"email": "a@example.com", "password": "guess"}
        )

    response = RecordingAPIClient(HTTP_X_FORWARDED_FOR="203.0.113.77").post(
        "/api/auth/login", {"email": "a@example.com", "password": "guess"}
    )

    assert_error(response, 429, "RATE_LIMITED")


def test_login_works_with_a_stale_token_in_the_header(api_client, user):
    api_client.credentials(HTTP_AUTHORIZATION="Bearer not-a-token")

    response = api_client.post("/api/auth/login", {"email": "alice@example.com", "password": PASSWORD})

    assert response.status_code == 200


# --- me and authentication --------------------------------------------------------------------


def test_me_returns_the_user(alice, user):
    response = alice.get("/api/auth/me")

    assert response.status_code == 200
    assert body(response) == {
        "success": True,
        "data": {"id": str(user.pk), "email": "alice@example.com", "firstName": "Alice", "lastName": "Owner"},
    }


def test_me_anonymous_is_unauthorized(api_client):
    assert_unauthorized(api_client.get("/api/auth/me"))


@pytest.mark.parametrize("header", ["Bearer not-a-jwt", "Bearer ", "Token abc", "Bearer a.b.c"])
def test_me_with_a_bad_token_is_unauthorized(api_client, header):
    api_client.credentials(HTTP_AUTHORIZATION=header)

    # "Token abc" is not our scheme: no credentials at all, which is a 401 as well.
    assert_unauthorized(api_client.get("/api/auth/me"))


def test_an_expired_token_is_unauthorized(api_client, user):
    token = AccessToken.for_user(user)
    token.set_exp(from_time=datetime(2020, 1, 1, tzinfo=UTC))
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")

    assert_unauthorized(api_client.get("/api/auth/me"))


def test_changing_the_password_revokes_tokens(alice, user):
    user.set_password("another long passphrase")
    user.save()

    assert_unauthorized(alice.get("/api/auth/me"))


def test_a_deleted_users_token_is_unauthorized(alice, user):
    user.delete()

    assert_unauthorized(alice.get("/api/auth/me"))


def test_the_dashboard_session_works(user):
    client = RecordingAPIClient()
    client.force_login(user)

    response = client.get("/api/auth/me")

    assert response.status_code == 200
    assert body(response)["data"]["email"] == "alice@example.com"


def test_a_session_write_without_csrf_is_forbidden(user, ml_account):
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(user)

    response = client.put(f"/api/ml-accounts/{ml_account.pk}/pause")

    assert_error(response, 403, "FORBIDDEN")
    ml_account.refresh_from_db()
    assert ml_account.status == "active"


def test_a_session_write_with_csrf_works(user, ml_account):
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(user)
    # Django accepts the unmasked 32-character secret in the header, matching the cookie.
    token = "csrf0123456789abcdefghijklmnopqr"
    client.cookies["csrftoken"] = token

    response = client.put(f"/api/ml-accounts/{ml_account.pk}/pause", HTTP_X_CSRFTOKEN=token)

    assert response.status_code == 200
    ml_account.refresh_from_db()
    assert ml_account.status == "paused"
