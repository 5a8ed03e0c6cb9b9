"""The components of the suite, written once.

Every other list derives from this one: the command's supervisor and its ``--<service>-port``
flags, ``cxops migrate``, the images' migration entry point, the gateway's upstream settings
and routes, the NATS permissions, the Makefile's images (from the ``services/`` directories,
which a test holds to this list) and the tests. It lives in ``cxops.common`` because the
gateway and the services may import it, and the command as well.
"""

#: The services behind the gateway, by the first path segment after ``/v1/`` (and their
#: package ``cxops.<service>``, directory ``services/<service>`` and stream ``CX_<SERVICE>``).
SERVICES: tuple[str, ...] = ("feedback", "routing", "scorecard", "journey")
GATEWAY = "gateway"
#: Everything that owns a database and runs migrations, in the order they are migrated.
COMPONENTS: tuple[str, ...] = (*SERVICES, GATEWAY)

GATEWAY_PORT = 8000
FIRST_SERVICE_PORT = 8101


def env_prefix(component: str) -> str:
    """``feedback`` → ``CXOPS_FEEDBACK_``: the prefix of that component's settings."""
    return f"CXOPS_{component.upper()}_"


def default_port(component: str) -> int:
    """Where a component listens on one machine: the gateway on 8000, the services from 8101
    in the order of :data:`SERVICES` (the embedded runtime, and the gateway's default
    upstreams)."""
    if component == GATEWAY:
        return GATEWAY_PORT
    if component not in SERVICES:
        raise ValueError(f"unknown component {component!r}; expected one of {COMPONENTS}")
    return FIRST_SERVICE_PORT + SERVICES.index(component)
