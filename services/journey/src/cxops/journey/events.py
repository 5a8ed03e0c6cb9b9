"""The event catalogue of the journey service: every event it publishes and its payload, and the
other services' events it reads.

``cx.journey.interaction.recorded.v1`` (payload :class:`InteractionRecordedV1`)
    An interaction was stored: once per ``external_id``, never again for a retried batch. It
    carries the interaction as the platform reported it and the profile identity resolution
    put it in at that moment (``customer_id``; null while none of its values joins anything).

``cx.journey.identities.merged.v1`` (payload :class:`IdentitiesMergedV1`)
    Two profiles became one: the surviving ``customer_id``, the profiles that ceased, the
    identifier *types* that linked them and the interaction that linked them first. The values
    stay in the service (``GET /v1/journey/customers/{id}``): the stream carries no emails.

``cx.journey.mining_job.completed.v1`` (payload :class:`MiningJobCompletedV1`)
    A mining job ended: ``succeeded``, ``failed`` or ``canceled``, with its source kind
    (``event_log`` or ``interactions``), the cases and events mined (null unless it
    succeeded) and the seconds it ran. The result stays in the service
    (``GET /v1/journey/mining-jobs/{id}/result``).

``cx.journey.simulation_job.completed.v1`` (payload :class:`SimulationJobCompletedV1`)
    A simulation job ended, likewise, with the simulated events.

Every event travels on the ``CX_JOURNEY`` stream as a CloudEvent in binary mode
(:class:`cxops.common.events.Event`): ``ce-source`` is :data:`EVENT_SOURCE`, ``ce-tenant`` the
tenant (the payload does not repeat it), ``Nats-Msg-Id`` the ``ce-id``. Payloads only ever gain
fields; a breaking change is a new ``.v2`` subject published beside ``.v1``.
"""

import uuid
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict

from cxops.common.events import Event

EVENT_SOURCE = "/cxops/journey"

INTERACTION_RECORDED = "cx.journey.interaction.recorded.v1"
IDENTITIES_MERGED = "cx.journey.identities.merged.v1"


class _Payload(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class InteractionRecordedV1(_Payload):
    interaction_id: uuid.UUID
    external_id: str
    occurred_at: AwareDatetime
    identifiers: dict[str, str]
    channel: str
    activity: str
    team: str | None
    stage: str | None
    attributes: dict[str, Any]
    customer_id: str | None
    received_at: AwareDatetime


class IdentitiesMergedV1(_Payload):
    customer_id: str
    merged: list[str]
    linked_by: list[str]
    interaction_id: uuid.UUID | None
    merged_at: AwareDatetime


#: Every subject this service publishes, and the model of its payload.
PUBLISHED: dict[str, type[BaseModel]] = {
    INTERACTION_RECORDED: InteractionRecordedV1,
    IDENTITIES_MERGED: IdentitiesMergedV1,
}


def journey_event(subject: str, *, tenant: str, **fields: Any) -> Event:
    """The event ``subject`` of ``tenant``, its payload validated by the subject's model."""
    payload = PUBLISHED[subject].model_validate(fields)
    return Event.new(
        subject=subject, source=EVENT_SOURCE, tenant=tenant, data=payload.model_dump(mode="json")
    )


# --- Mining and simulation jobs ----------------------------------------------------------------

MINING_JOB_COMPLETED = "cx.journey.mining_job.completed.v1"
SIMULATION_JOB_COMPLETED = "cx.journey.simulation_job.completed.v1"


class MiningJobCompletedV1(_Payload):
    job_id: uuid.UUID
    state: str
    source_kind: str
    cases: int | None
    events: int | None
    seconds: float | None


class SimulationJobCompletedV1(_Payload):
    job_id: uuid.UUID
    state: str
    events: int | None
    seconds: float | None


PUBLISHED[MINING_JOB_COMPLETED] = MiningJobCompletedV1
PUBLISHED[SIMULATION_JOB_COMPLETED] = SimulationJobCompletedV1
