"""POST /v1/feedback/responses and reading responses back, on SQLite and PostgreSQL, with the
event checked on the real CX_FEEDBACK stream."""

import asyncio
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg

from cxops.common.auth import INTERNAL_TOKEN_HEADER, CallerContext, Role, mint_internal_token
from cxops.common.errors import PROBLEM_MEDIA_TYPE
from cxops.common.tenancy import TenantScopeMissing
from cxops.feedback.events import RESPONSE_RECEIVED, ResponseReceivedV1
from cxops.feedback.models import FeedbackResponse
from tests.support.services import RunningService, auth, eventually

RESPONSES = "/v1/feedback/responses"
TENANT = "acme"
OTHER_TENANT = "globex"


def answer(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "kind": "nps",
        "score": 9,
        "comment": "Quick and friendly.",
        "customer_ref": "cust-42",
        "channel": "email",
    }
    body.update(changes)
    return body


async def stored(service: RunningService) -> tuple[int, int]:
    """How many responses and how many outbox events the service holds (two per response:
    received, then enriched)."""
    return await service.count("feedback_responses"), await service.count("cx_outbox")


async def stream_messages(nats_client: NatsClient, count: int) -> list[Msg]:
    """The first ``count`` messages on CX_FEEDBACK, read by an ephemeral consumer."""
    js = nats_client.jetstream()
    await eventually(lambda: js.stream_info("CX_FEEDBACK"), what="the CX_FEEDBACK stream")
    subscription = await js.pull_subscribe(RESPONSE_RECEIVED, stream="CX_FEEDBACK")
    messages: list[Msg] = []
    try:
        while len(messages) < count:
            messages += await subscription.fetch(count - len(messages), timeout=5)
    finally:
        await subscription.unsubscribe()
    return messages


async def stream_size(nats_client: NatsClient) -> int:
    info = await nats_client.jetstream().stream_info("CX_FEEDBACK")
    return int(info.state.messages)


async def test_a_response_is_stored_and_announced_once(
    feedback: RunningService, nats_client: NatsClient
) -> None:
    occurred = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)
    posted = await feedback.client.post(
        RESPONSES,
        json=answer(occurred_at=occurred.isoformat()),
        headers=auth(TENANT, Role.INTEGRATION),
    )

    assert posted.status_code == 201, posted.text
    body = posted.json()
    assert body == {
        "id": body["id"],
        "kind": "nps",
        "score": 9,
        "comment": "Quick and friendly.",
        "customer_ref": "cust-42",
        "channel": "email",
        "task_id": None,
        "customer_tier": None,
        "agent_id": None,
        "invitation_id": None,
        "occurred_at": "2026-03-01T09:30:00Z",
        "received_at": body["received_at"],
        "enrichment": body["enrichment"],
    }
    assert uuid.UUID(body["id"]).version == 7
    assert posted.headers["Location"] == f"{RESPONSES}/{body['id']}"
    assert "Idempotent-Replayed" not in posted.headers
    read = await feedback.client.get(posted.headers["Location"], headers=auth(TENANT, Role.VIEWER))
    assert read.status_code == 200
    assert read.json() == body

    [message] = await stream_messages(nats_client, 1)
    headers = message.headers or {}
    assert message.subject == RESPONSE_RECEIVED
    assert headers["ce-type"] == RESPONSE_RECEIVED
    assert headers["ce-specversion"] == "1.0"
    assert headers["ce-source"] == "/cxops/feedback"
    assert headers["ce-tenant"] == TENANT
    assert headers["Nats-Msg-Id"] == headers["ce-id"]
    assert uuid.UUID(headers["ce-id"]).version == 7
    assert datetime.fromisoformat(headers["ce-time"]).tzinfo is not None
    assert headers["traceparent"].startswith("00-")
    assert headers["content-type"] == "application/json"
    event = ResponseReceivedV1.model_validate_json(message.data)
    assert event == ResponseReceivedV1(
        response_id=uuid.UUID(body["id"]),
        kind="nps",
        score=9,
        customer_ref="cust-42",
        channel="email",
        occurred_at=occurred,
        received_at=datetime.fromisoformat(body["received_at"]),
        has_comment=True,
    )
    await feedback.outbox_drained()
    assert await stored(feedback) == (1, 2)
    assert await stream_size(nats_client) == 2


async def test_a_response_may_name_the_routing_task_it_is_about(
    feedback: RunningService, nats_client: NatsClient
) -> None:
    task_id = uuid.uuid4()
    posted = await feedback.client.post(
        RESPONSES,
        json=answer(kind="csat", score=5, task_id=str(task_id)),
        headers=auth(TENANT, Role.INTEGRATION),
    )
    assert posted.status_code == 201, posted.text
    assert posted.json()["task_id"] == str(task_id)
    read = await feedback.client.get(posted.headers["Location"], headers=auth(TENANT, Role.VIEWER))
    assert read.json()["task_id"] == str(task_id)
    [message] = await stream_messages(nats_client, 1)
    assert ResponseReceivedV1.model_validate_json(message.data).task_id == task_id
    refused = await feedback.client.post(
        RESPONSES, json=answer(task_id="call-9"), headers=auth(TENANT, Role.INTEGRATION)
    )
    assert refused.status_code == 422 and refused.json()["errors"][0]["field"] == "task_id"


async def test_the_answer_time_defaults_to_receipt_and_is_kept_in_utc(
    feedback: RunningService,
) -> None:
    headers = auth(TENANT, Role.AGENT)
    without = await feedback.client.post(RESPONSES, json=answer(comment=None), headers=headers)
    with_offset = await feedback.client.post(
        RESPONSES, json=answer(occurred_at="2026-01-15T12:00:00+02:00"), headers=headers
    )
    naive = await feedback.client.post(
        RESPONSES, json=answer(occurred_at="2026-01-15T10:00:00"), headers=headers
    )

    assert without.status_code == with_offset.status_code == naive.status_code == 201
    assert without.json()["occurred_at"] == without.json()["received_at"]
    assert without.json()["comment"] is None
    for posted in (with_offset, naive):
        read = await feedback.client.get(f"{RESPONSES}/{posted.json()['id']}", headers=headers)
        assert read.json()["occurred_at"] == "2026-01-15T10:00:00Z"


@pytest.mark.parametrize(
    ("kind", "lowest", "highest"), [("nps", 0, 10), ("csat", 1, 5), ("ces", 1, 7)]
)
async def test_each_kind_accepts_its_whole_scale(
    feedback: RunningService, kind: str, lowest: int, highest: int
) -> None:
    for score in (lowest, highest):
        posted = await feedback.client.post(
            RESPONSES, json=answer(kind=kind, score=score), headers=auth(TENANT)
        )
        assert posted.status_code == 201, posted.text
        assert posted.json()["score"] == score


INVALID_REQUESTS: list[tuple[str, dict[str, Any] | bytes, dict[str, str], str, str]] = [
    # (case, body, extra headers, field named, where)
    ("nps above 10", answer(kind="nps", score=11), {}, "score", "body"),
    ("nps below 0", answer(kind="nps", score=-1), {}, "score", "body"),
    ("csat of 0", answer(kind="csat", score=0), {}, "score", "body"),
    ("csat of 6", answer(kind="csat", score=6), {}, "score", "body"),
    ("ces of 0", answer(kind="ces", score=0), {}, "score", "body"),
    ("ces of 8", answer(kind="ces", score=8), {}, "score", "body"),
    ("score as text", answer(score="9"), {}, "score", "body"),
    ("fractional score", answer(score=9.5), {}, "score", "body"),
    ("unknown kind", answer(kind="promoter"), {}, "kind", "body"),
    ("unknown field", answer(mood="happy"), {}, "mood", "body"),
    ("missing customer_ref", {k: v for k, v in answer().items() if k != "customer_ref"}, {},
     "customer_ref", "body"),
    ("blank channel", answer(channel="   "), {}, "channel", "body"),
    ("overlong customer_ref", answer(customer_ref="c" * 129), {}, "customer_ref", "body"),
    ("overlong comment", answer(comment="x" * 4001), {}, "comment", "body"),
    ("NUL in comment", answer(comment="a\x00b"), {}, "comment", "body"),
    ("control character in channel", answer(channel="e\x1bmail"), {}, "channel", "body"),
    ("answer from the future",
     answer(occurred_at=(datetime.now(UTC) + timedelta(hours=1)).isoformat()), {},
     "occurred_at", "body"),
    ("not a time", answer(occurred_at="yesterday"), {}, "occurred_at", "body"),
    # Issue 12, defect 2: before the first instant once in UTC (it was a 500).
    ("before year 1 in UTC", answer(occurred_at="0001-01-01T00:00:00+01:00"), {}, "occurred_at",
     "body"),
    ("a time as a number", answer(occurred_at=1767225600), {}, "occurred_at", "body"),
    ("a time as digits", answer(occurred_at="1767225600"), {}, "occurred_at", "body"),
    ("a date without a time", answer(occurred_at="2026-01-15"), {}, "occurred_at", "body"),
    ("overlong Idempotency-Key", answer(), {"Idempotency-Key": "k" * 256}, "Idempotency-Key",
     "header"),
    ("Idempotency-Key with a space", answer(), {"Idempotency-Key": "a b"}, "Idempotency-Key",
     "header"),
]  # fmt: skip


async def test_invalid_requests_are_refused_naming_the_field_and_store_nothing(
    feedback: RunningService,
) -> None:
    headers = auth(TENANT, Role.INTEGRATION)
    for case, body, extra, field, where in INVALID_REQUESTS:
        refused = await feedback.client.post(RESPONSES, json=body, headers={**headers, **extra})

        assert refused.status_code == 422, case
        assert refused.headers["content-type"] == PROBLEM_MEDIA_TYPE, case
        problem = refused.json()
        assert problem["status"] == 422
        assert {"field": field, "in": where} in [
            {"field": e["field"], "in": e["in"]} for e in problem["errors"]
        ], (case, problem)
        assert await stored(feedback) == (0, 0), case


async def test_the_first_instant_is_accepted_in_utc(feedback: RunningService) -> None:
    posted = await feedback.client.post(
        RESPONSES,
        json=answer(occurred_at="0001-01-01T00:00:00-00:00"),
        headers=auth(TENANT, Role.INTEGRATION),
    )
    assert posted.status_code == 201, posted.text
    assert posted.json()["occurred_at"] == "0001-01-01T00:00:00Z"
    await feedback.outbox_drained()


async def test_a_score_out_of_range_says_what_the_range_is(feedback: RunningService) -> None:
    refused = await feedback.client.post(
        RESPONSES, json=answer(kind="csat", score=9), headers=auth(TENANT)
    )

    [error] = refused.json()["errors"]
    assert error == {
        "field": "score",
        "in": "body",
        "message": "must be from 1 to 5 for kind 'csat'",
        "code": "score_out_of_range",
    }


@pytest.mark.parametrize(
    "raw",
    [b'{"kind": "nps", "score": 9,', b"not json", b"[1, 2]", b'"nps"', b""],
    ids=["truncated", "not-json", "array", "string", "empty"],
)
async def test_a_body_that_is_not_a_json_object_is_refused_and_stores_nothing(
    feedback: RunningService, raw: bytes
) -> None:
    refused = await feedback.client.post(
        RESPONSES,
        content=raw,
        headers={**auth(TENANT), "content-type": "application/json"},
    )

    assert refused.status_code == 422, refused.text
    assert refused.headers["content-type"] == PROBLEM_MEDIA_TYPE
    assert all(error["in"] == "body" for error in refused.json()["errors"])
    assert await stored(feedback) == (0, 0)


async def test_a_retry_with_the_same_key_returns_the_first_result_and_stores_nothing(
    feedback: RunningService, nats_client: NatsClient
) -> None:
    headers = {**auth(TENANT, Role.INTEGRATION), "Idempotency-Key": "order-7781-survey"}
    first = await feedback.client.post(RESPONSES, json=answer(), headers=headers)
    # The same request, spelt differently: other key order, other whitespace.
    same_meaning = json.dumps(dict(reversed(list(answer().items()))), indent=2).encode()
    retry = await feedback.client.post(
        RESPONSES, content=same_meaning, headers={**headers, "content-type": "application/json"}
    )

    assert first.status_code == 201
    assert retry.status_code == 201
    assert retry.headers["Idempotent-Replayed"] == "true"
    assert retry.json() == first.json()
    assert retry.headers["Location"] == first.headers["Location"]
    await feedback.outbox_drained()
    assert await stored(feedback) == (1, 2)
    assert await stream_size(nats_client) == 2


async def test_reusing_a_key_for_another_request_is_a_conflict(
    feedback: RunningService,
) -> None:
    headers = {**auth(TENANT), "Idempotency-Key": "k-1"}
    first = await feedback.client.post(RESPONSES, json=answer(score=9), headers=headers)
    conflict = await feedback.client.post(RESPONSES, json=answer(score=3), headers=headers)

    assert conflict.status_code == 409
    assert conflict.headers["content-type"] == PROBLEM_MEDIA_TYPE
    assert conflict.json()["type"].endswith("/idempotency-key-reused")
    assert conflict.json()["response_id"] == first.json()["id"]
    assert await stored(feedback) == (1, 2)


async def test_idempotency_keys_belong_to_one_tenant(feedback: RunningService) -> None:
    key = {"Idempotency-Key": "shared-key"}
    mine = await feedback.client.post(RESPONSES, json=answer(), headers={**auth(TENANT), **key})
    theirs = await feedback.client.post(
        RESPONSES, json=answer(), headers={**auth(OTHER_TENANT), **key}
    )

    assert mine.status_code == theirs.status_code == 201
    assert "Idempotent-Replayed" not in theirs.headers
    assert mine.json()["id"] != theirs.json()["id"]
    assert await stored(feedback) == (2, 4)


async def test_concurrent_retries_store_one_response(feedback: RunningService) -> None:
    headers = {**auth(TENANT), "Idempotency-Key": "flaky-network"}
    results = await asyncio.gather(
        *(feedback.client.post(RESPONSES, json=answer(), headers=headers) for _ in range(8))
    )

    assert {r.status_code for r in results} == {201}
    assert len({r.json()["id"] for r in results}) == 1
    assert sum("Idempotent-Replayed" not in r.headers for r in results) == 1
    assert await stored(feedback) == (1, 2)


@pytest.mark.parametrize(
    "role", [Role.ADMIN, Role.INTEGRATION, Role.OPS_LEAD, Role.SUPERVISOR, Role.AGENT]
)
async def test_roles_that_may_record_responses(feedback: RunningService, role: Role) -> None:
    posted = await feedback.client.post(RESPONSES, json=answer(), headers=auth(TENANT, role))

    assert posted.status_code == 201


async def test_callers_without_the_right_are_refused_and_nothing_is_stored(
    feedback: RunningService,
) -> None:
    forged = mint_internal_token(
        CallerContext(tenant=TENANT, role=Role.ADMIN, subject="x"),
        secret="not-the-secret-the-service-trusts-0123456789",
    )
    viewer = await feedback.client.post(RESPONSES, json=answer(), headers=auth(TENANT, Role.VIEWER))
    anonymous = await feedback.client.post(RESPONSES, json=answer())
    impostor = await feedback.client.post(
        RESPONSES, json=answer(), headers={INTERNAL_TOKEN_HEADER: forged}
    )

    assert viewer.status_code == 403
    assert viewer.headers["content-type"] == PROBLEM_MEDIA_TYPE
    assert anonymous.status_code == 401
    assert impostor.status_code == 401
    for path in (RESPONSES, f"{RESPONSES}/{uuid.uuid4()}"):
        assert (await feedback.client.get(path)).status_code == 401
    assert await stored(feedback) == (0, 0)


async def test_a_tenant_never_sees_another_tenants_responses(feedback: RunningService) -> None:
    posted = await feedback.client.post(RESPONSES, json=answer(), headers=auth(TENANT))
    location = posted.headers["Location"]

    other_read = await feedback.client.get(location, headers=auth(OTHER_TENANT, Role.ADMIN))
    other_list = await feedback.client.get(RESPONSES, headers=auth(OTHER_TENANT, Role.ADMIN))
    own_list = await feedback.client.get(RESPONSES, headers=auth(TENANT, Role.VIEWER))

    assert other_read.status_code == 404
    assert other_read.headers["content-type"] == PROBLEM_MEDIA_TYPE
    missing = await feedback.client.get(f"{RESPONSES}/{uuid.uuid4()}", headers=auth(OTHER_TENANT))
    assert missing.json()["detail"].replace(missing.url.path.rsplit("/", 1)[1], "") == (
        other_read.json()["detail"].replace(location.rsplit("/", 1)[1], "")
    ), "another tenant's id must look exactly like an unknown one"
    assert other_list.json() == {"items": [], "next_cursor": None}
    assert [item["id"] for item in own_list.json()["items"]] == [posted.json()["id"]]


async def test_responses_are_listed_newest_first_a_page_at_a_time(
    feedback: RunningService,
) -> None:
    headers = auth(TENANT)
    kinds = ["nps", "csat", "nps", "ces", "nps"]
    ids = []
    for kind in kinds:
        posted = await feedback.client.post(
            RESPONSES, json=answer(kind=kind, score=3), headers=headers
        )
        ids.append(posted.json()["id"])
    newest_first = list(reversed(ids))

    pages: list[list[str]] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = (await feedback.client.get(RESPONSES, params=params, headers=headers)).json()
        pages.append([item["id"] for item in page["items"]])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    nps_only = await feedback.client.get(RESPONSES, params={"kind": "nps"}, headers=headers)

    assert pages == [newest_first[0:2], newest_first[2:4], newest_first[4:5]]
    assert [item["id"] for item in nps_only.json()["items"]] == [
        i for i, k in zip(newest_first, reversed(kinds), strict=True) if k == "nps"
    ]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"limit": 0}, "limit"),
        ({"limit": 201}, "limit"),
        ({"cursor": "not-a-uuid"}, "cursor"),
        ({"kind": "loyalty"}, "kind"),
    ],
)
async def test_bad_list_parameters_are_refused_naming_them(
    feedback: RunningService, params: dict[str, Any], field: str
) -> None:
    refused = await feedback.client.get(RESPONSES, params=params, headers=auth(TENANT))

    assert refused.status_code == 422
    assert [(e["field"], e["in"]) for e in refused.json()["errors"]] == [(field, "query")]


async def test_a_response_id_must_be_a_uuid(feedback: RunningService) -> None:
    """Response ids are UUIDs: anything else names no response (and ``/responses/import`` is
    another resource, answered by POST alone)."""
    refused = await feedback.client.get(f"{RESPONSES}/42", headers=auth(TENANT))
    assert refused.status_code == 404
    assert refused.headers["content-type"] == PROBLEM_MEDIA_TYPE

    not_readable = await feedback.client.get(f"{RESPONSES}/import", headers=auth(TENANT))
    assert not_readable.status_code == 405
    assert not_readable.headers["allow"] == "OPTIONS, POST"


async def test_the_201_is_sent_only_once_the_response_is_committed(
    feedback: RunningService,
) -> None:
    """Read the database from a separate connection at the moment the status line goes out:
    the row must already be there, or a client could be told 201 for a response that is lost."""
    seen_at_send: list[int] = []
    body = json.dumps(answer()).encode()
    headers = [
        (b"content-type", b"application/json"),
        *[(k.lower().encode(), v.encode()) for k, v in auth(TENANT).items()],
    ]
    request_sent = False

    async def receive() -> dict[str, Any]:
        nonlocal request_sent
        if request_sent:
            await asyncio.Event().wait()
        request_sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            seen_at_send.append(
                await asyncio.wait_for(feedback.count("feedback_responses"), timeout=5)
            )

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": RESPONSES,
        "raw_path": RESPONSES.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8101),
    }
    await feedback.app(scope, receive, send)

    assert seen_at_send == [1]


async def test_the_service_refuses_a_query_that_forgets_the_tenant(
    feedback: RunningService,
) -> None:
    """The tenant guard is on in the running service: a repository that forgot the tenant
    would fail here, not leak another tenant's rows."""
    async with feedback.db.sessionmaker() as session:
        with pytest.raises(TenantScopeMissing, match="feedback_responses"):
            await session.execute(sa.select(FeedbackResponse))
