"""Mining and simulation as jobs: a row per job, a work item per job on a JetStream work-queue
stream that any journey replica takes, the work in a process of its own, the result stored.

**Asking.** A job is created ``queued`` with its work item in the outbox, in one transaction:
a job is never queued without its work item, nor the other way round. The work item carries
the job's id only; the request stays in the row.

**Taking.** :class:`JobWorker` (``job_concurrency`` loops per replica) pulls one item at a time
from the durable consumer ``journey-jobs`` of :data:`JOB_QUEUE`. It moves the job to
``running`` with a conditional update (only from ``queued``, or from ``running`` when the item
comes back after a worker died), starts a child process that runs the command's own code
(:mod:`cxops.journey.runs`), and while it runs, every ``job_heartbeat_seconds``: tells JetStream
it is still at work (``in_progress``, which restarts the item's ``ack_wait``), records the
child's progress and looks at the job's state: if it was canceled, the child is killed. When
the child ends, the result (the command's JSON, as text) and the final state are written with
a conditional update in one transaction with the completion event, then the item is acked.

**Dying.** A worker that dies stops its heartbeats; ``job_ack_wait_seconds`` later JetStream
hands the item to another worker, which takes the job up again from the start (``attempts``
counts the takers). After ``job_max_attempts`` takers the job fails rather than kill workers
forever. A child notices its parent's death and exits. A worker stopped gently gives its item
back at once. An item whose job is already final is just acked.
"""

import asyncio
import logging
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from nats.aio.msg import Msg
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js.api import (
    AckPolicy,
    ConsumerConfig,
    DeliverPolicy,
    DiscardPolicy,
    RetentionPolicy,
    StorageType,
    StreamConfig,
)
from nats.js.errors import BadRequestError, NotFoundError
from sqlalchemy.ext.asyncio import AsyncSession

from cxops.common.auth import CallerContext
from cxops.common.errors import Problem
from cxops.common.events import Event
from cxops.common.events.broker import work_queue
from cxops.common.events.outbox import add_event
from cxops.common.service import ServiceState, cancel_and_wait
from cxops.common.tenancy import TenantRepository
from cxops.journey import job_process
from cxops.journey.domain.jobs import JobState, is_final, states_before
from cxops.journey.event_logs import EventLogs
from cxops.journey.events import (
    EVENT_SOURCE,
    MINING_JOB_COMPLETED,
    SIMULATION_JOB_COMPLETED,
    journey_event,
)
from cxops.journey.formats.journey_map import JourneyMapError, load_journey_map
from cxops.journey.formats.simulation import ModelError, load_model
from cxops.journey.models import Interaction, Job, JobResult, JourneyMapVersion
from cxops.journey.schemas import JobPublic, MiningJobCreate, SimulationJobCreate
from cxops.journey.settings import JourneySettings

log = logging.getLogger("cxops.journey.jobs")

#: How job processes start: forked from a server process that has imported only what a run
#: needs (seconds saved per job over a fresh interpreter), never from the service itself.
CHILDREN = job_process.context()

#: The jobs' work-queue stream ``CX_JOURNEY_JOBS``: items ``jobs.journey.<kind>``, removed once
#: a worker acks them, taken through the one durable consumer ``journey-jobs``.
JOB_QUEUE = work_queue("journey", "jobs")
WORK_SUBJECT_PREFIX = JOB_QUEUE.subjects[0].removesuffix(".>")
JOB_INPUTS_DIR = "job-inputs"
#: The interactions source's log, as the worker writes it for the child.
INTERACTION_COLUMNS = {
    "case": "case_id",
    "activity": "activity",
    "timestamp": "timestamp",
    "team": "team",
    "channel": "channel",
}


def result_path(job: Job) -> str:
    return f"/v1/journey/{job.kind}-jobs/{job.id}/result"


def public(job: Job) -> JobPublic:
    return JobPublic(
        id=job.id,
        kind=job.kind,  # type: ignore[arg-type]
        state=job.state,  # type: ignore[arg-type]
        progress=job.progress,
        source_kind=job.source_kind,
        request=job.request,
        error=job.error,
        attempts=job.attempts,
        cases=job.cases,
        events=job.events,
        created_at=job.created_at,
        started_at=job.started_at,
        finished_at=job.finished_at,
        result=result_path(job) if job.state == JobState.SUCCEEDED else None,
    )


def _invalid(field: str, message: str, *, problems: Sequence[tuple[str, str]] = ()) -> Problem:
    errors = [{"field": field, "in": "body", "message": message, "code": "invalid"}]
    errors += [
        {"field": f"{field}.{place}", "in": "body", "message": text, "code": "invalid"}
        for place, text in problems
    ]
    return Problem(
        422,
        f"The request is not valid: {field}",
        slug="validation-error",
        title="Validation failed",
        errors=errors,
    )


class Jobs(TenantRepository):
    async def get(self, job_id: uuid.UUID, *, kind: str) -> Job | None:
        found: Job | None = (
            await self.session.execute(
                self.select(Job)
                .where(Job.id == job_id, Job.kind == kind)
                .execution_options(populate_existing=True)
            )
        ).scalar_one_or_none()
        return found

    async def result(self, job_id: uuid.UUID) -> str | None:
        body: str | None = (
            await self.session.execute(
                self.select(JobResult.body).where(JobResult.job_id == job_id)
            )
        ).scalar_one_or_none()
        return body

    async def move(self, job_id: uuid.UUID, target: JobState, **values: Any) -> bool:
        """Move the job to ``target`` if its state allows it; False if it did not (someone
        else moved it first)."""
        allowed = [state.value for state in states_before(target)]
        result = await self.session.execute(
            self.update(Job)
            .where(Job.id == job_id, Job.state.in_(allowed))
            .values(state=target.value, **values)
        )
        return bool(getattr(result, "rowcount", 0))

    async def latest_map(self, key: str) -> JourneyMapVersion | None:
        found: JourneyMapVersion | None = (
            await self.session.execute(
                self.select(JourneyMapVersion)
                .where(JourneyMapVersion.key == key)
                .order_by(JourneyMapVersion.version.desc())
                .limit(1)
            )
        ).scalar_one_or_none()
        return found

    async def map_version(self, key: str, version: int) -> JourneyMapVersion | None:
        found: JourneyMapVersion | None = (
            await self.session.execute(
                self.select(JourneyMapVersion).where(
                    JourneyMapVersion.key == key, JourneyMapVersion.version == version
                )
            )
        ).scalar_one_or_none()
        return found

    async def interactions(self, source: dict[str, Any]) -> list[sa.Row[Any]]:
        """The interactions source's events: resolved customers' interactions in the range,
        on the filter's channels and activities."""
        statement = self.select(
            Interaction.customer_id,
            Interaction.activity,
            Interaction.occurred_at,
            Interaction.team,
            Interaction.channel,
        ).where(
            Interaction.customer_id.is_not(None),
            Interaction.occurred_at >= datetime.fromisoformat(source["from"]),
            Interaction.occurred_at < datetime.fromisoformat(source["to"]),
        )
        kept = source.get("filter") or {}
        if kept.get("channel"):
            statement = statement.where(Interaction.channel.in_(kept["channel"]))
        if kept.get("activity"):
            statement = statement.where(Interaction.activity.in_(kept["activity"]))
        return list((await self.session.execute(statement)).all())


def _work_item(job: Job) -> Event:
    return Event.new(
        subject=f"{WORK_SUBJECT_PREFIX}.{job.kind}",
        source=EVENT_SOURCE,
        tenant=job.tenant,
        data={"job_id": str(job.id)},
    )


async def _queue(session: AsyncSession, job: Job) -> Job:
    session.add(job)
    await session.flush()
    await add_event(session, _work_item(job))
    return job


async def create_mining_job(
    *, session: AsyncSession, caller: CallerContext, request: MiningJobCreate, now: datetime
) -> Job:
    """Queue a mining job, once its log and map are known to exist (422 naming them if not)."""
    jobs = Jobs(session, tenant=caller.tenant)
    source = request.source
    if source.event_log is not None:
        found = await EventLogs(session, tenant=caller.tenant).get(source.event_log)
        if found is None:
            raise _invalid("source.event_log", f"no event log {source.event_log} in this tenant")
    stored: dict[str, Any] = request.model_dump(mode="json", by_alias=True)
    if request.map is not None:
        version = await jobs.latest_map(request.map)
        if version is None:
            raise _invalid("map", f"no journey map {request.map!r} in this tenant")
        try:
            load_journey_map(version.body)
        except JourneyMapError as exc:
            raise _invalid(
                "map", "the map's latest version is not valid", problems=exc.problems
            ) from None
        stored["map_version"] = version.version
    job = Job(
        tenant=caller.tenant,
        kind="mining",
        state=JobState.QUEUED.value,
        progress=0.0,
        source_kind=source.kind,
        request=stored,
        attempts=0,
        by=caller.subject,
        created_at=now,
    )
    return await _queue(session, job)


async def create_simulation_job(
    *, session: AsyncSession, caller: CallerContext, request: SimulationJobCreate, now: datetime
) -> Job:
    """Queue a simulation job, once the model and the options are known to be valid (422
    naming the model's place or the option at fault, as the command would refuse them)."""
    try:
        model = load_model(request.model)
    except ModelError as exc:
        raise _invalid("model", "not a valid journey model", problems=exc.problems) from None
    replications = request.replications or model.replications
    if model.intervention is not None and replications < 2:
        raise _invalid("replications", "at least 2 to compare the intervention")
    if request.breaking_point and not any(stage.sla for stage in model.stages):
        raise _invalid("breaking_point", "no stage has an sla to break")
    job = Job(
        tenant=caller.tenant,
        kind="simulation",
        state=JobState.QUEUED.value,
        progress=0.0,
        source_kind="model",
        request=request.model_dump(mode="json"),
        attempts=0,
        by=caller.subject,
        created_at=now,
    )
    return await _queue(session, job)


async def get_job(
    *, session: AsyncSession, caller: CallerContext, kind: str, job_id: uuid.UUID
) -> Job:
    found = await Jobs(session, tenant=caller.tenant).get(job_id, kind=kind)
    if found is None:
        raise Problem(404, f"No {kind} job {job_id} in this tenant")
    return found


async def get_result(
    *, session: AsyncSession, caller: CallerContext, kind: str, job_id: uuid.UUID
) -> str:
    """The stored result; 409 until the job succeeded."""
    job = await get_job(session=session, caller=caller, kind=kind, job_id=job_id)
    if job.state != JobState.SUCCEEDED:
        raise Problem(
            409,
            f"The job is {job.state}: a result exists once it has succeeded",
            state=job.state,
        )
    body = await Jobs(session, tenant=caller.tenant).result(job_id)
    if body is None:
        raise Problem(409, "The job's result is not stored", state=job.state)
    return body


async def cancel_job(
    *, session: AsyncSession, caller: CallerContext, kind: str, job_id: uuid.UUID, now: datetime
) -> Job:
    """Cancel a queued or running job (a running one's worker stops at its next check); 409
    for a job already over."""
    jobs = Jobs(session, tenant=caller.tenant)
    job = await get_job(session=session, caller=caller, kind=kind, job_id=job_id)
    if not await jobs.move(job_id, JobState.CANCELED, finished_at=now):
        raise Problem(409, f"The job is already {job.state}", state=job.state)
    canceled = await get_job(session=session, caller=caller, kind=kind, job_id=job_id)
    await add_event(session, _completed_event(canceled))
    return canceled


def _completed_event(job: Job) -> Event:
    seconds = (
        (job.finished_at - job.started_at).total_seconds()
        if job.finished_at is not None and job.started_at is not None
        else None
    )
    if job.kind == "mining":
        return journey_event(
            MINING_JOB_COMPLETED,
            tenant=job.tenant,
            job_id=job.id,
            state=job.state,
            source_kind=job.source_kind,
            cases=job.cases,
            events=job.events,
            seconds=seconds,
        )
    return journey_event(
        SIMULATION_JOB_COMPLETED,
        tenant=job.tenant,
        job_id=job.id,
        state=job.state,
        events=job.events,
        seconds=seconds,
    )


# --- The worker --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    """How a run ended: ``succeeded`` with the result, ``failed`` with the error, or
    ``canceled`` (the child was stopped)."""

    state: JobState
    result: str | None = None
    error: str | None = None
    cases: int | None = None
    events: int | None = None


class JobWorker:
    """Takes jobs from the work queue, ``job_concurrency`` at a time, and runs them."""

    def __init__(self, state: ServiceState) -> None:
        assert isinstance(state.settings, JourneySettings)
        self.state = state
        self.settings: JourneySettings = state.settings
        self._loops: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        self._loops = [
            asyncio.create_task(self._run(), name=f"journey-job-worker-{n}")
            for n in range(self.settings.job_concurrency)
        ]

    async def stop(self) -> None:
        # Cancelled until they end: a fetch's ``wait_for`` may swallow one cancellation.
        await cancel_and_wait(self._loops, deadline_seconds=10)
        self._loops = []

    async def _run(self) -> None:
        broker = self.state.broker
        # The service's own streams come first; the state offers a flag, not an event.
        while not self.state.streams_provisioned:  # noqa: ASYNC110
            await asyncio.sleep(0.1)
        subscription = None
        while True:
            try:
                if subscription is None:
                    await self._provision()
                    subscription = await broker.js.pull_subscribe_bind(
                        consumer=JOB_QUEUE.consumer, stream=JOB_QUEUE.stream
                    )
                messages = await subscription.fetch(1, timeout=1.0)
            except (NatsTimeoutError, TimeoutError):
                continue
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - outage or missing stream: wait, retry
                log.warning("job worker cannot fetch (%s); retrying", exc)
                subscription = None
                await asyncio.sleep(1.0)
                continue
            for msg in messages:
                try:
                    await self._take(msg)
                except asyncio.CancelledError:
                    raise
                except Exception:  # unacked: the item comes back after ack_wait
                    log.exception("job worker could not record a job; it will be taken again")

    async def _provision(self) -> None:
        """The work-queue stream and its one durable consumer; safe to repeat."""
        js = self.state.broker.js
        stream = StreamConfig(
            name=JOB_QUEUE.stream,
            subjects=list(JOB_QUEUE.subjects),
            retention=RetentionPolicy.WORK_QUEUE,
            storage=StorageType.FILE,
            discard=DiscardPolicy.OLD,
            num_replicas=self.settings.stream_replicas,
            duplicate_window=120,
        )
        try:
            await js.stream_info(JOB_QUEUE.stream)
        except NotFoundError:
            try:
                await js.add_stream(stream)
            except BadRequestError:  # another replica created it meanwhile
                pass
        await js.add_consumer(
            JOB_QUEUE.stream,
            config=ConsumerConfig(
                durable_name=JOB_QUEUE.consumer,
                ack_policy=AckPolicy.EXPLICIT,
                deliver_policy=DeliverPolicy.ALL,
                ack_wait=self.settings.job_ack_wait_seconds,
                max_deliver=-1,
            ),
        )

    async def _take(self, msg: Msg) -> None:
        try:
            item = Event.from_message(msg.subject, msg.headers, msg.data)
            job_id = uuid.UUID(str(item.data["job_id"]))
        except (ValueError, KeyError) as exc:
            log.error("dropping a malformed job item (%s)", exc)
            await msg.term()
            return
        kind = msg.subject.rsplit(".", 1)[-1]
        deliveries = msg.metadata.num_delivered if msg.metadata else 1
        db = self.state.db
        async with db.transaction() as session:
            jobs = Jobs(session, tenant=item.tenant)
            job = await jobs.get(job_id, kind=kind)
            if job is None or is_final(JobState(job.state)):
                job = None
            elif deliveries > self.settings.job_max_attempts:
                await self._finish(
                    session,
                    job,
                    Outcome(
                        JobState.FAILED,
                        error=f"{deliveries - 1} workers stopped while running it",
                    ),
                )
                job = None
            elif await jobs.move(
                job_id,
                JobState.RUNNING,
                started_at=datetime.now(UTC),
                attempts=Job.attempts + 1,
                progress=0.0,
            ):
                job = await jobs.get(job_id, kind=kind)
            else:
                job = None
        if job is None:
            await msg.ack()
            return
        try:
            outcome = await self._work(job, msg)
        except asyncio.CancelledError:
            # Stopped gently: give the item back at once for another worker.
            await asyncio.shield(_quietly(msg.nak()))
            raise
        except Exception as exc:
            log.exception("job %s failed", job.id)
            outcome = Outcome(JobState.FAILED, error=f"{type(exc).__name__}: {exc}")
        async with db.transaction() as session:
            await self._finish(session, job, outcome)
        await msg.ack()

    async def _finish(self, session: AsyncSession, job: Job, outcome: Outcome) -> None:
        """Record the outcome if the job is still the worker's to finish (not canceled
        meanwhile, not finished by another worker), with its result and its event."""
        jobs = Jobs(session, tenant=job.tenant)
        if outcome.state == JobState.CANCELED:
            return  # the cancellation recorded itself
        values: dict[str, Any] = {"finished_at": datetime.now(UTC), "error": outcome.error}
        if outcome.state == JobState.SUCCEEDED:
            values.update(progress=1.0, cases=outcome.cases, events=outcome.events)
        if not await jobs.move(job.id, outcome.state, **values):
            return
        if outcome.result is not None:
            session.add(JobResult(job_id=job.id, tenant=job.tenant, body=outcome.result))
        await session.flush()
        finished = await jobs.get(job.id, kind=job.kind)
        assert finished is not None
        await add_event(session, _completed_event(finished))

    async def _work(self, job: Job, msg: Msg) -> Outcome:
        spec = await self._child_spec(job)
        receiving, sending = CHILDREN.Pipe(duplex=False)
        child = CHILDREN.Process(target=job_process.run, args=(sending, spec), daemon=True)
        # In a thread: the first start waits for the fork server to import what runs need.
        await asyncio.to_thread(child.start)
        sending.close()
        try:
            return await self._watch(job, msg, child, receiving)
        finally:
            if child.is_alive():
                child.kill()
            await asyncio.to_thread(child.join)
            receiving.close()
            if spec.get("input_is_temporary"):
                await asyncio.to_thread(Path(spec["path"]).unlink, missing_ok=True)

    async def _watch(self, job: Job, msg: Msg, child: Any, receiving: Connection) -> Outcome:
        """Relay the child's progress, say the worker is alive and look for a cancellation
        every heartbeat, until the child answers or ends."""
        heartbeat = self.settings.job_heartbeat_seconds
        next_beat = time.monotonic() + heartbeat
        while True:
            ready = await asyncio.to_thread(receiving.poll, max(0.0, next_beat - time.monotonic()))
            if ready:
                try:
                    kind, value = await asyncio.to_thread(receiving.recv)
                except EOFError:
                    await asyncio.to_thread(child.join)
                    return Outcome(
                        JobState.FAILED,
                        error=f"the job's process ended unexpectedly (exit code {child.exitcode})",
                    )
                if kind == "done":
                    return Outcome(JobState.SUCCEEDED, **value)
                if kind == "error":
                    return Outcome(JobState.FAILED, error=value)
                await self._record_progress(job, value)
            if time.monotonic() >= next_beat:
                await msg.in_progress()
                if await self._canceled(job):
                    return Outcome(JobState.CANCELED)
                next_beat = time.monotonic() + heartbeat

    async def _record_progress(self, job: Job, share: float) -> None:
        async with self.state.db.transaction() as session:
            await session.execute(
                Jobs(session, tenant=job.tenant)
                .update(Job)
                .where(Job.id == job.id, Job.state == JobState.RUNNING.value)
                .values(progress=share)
            )

    async def _canceled(self, job: Job) -> bool:
        async with self.state.db.transaction() as session:
            current = await Jobs(session, tenant=job.tenant).get(job.id, kind=job.kind)
        return current is None or current.state != JobState.RUNNING.value

    async def _child_spec(self, job: Job) -> dict[str, Any]:
        """What the child needs, as plain values: the log's file and columns (written from the
        stored interactions for that source) and the map, or the model and options."""
        request = job.request
        if job.kind == "simulation":
            return {"kind": "simulation", **request}
        data_dir = self.settings.data_dir
        spec: dict[str, Any] = {"kind": "mining", "top": request["top"], "map": None}
        async with self.state.db.transaction() as session:
            jobs = Jobs(session, tenant=job.tenant)
            if request.get("map") is not None:
                version = await jobs.map_version(request["map"], request["map_version"])
                if version is None:
                    raise LookupError(f"the map {request['map']!r} is gone")
                spec["map"] = version.body
            source = request["source"]
            if source.get("event_log") is not None:
                found = await EventLogs(session, tenant=job.tenant).get(
                    uuid.UUID(source["event_log"])
                )
                if found is None:
                    raise LookupError(f"the event log {source['event_log']} is gone")
                spec.update(path=str(data_dir / found.path), columns=found.columns)
                return spec
            rows = await jobs.interactions(source["interactions"])
        path = data_dir / JOB_INPUTS_DIR / f"{job.id}.parquet"
        await asyncio.to_thread(_write_interactions, rows, path)
        spec.update(path=str(path), columns=INTERACTION_COLUMNS, input_is_temporary=True)
        return spec


async def _quietly(awaitable: Any) -> None:
    try:
        await awaitable
    except Exception:
        log.debug("could not give a job item back", exc_info=True)


def _write_interactions(rows: Sequence[sa.Row[Any]], path: Path) -> None:
    import polars as pl

    path.parent.mkdir(parents=True, exist_ok=True)
    pl.DataFrame(
        {
            "case_id": [row.customer_id for row in rows],
            "activity": [row.activity for row in rows],
            "timestamp": [row.occurred_at for row in rows],
            "team": [row.team for row in rows],
            "channel": [row.channel for row in rows],
        },
        schema={
            "case_id": pl.String,
            "activity": pl.String,
            "timestamp": pl.Datetime("us", "UTC"),
            "team": pl.String,
            "channel": pl.String,
        },
    ).write_parquet(path)
