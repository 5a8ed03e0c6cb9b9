"""Journey's settings: the environment variables prefixed ``CXOPS_JOURNEY_``."""

from pydantic_settings import SettingsConfigDict

from cxops.common.settings import ServiceSettings


class JourneySettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="CXOPS_JOURNEY_", extra="ignore", frozen=True)

    # Proactive triggers: a tenant's contact limits until it sets its own.
    trigger_max_contacts: int = 3
    trigger_contact_days: int = 7
    trigger_quiet_start: str = "21:00"
    trigger_quiet_end: str = "08:00"
    trigger_timezone: str = "UTC"
