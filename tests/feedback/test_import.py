"""POST /v1/feedback/responses/import on SQLite and PostgreSQL: NDJSON and CSV, bad rows named
by line, duplicates by external_id, the worker-process path, and the events on the real stream
held to their models."""

import json
from typing import Any

import pytest
from nats.aio.client import Client as NatsClient

from cxops.common.auth import Role
from cxops.common.errors import PROBLEM_MEDIA_TYPE
from cxops.feedback import imports
from cxops.feedback.enrichment import TenantEnrichment
from cxops.feedback.events import (
    RESPONSE_ENRICHED,
    RESPONSE_RECEIVED,
    ResponseEnrichedV1,
    ResponseReceivedV1,
)
from tests.support.services import RunningService, auth, eventually

IMPORT = "/v1/feedback/responses/import"
TENANT = "acme"
OTHER_TENANT = "globex"
NDJSON = {"Content-Type": "application/x-ndjson"}
CSV = {"Content-Type": "text/csv; charset=utf-8"}


def row(n: int, **changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "external_id": f"ext-{n}",
        "kind": "nps",
        "score": n % 11,
        "comment": f"Delivery number {n} arrived late and the courier was rude.",
        "customer_ref": f"cust-{n}",
        "channel": "email",
        "occurred_at": "2026-11-02T10:00:00Z",
    }
    body.update(changes)
    return body


def ndjson(rows: list[dict[str, Any]] | list[str]) -> bytes:
    return "\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows).encode() + b"\n"


async def post_import(
    service: RunningService, body: bytes, headers: dict[str, str], tenant: str = TENANT
) -> Any:
    return await service.client.post(
        IMPORT, content=body, headers=headers | auth(tenant, Role.INTEGRATION)
    )


async def stream_subjects(nats_client: NatsClient, count: int) -> list[tuple[str, bytes]]:
    js = nats_client.jetstream()
    await eventually(lambda: js.stream_info("CX_FEEDBACK"), what="the CX_FEEDBACK stream")
    subscription = await js.pull_subscribe("cx.feedback.>", stream="CX_FEEDBACK")
    messages = []
    try:
        while len(messages) < count:
            messages += await subscription.fetch(count - len(messages), timeout=5)
    finally:
        await subscription.unsubscribe()
    return [(message.subject, message.data) for message in messages]


async def test_an_ndjson_import_stores_good_rows_names_bad_ones_and_announces_each(
    feedback: RunningService, nats_client: NatsClient
) -> None:
    body = ndjson(
        [
            row(1),
            row(2, comment=None, kind="csat", score=5),
            "{not json",
            row(3, score=11),
            '["a", "list"]',
            row(4, customer_ref=""),
            row(1, score=3),  # the same external id again: a duplicate, not a second answer
            "",
            row(5, colour="blue"),
            row(6, customer_tier="gold", external_id=None),
        ]
    )
    answer = await post_import(feedback, body, NDJSON)
    assert answer.status_code == 200, answer.text
    result = answer.json()
    assert result["accepted"] == 3
    assert result["duplicates"] == 1
    rejected = {item["line"]: item["errors"] for item in result["rejected"]}
    assert sorted(rejected) == [3, 4, 5, 6, 9]
    assert rejected[3][0]["code"] == "unreadable"
    assert rejected[4][0]["field"] == "score"
    assert rejected[5][0]["message"] == "not a JSON object"
    assert rejected[6][0]["field"] == "customer_ref"
    assert rejected[9][0]["field"] == "colour"

    assert await feedback.count("feedback_responses") == 3
    stored = await feedback.client.get("/v1/feedback/responses", headers=auth(TENANT, Role.VIEWER))
    by_customer = {item["customer_ref"]: item for item in stored.json()["items"]}
    assert by_customer["cust-1"]["enrichment"]["sentiment"]["label"] == "negative"
    assert "delivery" in {t["topic"] for t in by_customer["cust-1"]["enrichment"]["topics"]}
    assert by_customer["cust-2"]["enrichment"]["sentiment"] is None
    assert by_customer["cust-6"]["customer_tier"] == "gold"

    await feedback.outbox_drained()
    messages = await stream_subjects(nats_client, 6)
    assert [subject for subject, _ in messages] == [RESPONSE_RECEIVED, RESPONSE_ENRICHED] * 3
    received = [ResponseReceivedV1.model_validate_json(data) for _, data in messages[::2]]
    enriched = [ResponseEnrichedV1.model_validate_json(data) for _, data in messages[1::2]]
    assert [event.response_id for event in received] == [event.response_id for event in enriched]
    assert {event.customer_ref for event in received} == {"cust-1", "cust-2", "cust-6"}
    assert await feedback.count("cx_outbox") == 6


async def test_a_retried_import_stores_nothing_twice(feedback: RunningService) -> None:
    body = ndjson([row(n) for n in range(20)])
    first = await post_import(feedback, body, NDJSON)
    assert first.json() == {"accepted": 20, "duplicates": 0, "rejected": []}
    again = await post_import(feedback, body, NDJSON)
    assert again.json() == {"accepted": 0, "duplicates": 20, "rejected": []}
    overlapping = await post_import(feedback, ndjson([row(n) for n in range(15, 25)]), NDJSON)
    assert overlapping.json() == {"accepted": 5, "duplicates": 5, "rejected": []}
    assert await feedback.count("feedback_responses") == 25
    assert await feedback.count("cx_outbox") == 50
    # External ids are the tenant's own: another tenant's same ids are new answers.
    theirs = await post_import(feedback, body, NDJSON, tenant=OTHER_TENANT)
    assert theirs.json()["accepted"] == 20


async def test_a_csv_import_reads_cells_as_json_would(feedback: RunningService) -> None:
    body = (
        b"external_id,kind,score,comment,customer_ref,channel,customer_tier\r\n"
        b'c-1,nps,3,"Two lines,\nstill rude staff",cust-1,web,\r\n'
        b"c-2,csat,5,,cust-2,web,gold\r\n"
        b"c-3,csat,nine,,cust-3,web,\r\n"
        b"c-4,ces,2,fine,cust-4\r\n"
        b"\r\n"
        b"c-5,nps,7.5,,cust-5,web,\r\n"
    )
    answer = await post_import(feedback, body, CSV)
    assert answer.status_code == 200, answer.text
    result = answer.json()
    assert result["accepted"] == 2
    rejected = {item["line"]: item["errors"] for item in result["rejected"]}
    # The quoted comment spans lines 2 and 3, so the rows after it are lines 4, 5, 6 and 8.
    assert sorted(rejected) == [5, 6, 8]
    assert rejected[5][0]["field"] == "score"
    assert "7 columns" in rejected[6][0]["message"]
    assert rejected[8][0]["field"] == "score"
    tiers = await feedback.scalar(
        "SELECT count(*) FROM feedback_responses WHERE customer_tier = 'gold' AND comment IS NULL"
    )
    assert tiers == 1


@pytest.mark.parametrize(
    ("body", "headers", "status"),
    [
        (b"external_id,kind,mood\r\nx,nps,happy\r\n", CSV, 422),
        (b"kind,kind\r\nnps,nps\r\n", CSV, 422),
        (b"kind,score\r\n\xff\xfe,1\r\n", CSV, 422),
        (b'{"kind": "nps"}\n', {"Content-Type": "application/json"}, 415),
    ],
)
async def test_a_body_that_is_not_the_format_is_refused_whole(
    feedback: RunningService, body: bytes, headers: dict[str, str], status: int
) -> None:
    answer = await post_import(feedback, body, headers)
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == PROBLEM_MEDIA_TYPE
    if status == 422:
        assert answer.json()["errors"][0]["field"] == "body"
    assert await feedback.count("feedback_responses") == 0


async def test_more_rows_than_one_call_takes_store_nothing(
    feedback: RunningService, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(imports, "MAX_IMPORT_ROWS", 5)
    answer = await post_import(feedback, ndjson([row(n) for n in range(6)]), NDJSON)
    assert answer.status_code == 422
    assert "5 rows" in answer.json()["detail"]
    assert await feedback.count("feedback_responses") == 0


async def test_only_integrations_and_ops_leads_import(feedback: RunningService) -> None:
    answer = await feedback.client.post(
        IMPORT, content=ndjson([row(1)]), headers=NDJSON | auth(TENANT, Role.VIEWER)
    )
    assert answer.status_code == 403
    assert await feedback.count("feedback_responses") == 0


async def test_many_comments_are_read_by_worker_processes_as_one_would_read_them(
    feedback: RunningService, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(imports, "WRITE_CHUNK", 300)
    comments = [
        "The refund took three weeks, awful.",
        "Lovely staff, quick delivery!",
        "App keeps crashing when I pay, write to ana@example.com.",
        "",
    ]
    rows = [
        row(n, comment=comments[n % len(comments)] or None, score=(n * 7) % 11)
        for n in range(imports.INLINE_COMMENTS + 300)
    ]
    answer = await post_import(feedback, ndjson(rows), NDJSON)
    assert answer.json()["accepted"] == len(rows)

    reader = TenantEnrichment.built_in()
    for n in (0, 1, 2, 3, 401, 698):
        expected_comment, expected = reader.read_as_json(
            rows[n]["comment"], kind="nps", score=rows[n]["score"]
        )
        got = await feedback.scalar(
            "SELECT comment FROM feedback_responses WHERE external_id = :id", id=f"ext-{n}"
        )
        assert got == expected_comment
        enrichment = await feedback.scalar(
            "SELECT enrichment FROM feedback_responses WHERE external_id = :id", id=f"ext-{n}"
        )
        if isinstance(enrichment, str):
            enrichment = json.loads(enrichment)
        assert enrichment == expected
    assert "[EMAIL]" in (
        await feedback.scalar(
            "SELECT comment FROM feedback_responses WHERE external_id = :id", id="ext-2"
        )
    )
