"""Journey's settings: the environment variables prefixed ``CXOPS_JOURNEY_``."""

from cxops.common.settings import ServiceSettings
from pydantic_settings import SettingsConfigDict


class JourneySettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="CXOPS_JOURNEY_", extra="ignore", frozen=True)
