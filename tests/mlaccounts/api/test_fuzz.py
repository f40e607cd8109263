"""Schemathesis against the app's own OpenAPI schema, in process through WSGI.

Every operation gets generated requests, valid and invalid, as an authenticated user who
owns a few accounts: path ids are either generated or one of those accounts, so the
success paths run too. Checks: no 5xx, and every status, content type and body is one
the schema documents. Mercado Livre answers from `responses` (valid counts, a new token
pair on every refresh), so syncs and refreshes succeed without any network.

Schemathesis's own pytest plugin (`schema.parametrize()`) does not run on pytest 9.2 (it
sets `Node._nodeid`, which pytest 9.2 removed), so the cases come from its Hypothesis
strategies, its documented API for use outside the plugin.
"""

import json
import os
import re
from itertools import count

import pytest
import responses
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from mlaccounts.api.authentication import access_token_for
from mlaccounts.wsgi import application
from tests.factories import MLAccountFactory
from tests.mlaccounts.api.conftest import COUNT_URLS, TOKEN_URL, record_body, token_answer
from tests.mlaccounts.api.test_schema import CONTRACT

pytestmark = [pytest.mark.fuzz, pytest.mark.django_db(transaction=True)]

MAX_EXAMPLES = int(os.environ.get("FUZZ_MAX_EXAMPLES", "20"))  # raise it for a deeper local run
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
# Operations with neither parameters nor a body have no invalid input to generate.
NO_INPUT = {("get", "/api/auth/me"), ("get", "/api/ml-accounts"), ("post", "/api/ml-accounts/sync-all")}
CASES = [
    pytest.param(verb, path, mode, id=f"{verb.upper()} {path} {mode.value}")
    for path, verbs in CONTRACT.items()
    for verb in sorted(verbs)
    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
    if not (mode is GenerationMode.NEGATIVE and (verb, path) in NO_INPUT)
]


@pytest.fixture
def fuzz_ml():
    """ML for the fuzzer: every count and every refresh succeeds (a new pair each time)."""
    issued = count(1)
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.get(COUNT_URLS["products"], json={"paging": {"total": 3}})
        mock.get(COUNT_URLS["orders"], json={"paging": {"total": 2}})
        mock.get(COUNT_URLS["questions"], json={"total": 1})
        mock.get(COUNT_URLS["claims"], json={"paging": {"total": 0}})
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
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large],
    )
    @given(case=st.one_of(strategies))
    def check(case):
        response = case.call(headers=headers)
        record_body(response.content)
        case.validate_response(response, checks=CHECKS)
        # On top of the schema (which describes it too): the envelope, and never a token.
        assert response.json()["success"] is (response.status_code < 400)
        assert not re.search(rb"secret(access|refresh)|APP_USR-|TG-NEW", response.content)

    check()
