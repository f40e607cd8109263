"""deadline.py: one overall deadline for every ML call and budget wait inside a block."""

import pytest

from accounts.mercadolivre import deadline, http, ratelimit
from accounts.mercadolivre.errors import MLRateLimited, MLUnavailable
from tests.mlmock import API

# Every answer registered on the `ml` mock must be asked for.
pytestmark = pytest.mark.ml_every_answer_used


def test_without_a_deadline_nothing_is_capped():
    assert deadline.time_left() is None
    assert deadline.cap(25.0) == 25.0


def test_calls_inside_a_deadline_get_timeouts_cut_to_what_is_left(ml, settings):
    settings.ML_CONNECT_TIMEOUT = 5.0
    settings.ML_READ_TIMEOUT = 25.0
    ml.get(f"{API}/sites", json={"ok": True})

    with deadline.within(3):
        http.request_json("GET", "/sites")

    connect, read = ml.calls[0].request.req_kwargs["timeout"]
    assert 0 < connect <= 3
    assert 0 < read <= 3


def test_a_passed_deadline_refuses_to_start_another_call(ml):
    with deadline.within(0), pytest.raises(MLUnavailable) as caught:
        http.request_json("GET", "/sites")

    assert caught.value.code == "deadline"
    assert len(ml.calls) == 0


def test_nested_blocks_keep_the_earlier_deadline():
    with deadline.within(2):
        with deadline.within(60):
            assert deadline.time_left() <= 2
        assert deadline.time_left() <= 2
    assert deadline.time_left() is None


def test_the_budget_wait_never_runs_past_the_deadline(settings, monkeypatch):
    settings.ML_REQUESTS_PER_SECOND = 1
    settings.ML_RATE_LIMIT_MAX_WAIT = 30
    waits = []
    monkeypatch.setattr(ratelimit, "_sleep", waits.append)
    bucket = ratelimit.LocalBucket("deadline-test")
    bucket.take(1)  # empty: the next token comes in about a second

    with deadline.within(0.2), pytest.raises(MLRateLimited) as caught:
        ratelimit.acquire(bucket=bucket)

    assert caught.value.code == "budget_exhausted"
    assert waits == []  # it said so at once instead of sleeping past the deadline


def test_a_5xx_is_retried_only_when_a_whole_retry_fits_before_the_deadline(ml, settings):
    settings.ML_CONNECT_TIMEOUT = 5.0
    settings.ML_READ_TIMEOUT = 20.0
    ml.get(f"{API}/sites", status=503, json={"message": "down", "status": 503})

    with pytest.raises(MLUnavailable):
        http.request_json("GET", "/sites")
    assert len(ml.calls) == 3  # urllib3's retries, with back-off

    with deadline.within(155), pytest.raises(MLUnavailable):  # a worker's sync
        http.request_json("GET", "/sites")
    assert len(ml.calls) == 6

    with deadline.within(20), pytest.raises(MLUnavailable):  # a web request's
        http.request_json("GET", "/sites")
    # urllib3 reuses the first attempt's timeouts: a retry could run past the deadline.
    assert len(ml.calls) == 7
