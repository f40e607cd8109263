"""Shared fixtures for the ML client tests: fixed ML settings, a clean rate budget, ML mocked."""

import pytest
import responses

from accounts.mercadolivre import ratelimit
from tests.accounts.mercadolivre import API


@pytest.fixture(autouse=True)
def ml_settings(settings):
    settings.ML_API_URL = API
    settings.ML_AUTH_URL = ""
    settings.ML_SITE_ID = "MLB"
    settings.ML_CLIENT_ID = "123"
    settings.ML_CLIENT_SECRET = "s3cret"
    settings.ML_REQUESTS_PER_SECOND = 0
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
