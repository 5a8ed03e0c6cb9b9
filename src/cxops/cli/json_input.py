"""Reading the JSON files the commands take (scenarios, models, maps, rules, scorecards), with
the same refusals everywhere: an unreadable file, or not JSON with the line and column."""

import json
import sys
from pathlib import Path

import typer


def read_json(source: str | Path) -> object:
    """The decoded JSON of the file ``source``, or of standard input when it is ``-``."""
    try:
        text = sys.stdin.read() if str(source) == "-" else Path(source).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise typer.BadParameter(f"cannot read {source}: {reason}") from exc
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise typer.BadParameter(
            f"{source}: not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from exc
