"""Journey's settings: the environment variables prefixed ``CXOPS_JOURNEY_``."""

from pydantic_settings import SettingsConfigDict

from cxops.common.settings import ServiceSettings


class JourneySettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="CXOPS_JOURNEY_", extra="ignore", frozen=True)
