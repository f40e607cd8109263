"""Look-alike addresses (issue 10.1) and revoking bearer tokens by logging out (10.9)."""

import pytest
from django.urls import reverse

from accounts.models import User
from tests.conftest import PASSWORD
from tests.mlaccounts.api.conftest import (
    RecordingAPIClient,
    assert_error,
    assert_unauthorized,
    body,
    client_for,
)

pytestmark = pytest.mark.django_db

STRONG = "a-long passphrase 4 tests"
LOOKALIKES = ["kate@ſec.test", "kate@ｓec.test", "KATE@SEC.TEST"]


def _lower_rates(settings, **rates):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], **rates},
    }


@pytest.fixture
def kate(db):
    return User.objects.create_user("kate@sec.test", PASSWORD)


def _login(email, password=PASSWORD, **extra):
    return RecordingAPIClient(**extra).post("/api/auth/login", {"email": email, "password": password})


@pytest.mark.parametrize("spelling", LOOKALIKES)
def test_registering_a_lookalike_is_email_exists_and_the_victim_still_logs_in(api_client, kate, spelling):
    assert_error(
        api_client.post("/api/auth/register", {"email": spelling, "password": STRONG}), 409, "EMAIL_EXISTS"
    )

    assert User.objects.count() == 1
    response = _login("kate@sec.test")
    assert response.status_code == 200
    assert body(response)["data"]["user"]["email"] == "kate@sec.test"


@pytest.mark.parametrize("spelling", ["ｋate@sec.test", "kate＠sec.test"])
def test_a_non_ascii_local_part_or_at_sign_is_refused_as_invalid(api_client, kate, spelling):
    # Django's address validator takes ASCII local parts only: refused before any lookup.
    assert_error(
        api_client.post("/api/auth/register", {"email": spelling, "password": STRONG}),
        400,
        "VALIDATION_ERROR",
    )

    assert User.objects.count() == 1
    assert _login("kate@sec.test").status_code == 200


def test_the_attacker_registering_first_takes_the_address_in_canonical_form(api_client):
    response = api_client.post("/api/auth/register", {"email": "kate@ſec.test", "password": STRONG})
    assert response.status_code == 201
    assert body(response)["data"]["user"]["email"] == "kate@sec.test"

    # The real address is then that same (already registered) address, not a second user.
    assert_error(
        api_client.post("/api/auth/register", {"email": "kate@sec.test", "password": STRONG}),
        409,
        "EMAIL_EXISTS",
    )
    assert User.objects.count() == 1


def test_combining_forms_are_the_same_address(api_client):
    response = api_client.post("/api/auth/register", {"email": "jose@cafe\u0301.test", "password": STRONG})
    assert response.status_code == 201
    assert body(response)["data"]["user"]["email"] == "jose@xn--caf-dma.test"

    response = api_client.post("/api/auth/register", {"email": "jose@café.test", "password": STRONG})
    assert_error(response, 409, "EMAIL_EXISTS")
    assert _login("JOSE@CAFÉ.test", STRONG).status_code == 200


def test_dotless_i_is_another_address_and_neither_login_answers_500(api_client):
    victim = User.objects.create_user("victim.user@gmail.com", PASSWORD)
    response = api_client.post("/api/auth/register", {"email": "victim.user@gmaıl.com", "password": STRONG})
    assert response.status_code == 201

    response = _login("victim.user@gmail.com")
    assert response.status_code == 200
    assert body(response)["data"]["user"]["id"] == str(victim.pk)
    assert _login("victim.user@gmaıl.com", STRONG).status_code == 200
    assert_error(_login("victim.user@gmaıl.com", PASSWORD), 401, "INVALID_CREDENTIALS")


@pytest.mark.parametrize("spelling", [*LOOKALIKES, "kate＠sec.test", "ｋate@sec.test"])
def test_login_with_a_lookalike_spelling_is_the_same_user(kate, spelling):
    response = _login(spelling)

    assert response.status_code == 200
    assert body(response)["data"]["user"]["id"] == str(kate.pk)


def test_register_with_an_unencodable_domain_is_a_validation_error(api_client):
    response = api_client.post(
        "/api/auth/register", {"email": "kate@" + "x" * 64 + ".test", "password": STRONG}
    )

    payload = assert_error(response, 400, "VALIDATION_ERROR")
    assert "email" in payload["errors"]


def test_login_with_an_unencodable_domain_is_invalid_credentials(kate):
    assert_error(_login("kate@a..test"), 401, "INVALID_CREDENTIALS")


def test_the_per_email_lockout_covers_lookalikes(settings, kate):
    _lower_rates(settings, login_failures="3/min")
    for n, spelling in enumerate(["kate@ſec.test", "kate@ｓec.test", "KATE@sec.test"]):
        assert _login(spelling, "guess", REMOTE_ADDR=f"10.0.3.{n}").status_code == 401

    assert_error(_login("kate@sec.test", REMOTE_ADDR="10.0.3.99"), 429, "RATE_LIMITED")
    assert_error(_login("kate@ſec.test", REMOTE_ADDR="10.0.3.98"), 429, "RATE_LIMITED")


def test_the_register_email_throttle_covers_lookalikes(settings):
    _lower_rates(settings, register_email="2/min")
    for n, spelling in enumerate(["new@ſec.test", "NEW@ｓec.test"]):
        RecordingAPIClient(REMOTE_ADDR=f"10.0.4.{n}").post(
            "/api/auth/register", {"email": spelling, "password": "1"}
        )

    response = RecordingAPIClient(REMOTE_ADDR="10.0.4.9").post(
        "/api/auth/register", {"email": "new@sec.test", "password": STRONG}
    )

    assert_error(response, 429, "RATE_LIMITED")


# --- logout ------------------------------------------------------------------------------------------


def test_api_logout_revokes_every_token_of_the_caller(user, other_user):
    first, second, others = client_for(user), client_for(user), client_for(other_user)

    response = first.post("/api/auth/logout")

    assert response.status_code == 200
    assert body(response)["success"] is True and body(response)["message"]
    assert_unauthorized(first.get("/api/auth/me"))
    assert_unauthorized(second.get("/api/auth/me"))
    assert others.get("/api/auth/me").status_code == 200
    # A new login gets a working token.
    token = body(_login(user.email))["data"]["token"]
    fresh = RecordingAPIClient()
    fresh.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    assert fresh.get("/api/auth/me").status_code == 200


def test_api_logout_needs_authentication(api_client):
    assert_unauthorized(api_client.post("/api/auth/logout"))


def test_dashboard_logout_revokes_the_bearer_tokens(client, user):
    api = client_for(user)
    assert api.get("/api/auth/me").status_code == 200
    client.force_login(user)

    assert client.post(reverse("account_logout")).status_code == 302

    assert_unauthorized(api.get("/api/auth/me"))
    token = body(_login(user.email))["data"]["token"]
    fresh = RecordingAPIClient()
    fresh.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    assert fresh.get("/api/auth/me").status_code == 200


def test_admin_logout_revokes_the_bearer_tokens(admin_client, admin_user):
    api = client_for(admin_user)

    admin_client.post(reverse("admin:logout"))

    assert_unauthorized(api.get("/api/auth/me"))
