"""The dashboard's token-pair form (issue 12): pasted tokens survive an error, and what was
left empty is read from Mercado Livre's /users/me, under the request's deadline.

ML is the root conftest's `ml` mock at the HTTP boundary (a stalled local server for the
deadline). The assertions read the English source strings.
"""

import logging
from datetime import timedelta

import pytest
import requests
import responses
from django.urls import reverse
from django.utils import timezone
from django.views.debug import SafeExceptionReporterFilter

from accounts.models import MLAccount
from tests.factories import MLAccountFactory
from tests.mlaccounts.api.test_sync_deadline import stalled_ml  # noqa: F401 - a fixture
from tests.mlaccounts.test_views import one_ml_action_a_minute  # noqa: F401 - a fixture
from tests.mlmock import API, ml_error

pytestmark = pytest.mark.django_db

NEW = reverse("dashboard:connect_new")
ML_USER = 2_500_000_001_234
ACCESS = "APP_USR-pasted-access-0001"
REFRESH = "TG-pasted-refresh-0001"
# Only what the form requires: the rest is ML's to tell.
PASTED = {"site": "MLB", "access_token": ACCESS, "refresh_token": REFRESH, "account_type": "individual"}
ME = {"id": ML_USER, "nickname": "LOJA_DO_TOKEN", "email": "token@example.com", "site_id": "MLB"}


@pytest.fixture(autouse=True)
def _english(settings):
    settings.LANGUAGE_CODE = "en"


def users_me(ml, **answer):
    ml.add(responses.GET, API + "/users/me", **(answer or {"json": ME}))


def errors_of(response) -> dict:
    form = response.context["token_form"]
    return {field: [str(e) for e in errors] for field, errors in form.errors.items()}


def assert_tokens_kept(response):
    """The answer is the form again, both pasted tokens still in their (password) inputs."""
    assert response.status_code == 400
    body = response.content.decode()
    for name, value in (("access_token", ACCESS), ("refresh_token", REFRESH)):
        assert f'<input type="password" name="{name}" value="{value}" autocomplete="off"' in body
    assert "no-store" in response["Cache-Control"]  # a page holding tokens is not cached
    assert not MLAccount.objects.exists()


def test_pasted_tokens_are_kept_after_a_validation_error(client_user):
    response = client_user.post(NEW, {**PASTED, "ml_user_id": "12ab", "token_expires_at": "tomorrow"})

    assert_tokens_kept(response)
    errors = errors_of(response)
    assert errors["ml_user_id"] == ["Use digits only."] and "token_expires_at" in errors


def test_the_empty_form_renders_no_token(client_user):
    body = client_user.get(NEW).content.decode()
    assert '<input type="password" name="access_token" autocomplete="off"' in body


def test_left_out_fields_are_read_from_users_me(client_user, user, ml):
    users_me(ml)

    response = client_user.post(NEW, PASTED)

    assert response.status_code == 302
    account = MLAccount.objects.get(workspace__personal_for=user)
    assert (account.ml_user_id, account.nickname, account.email) == (
        ML_USER,
        "LOJA_DO_TOKEN",
        "token@example.com",
    )
    assert account.account_name == "LOJA_DO_TOKEN"
    assert account.access_token == ACCESS and account.refresh_token == REFRESH
    # An expiry left out: an ML access token's lifetime from now (mercadolivre-api.md §1.4).
    expected = timezone.now() + timedelta(hours=6)
    assert expected - timedelta(minutes=1) < account.token_expires_at <= expected
    (call,) = ml.calls
    assert call.request.headers["Authorization"] == f"Bearer {ACCESS}"


def test_what_was_typed_wins_over_users_me(client_user, user, ml):
    users_me(ml)

    client_user.post(
        NEW,
        {
            **PASTED,
            "ml_user_id": str(ML_USER),
            "nickname": "MEU_APELIDO",
            "token_expires_at": "2031-05-04T10:30",
        },
    )

    account = MLAccount.objects.get(workspace__personal_for=user)
    assert (account.nickname, account.email) == ("MEU_APELIDO", "token@example.com")
    assert account.token_expires_at.year == 2031


def test_a_complete_form_asks_ml_nothing(client_user, user, ml):
    typed = {"ml_user_id": str(ML_USER), "nickname": "LOJA", "email": "loja@example.com"}
    response = client_user.post(NEW, {**PASTED, **typed})

    assert response.status_code == 302 and len(ml.calls) == 0
    assert MLAccount.objects.get(workspace__personal_for=user).nickname == "LOJA"


def test_a_reconnect_fills_in_from_users_me_too(client_user, user, ml):
    existing = MLAccountFactory(owner=user, ml_user_id=ML_USER, status="expired", is_primary=True)
    users_me(ml)

    client_user.post(NEW, PASTED)

    existing.refresh_from_db()
    assert existing.status == "active" and existing.access_token == ACCESS
    assert MLAccount.objects.count() == 1


def test_a_token_ml_refuses_is_a_form_error(client_user, ml):
    users_me(ml, json=ml_error("invalid_token"), status=401)

    response = client_user.post(NEW, PASTED)

    assert_tokens_kept(response)
    assert errors_of(response) == {
        "access_token": [
            "Mercado Livre did not accept this access token: it is wrong, expired or revoked. "
            "Paste a current one; nothing was stored."
        ]
    }


def test_ml_timing_out_is_a_form_error(client_user, ml):
    users_me(ml, body=requests.ReadTimeout("read timed out"))

    response = client_user.post(NEW, PASTED)

    assert_tokens_kept(response)
    assert errors_of(response) == {
        "__all__": ["Mercado Livre is not answering right now. Please try again in a few minutes."]
    }


def test_ml_failing_is_a_form_error(client_user, ml):
    users_me(ml, json=ml_error("internal_error"), status=500)

    response = client_user.post(NEW, PASTED)

    assert_tokens_kept(response)
    assert "__all__" in errors_of(response)


def test_a_stalled_ml_is_cut_at_the_request_deadline(client_user, stalled_ml, settings):  # noqa: F811
    # The stalled server holds the answer for 30 s and a read would wait 3 s, then be retried;
    # under SYNC_REQUEST_DEADLINE (0.5 s here) the form gives up after one attempt, with no
    # retry past the deadline (the clock is not measured: no test depends on the machine's speed).
    response = client_user.post(NEW, PASTED)

    assert stalled_ml == ["/users/me"]
    assert_tokens_kept(response)
    assert errors_of(response) == {
        "__all__": ["Mercado Livre is not answering right now. Please try again in a few minutes."]
    }


def test_a_typed_user_id_that_is_not_the_tokens_is_refused(client_user, ml):
    users_me(ml)

    response = client_user.post(NEW, {**PASTED, "ml_user_id": "1234567"})

    assert_tokens_kept(response)
    assert errors_of(response) == {
        "ml_user_id": [
            f"This access token belongs to the Mercado Livre user {ML_USER}, not to 1234567. "
            "Correct the user id, or leave it empty to use the token's."
        ]
    }


def test_the_pasted_tokens_are_never_logged(client_user, ml, caplog):
    caplog.set_level(logging.DEBUG)
    users_me(ml, json=ml_error("internal_error"), status=500)

    client_user.post(NEW, PASTED)
    response = client_user.post(NEW, {**PASTED, "ml_user_id": "12ab"})

    assert caplog.records  # the failures were logged, without the tokens
    for record in caplog.records:
        text = record.getMessage() + " " + " ".join(repr(v) for v in vars(record).values())
        assert ACCESS not in text and REFRESH not in text
    # Nor would a crash report (the 500 email, the debug page) show them.
    reported = SafeExceptionReporterFilter().get_post_parameters(response.wsgi_request)
    assert ACCESS not in reported.values() and REFRESH not in reported.values()
    assert reported["access_token"] == "********************" and reported["site"] == "MLB"


def test_reading_users_me_counts_against_the_ml_action_limit(client_user, ml, one_ml_action_a_minute):  # noqa: F811
    users_me(ml)
    assert client_user.post(NEW, PASTED).status_code == 302
    again = {**PASTED, "access_token": ACCESS + "-second"}

    response = client_user.post(NEW, again)

    assert response.status_code == 429 and response["Retry-After"]
    assert again["access_token"] in response.content.decode()  # the pasted token is kept
    assert len(ml.calls) == 1 and MLAccount.objects.count() == 1
