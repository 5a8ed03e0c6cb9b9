"""Feedback's settings: the environment variables prefixed ``CXOPS_FEEDBACK_``."""

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from cxops.common.settings import ServiceSettings


class FeedbackSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="CXOPS_FEEDBACK_", extra="ignore", frozen=True)

    #: Worker processes that read comments in a bulk import (each loads the sentiment model once,
    #: on the first import).
    import_workers: int = Field(default=2, ge=1, le=32)
    #: Survey invitations: a customer is invited at most once in this many days across all
    #: surveys, unless a survey sets its own ``recontact_days``.
    recontact_days: int = Field(default=7, ge=0, le=365)
    #: The invitation timer looks for invitations other replicas scheduled at least this often.
    invitation_poll_seconds: float = Field(default=30.0, gt=0)
    #: How long a replica trusts its copy of a tenant's case rules (a PUT on another replica is
    #: How long a replica trusts its copy of a tenant's taxonomy, case rules and alert rules (a
    #: change through another replica is in force here after at most this long; on the replica
    #: that took it, at once).
    tenant_settings_cache_seconds: float = Field(default=5.0, ge=0)
    #: The case clocks' timer re-reads the earliest due moment from the database at least this
    #: often, to see cases other replicas opened or changed.
    case_clock_rescan_seconds: float = Field(default=30.0, gt=0)
