"""A new account syncs at once (issue 12): every way of connecting queues one first sync.

The dashboard's token form and OAuth callback, a reconnect through either, and seed_demo
(`make run`) mark the account "sync requested" (its row reads "first sync…") and enqueue
one `sync.tasks.sync_account` after the commit; a connect that fails, or that leaves the
seller in another workspace, queues nothing. ML is the root conftest's `ml` mock, or the
bundled sandbox where a test runs the queued sync for real. (The API: tests/mlaccounts/api/
test_accounts.py.)
"""

import time
from contextlib import contextmanager

import pytest
import responses
from django.core.management import call_command
from django.urls import reverse

from accounts.mercadolivre import sandbox
from accounts.mercadolivre.sandbox.sellers import standing_orders
from accounts.models import MLAccount
from mlaccounts.celery import app as celery_app
from mlaccounts.management.commands import seed_demo
from sync import ondemand
from tests.factories import MLAccountFactory
from tests.mlaccounts.test_connect import CALLBACK, ML_USER, ml_answers, start
from tests.mlaccounts.test_views import TOKENS as VIEW_TOKENS
from tests.mlmock import API, add_counts, ml_error

pytestmark = pytest.mark.django_db

NEW = reverse("dashboard:connect_new")
# The token form of test_views, for the seller the ML mock answers for.
TOKENS = {**VIEW_TOKENS, "ml_user_id": str(ML_USER)}


@contextmanager
def eager():
    """Run each task in this process as it is enqueued, as the worker would."""
    previous = celery_app.conf.task_always_eager, celery_app.conf.task_eager_propagates
    celery_app.conf.task_always_eager = celery_app.conf.task_eager_propagates = True
    try:
        yield
    finally:
        celery_app.conf.task_always_eager, celery_app.conf.task_eager_propagates = previous


def assert_first_sync_queued(account, queued):
    account.refresh_from_db()
    assert queued == [str(account.pk)]
    # What the overview renders as "first sync…": queued, no numbers yet.
    assert ondemand.sync_phase(account) == "queued" and account.cached_at is None


# --- the dashboard's token form ------------------------------------------------------------------


def test_token_form_connect_queues_the_first_sync(
    client_user, user, ml_settings, queued, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = client_user.post(NEW, TOKENS)
    assert response.status_code == 302
    assert_first_sync_queued(MLAccount.objects.get(workspace__personal_for=user), queued)


def test_token_form_reconnect_queues_a_sync(
    client_user, user, ml_settings, queued, django_capture_on_commit_callbacks
):
    existing = MLAccountFactory(owner=user, ml_user_id=ML_USER, status="expired", is_primary=True)
    with django_capture_on_commit_callbacks(execute=True):
        client_user.post(NEW, TOKENS)
    assert_first_sync_queued(existing, queued)


def test_token_form_connect_shows_numbers_once_the_queued_sync_runs(
    client_user, user, ml, django_capture_on_commit_callbacks
):
    add_counts(ml, products=41, orders=7, questions=2, claims=1)
    with eager(), django_capture_on_commit_callbacks(execute=True):
        client_user.post(NEW, TOKENS)
    account = MLAccount.objects.get(workspace__personal_for=user)
    assert (account.cached_products, account.cached_orders, account.cached_questions) == (41, 7, 2)
    assert account.cached_at is not None and account.last_sync_status == "success"
    assert ondemand.sync_phase(account) == ""  # the mark is gone with the sync


def test_token_form_refused_queues_nothing(
    client_user, ml_settings, queued, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = client_user.post(NEW, {**TOKENS, "ml_user_id": "12ab"})
    assert response.status_code == 400
    assert queued == [] and not MLAccount.objects.exists()


def test_token_form_seller_of_another_workspace_queues_nothing(
    client_user, other_user, ml_settings, queued, django_capture_on_commit_callbacks
):
    theirs = MLAccountFactory(owner=other_user, ml_user_id=ML_USER, is_primary=True)
    with django_capture_on_commit_callbacks(execute=True):
        response = client_user.post(NEW, TOKENS)
    assert response.status_code == 400
    assert queued == []
    assert MLAccount.objects.get(pk=theirs.pk).sync_requested_at is None


def test_token_form_refused_by_ml_queues_nothing(client_user, ml, queued, django_capture_on_commit_callbacks):
    ml.add(responses.GET, API + "/users/me", json=ml_error("invalid_token"), status=401)
    with django_capture_on_commit_callbacks(execute=True):
        response = client_user.post(NEW, {**TOKENS, "ml_user_id": ""})
    assert response.status_code == 400
    assert queued == [] and not MLAccount.objects.exists()


# --- OAuth -----------------------------------------------------------------------------------------


def test_oauth_connect_queues_the_first_sync(
    client_user, user, ml, queued, django_capture_on_commit_callbacks
):
    _, query = start(client_user)
    ml_answers(ml)
    with django_capture_on_commit_callbacks(execute=True):
        client_user.get(CALLBACK, {"code": "TG-abc-1", "state": query["state"]})
    assert_first_sync_queued(MLAccount.objects.get(workspace__personal_for=user), queued)


def test_oauth_reconnect_queues_a_sync(client_user, user, ml, queued, django_capture_on_commit_callbacks):
    existing = MLAccountFactory(owner=user, ml_user_id=ML_USER, status="expired", is_primary=True)
    _, query = start(client_user)
    ml_answers(ml)
    with django_capture_on_commit_callbacks(execute=True):
        client_user.get(CALLBACK, {"code": "TG-abc-1", "state": query["state"]})
    assert_first_sync_queued(existing, queued)


def test_oauth_seller_kept_in_another_workspace_queues_nothing(
    client_user, other_user, ml, queued, django_capture_on_commit_callbacks
):
    # The new pair goes onto the other workspace's account (one grant per seller); this user
    # gets no access, and no sync is queued on their behalf (the scheduler has it: due now).
    theirs = MLAccountFactory(owner=other_user, ml_user_id=ML_USER, is_primary=True)
    _, query = start(client_user)
    ml_answers(ml)
    with django_capture_on_commit_callbacks(execute=True):
        client_user.get(CALLBACK, {"code": "TG-abc-1", "state": query["state"]})
    assert queued == []
    assert MLAccount.objects.get(pk=theirs.pk).sync_requested_at is None


def test_oauth_failures_queue_nothing(client_user, ml, queued, django_capture_on_commit_callbacks):
    _, denied = start(client_user)
    _, failing = start(client_user)
    ml.add(responses.POST, API + "/oauth/token", json={"error": "invalid_grant"}, status=400)
    with django_capture_on_commit_callbacks(execute=True):
        client_user.get(CALLBACK, {"error": "access_denied", "state": denied["state"]})
        client_user.get(CALLBACK, {"code": "TG-abc-1", "state": failing["state"]})
        client_user.get(CALLBACK, {"code": "TG-abc-1", "state": "forged"})
    assert queued == [] and not MLAccount.objects.exists()


# --- make run: seed_demo ---------------------------------------------------------------------------


@pytest.fixture
def demo_state(settings, tmp_path):
    settings.ML_SANDBOX = True
    settings.ML_SANDBOX_STATE_FILE = tmp_path / "sandbox-state.json"
    settings.ML_REQUESTS_PER_SECOND = 0
    return settings.ML_SANDBOX_STATE_FILE


def test_seed_demo_queues_each_demo_sellers_first_sync(
    demo_state, queued, django_capture_on_commit_callbacks, capsys
):
    with django_capture_on_commit_callbacks(execute=True):
        call_command("seed_demo")
    accounts = MLAccount.objects.order_by("ml_user_id")
    assert len(accounts) == seed_demo.DEMO_SELLERS
    assert sorted(queued) == sorted(str(account.pk) for account in accounts)
    assert all(ondemand.sync_phase(account) == "queued" for account in accounts)


def test_seed_demo_sellers_have_numbers_once_the_worker_runs_their_syncs(
    demo_state, settings, django_capture_on_commit_callbacks, capsys
):
    # As under `make run`: the tokens are minted into the state file before the sandbox
    # starts; the queued syncs run once it listens.
    with django_capture_on_commit_callbacks(execute=False) as queued_on_commit:
        call_command("seed_demo")
    with sandbox.start_sandbox(port=0, state_file=demo_state) as server:
        # The sandbox's orders stand still at `frozen`; the syncs count 30 days back from their
        # own clock, read between `frozen` and `done` (an hour may turn meanwhile).
        frozen = time.time()
        server.state.clock = lambda: frozen
        settings.ML_API_URL = server.url
        with eager():
            for callback in queued_on_commit:
                callback()
        done = time.time()
    sellers = {seller.id: seller for seller in sandbox.DEMO_SELLERS[: seed_demo.DEMO_SELLERS]}
    for account in MLAccount.objects.all():
        seller = sellers[account.ml_user_id]
        assert account.cached_at is not None
        assert account.cached_products == seller.listings
        # The standing sales of the sandbox's schedule in the 30 days the sync asked for.
        assert account.cached_orders in {
            standing_orders(seller, since=moment - 30 * 86400, now=frozen) for moment in (frozen, done)
        }
