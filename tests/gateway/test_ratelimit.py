"""The token bucket on its own, with a clock the test moves."""

import pytest

from cxops.gateway.ratelimit import TokenBucketLimiter
from tests.gateway.conftest import Clock


def test_burst_then_the_sustained_rate() -> None:
    clock = Clock()
    limiter = TokenBucketLimiter(rate=2.0, burst=3, clock=clock)
    assert [limiter.acquire("k") for _ in range(3)] == [0.0, 0.0, 0.0]
    wait = limiter.acquire("k")
    assert wait == pytest.approx(0.5)
    clock.now += 0.5
    assert limiter.acquire("k") == 0.0
    assert limiter.acquire("k") > 0
    clock.now += 10  # refills to the burst, not beyond
    assert [limiter.acquire("k") for _ in range(4)][:3] == [0.0, 0.0, 0.0]
    assert limiter.acquire("k") > 0


def test_delay_looks_without_taking() -> None:
    clock = Clock()
    limiter = TokenBucketLimiter(rate=2.0, burst=1, clock=clock)
    assert limiter.delay("k") == 0.0  # no bucket yet: a full one
    assert limiter.acquire("k") == 0.0
    assert limiter.delay("k") == pytest.approx(0.5)
    assert limiter.delay("k") == pytest.approx(0.5)  # looking took nothing
    clock.now += 0.5
    assert limiter.delay("k") == 0.0
    assert limiter.acquire("k") == 0.0


def test_keys_have_their_own_buckets() -> None:
    limiter = TokenBucketLimiter(rate=1.0, burst=1, clock=Clock())
    assert limiter.acquire("a") == 0.0
    assert limiter.acquire("a") > 0
    assert limiter.acquire("b") == 0.0


def test_retry_after_is_whole_seconds_and_never_zero() -> None:
    assert TokenBucketLimiter.retry_after(0.01) == 1
    assert TokenBucketLimiter.retry_after(1.0) == 1
    assert TokenBucketLimiter.retry_after(1.2) == 2


def test_memory_stays_bounded_without_changing_answers() -> None:
    clock = Clock()
    limiter = TokenBucketLimiter(rate=1.0, burst=1, clock=clock, max_buckets=10)
    for i in range(10):
        limiter.acquire(i)
    clock.now += 5  # all refilled: pruning them changes nothing
    limiter.acquire("new")
    assert len(limiter._buckets) == 1
    for i in range(50):  # all busy: the oldest go first
        limiter.acquire(("busy", i))
    assert len(limiter._buckets) <= 10


def test_refuses_a_limit_that_allows_nothing() -> None:
    with pytest.raises(ValueError):
        TokenBucketLimiter(rate=0, burst=1)
