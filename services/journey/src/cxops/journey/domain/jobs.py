"""A job's life as data: its states and the moves between them.

``queued`` until a worker takes it, ``running`` while one works on it (a worker that takes up
a dead worker's job moves it from ``running`` to ``running`` again), then one of the final
states. A cancellation stops a queued job at once and a running one at its worker's next
check; a final state never changes again.
"""

from enum import StrEnum


class JobState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELED = "canceled"


#: Every allowed move, from a state to the states it may become.
TRANSITIONS: dict[JobState, frozenset[JobState]] = {
    JobState.QUEUED: frozenset({JobState.RUNNING, JobState.CANCELED, JobState.FAILED}),
    JobState.RUNNING: frozenset(
        {JobState.RUNNING, JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELED}
    ),
    JobState.SUCCEEDED: frozenset(),
    JobState.FAILED: frozenset(),
    JobState.CANCELED: frozenset(),
}


def can_move(current: JobState, target: JobState) -> bool:
    return target in TRANSITIONS[current]


def states_before(target: JobState) -> frozenset[JobState]:
    """The states from which a job may move to ``target``: the condition of the update that
    moves it, so two workers (or a worker and a cancellation) never both win."""
    return frozenset(state for state, targets in TRANSITIONS.items() if target in targets)


def is_final(state: JobState) -> bool:
    return not TRANSITIONS[state]
