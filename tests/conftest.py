"""The cast: `user` owns accounts, `other_user` is the outsider."""

import os

import pytest
import responses

from sync import tasks
from tests.factories import MLAccountFactory, UserFactory
from tests.mlmock import API

PASSWORD = "correct horse battery staple"


def pytest_collection_modifyitems(config, items):
    # Tests that need a real service run wherever the service is configured (CI sets both);
    # they are skipped only on a machine without it, and say so.
    needs = {"postgres": "DATABASE_URL", "redis": "REDIS_URL"}
    for item in items:
        for marker, variable in needs.items():
            if item.get_closest_marker(marker) and not os.environ.get(variable):
                item.add_marker(pytest.mark.skip(reason=f"needs {variable}"))


@pytest.fixture(autouse=True)
def _fast_settings(settings):
    # Argon2 is deliberately slow; tests hash many passwords.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def user(db):
    return UserFactory(email="alice@example.com", first_name="Alice", last_name="Owner")


@pytest.fixture
def other_user(db):
    return UserFactory(email="charlie@example.com", first_name="Charlie", last_name="Outsider")


@pytest.fixture
def ml_account(user):
    return MLAccountFactory(owner=user, is_primary=True, nickname="LOJA_ALICE", account_name="Loja da Alice")


@pytest.fixture
def client_user(client, user):
    client.force_login(user)
    return client


@pytest.fixture
def ml_settings(settings):
    """A configured (non-sandbox) ML application whose API `responses` can answer for."""
    settings.ML_API_URL = API
    settings.ML_AUTH_URL = ""  # each site's own authorization host
    settings.ML_REDIRECT_URI = ""  # built from the request
    settings.ML_CLIENT_ID = "123"
    settings.ML_CLIENT_SECRET = "s3cret"
    settings.ML_REQUESTS_PER_SECOND = 0
    return settings


@pytest.fixture
def ml(ml_settings, request):
    """Mercado Livre mocked at the HTTP boundary; unmatched requests fail the test.

    The one ML mock of the suite (URLs, bodies and endpoints in tests/mlmock.py). Tests
    marked `ml_every_answer_used` (the ML client's) also fail when a registered answer
    was never asked for.
    """
    every_answer_used = request.node.get_closest_marker("ml_every_answer_used") is not None
    with responses.RequestsMock(assert_all_requests_are_fired=every_answer_used) as rsps:
        yield rsps


@pytest.fixture
def queued(monkeypatch):
    """The ids of the accounts whose sync task was sent to the broker (kept here instead).

    Tasks are sent when the transaction commits: wrap the request in
    `django_capture_on_commit_callbacks(execute=True)` to see them.
    """
    sent = []
    monkeypatch.setattr(
        tasks.sync_account, "apply_async", lambda args=(), kwargs=None, **options: sent.append(args[0])
    )
    return sent


@pytest.fixture
def kicked(monkeypatch):
    """The notification processing tasks sent to the broker: (args, options) each, kept here.

    Tasks are sent when the transaction commits: wrap the request in
    `django_capture_on_commit_callbacks(execute=True)` to see them.
    """
    sent = []
    monkeypatch.setattr(
        tasks.process_account_notifications,
        "apply_async",
        lambda args=(), kwargs=None, **options: sent.append((tuple(args), options)),
    )
    return sent
