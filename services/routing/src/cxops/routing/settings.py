"""Routing's settings: the environment variables prefixed ``CXOPS_ROUTING_``."""

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from cxops.common.settings import ServiceSettings


class RoutingSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="CXOPS_ROUTING_", extra="ignore", frozen=True)

    #: How long an agent has to accept or reject an offer before it times out.
    offer_timeout_seconds: float = Field(default=15.0, gt=0)
    #: Offers let time out in a row before the engine sets the agent away.
    max_consecutive_timeouts: int = Field(default=3, ge=1)
    #: How long an agent's live offer stream may stay dropped before the agent goes offline.
    stream_grace_seconds: float = Field(default=30.0, ge=0)
    #: How often an idle offer stream sends a heartbeat (below every proxy's idle timeout).
    stream_heartbeat_seconds: float = Field(default=15.0, gt=0)
    #: How long a dead replica's tenants wait for a new owner (at most twice this).
    lease_ttl_seconds: float = Field(default=10.0, gt=0)
    #: Connecting to the owner replica, and each write to it, when forwarding a call.
    forward_timeout_seconds: float = Field(default=10.0, gt=0)
