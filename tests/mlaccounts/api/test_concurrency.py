"""Simultaneous API calls on one account, on PostgreSQL's real row locks.

ML's refresh tokens are single-use and only the latest one works: the mock below
enforces that, so a second refresh with an already-used token would get invalid_grant
and leave the account with a dead pair.
"""

import json
import threading

import pytest
import responses
from django.db import connection

from accounts.models import MLAccount
from tests.factories import MLAccountFactory
from tests.mlaccounts.api.conftest import COUNT_URLS, TOKEN_URL, body, client_for
from tests.mlmock import RotatingTokenEndpoint
from tests.threads import run_together

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_simultaneous_refreshes_leave_a_working_token_pair(user):
    assert connection.vendor == "postgresql"
    account = MLAccountFactory(owner=user, is_primary=True)
    # The barrier in run_together starts the five at once; however they overlap, correct
    # code ends with one working pair and never a refresh with a used token.
    ml = RotatingTokenEndpoint(user_id=account.ml_user_id, current_refresh=account.refresh_token)
    clients = [client_for(user) for _ in range(5)]
    url = f"/api/ml-accounts/{account.pk}/refresh-token"

    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.add_callback(responses.POST, TOKEN_URL, callback=ml)
        answers, errors = run_together([lambda c=c: c.put(url) for c in clients])
        assert errors == []

        assert [a.status_code for a in answers] == [200] * 5, [a.content for a in answers]
        assert ml.invalid_grants == 0
        assert 1 <= ml.issued <= 5
        stored = MLAccount.objects.get(pk=account.pk)
        assert stored.status == "active"
        # The stored pair is the latest ML issued: the next refresh works.
        assert stored.refresh_token == ml.current
        assert stored.access_token == ml.last_access
        assert clients[0].post(url).status_code == 200
        assert ml.invalid_grants == 0
        assert {body(a)["data"]["status"] for a in answers} == {"active"}


def test_simultaneous_syncs_run_one_and_answer_sync_in_progress_to_the_rest(user):
    account = MLAccountFactory(owner=user, is_primary=True)
    clients = [client_for(user) for _ in range(5)]
    # ML answers the sync that got in only once the four others have been answered: they
    # overlap it for certain, with no sleep. (Were two let through, one would wait here and
    # the test would fail on the statuses, not hang: the wait is bounded.)
    lock, refused, others_answered = threading.Lock(), [], threading.Event()

    def sync(client):
        answer = client.post(f"/api/ml-accounts/{account.pk}/sync")
        with lock:
            refused.append(answer.status_code == 409)
            if sum(refused) == len(clients) - 1:
                others_answered.set()
        return answer

    def held_count(request):
        others_answered.wait(timeout=30)
        return (
            200,
            {},
            json.dumps({"paging": {"total": 1}, "total": 1, "questions": [], "data": [], "results": []}),
        )

    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        for url in COUNT_URLS.values():
            mock.add_callback(responses.GET, url, callback=held_count)
        answers, errors = run_together([lambda c=c: sync(c) for c in clients])
    assert errors == []

    statuses = sorted(a.status_code for a in answers)
    assert statuses == [200, 409, 409, 409, 409], [a.content for a in answers]
    assert {body(a)["code"] for a in answers if a.status_code == 409} == {"SYNC_IN_PROGRESS"}
    stored = MLAccount.objects.get(pk=account.pk)
    assert (stored.last_sync_status, stored.sync_started_at, stored.cached_products) == ("success", None, 1)
