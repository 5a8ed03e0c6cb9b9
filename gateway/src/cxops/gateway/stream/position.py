"""The id of every event on the stream: where the client is in each stream it reads.

``feedback-120.routing-57`` means: of ``CX_FEEDBACK``, everything up to sequence 120 was sent
(or skipped as not the client's), of ``CX_ROUTING`` up to 57. The id of an event carries the
position in *every* stream read, not only the one the event came from, so a client that
resumes with ``Last-Event-ID`` continues each stream right after what it had, with nothing
repeated and nothing skipped, however events of different streams were interleaved.
"""

import re

from cxops.gateway.settings import SERVICES

_ENTRY = re.compile(r"^([a-z]+)-(0|[1-9][0-9]{0,18})$")
MAX_SEQUENCE = 2**63 - 1


class InvalidPosition(ValueError):
    pass


def encode(position: dict[str, int]) -> str:
    return ".".join(f"{service}-{position[service]}" for service in SERVICES if service in position)


def decode(text: str) -> dict[str, int]:
    """The position an id names; :class:`InvalidPosition` for anything we did not write."""
    position: dict[str, int] = {}
    for entry in text.strip().split("."):
        match = _ENTRY.fullmatch(entry)
        if match is None:
            raise InvalidPosition(f"{text!r} is not an event id of this stream")
        service, sequence = match.group(1), int(match.group(2))
        if service not in SERVICES or service in position or sequence > MAX_SEQUENCE:
            raise InvalidPosition(f"{text!r} is not an event id of this stream")
        position[service] = sequence
    return position
