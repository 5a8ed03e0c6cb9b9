"""Journey's settings: the environment variables prefixed ``CXOPS_JOURNEY_``."""

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
