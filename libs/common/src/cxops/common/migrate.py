"""``python -m cxops.common.migrate COMPONENT``: one component's migrations, the step its
container image runs before serving (the compose one-shot service, the Kubernetes Job).

The same as ``cxops migrate --service COMPONENT`` without the ``cxops`` command, which depends on
every service and so is in no image. A component's migrations live in its package
(``cxops/<component>/migrations``) and its database is ``CXOPS_<COMPONENT>_DATABASE_URL``, the
variable the component itself reads (its settings' prefix; ``tests/deploy`` checks the two
agree).
"""

import sys
from importlib.resources import files

from cxops.common.components import COMPONENTS, env_prefix
from cxops.common.migrations import migrate_main

USAGE = f"usage: python -m cxops.common.migrate {'|'.join(COMPONENTS)}"


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(USAGE, file=sys.stderr)
        return 2
    component = argv[0]
    try:
        location = files(f"cxops.{component}") / "migrations"
    except ModuleNotFoundError:
        location = None
    if location is None or not location.is_dir():
        print(f"error: no component {component!r} with migrations here\n{USAGE}", file=sys.stderr)
        return 2
    return migrate_main(
        component=component,
        env_prefix=env_prefix(component),
        script_location=str(location),
    )


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
