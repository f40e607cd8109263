"""Shared fixtures for the ML client tests: fixed ML settings and a clean rate budget.

ML itself is the root conftest's `ml` mock; these tests are marked `ml_every_answer_used`.
"""

import pytest

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
