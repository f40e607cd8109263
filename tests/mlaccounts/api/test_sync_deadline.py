"""POST /api/ml-accounts/:id/sync answers within SYNC_REQUEST_DEADLINE, whatever ML does.

Issue 10 finding 7: with ML answering in 25 s the sync ran past gunicorn's timeout and
answered an HTML 500. Here ML is a local HTTP server that holds every request until the
test ends, so the deadline (0.5 s) is what ends the sync; nothing sleeps to make it happen.
"""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from accounts.models import MLAccount
from tests.mlaccounts.api.conftest import assert_error
from tests.mlmock import add_counts

pytestmark = pytest.mark.django_db


@pytest.fixture
def stalled_ml(settings):
    """An ML that accepts connections and never answers while the test runs."""
    release = threading.Event()
    seen = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            seen.append(self.path)
            release.wait(timeout=30)
            payload = json.dumps({"paging": {"total": 1}, "total": 1, "questions": [], "data": []}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    settings.ML_API_URL = f"http://127.0.0.1:{server.server_port}"
    settings.ML_REQUESTS_PER_SECOND = 0
    # Without the deadline a read would wait this long, then be retried twice.
    settings.ML_READ_TIMEOUT = 3.0
    settings.SYNC_REQUEST_DEADLINE = 0.5
    yield seen
    release.set()
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def test_sync_against_a_stalled_ml_answers_ml_unavailable_at_the_deadline(alice, ml_account, stalled_ml):
    response = alice.post(f"/api/ml-accounts/{ml_account.pk}/sync")

    assert_error(response, 502, "ML_UNAVAILABLE")
    # One attempt: no urllib3 retry (with its own fresh timeout) ran past the deadline.
    assert len(stalled_ml) == 1
    account = MLAccount.objects.get(pk=ml_account.pk)
    assert (account.status, account.last_sync_status, account.sync_started_at) == ("active", "failed", None)


def test_sync_when_the_budget_needs_longer_than_the_deadline_answers_429(alice, ml_account, ml, settings):
    # One request every 2 s: the four counts would wait about 6 s for the budget.
    settings.ML_REQUESTS_PER_SECOND = 0.5
    settings.ML_RATE_LIMIT_MAX_WAIT = 30
    settings.SYNC_REQUEST_DEADLINE = 0.5
    add_counts(ml)

    response = alice.post(f"/api/ml-accounts/{ml_account.pk}/sync")

    assert_error(response, 429, "ML_RATE_LIMITED")
    assert int(response["Retry-After"]) >= 1
    assert len(ml.calls) <= 1
