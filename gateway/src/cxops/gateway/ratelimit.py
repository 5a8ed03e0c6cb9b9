"""A token bucket per API key, in the memory of one gateway process.

Each key may make ``burst`` calls at once and ``rate`` calls per second sustained. With several
gateway replicas behind a balancer, a key's effective limit is the sum over replicas: the limit
protects the services from one runaway client, it is not a billing quota (that would need a shared
store such as Redis, and a network round trip on every request).
"""

import math
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass


@dataclass(slots=True)
class _Bucket:
    tokens: float
    updated: float


class TokenBucketLimiter:
    """Answers "may this key call now?" and, when not, how long until it may."""

    def __init__(
        self,
        *,
        rate: float,
        burst: int,
        clock: Callable[[], float] = time.monotonic,
        max_buckets: int = 100_000,
    ) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be positive and burst at least 1")
        self.rate = rate
        self.burst = float(burst)
        self.clock = clock
        self.max_buckets = max_buckets
        self._buckets: dict[Hashable, _Bucket] = {}

    def acquire(self, key: Hashable) -> float:
        """Take one token: 0.0 when allowed, else the seconds until a token is available."""
        now = self.clock()
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= self.max_buckets:
                self._prune(now)
            bucket = self._buckets[key] = _Bucket(tokens=self.burst, updated=now)
        else:
            bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.updated) * self.rate)
            bucket.updated = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return 0.0
        return (1.0 - bucket.tokens) / self.rate

    def delay(self, key: Hashable) -> float:
        """Seconds until ``key`` could take a token (0.0: it can now); takes none."""
        bucket = self._buckets.get(key)
        if bucket is None:
            return 0.0
        tokens = min(self.burst, bucket.tokens + (self.clock() - bucket.updated) * self.rate)
        return 0.0 if tokens >= 1.0 else (1.0 - tokens) / self.rate

    @staticmethod
    def retry_after(wait_seconds: float) -> int:
        """``Retry-After`` is whole seconds; never 0, or clients retry in a tight loop."""
        return max(1, math.ceil(wait_seconds))

    def _prune(self, now: float) -> None:
        """Drop buckets that have refilled: they are the same as no bucket at all."""
        full_after = self.burst / self.rate
        for key in [k for k, b in self._buckets.items() if now - b.updated >= full_after]:
            del self._buckets[key]
        while len(self._buckets) >= self.max_buckets:  # all busy: forget the oldest
            del self._buckets[next(iter(self._buckets))]
