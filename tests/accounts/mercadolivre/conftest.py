"""Shared fixtures for the ML client tests: fixed ML settings, a clean rate budget, ML mocked."""

import pytest
import responses

from accounts.mercadolivre import ratelimit


@pytest.fixture(autouse=True)
def ml_settings(ml_settings):
    """The root conftest's ML application, plus fixed timeouts and limits these tests read."""
    settings = ml_settings
    settings.ML_SITE_ID = "MLB"
    settings.ML_RATE_LIMIT_MAX_WAIT = 5.0
    settings.ML_CONNECT_TIMEOUT = 3.0
    settings.ML_READ_TIMEOUT = 7.0
    # Local buckets unless a test opts into Redis explicitly.
    settings.REDIS_URL = ""
    return settings


@pytest.fixture(autouse=True)
def clean_budget():
    ratelimit.reset()
    yield
    ratelimit.reset()


@pytest.fixture
def ml():
    """ML mocked at the HTTP boundary; every registered response must be used."""
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        yield mock
