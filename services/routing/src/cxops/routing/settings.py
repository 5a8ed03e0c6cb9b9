"""Routing's settings: the environment variables prefixed ``CXOPS_ROUTING_``."""

from pydantic_settings import SettingsConfigDict

from cxops.common.settings import ServiceSettings


class RoutingSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="CXOPS_ROUTING_", extra="ignore", frozen=True)
