"""A job's states as data: every pair of states walked, the conditions of the updates that
move a job, and no way out of a final state."""

import itertools

from cxops.journey.domain.jobs import JobState, can_move, is_final, states_before

ALLOWED = {
    (JobState.QUEUED, JobState.RUNNING),
    (JobState.QUEUED, JobState.CANCELED),
    (JobState.QUEUED, JobState.FAILED),
    (JobState.RUNNING, JobState.RUNNING),
    (JobState.RUNNING, JobState.SUCCEEDED),
    (JobState.RUNNING, JobState.FAILED),
    (JobState.RUNNING, JobState.CANCELED),
}


def test_every_pair_of_states_is_allowed_or_refused_as_the_table_says() -> None:
    for current, target in itertools.product(JobState, JobState):
        assert can_move(current, target) == ((current, target) in ALLOWED), (current, target)


def test_an_update_moves_a_job_only_from_the_states_that_may_become_the_target() -> None:
    assert states_before(JobState.RUNNING) == {JobState.QUEUED, JobState.RUNNING}
    assert states_before(JobState.SUCCEEDED) == {JobState.RUNNING}
    assert states_before(JobState.CANCELED) == {JobState.QUEUED, JobState.RUNNING}
    assert states_before(JobState.QUEUED) == set()


def test_only_succeeded_failed_and_canceled_are_final() -> None:
    assert {state for state in JobState if is_final(state)} == {
        JobState.SUCCEEDED,
        JobState.FAILED,
        JobState.CANCELED,
    }
