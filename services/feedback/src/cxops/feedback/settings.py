"""Feedback's settings: the environment variables prefixed ``CXOPS_FEEDBACK_``."""

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from cxops.common.settings import ServiceSettings


class FeedbackSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="CXOPS_FEEDBACK_", extra="ignore", frozen=True)

    #: Worker processes that read comments in a bulk import (each loads the sentiment model once,
    #: on the first import).
    import_workers: int = Field(default=2, ge=1, le=32)
