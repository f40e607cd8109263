"""ratelimit.py: the app-wide ML request budget (§5.2), local and shared through Redis."""

import logging
import os
import time
import uuid

import pytest
import redis

from accounts.mercadolivre import ratelimit
from accounts.mercadolivre.errors import MLRateLimited

REDIS_URL = os.environ.get("REDIS_URL")
needs_redis = pytest.mark.skipif(not REDIS_URL, reason="REDIS_URL is not set")


class FakeClock:
    """A monotonic clock that only moves when told to (or when someone sleeps)."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture
def clock(monkeypatch):
    fake = FakeClock()
    monkeypatch.setattr(ratelimit, "_monotonic", fake)
    monkeypatch.setattr(ratelimit, "_sleep", fake.sleep)
    return fake


@pytest.fixture
def bucket(clock):
    return ratelimit.LocalBucket("test", clock=clock)


# --- The local bucket ---------------------------------------------------------------------------


def test_bucket_allows_a_burst_of_about_one_second_then_asks_to_wait(bucket):
    assert [bucket.take(5) for _ in range(5)] == [0.0] * 5

    assert bucket.take(5) == pytest.approx(0.2)


def test_bucket_refills_with_elapsed_time(bucket, clock):
    for _ in range(5):
        bucket.take(5)

    clock.now += 0.4

    assert bucket.take(5) == 0.0
    assert bucket.take(5) == 0.0
    assert bucket.take(5) == pytest.approx(0.2)


def test_bucket_never_holds_more_than_its_capacity(bucket, clock):
    bucket.take(5)
    clock.now += 3600

    assert [bucket.take(5) for _ in range(5)] == [0.0] * 5
    assert bucket.take(5) > 0


def test_slow_rates_still_allow_one_request(bucket):
    assert bucket.take(0.5) == 0.0

    assert bucket.take(0.5) == pytest.approx(2.0)


def test_block_empties_the_bucket_and_refills_only_afterwards(bucket, clock):
    bucket.block(3.0)

    assert bucket.take(10) == pytest.approx(3.0)
    clock.now += 3.0
    assert bucket.take(10) == pytest.approx(0.1)  # empty when the block lifts: no burst
    clock.now += 0.1
    assert bucket.take(10) == 0.0


def test_bucket_reset_forgets_everything(bucket):
    bucket.block(60)

    bucket.reset()

    assert bucket.take(1) == 0.0


# --- acquire() ----------------------------------------------------------------------------------


def test_acquire_sleeps_until_the_budget_allows(settings, bucket, clock):
    settings.ML_REQUESTS_PER_SECOND = 2

    for _ in range(4):
        ratelimit.acquire(bucket=bucket)

    # Two burst tokens, then one every 0.5 s (plus at most 0.05 s of jitter).
    assert len(clock.sleeps) == 2
    assert all(0.45 <= seconds <= 0.55 for seconds in clock.sleeps)
    assert clock.now == pytest.approx(1001.0, abs=0.1)


def test_spare_takes_a_token_free_now_or_soon_and_never_waits_longer(settings, bucket, clock):
    settings.ML_REQUESTS_PER_SECOND = 5  # a burst of five, then one every 0.2 s
    assert [ratelimit.spare(bucket=bucket) for _ in range(5)] == [True] * 5
    assert clock.sleeps == []

    assert ratelimit.spare(bucket=bucket) is True  # the next one, 0.2 s away: waited for
    assert clock.sleeps == [pytest.approx(0.2)]

    settings.ML_REQUESTS_PER_SECOND = 1  # one a second: further than SPARE_WAIT
    bucket.reset()
    ratelimit.acquire(bucket=bucket)
    before = clock.now
    assert ratelimit.spare(bucket=bucket) is False
    assert clock.now == before  # nothing waited, no token taken
    clock.now += 1.0
    assert ratelimit.acquire(max_wait=0, bucket=bucket) is None  # the token was still there


def test_spare_is_always_true_with_the_limiter_off(settings, bucket, clock):
    settings.ML_REQUESTS_PER_SECOND = 0
    assert all(ratelimit.spare(bucket=bucket) for _ in range(100))


def test_acquire_gives_up_after_max_wait(settings, bucket, clock):
    settings.ML_REQUESTS_PER_SECOND = 1
    ratelimit.acquire(bucket=bucket)

    with pytest.raises(MLRateLimited) as caught:
        ratelimit.acquire(max_wait=0.5, bucket=bucket)

    assert caught.value.code == "budget_exhausted"
    assert caught.value.status is None
    assert caught.value.retry_after == pytest.approx(1.0)
    assert clock.sleeps == []


def test_acquire_defaults_to_the_configured_max_wait(settings, bucket, clock):
    settings.ML_REQUESTS_PER_SECOND = 1
    settings.ML_RATE_LIMIT_MAX_WAIT = 2.0
    ratelimit.acquire(bucket=bucket)

    ratelimit.acquire(bucket=bucket)  # waits 1 s: within 2 s
    bucket.block(5.0)
    with pytest.raises(MLRateLimited) as caught:
        ratelimit.acquire(bucket=bucket)

    assert caught.value.retry_after == pytest.approx(5.0)
    assert len(clock.sleeps) == 1


def test_acquire_is_unlimited_when_the_rate_is_zero(settings, bucket, clock):
    settings.ML_REQUESTS_PER_SECOND = 0

    for _ in range(1000):
        ratelimit.acquire(bucket=bucket)

    assert clock.sleeps == []


def test_acquire_reads_the_rate_at_call_time(settings, bucket, clock):
    settings.ML_REQUESTS_PER_SECOND = 1
    ratelimit.acquire(bucket=bucket)
    with pytest.raises(MLRateLimited):
        ratelimit.acquire(max_wait=0, bucket=bucket)

    settings.ML_REQUESTS_PER_SECOND = 0

    ratelimit.acquire(max_wait=0, bucket=bucket)
    assert clock.sleeps == []


def test_acquire_paces_real_time_requests(settings):
    settings.ML_REQUESTS_PER_SECOND = 20
    bucket = ratelimit.LocalBucket(f"real-{uuid.uuid4()}")

    started = time.monotonic()
    for _ in range(24):
        ratelimit.acquire(bucket=bucket)
    elapsed = time.monotonic() - started

    # 20 come from the burst, the next 4 at 20/s: at least 0.2 s however fast the machine
    # (less a little jitter). No upper bound: a busy machine may take longer, and the waits
    # themselves are checked exactly with the fake clock above.
    assert elapsed >= 0.15


# --- penalize() ---------------------------------------------------------------------------------


def test_penalize_blocks_new_tokens_for_retry_after(settings, bucket, clock):
    settings.ML_REQUESTS_PER_SECOND = 10

    ratelimit.penalize(4.0, bucket=bucket)

    assert bucket.take(10) == pytest.approx(4.0)
    with pytest.raises(MLRateLimited) as caught:
        ratelimit.acquire(max_wait=1, bucket=bucket)
    assert caught.value.retry_after == pytest.approx(4.0)


def test_penalize_without_retry_after_uses_the_default(settings, bucket):
    settings.ML_REQUESTS_PER_SECOND = 10

    ratelimit.penalize(None, bucket=bucket)

    assert bucket.take(10) == pytest.approx(ratelimit.DEFAULT_PENALTY)


def test_penalize_caps_absurd_retry_after(settings, bucket):
    settings.ML_REQUESTS_PER_SECOND = 10

    ratelimit.penalize(86400.0, bucket=bucket)

    assert bucket.take(10) == pytest.approx(ratelimit.MAX_PENALTY)


def test_acquire_waits_out_a_penalty(settings, bucket, clock):
    settings.ML_REQUESTS_PER_SECOND = 10
    ratelimit.penalize(2.0, bucket=bucket)

    ratelimit.acquire(max_wait=5, bucket=bucket)

    assert clock.now >= 1002.0


def test_penalize_is_a_no_op_when_the_limiter_is_off(settings, bucket):
    settings.ML_REQUESTS_PER_SECOND = 0

    ratelimit.penalize(30.0, bucket=bucket)

    assert bucket.take(1) == 0.0


# --- Configuration ------------------------------------------------------------------------------


def test_get_bucket_is_local_without_redis(settings):
    settings.REDIS_URL = ""

    bucket = ratelimit.get_bucket()

    assert isinstance(bucket, ratelimit.LocalBucket)
    assert ratelimit.get_bucket() is bucket
    assert ratelimit.get_bucket("other") is not bucket


def test_get_bucket_uses_redis_when_configured(settings):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # never contacted by get_bucket itself

    assert isinstance(ratelimit.get_bucket(f"cfg-{uuid.uuid4()}"), ratelimit.RedisBucket)


def test_reset_clears_every_bucket(settings):
    settings.ML_REQUESTS_PER_SECOND = 1
    ratelimit.acquire()
    with pytest.raises(MLRateLimited):
        ratelimit.acquire(max_wait=0)

    ratelimit.reset()

    ratelimit.acquire(max_wait=0)
    assert isinstance(ratelimit.get_bucket(), ratelimit.LocalBucket)


def test_redis_errors_fall_back_to_a_local_bucket_and_warn_once(caplog):
    clock = FakeClock()
    # Nothing listens on port 1: every Redis call fails fast with a ConnectionError.
    bucket = ratelimit.RedisBucket(f"down-{uuid.uuid4()}", url="redis://127.0.0.1:1/0", clock=clock)

    with caplog.at_level(logging.WARNING, logger="accounts.mercadolivre.ratelimit"):
        assert bucket.take(2) == 0.0
        assert bucket.take(2) == 0.0
        assert bucket.take(2) == pytest.approx(0.5)  # the local fallback is a real bucket
        clock.now += ratelimit.REDIS_RETRY_INTERVAL + 1  # try Redis again: still down
        bucket.take(2)
        bucket.block(1.0)

    warnings = [record for record in caplog.records if "Redis unavailable" in record.getMessage()]
    assert len(warnings) == 1


# --- Redis: one budget for every process ----------------------------------------------------------


@pytest.fixture
def redis_buckets():
    """Two buckets with one name and separate connections, like two worker processes."""
    name = f"test-{uuid.uuid4()}"
    first = ratelimit.RedisBucket(name, url=REDIS_URL, client=redis.Redis.from_url(REDIS_URL))
    second = ratelimit.RedisBucket(name, url=REDIS_URL, client=redis.Redis.from_url(REDIS_URL))
    yield first, second
    first.reset()


@pytest.mark.redis
@needs_redis
def test_redis_buckets_share_one_budget(redis_buckets):
    first, second = redis_buckets

    # One token every 20 s: no refill comes between these calls, however slow the machine.
    assert first.take(0.05) == 0.0

    assert 0 < second.take(0.05) <= 20
    assert 0 < first.take(0.05) <= 20


@pytest.mark.redis
@needs_redis
def test_redis_buckets_with_other_names_are_independent(redis_buckets):
    first, _ = redis_buckets
    other = ratelimit.RedisBucket(f"test-{uuid.uuid4()}", url=REDIS_URL)
    first.take(0.05)  # its one token; the next comes in 20 s

    try:
        assert first.take(0.05) > 0
        assert other.take(0.05) == 0.0
    finally:
        other.reset()


@pytest.mark.redis
@needs_redis
def test_redis_bucket_refills_over_time(redis_buckets):
    first, second = redis_buckets
    assert first.take(0.5) == 0.0  # the one token of a 2 s refill
    wait = second.take(0.5)
    assert 0 < wait <= 2

    # Real time must pass (the bucket reads Redis's clock); waiting longer only refills more.
    time.sleep(wait + 0.05)

    assert second.take(0.5) == 0.0


@pytest.mark.redis
@needs_redis
def test_redis_penalty_blocks_every_process(redis_buckets):
    first, second = redis_buckets

    first.block(60)

    # The block, not an empty bucket (which would ask for 0.01 s at this rate).
    assert 1 < second.take(100) <= 60
    assert 1 < first.take(100) <= 60


@pytest.mark.redis
@needs_redis
def test_acquire_and_penalize_go_through_redis_when_configured(settings):
    settings.REDIS_URL = REDIS_URL
    settings.ML_REQUESTS_PER_SECOND = 0.05  # one token every 20 s: no refill during the test
    name = f"test-{uuid.uuid4()}"
    bucket = ratelimit.get_bucket(name)
    elsewhere = ratelimit.RedisBucket(name, url=REDIS_URL)  # another process, same budget

    assert isinstance(bucket, ratelimit.RedisBucket)
    ratelimit.acquire(bucket=bucket)
    with pytest.raises(MLRateLimited):
        ratelimit.acquire(max_wait=0, bucket=elsewhere)

    ratelimit.penalize(60.0, bucket=elsewhere)
    with pytest.raises(MLRateLimited) as caught:
        ratelimit.acquire(max_wait=0, bucket=bucket)
    assert 20 < caught.value.retry_after <= 60  # the penalty, longer than any refill
    assert redis.Redis.from_url(REDIS_URL).exists(*bucket.keys) == 2
