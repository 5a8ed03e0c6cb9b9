"""Journey's settings: the environment variables prefixed ``CXOPS_JOURNEY_``."""

from pathlib import Path

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from cxops.common.settings import ServiceSettings


class JourneySettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="CXOPS_JOURNEY_", extra="ignore", frozen=True)

    #: Where uploaded event logs are kept (one file per log), and the inputs jobs build.
    data_dir: Path = Path("./var/journey")
    #: The largest event log an upload may send; a larger one is refused with 413.
    event_log_max_bytes: int = Field(default=2 * 1024**3, ge=1)
    #: How many jobs one replica runs at once, each in a process of its own.
    job_concurrency: int = Field(default=1, ge=1, le=64)
    #: How long a job's work item stays with a worker that has stopped saying it is still at
    #: work; after that another replica takes the job up again.
    job_ack_wait_seconds: float = Field(default=30.0, gt=0)
    #: How often a running job's worker says it is alive, records progress and looks for a
    #: cancellation (several times per ``job_ack_wait_seconds``).
    job_heartbeat_seconds: float = Field(default=5.0, gt=0)
    #: After this many workers took a job and died with it, the job fails.
    job_max_attempts: int = Field(default=3, ge=1)
