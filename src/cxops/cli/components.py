"""What the command knows of each component beyond the list in :mod:`cxops.common.components`:
where its app factory and migrations live and its embedded database file, so that ``cxops up``,
``cxops migrate`` and the tests name things the same way.
"""

import importlib
from pathlib import Path

from cxops.common.components import COMPONENTS, GATEWAY

#: The embedded runtime's broker, supervised beside the components.
NATS = "nats"


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
