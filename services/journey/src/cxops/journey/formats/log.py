"""Event logs on disk, CSV or Parquet by extension, opened lazily for
:func:`cxops.journey.domain.log.prepare_log` (which reads only the columns it needs).

CSV cells are all read as text, so case ids keep their leading zeros and timestamps are parsed
by the log's own rules, not guessed by the reader.
"""

from pathlib import Path

import polars as pl

from cxops.journey.domain.log import LogError

FORMATS = {".csv": "CSV", ".parquet": "Parquet", ".pq": "Parquet"}


def scan_log(path: Path) -> pl.LazyFrame:
    """The file's events, unread; raises :class:`LogError` for an unknown extension or a file
    whose header cannot be read."""
    kind = FORMATS.get(path.suffix.lower())
    if kind is None:
        known = ", ".join(FORMATS)
        raise LogError(f"unknown log format {path.suffix!r} (the extension must be one of {known})")
    try:
        if kind == "CSV":
            frame = pl.scan_csv(path, infer_schema=False)
        else:
            frame = pl.scan_parquet(path)
        frame.collect_schema()
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise LogError(f"cannot read it as {kind}: {exc}") from exc
    return frame
