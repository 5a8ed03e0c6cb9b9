"""The journey service: journey maps, interaction logs, identity resolution, mining, simulation.

Mining and simulation run as jobs (:mod:`cxops.journey.jobs`): any replica's
:class:`~cxops.journey.jobs.JobWorker` takes them from the work-queue stream.
"""

from pathlib import Path

from fastapi import FastAPI

from cxops.common.service import ServiceSpec, create_service_app
from cxops.journey.api import event_logs as event_logs_api
from cxops.journey.api import jobs as jobs_api
from cxops.journey.jobs import JOB_QUEUE, JobWorker
from cxops.journey.settings import JourneySettings

SPEC = ServiceSpec(
    name="journey",
    description=(
        "Journey maps, interaction logs, identity resolution, process mining and simulation."
    ),
    migrations=Path(__file__).parent / "migrations",
    routers=(event_logs_api.router, jobs_api.router),
    components=(JobWorker,),
    work_queues=(JOB_QUEUE,),
    tags=(
        {
            "name": "mining jobs",
            "description": (
                "Event logs uploaded for mining, and `cxops journey mine` and `simulate` as "
                "jobs any replica runs; results are the commands' `--json` output."
            ),
        },
    ),
)


def create_app(settings: JourneySettings | None = None) -> FastAPI:
    """The ASGI app; a uvicorn factory (``cxops.journey.app:create_app --factory``) that reads
    ``CXOPS_JOURNEY_*`` from the environment when no settings are given."""
    return create_service_app(SPEC, settings or JourneySettings())
