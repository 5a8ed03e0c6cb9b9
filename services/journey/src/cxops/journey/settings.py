"""Journey's settings: the environment variables prefixed ``CXOPS_JOURNEY_``."""

from pathlib import Path

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from cxops.common.settings import ServiceSettings


class JourneySettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="CXOPS_JOURNEY_", extra="ignore", frozen=True)

    #: The country code that makes national phone numbers international for identity
    #: resolution (``44`` reads ``07700 900123`` as ``+447700900123``); none leaves them as given.
    identity_country_code: str | None = None

    # ------------------------------------------------------------------ journey maps, live
    #: The handoff deadlines' timer re-reads the earliest deadline from the database at least
    #: this often, to see deadlines other replicas armed.
    handoff_deadline_poll_seconds: float = Field(default=30.0, gt=0)
    # Proactive triggers: a tenant's contact limits until it sets its own.
    trigger_max_contacts: int = 3
    trigger_contact_days: int = 7
    trigger_quiet_start: str = "21:00"
    trigger_quiet_end: str = "08:00"
    trigger_timezone: str = "UTC"
    #: The agent-desktop context flags a case's SLA clock as ``due_soon`` this close to its
    #: deadline (hours).
    case_due_soon_hours: float = Field(default=4.0, ge=0)
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
