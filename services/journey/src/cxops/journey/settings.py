"""Journey's settings: the environment variables prefixed ``CXOPS_JOURNEY_``."""

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from cxops.common.settings import ServiceSettings


class JourneySettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="CXOPS_JOURNEY_", extra="ignore", frozen=True)

    # ------------------------------------------------------------------ journey maps, live
    #: The handoff deadlines' timer re-reads the earliest deadline from the database at least
    #: this often, to see deadlines other replicas armed.
    handoff_deadline_poll_seconds: float = Field(default=30.0, gt=0)
