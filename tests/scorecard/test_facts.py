"""Counting a batch of answers with one statement, duplicates included, on both databases."""

import uuid
from datetime import UTC, datetime

from cxops.common.db import Database
from cxops.scorecard import service
from cxops.scorecard.repository import FactRepository
from cxops.stats.scales import SurveyKind


def _answer(
    response_id: uuid.UUID, *, tenant: str = "acme", score: int = 9
) -> service.ResponseAnswer:
    return service.ResponseAnswer(
        tenant=tenant,
        event_id=str(uuid.uuid4()),
        response_id=response_id,
        metric=SurveyKind.NPS,
        score=score,
        occurred_at=datetime.now(UTC),
    )


async def test_a_batch_counts_each_response_once_per_tenant(scorecard_database: str) -> None:
    db = Database(scorecard_database)
    try:
        first, second = uuid.uuid4(), uuid.uuid4()
        async with db.transaction() as session:
            new = await service.record_response_facts(
                session=session,
                answers=[
                    _answer(first),
                    _answer(first, score=0),  # announced twice in one batch
                    _answer(second),
                    _answer(first, tenant="globex"),  # another tenant's response of that id
                ],
            )
        assert new == 3
        async with db.transaction() as session:
            again = await service.record_response_facts(
                session=session, answers=[_answer(second), _answer(uuid.uuid4())]
            )
        assert again == 1
        async with db.transaction() as session:
            counts = await FactRepository(session, tenant="acme").score_counts(
                metric=SurveyKind.NPS, occurred_from=None, occurred_to=None
            )
        assert counts == {9: 3}
    finally:
        await db.dispose()
