"""A clock for a service's timers that stands still until the test moves it."""

from datetime import datetime, timedelta


class ManualClock:
    def __init__(self, at: datetime) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at

    def advance(self, by: timedelta) -> None:
        self.at += by
