"""Journey's settings: the environment variables prefixed ``CXOPS_JOURNEY_``."""

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from cxops.common.settings import ServiceSettings


class JourneySettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="CXOPS_JOURNEY_", extra="ignore", frozen=True)

    #: The agent-desktop context flags a case's SLA clock as ``due_soon`` this close to its
    #: deadline (hours).
    case_due_soon_hours: float = Field(default=4.0, ge=0)
