"""Scorecard's settings: the environment variables prefixed ``CXOPS_SCORECARD_``."""

from pydantic_settings import SettingsConfigDict

from cxops.common.settings import ServiceSettings


class ScorecardSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="CXOPS_SCORECARD_", extra="ignore", frozen=True)
