"""What a run says about each stage and the whole journey, and whether each stage met its SLA.

Replications are pooled: counts and waits are put together (so the p90 is the p90 of every
measured wait), and time averages are taken over all replications' measured windows.
"""

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from cxops.journey.domain.simulation.engine import Plan, Replication
from cxops.journey.domain.simulation.model import SlaSpec


@dataclass(frozen=True, slots=True)
class SlaCheck:
    """``measured_wait_seconds`` is the SLA's own measure (p90 or mean wait of served
    customers); ``served_within_share`` is the share of served customers who waited at most
    ``wait_seconds``. ``breaches`` says in words what failed, empty when the SLA is met."""

    measure: str
    wait_seconds: float
    measured_wait_seconds: float | None
    served_within_share: float | None
    max_abandoned_share: float | None
    met: bool
    breaches: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class StageFigures:
    """``arrivals``, ``served``, ``abandoned`` and the waits count measured customers;
    ``utilisation`` (busy server time over servers times time), ``throughput_per_hour``
    (completions) and ``queue_length_mean`` (time average) are over the measured hours.
    ``queue_length_littles_law`` is arrivals per second times mean time in queue: a cross-check on
    ``queue_length_mean`` that agrees when the run is long enough to be in balance."""

    name: str
    servers: int
    arrivals: int
    served: int
    abandoned: int
    abandoned_share: float | None
    wait_seconds_mean: float | None
    wait_seconds_p90: float | None
    utilisation: float
    throughput_per_hour: float
    queue_length_mean: float
    queue_length_littles_law: float
    sla: SlaCheck | None


@dataclass(frozen=True, slots=True)
class JourneyFigures:
    """Measured customers' journeys, from arrival to exit; ``total_seconds_*`` count the
    completed ones (those who hung up are ``abandoned``)."""

    customers: int
    completed: int
    abandoned: int
    abandoned_share: float | None
    total_seconds_mean: float | None
    total_seconds_p90: float | None


@dataclass(frozen=True, slots=True)
class SimulationFigures:
    load: float
    replications: int
    measured_hours: float
    events: int
    stages: tuple[StageFigures, ...]
    journey: JourneyFigures

    @property
    def breaches(self) -> dict[str, tuple[str, ...]]:
        """The stages that missed their SLA, with what they missed."""
        return {
            stage.name: stage.sla.breaches
            for stage in self.stages
            if stage.sla is not None and not stage.sla.met
        }


def summarise(
    plan: Plan, slas: Sequence[SlaSpec | None], replications: Sequence[Replication], *, load: float
) -> SimulationFigures:
    window_seconds = sum(run.measured_seconds for run in replications)
    stages = []
    for s, name in enumerate(plan.names):
        tallies = [run.stages[s] for run in replications]
        waits = np.concatenate([np.asarray(t.served_waits, dtype=float) for t in tallies])
        abandoned = sum(t.abandoned for t in tallies)
        arrivals = len(waits) + abandoned
        abandoned_share = abandoned / arrivals if arrivals else None
        queue_seconds = float(waits.sum()) + sum(t.abandoned_wait_seconds for t in tallies)
        stages.append(
            StageFigures(
                name=name,
                servers=plan.servers[s],
                arrivals=arrivals,
                served=len(waits),
                abandoned=abandoned,
                abandoned_share=abandoned_share,
                wait_seconds_mean=float(waits.mean()) if len(waits) else None,
                wait_seconds_p90=_p90(waits),
                utilisation=sum(t.busy_server_seconds for t in tallies)
                / (plan.servers[s] * window_seconds),
                throughput_per_hour=sum(t.completions for t in tallies) * 3600 / window_seconds,
                queue_length_mean=sum(t.queue_customer_seconds for t in tallies) / window_seconds,
                queue_length_littles_law=queue_seconds / window_seconds,
                sla=_check(slas[s], waits, abandoned_share),
            )
        )
    totals = np.concatenate([np.asarray(run.journey_seconds, dtype=float) for run in replications])
    abandoned = sum(run.journeys_abandoned for run in replications)
    customers = len(totals) + abandoned
    return SimulationFigures(
        load=load,
        replications=len(replications),
        measured_hours=replications[0].measured_seconds / 3600,
        events=sum(run.events for run in replications),
        stages=tuple(stages),
        journey=JourneyFigures(
            customers=customers,
            completed=len(totals),
            abandoned=abandoned,
            abandoned_share=abandoned / customers if customers else None,
            total_seconds_mean=float(totals.mean()) if len(totals) else None,
            total_seconds_p90=_p90(totals),
        ),
    )


def _p90(values: np.ndarray) -> float | None:
    return float(np.percentile(values, 90)) if len(values) else None


def _check(
    sla: SlaSpec | None, waits: np.ndarray, abandoned_share: float | None
) -> SlaCheck | None:
    if sla is None:
        return None
    if sla.measure == "p90":
        measured = _p90(waits)
    else:
        measured = float(waits.mean()) if len(waits) else None
    breaches = []
    if measured is None and abandoned_share:
        breaches.append("every customer hung up before being served")
    elif measured is not None and measured > sla.wait_seconds:
        breaches.append(f"{sla.measure} wait {measured:.1f} s > {sla.wait_seconds:g} s")
    if (
        sla.max_abandoned_share is not None
        and abandoned_share is not None
        and abandoned_share > sla.max_abandoned_share
    ):
        breaches.append(f"abandoned {abandoned_share:.2%} > {sla.max_abandoned_share:.2%}")
    return SlaCheck(
        measure=sla.measure,
        wait_seconds=sla.wait_seconds,
        measured_wait_seconds=measured,
        served_within_share=float((waits <= sla.wait_seconds).mean()) if len(waits) else None,
        max_abandoned_share=sla.max_abandoned_share,
        met=not breaches,
        breaches=tuple(breaches),
    )
