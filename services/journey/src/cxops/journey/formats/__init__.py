"""The formats journey reads, one module each: event logs (:mod:`.log`, CSV or Parquet), the
designed journey map (:mod:`.journey_map`, ``MAP.json``), the identity events and rules
(:mod:`.identities`) and the simulation's model (:mod:`.simulation`, ``MODEL.json``).

The JSON formats are pydantic models that refuse unknown fields, so that each can be the journey
API's request body as it stands; their problems are reported all at once, each with its place in
the file written the way a user finds it (``stages[2].activities[0]``), by :func:`place`.
"""

from collections.abc import Sequence


def place(loc: Sequence[int | str], *, whole: str) -> str:
    """A pydantic error's location as a path into the file: ``("stages", 2, "name")`` is
    ``stages[2].name``; the empty location is the ``whole`` document."""
    written = ""
    for part in loc:
        written += f"[{part}]" if isinstance(part, int) else (f".{part}" if written else str(part))
    return written or whole
