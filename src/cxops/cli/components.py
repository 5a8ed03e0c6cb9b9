"""The parts of the suite the command drives: which services exist, where each one's app factory
and migrations live, its environment prefix and its embedded database file.

One catalogue, so that ``cxops up``, ``cxops migrate`` and the tests name things the same way.
"""

import importlib
from pathlib import Path

SERVICES: tuple[str, ...] = ("feedback", "routing", "scorecard", "journey")
GATEWAY = "gateway"
#: Everything that owns a database and runs migrations, in the order they are migrated.
COMPONENTS: tuple[str, ...] = (*SERVICES, GATEWAY)
NATS = "nats"


def env_prefix(component: str) -> str:
    """``feedback`` → ``CXOPS_FEEDBACK_``: the prefix of that component's settings."""
    return f"CXOPS_{component.upper()}_"


def app_factory(component: str) -> str:
    """The uvicorn factory of a component (``cxops.routing.app:create_app``)."""
    return f"cxops.{component}.app:create_app"


def migrations_location(component: str) -> Path:
    """The Alembic script directory shipped inside the component's package.

    Imported lazily: the command should start (``--help``, ``keys``) even while one service
    package is broken, and only what is migrated gets imported.
    """
    if component not in COMPONENTS:
        raise ValueError(f"unknown component {component!r}; expected one of {COMPONENTS}")
    module = importlib.import_module(f"cxops.{component}.app")
    if component == GATEWAY:
        location: Path = module.MIGRATIONS
    else:
        location = module.SPEC.migrations
    return Path(location)


def embedded_database_url(var_dir: Path, component: str) -> str:
    """The SQLite file the embedded runtime gives a component: ``<var>/<component>.db``."""
    return f"sqlite+aiosqlite:///{(var_dir / f'{component}.db').resolve()}"
