"""Sentry (mlaccounts/sentry.py): what an event may carry once scrubbed, and how it is started.

The scrubbing functions are plain and need no DSN; one test sends a real event through a
sentry-sdk client whose transport keeps it here, so what sentry-sdk itself gathers (local
variables, the exception's text) is scrubbed too.
"""

import json
from unittest import mock

import pytest
import sentry_sdk
from sentry_sdk.integrations.celery import CeleryIntegration
from sentry_sdk.integrations.django import DjangoIntegration
from sentry_sdk.transport import Transport

from mlaccounts import sentry
from mlaccounts.sentry import FILTERED

ACCESS = "APP_USR-123-010203-0123456789abcdef0123456789abcdef-4000000007"
REFRESH = "TG-5f1e0123456789abcdef01-4000000007"
API_JWT = "eyJhbGciOiJIUzI1NiJ9.eyJ1c2VyX2lkIjoxfQ.c2lnbmF0dXJl"
SECRET_PATH = "/webhooks/mercadolivre/test-webhook-secret-0123456789abcdef/"


def test_sensitive_keys_are_filtered_at_any_depth():
    event = {
        "extra": {
            "account": {"id": 7, "access_token": ACCESS, "tokens": {"refresh_token": REFRESH}},
            "pair": [{"client_secret": "s3cr3t", "code_verifier": "v" * 43, "status": "active"}],
            "Password": "hunter2",
            "ML_WEBHOOK_SECRET": "abc",
            "sessionid": "xyz",
        }
    }

    scrubbed = sentry.scrub_event(event)

    assert scrubbed["extra"]["account"] == {"id": 7, "access_token": FILTERED, "tokens": FILTERED}
    assert scrubbed["extra"]["pair"] == [
        {"client_secret": FILTERED, "code_verifier": FILTERED, "status": "active"}
    ]
    assert {scrubbed["extra"][key] for key in ("Password", "ML_WEBHOOK_SECRET", "sessionid")} == {FILTERED}
    assert event["extra"]["account"]["access_token"] == ACCESS  # a copy: the original is left alone


def test_headers_and_cookies_are_filtered_as_a_dict_or_as_pairs():
    event = {
        "request": {
            "url": "https://example.com" + SECRET_PATH,
            "headers": {"Authorization": f"Bearer {API_JWT}", "Cookie": "sessionid=abc", "Accept": "*/*"},
            "cookies": {"sessionid": "abc", "csrftoken": "def"},
            "query_string": f"code={REFRESH}&state=st4te&page=2",
        },
        "breadcrumbs": {
            "values": [{"data": {"headers": [["Authorization", f"Bearer {ACCESS}"], ["X-Id", "1"]]}}]
        },
    }

    scrubbed = sentry.scrub_event(event)
    request = scrubbed["request"]

    assert request["headers"] == {"Authorization": FILTERED, "Cookie": FILTERED, "Accept": "*/*"}
    assert request["cookies"] == FILTERED
    assert request["url"] == "https://example.com/webhooks/mercadolivre/[Filtered]/"
    assert REFRESH not in request["query_string"] and "page=2" in request["query_string"]
    assert scrubbed["breadcrumbs"]["values"][0]["data"]["headers"] == [
        ["Authorization", FILTERED],
        ["X-Id", "1"],
    ]


@pytest.mark.parametrize(
    ("text", "kept"),
    [
        (
            f"ML GET /users/me with Authorization: Bearer {ACCESS} failed",
            "ML GET /users/me with Authorization: Bearer",
        ),
        (f"token pair {ACCESS} / {REFRESH} stored", "token pair"),
        (f"RefreshClaim(account_id='7', refresh_token='{REFRESH}')", "RefreshClaim(account_id='7'"),
        (f'{{"access_token": "{ACCESS}", "expires_in": 21600}}', '"expires_in": 21600'),
        (
            f"grant_type=refresh_token&refresh_token={REFRESH}&client_secret=abc123",
            "grant_type=refresh_token",
        ),
        (f"POST {SECRET_PATH} answered 400", "/webhooks/mercadolivre/[Filtered]/"),
        ("token=abcdef123456&x=1", "&x=1"),
    ],
)
def test_token_shaped_text_is_filtered(text, kept):
    scrubbed = sentry.scrub_text(text)

    assert kept in scrubbed
    for secret in (ACCESS, REFRESH, "abc123", "abcdef123456", "test-webhook-secret"):
        assert secret not in scrubbed


def test_ordinary_values_are_left_alone():
    event = {
        "message": "sync failed: Mercado Livre is unavailable (code=503)",
        "extra": {"status": "expired", "outcome": "invalid_grant", "ml_calls": 4, "token_count": None},
        "tags": {"event": "token_refresh"},
    }

    assert sentry.scrub_event(event) == event


def test_breadcrumbs_are_scrubbed():
    crumb = {
        "category": "httplib",
        "data": {"url": f"https://api.mercadolibre.com/oauth/token?code={REFRESH}"},
    }

    assert REFRESH not in json.dumps(sentry.scrub_breadcrumb(crumb, {}))


def test_an_event_sentry_sdk_gathers_reaches_the_transport_scrubbed():
    sent = []

    class Keep(Transport):
        def capture_envelope(self, envelope):
            sent.extend(item.payload.json for item in envelope.items if item.payload.json)

    def refresh(refresh_token, headers):
        raise RuntimeError(f"refresh failed for {refresh_token} with {headers['Authorization']}")

    # A client of its own on a scope of its own: nothing global is switched on for other tests.
    client = sentry_sdk.Client(
        dsn="https://public@sentry.invalid/1",
        transport=Keep,
        default_integrations=False,
        before_send=sentry.scrub_event,
        before_breadcrumb=sentry.scrub_breadcrumb,
    )
    try:
        with sentry_sdk.new_scope() as scope:
            scope.set_client(client)
            scope.add_breadcrumb(message=f"calling ML with Bearer {ACCESS}")
            try:
                refresh(REFRESH, {"Authorization": f"Bearer {ACCESS}"})
            except RuntimeError as error:
                scope.capture_exception(error)
        client.flush()
    finally:
        client.close()

    assert sent, "the event was not captured"
    payload = json.dumps(sent)
    assert "refresh failed for" in payload  # the event is there…
    assert ACCESS not in payload and REFRESH not in payload  # …without the tokens


def test_init_turns_on_django_and_celery_without_personal_data_or_bodies():
    with mock.patch("sentry_sdk.init") as init:
        sentry.init(dsn="https://public@sentry.invalid/1")

    options = init.call_args.kwargs
    assert options["dsn"] == "https://public@sentry.invalid/1"
    assert options["send_default_pii"] is False
    assert options["max_request_body_size"] == "never"
    assert options["before_send"] is sentry.scrub_event
    assert options["before_breadcrumb"] is sentry.scrub_breadcrumb
    assert {type(integration) for integration in options["integrations"]} == {
        DjangoIntegration,
        CeleryIntegration,
    }


def test_settings_start_sentry_only_with_a_dsn(settings):
    assert settings.SENTRY_DSN == ""
    assert sentry_sdk.get_client().is_active() is False
