"""How many event streams each API key holds open on this gateway process.

A stream holds JetStream consumers and a connection for as long as the client stays, so one
key must not open them without bound (a reconnect loop, a leaked tab). Per process, like the rate
limit: with N replicas a key may hold N times the limit.
"""

import uuid
from collections import Counter


class StreamSlots:
    def __init__(self, *, max_per_key: int) -> None:
        self.max_per_key = max_per_key
        self._held: Counter[uuid.UUID] = Counter()

    def acquire(self, key_id: uuid.UUID) -> "Slot | None":
        """A slot, or None when the key holds ``max_per_key`` already."""
        if self._held[key_id] >= self.max_per_key:
            return None
        self._held[key_id] += 1
        return Slot(self, key_id)

    def held(self, key_id: uuid.UUID) -> int:
        return self._held[key_id]

    def _release(self, key_id: uuid.UUID) -> None:
        self._held[key_id] -= 1
        if self._held[key_id] <= 0:
            del self._held[key_id]


class Slot:
    """Released once, however many of the stream's exits call :meth:`release`."""

    def __init__(self, slots: StreamSlots, key_id: uuid.UUID) -> None:
        self._slots = slots
        self._key_id = key_id
        self._released = False

    def release(self) -> None:
        if not self._released:
            self._released = True
            self._slots._release(self._key_id)
