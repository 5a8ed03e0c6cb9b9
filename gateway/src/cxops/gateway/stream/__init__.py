"""The live event stream, ``GET /v1/events/stream``: Server-Sent Events of the caller's tenant,
filtered by type and by what the caller's role may read, resumable from any event's id. See
gateway/README.md, "Event stream"."""
