"""``python -m cxops.gateway.create_key --tenant T --role R [--name N] [--agent-id UUID]``: the
first API key of a deployment, made inside the gateway's container.

``cxops keys create`` does the same on a laptop, but the ``cxops`` command pulls every service
and is not in the gateway's image. Once an admin key exists, the gateway's own API manages keys
(``/v1/keys``). Works on ``CXOPS_GATEWAY_DATABASE_URL``, which must be migrated
(``python -m cxops.common.migrate gateway``). The key alone goes to standard output, shown this
once.
"""

import argparse
import asyncio
import os
import sys
import uuid

from cxops.common.auth import Role
from cxops.common.db import Database, DatabaseNotMigrated
from cxops.gateway.app import MIGRATIONS
from cxops.gateway.keys import ApiKeyRecord, create_key
from cxops.gateway.settings import GatewaySettings


async def create(
    url: str, *, tenant: str, role: Role, name: str, agent_id: uuid.UUID | None = None
) -> tuple[ApiKeyRecord, str]:
    db = Database(url)
    try:
        await db.ensure_migrated(MIGRATIONS)
        async with db.transaction() as session:
            return await create_key(session, tenant=tenant, role=role, name=name, agent_id=agent_id)
    finally:
        await db.dispose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cxops.gateway.create_key", description=__doc__)
    parser.add_argument("--tenant", required=True, help="the tenant the key acts for")
    parser.add_argument("--role", required=True, choices=[role.value for role in Role])
    parser.add_argument("--name", help="a label: who or what holds the key")
    parser.add_argument(
        "--agent-id",
        type=uuid.UUID,
        metavar="UUID",
        help="bind a key of role agent to this routing agent (only for --role agent)",
    )
    args = parser.parse_args(argv)
    variable = f"{GatewaySettings.model_config['env_prefix']}DATABASE_URL"
    url = os.environ.get(variable, "").strip()
    if not url:
        print(f"error: {variable} is not set; it names the gateway's database", file=sys.stderr)
        return 2
    try:
        name = args.name or f"{args.tenant}-{args.role}"
        record, plaintext = asyncio.run(
            create(url, tenant=args.tenant, role=Role(args.role), name=name, agent_id=args.agent_id)
        )
    except (DatabaseNotMigrated, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    bound = f", agent {record.agent_id}" if record.agent_id else ""
    print(
        f"Created key {record.id} ({record.name}): tenant {record.tenant}, "
        f"role {record.role}{bound}. Store it now; it is not shown again.",
        file=sys.stderr,
    )
    print(plaintext)
    return 0


if __name__ == "__main__":
    sys.exit(main())
