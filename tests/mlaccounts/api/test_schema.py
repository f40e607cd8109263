"""The OpenAPI schema (/api/schema/) and its browsable docs (/api/docs/), with no CDN."""

import json
import re

import pytest
import yaml
from django.core.management import call_command

from tests.mlaccounts.api.conftest import RecordingAPIClient

pytestmark = pytest.mark.django_db

# api-contract.md, row by row: path -> verbs.
CONTRACT = {
    "/api/auth/register": {"post"},
    "/api/auth/login": {"post"},
    "/api/auth/logout": {"post"},
    "/api/auth/me": {"get"},
    "/api/ml-accounts": {"get", "post"},
    "/api/ml-accounts/{id}": {"get", "put", "patch", "delete"},
    "/api/ml-accounts/{id}/sync": {"post"},
    "/api/ml-accounts/sync-all": {"post"},
    "/api/ml-accounts/{id}/pause": {"put", "post"},
    "/api/ml-accounts/{id}/resume": {"put", "post"},
    "/api/ml-accounts/{id}/refresh-token": {"put", "post"},
    "/api/ml-accounts/{id}/token-info": {"get"},
    # Additions after the seed: the asynchronous sync-all's job.
    "/api/sync-jobs/{id}": {"get"},
    "/api/workspaces": {"get", "post"},
    "/api/workspaces/{id}": {"get", "patch", "delete"},
    "/api/workspaces/{id}/members": {"get"},
    "/api/workspaces/{id}/members/{userId}": {"patch", "delete"},
    "/api/workspaces/{id}/invitations": {"get", "post"},
    "/api/workspaces/{id}/invitations/{invitationId}": {"delete"},
    "/api/invitations/{token}/accept": {"post"},
    "/api/notifications/health": {"get"},
    "/api/questions": {"get"},
    "/api/questions/{id}/answer": {"post"},
    "/api/ml-accounts/{id}/metrics": {"get"},
    "/api/metrics/summary": {"get"},
    "/api/claims": {"get"},
    "/api/audit": {"get"},
    "/api/ml-accounts/{id}/reconnect-link": {"post"},
}


@pytest.fixture
def schema():
    response = RecordingAPIClient().get("/api/schema/?format=json")
    assert response.status_code == 200
    return json.loads(response.content)


def test_the_schema_is_public_and_served_as_yaml_by_default():
    response = RecordingAPIClient().get("/api/schema")

    assert response.status_code == 200
    assert yaml.safe_load(response.content)["openapi"].startswith("3.")


def test_the_schema_validates_without_warnings(tmp_path):
    # The same check as `manage.py spectacular --validate --fail-on-warn`.
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "schema.yaml"))


def test_the_schema_has_every_contract_operation_and_nothing_else(schema):
    published = {
        path: {verb for verb in item if verb in {"get", "post", "put", "patch", "delete"}}
        for path, item in schema["paths"].items()
    }

    assert published == CONTRACT


def test_every_answer_of_every_operation_is_an_envelope(schema):
    for path, item in schema["paths"].items():
        for verb, operation in item.items():
            for status, answer in operation["responses"].items():
                ref = answer["content"]["application/json"]["schema"]["$ref"]
                component = schema["components"]["schemas"][ref.rsplit("/", 1)[1]]
                assert "success" in component["required"], (path, verb, status)
                if status.startswith(("4", "5")):
                    assert {"message", "code"} <= set(component["required"]), (path, verb, status)
            if "security" in operation and operation["security"] != [{}]:
                # Authenticated operations document 401 and the throttle's 429.
                assert {"401", "429"} <= set(operation["responses"]), (path, verb)


def _codes(schema, path, verb, status):
    ref = schema["paths"][path][verb]["responses"][status]["content"]["application/json"]["schema"]["$ref"]
    code = schema["components"]["schemas"][ref.rsplit("/", 1)[1]]["properties"]["code"]
    enum = schema["components"]["schemas"][code["$ref"].rsplit("/", 1)[1]]
    return set(enum["enum"])


def test_the_schema_names_each_documented_error_code(schema):
    assert _codes(schema, "/api/ml-accounts/{id}/sync", "post", "401") == {"TOKEN_EXPIRED", "UNAUTHORIZED"}
    assert _codes(schema, "/api/ml-accounts/{id}/sync", "post", "429") == {"ML_RATE_LIMITED", "RATE_LIMITED"}
    assert _codes(schema, "/api/ml-accounts/{id}/sync", "post", "502") == {"ML_UNAVAILABLE"}
    assert _codes(schema, "/api/ml-accounts/{id}/sync", "post", "409") == {"SYNC_IN_PROGRESS"}
    assert _codes(schema, "/api/ml-accounts", "post", "409") == {
        "ACCOUNT_EXISTS",
        "ACCOUNT_CONNECTED_ELSEWHERE",
    }
    assert _codes(schema, "/api/ml-accounts/{id}", "patch", "403") == {"FORBIDDEN"}
    assert _codes(schema, "/api/invitations/{token}/accept", "post", "400") == {"INVITATION_INVALID"}
    assert _codes(schema, "/api/auth/register", "post", "409") == {"EMAIL_EXISTS"}
    assert _codes(schema, "/api/auth/login", "post", "400") >= {"MISSING_CREDENTIALS"}
    assert _codes(schema, "/api/auth/login", "post", "401") == {"INVALID_CREDENTIALS"}
    assert _codes(schema, "/api/ml-accounts/{id}/refresh-token", "put", "400") == {"NO_REFRESH_TOKEN"}
    assert _codes(schema, "/api/ml-accounts/{id}/refresh-token", "put", "401") == {
        "TOKEN_REFRESH_FAILED",
        "UNAUTHORIZED",
    }


def test_the_schema_speaks_camel_case_and_hides_tokens(schema):
    components = schema["components"]["schemas"]
    account = components["MLAccount"]["properties"]
    assert {"mlUserId", "syncInterval", "cachedData", "tokenExpiresAt", "lastSyncStatus"} <= set(account)
    assert not {"accessToken", "refreshToken"} & set(account)
    connect = components["ConnectRequest"]
    assert set(connect["required"]) == {
        "mlUserId",
        "nickname",
        "email",
        "accessToken",
        "refreshToken",
        "tokenExpiresAt",
    }
    assert connect["properties"]["syncInterval"]["minimum"] == 60000
    for name, component in components.items():
        for field in component.get("properties", {}):
            assert re.fullmatch(r"[a-z][A-Za-z0-9]*", field), (name, field)  # lagP95Seconds


def test_the_docs_are_served_without_any_cdn():
    client = RecordingAPIClient()

    page = client.get("/api/docs/")

    assert page.status_code == 200
    html = page.content.decode()
    assets = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert assets
    for asset in assets:
        assert asset.startswith("/"), asset  # same origin, never a CDN
    script = client.get("/api/docs/?script=")
    assert script.status_code == 200
    assert 'url: "/api/schema"' in script.content.decode()
    bundle = next(asset for asset in assets if asset.endswith("swagger-ui-bundle.js"))
    assert client.get(bundle).status_code == 200


def test_the_schema_documents_the_asynchronous_sync_all(schema):
    operation = schema["paths"]["/api/ml-accounts/sync-all"]["post"]
    prefer = [p for p in operation["parameters"] if p["in"] == "header"]
    assert [p["name"] for p in prefer] == ["Prefer"]
    assert "respond-async" in prefer[0]["description"]
    assert {"200", "202"} <= set(operation["responses"])
    accepted = operation["responses"]["202"]["content"]["application/json"]["schema"]["$ref"]
    job = schema["paths"]["/api/sync-jobs/{id}"]["get"]
    assert job["responses"]["200"]["content"]["application/json"]["schema"]["$ref"] == accepted
    assert _codes(schema, "/api/sync-jobs/{id}", "get", "404") == {"NOT_FOUND"}
    assert {"401", "429"} <= set(job["responses"])
