"""Schemathesis against the app's own OpenAPI schema, in process through WSGI.

Every operation gets generated requests, valid and invalid, as an authenticated user who
owns a few accounts: path ids are either generated or one of those accounts, so the
success paths run too. Checks: no 5xx, and every status, content type and body is one
the schema documents. Mercado Livre answers from `responses` (valid counts, a new token
pair on every refresh), so syncs and refreshes succeed without any network.

Schemathesis's own pytest plugin (`schema.parametrize()`) does not run on pytest 9.2 (it
sets `Node._nodeid`, which pytest 9.2 removed), so the cases come from its Hypothesis
strategies, its documented API for use outside the plugin.

Every check schemathesis has runs (`validate_response` without a `checks` list), among
them "valid request rejected" (positive_data_acceptance: a request the schema allows must
not get a 4xx other than 401/403/404/409/429) and "invalid request accepted"
(negative_data_rejection). The schema states every rule the server enforces, except the
password rules no JSON Schema can express (similarity to the email or names, Django's
list of common passwords): generated sign-ups breaking those are set aside with `assume`.
"""

import json
import os
import re
import uuid
from itertools import count

import pytest
import responses
import schemathesis
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode

from accounts.models import User
from mlaccounts.api.authentication import access_token_for
from mlaccounts.wsgi import application
from tests.factories import MLAccountFactory
from tests.mlaccounts.api.conftest import COUNT_URLS, TOKEN_URL, record_body, token_answer
from tests.mlaccounts.api.test_schema import CONTRACT

pytestmark = [pytest.mark.fuzz, pytest.mark.django_db(transaction=True)]

MAX_EXAMPLES = int(os.environ.get("FUZZ_MAX_EXAMPLES", "20"))  # raise it for a deeper local run
# The suite explores the same examples on every run (a seed per test), so that a red run
# can be rerun and a green one means the same thing each time. FUZZ_RANDOM=1 (with a larger
# FUZZ_MAX_EXAMPLES) explores afresh: that is how the deep local hunts are run.
DERANDOMIZE = os.environ.get("FUZZ_RANDOM", "") != "1"
# Operations with neither parameters nor a body have no invalid input to generate.
NO_INPUT = {("get", "/api/auth/me"), ("get", "/api/ml-accounts"), ("post", "/api/ml-accounts/sync-all")}
CASES = [
    pytest.param(verb, path, mode, id=f"{verb.upper()} {path} {mode.value}")
    for path, verbs in CONTRACT.items()
    for verb in sorted(verbs)
    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
    if not (mode is GenerationMode.NEGATIVE and (verb, path) in NO_INPUT)
]


def _breaks_an_inexpressible_password_rule(case) -> bool:
    """A well-formed sign-up whose password Django's validators refuse for a reason the
    schema cannot state (too similar to the email or names, a common password)."""
    body = case.body
    if not isinstance(body, dict) or not isinstance(body.get("password"), str):
        return False
    names = {
        key: body.get(key) if isinstance(body.get(key), str) else "" for key in ("firstName", "lastName")
    }
    email = body.get("email") if isinstance(body.get("email"), str) else ""
    try:
        validate_password(
            body["password"], User(email=email, first_name=names["firstName"], last_name=names["lastName"])
        )
    except ValidationError:
        return True
    return False


@pytest.fixture
def fuzz_ml():
    """ML for the fuzzer: every count and every refresh succeeds (a new pair each time)."""
    issued = count(1)
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.get(COUNT_URLS["products"], json={"paging": {"total": 3}, "results": []})
        mock.get(COUNT_URLS["orders"], json={"paging": {"total": 2}, "results": []})
        mock.get(COUNT_URLS["questions"], json={"total": 1, "questions": []})
        mock.get(COUNT_URLS["claims"], json={"paging": {"total": 0}, "data": []})
        mock.add_callback(
            responses.POST,
            TOKEN_URL,
            callback=lambda request: (200, {}, json.dumps(token_answer(next(issued)))),
        )
        yield mock


@pytest.fixture
def fuzz_settings(settings):
    # The fuzzer is one client sending hundreds of requests a minute.
    rates = settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": dict.fromkeys(rates, "100000/min"),
    }
    # Sync-all queues tasks that never run here (the test's transaction never commits):
    # answer at once with every sync still running instead of waiting 20 s each time.
    settings.SYNC_ALL_TIMEOUT = 0.01


@pytest.fixture
def api_schema(fuzz_settings):
    return schemathesis.openapi.from_wsgi("/api/schema/?format=json", application)


@pytest.mark.parametrize(("verb", "path", "mode"), CASES)
def test_the_api_holds_to_its_schema(api_schema, fuzz_ml, user, verb, path, mode):
    account_ids = [str(MLAccountFactory(owner=user, is_primary=(n == 0)).pk) for n in range(3)]
    headers = {"Authorization": f"Bearer {access_token_for(user)}"}
    operation = api_schema[path][verb.upper()]
    strategies = [operation.as_strategy(mode)]
    if "{id}" in path:
        strategies += [
            operation.as_strategy(mode, path_parameters={"id": account_id}) for account_id in account_ids
        ]

    @settings(
        max_examples=MAX_EXAMPLES,
        derandomize=DERANDOMIZE,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large],
    )
    @given(case=st.one_of(strategies))
    def check(case):
        if mode is GenerationMode.POSITIVE and path == "/api/auth/register":
            assume(not _breaks_an_inexpressible_password_rule(case))
        if isinstance(case.body, dict):
            # Valid tokens are any text; Hypothesis likes to reuse one string across fields
            # (a nickname equal to the token), which the leak check cannot tell from a leak.
            # A valid token becomes a unique marked one (still valid: the case keeps its
            # kind), and the leak check looks for the marker itself.
            for field, marker in (("accessToken", "secretaccess"), ("refreshToken", "secretrefresh")):
                value = case.body.get(field)
                if isinstance(value, str) and value.strip() and "\x00" not in value and len(value) <= 2000:
                    case.body[field] = f"{marker}-{uuid.uuid4().hex}"
        response = case.call(headers=headers)
        record_body(response.content)
        case.validate_response(response, headers=headers)
        # On top of the schema (which describes it too): the envelope, and never a token.
        assert response.json()["success"] is (response.status_code < 400)
        assert not re.search(rb"secret(access|refresh)|APP_USR-|TG-NEW", response.content)

    check()
