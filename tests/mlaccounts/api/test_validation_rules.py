"""Only ASCII digits for mlUserId, and a schema stating every rule the server enforces (10.8)."""

import json
import re
from datetime import UTC, datetime

import pytest

from accounts import services
from accounts.errors import AccountValidationError
from accounts.models import MLAccount
from tests.mlaccounts.api.conftest import RecordingAPIClient, assert_error, body, connect_payload

pytestmark = pytest.mark.django_db

NON_ASCII_DIGITS = ["²", "①", "１２３", "١٢٣", "12³"]


@pytest.mark.parametrize("value", [*NON_ASCII_DIGITS, "0", "0123", "-1", "1" * 19, " 123", "12 3", ""])
def test_connect_refuses_an_ml_user_id_that_is_not_ascii_digits(alice, value):
    response = alice.post("/api/ml-accounts", connect_payload(mlUserId=value))

    payload = assert_error(response, 400, "VALIDATION_ERROR")
    assert "mlUserId" in payload["errors"]
    assert not MLAccount.objects.exists()


@pytest.mark.parametrize("value", ["1", "987654321012", "9" * 18, 987654321012])
def test_connect_takes_ascii_digits_or_a_json_integer(alice, value):
    response = alice.post("/api/ml-accounts", connect_payload(mlUserId=value))

    assert response.status_code == 201, response.content
    assert body(response)["data"]["mlUserId"] == str(value)


@pytest.mark.parametrize("value", NON_ASCII_DIGITS)
def test_the_service_refuses_non_ascii_digits_without_error(user, value):
    # "²".isdigit() is true and int("²") raises: this used to be a 500.
    with pytest.raises(AccountValidationError) as error:
        services.mlaccount_connect(
            workspace=services.workspace_personal(user=user),
            connected_by=user,
            ml_user_id=value,
            nickname="X",
            email="",
            access_token="a",
            refresh_token="r",
            token_expires_at=datetime(2030, 1, 1, tzinfo=UTC),
        )
    assert "ml_user_id" in error.value.errors


@pytest.mark.parametrize("value", ["0000", "ML", "MLBX"])
def test_site_ids_follow_the_schema(alice, value):
    response = alice.post("/api/ml-accounts", connect_payload(siteId=value))

    if re.fullmatch(r"[A-Za-z]{2,4}", value):
        assert response.status_code == 201
    else:
        assert "siteId" in assert_error(response, 400, "VALIDATION_ERROR")["errors"]


@pytest.mark.parametrize(
    "value",
    [
        "1999-12-31T23:59:59Z",
        "2100-01-01T00:00:00Z",
        "0001-01-01T00:00:00Z",
        "9999-12-31T23:59:59-05:00",
        "2030-02-30T00:00:00Z",
        "2030-01-01",
        "2030-01-01t00:00:00z",
        "２０３０-01-01T00:00:00Z",
    ],
)
def test_token_expiry_outside_the_stated_range_or_form_is_refused(alice, value):
    response = alice.post("/api/ml-accounts", connect_payload(tokenExpiresAt=value))

    assert "tokenExpiresAt" in assert_error(response, 400, "VALIDATION_ERROR")["errors"]


def test_is_primary_false_is_refused(alice, ml_account):
    response = alice.patch(f"/api/ml-accounts/{ml_account.pk}", {"isPrimary": False})

    assert "isPrimary" in assert_error(response, 400, "VALIDATION_ERROR")["errors"]


# --- the schema states the rules ------------------------------------------------------------------


@pytest.fixture
def components():
    response = RecordingAPIClient().get("/api/schema/?format=json")
    return json.loads(response.content)["components"]["schemas"]


def test_the_schema_states_the_connect_rules(components):
    connect = components["ConnectRequest"]["properties"]
    string, integer = connect["mlUserId"]["oneOf"]
    assert re.fullmatch(string["pattern"], "123") and not re.fullmatch(string["pattern"], "0")
    assert not re.search(string["pattern"], "１２３")
    assert (integer["minimum"], integer["maximum"]) == (1, services.MAX_ML_USER_ID)
    assert connect["siteId"]["pattern"] == services.SITE_ID_PATTERN
    assert not re.search(connect["siteId"]["pattern"], "0000")
    expiry = connect["tokenExpiresAt"]["pattern"]
    assert re.search(expiry, "2030-01-01T10:00:00Z") and re.search(expiry, "2028-02-29T10:00:00+05:30")
    assert not re.search(expiry, "2100-01-01T00:00:00Z") and not re.search(expiry, "2029-02-29T00:00:00Z")
    assert (connect["syncInterval"]["minimum"], connect["syncInterval"]["maximum"]) == (60000, 604800000)
    assert connect["nickname"]["maxLength"] == 255 and not re.search(connect["nickname"]["pattern"], "   ")


def test_the_schema_states_the_password_and_primary_rules(components):
    password = components["RegisterRequest"]["properties"]["password"]
    assert (password["minLength"], password["maxLength"]) == (8, services.MAX_PASSWORD_LENGTH)
    assert not re.search(password["pattern"], "12345678") and re.search(password["pattern"], "1234567a")
    assert components["UpdateRequest"]["properties"]["isPrimary"]["allOf"][0]["$ref"].endswith(
        "SuccessTrueEnum"
    )


def test_the_minimum_password_length_is_the_validators(settings):
    from django.contrib.auth.password_validation import get_default_password_validators

    minimum = [v.min_length for v in get_default_password_validators() if hasattr(v, "min_length")]
    assert minimum == [services.MIN_PASSWORD_LENGTH]


def test_the_text_pattern_spells_out_every_character_the_server_trims():
    # The server trims with str.strip(); a schema regex is ECMA-262, whose `\s` leaves out
    # \x1c-\x1f, so a `\s` pattern let schemathesis send "\x1e" as valid text (then a 400).
    from mlaccounts.api.schema import TEXT_PATTERN

    assert r"\s" not in TEXT_PATTERN
    pattern = re.compile(TEXT_PATTERN)
    trimmed = [chr(c) for c in range(0x110000) if chr(c).isspace()]
    assert [hex(ord(c)) for c in trimmed if pattern.match(c * 3)] == []
    assert pattern.match(" \x1eLoja\x1e ")


def test_an_optional_name_accepts_the_empty_string_in_exactly_one_branch_of_the_schema(client):
    # oneOf means exactly one: "" matched both the pattern branch and drf-spectacular's
    # empty-string branch, so schemathesis took "" for invalid data the server accepted.
    import jsonschema

    schema = client.get("/api/schema/?format=json").json()
    register = schema["components"]["schemas"]["RegisterRequest"]["properties"]
    for field in ("firstName", "lastName"):
        jsonschema.validate("", register[field])
        jsonschema.validate("Ana", register[field])
