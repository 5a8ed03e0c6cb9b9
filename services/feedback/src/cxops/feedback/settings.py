"""Feedback's settings: the environment variables prefixed ``CXOPS_FEEDBACK_``."""

from pydantic_settings import SettingsConfigDict

from cxops.common.settings import ServiceSettings


class FeedbackSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="CXOPS_FEEDBACK_", extra="ignore", frozen=True)
