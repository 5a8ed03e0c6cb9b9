"""``cxops journey identities``: the customers behind an event log, resolved from the emails,
phone numbers and ids its events carry."""

import gc
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer

from cxops.cli.json_input import read_json
from cxops.journey.domain.identity import Resolution, resolve_columns
from cxops.journey.formats.identities import (
    Columns,
    InputError,
    Layout,
    RulesSpec,
    build_rules,
    by_type,
    load_rules,
    read_events,
    report_json,
    utc_text,
)

#: Profiles, blocked values and refusals shown by the summary; --json prints them all.
SHOWN = 10


def identities_command(
    events: Annotated[
        Path,
        typer.Argument(
            metavar="EVENTS.csv",
            help="Events CSV, wide or long (see services/journey/README.md).",
            dir_okay=False,
        ),
    ],
    as_json: Annotated[bool, typer.Option("--json", help="Print the whole resolution.")] = False,
    rules_file: Annotated[
        Path | None,
        typer.Option(
            "--rules", metavar="RULES.json", help="Blocklist, caps, kinds and country code."
        ),
    ] = None,
    identifier: Annotated[
        list[str] | None,
        typer.Option(
            metavar="COL[=TYPE]",
            help="An identifier column (long layout: a type), optionally read as TYPE; "
            "repeat it. Default: every column but the event id and timestamp.",
        ),
    ] = None,
    event_id_column: Annotated[
        str | None, typer.Option(help="Default: event_id if present, else file line numbers.")
    ] = None,
    timestamp_column: Annotated[
        str | None, typer.Option(help="Default: timestamp if present.")
    ] = None,
    layout: Annotated[Layout, typer.Option(help="CSV layout.")] = Layout.AUTO,
    country_code: Annotated[
        str | None, typer.Option(help="Makes national phone numbers international, e.g. 44.")
    ] = None,
    max_per_type: Annotated[
        list[str] | None,
        typer.Option(
            metavar="[TYPE=]N",
            help="Most values of a type in one profile (N alone: every type; default 3).",
        ),
    ] = None,
    max_profiles_per_value: Annotated[
        int | None,
        typer.Option(min=1, help="Profiles a value may span before it counts as shared (1)."),
    ] = None,
    block: Annotated[
        list[str] | None,
        typer.Option(metavar="VALUE", help="Never join through this value or glob; repeat it."),
    ] = None,
    no_default_blocklist: Annotated[
        bool,
        typer.Option(
            "--no-default-blocklist", help="Do not block role inboxes and placeholder values."
        ),
    ] = False,
) -> None:
    """Resolve events into customer profiles by their shared identifiers.

    Blocked values never join, caps hold per type, every merge and refusal has its reason, and
    the answer is the same for any row order."""
    spec = _rules_spec(rules_file)
    overrides: dict[str, Any] = {}
    if no_default_blocklist:
        overrides["default_blocklist"] = False
    if country_code is not None:
        overrides["country_code"] = country_code
    if max_per_type:
        overrides["max_per_type"] = {**spec.max_per_type, **_limits(max_per_type)}
    if max_profiles_per_value is not None:
        overrides["max_profiles_per_value"] = max_profiles_per_value
    columns = Columns(
        identifiers=_identifier_columns(identifier or []),
        event_id=event_id_column,
        timestamp=timestamp_column,
        layout=layout,
    )
    try:
        spec = load_rules(spec.model_dump() | overrides, source="the options")
        rules = build_rules(spec, extra_blocks=block or ())
    except InputError as exc:
        raise typer.BadParameter(str(exc)) from exc
    with _collector_paused():
        try:
            loaded = read_events(events, columns)
        except InputError as exc:
            raise typer.BadParameter(str(exc)) from exc
        except OSError as exc:
            raise typer.BadParameter(f"cannot read {events}: {exc.strerror}") from exc
        resolution = resolve_columns(loaded, rules)
        if as_json:
            for piece in report_json(resolution):
                sys.stdout.write(piece)
            sys.stdout.write("\n")
        else:
            _print_summary(resolution, typer.echo)


@contextmanager
def _collector_paused() -> Iterator[None]:
    """A large log becomes millions of objects that all live until the answer is printed; the
    cycle collector would walk them again and again and find nothing to free (a third of the
    run at a million events), so it rests meanwhile."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _rules_spec(path: Path | None) -> RulesSpec:
    if path is None:
        return RulesSpec()
    data = read_json(path)
    try:
        return load_rules(data, source=str(path))
    except InputError as exc:
        raise typer.BadParameter(str(exc)) from exc


def _identifier_columns(specs: list[str]) -> dict[str, str]:
    columns: dict[str, str] = {}
    for spec in specs:
        column, _, type_name = spec.partition("=")
        if not column.strip() or ("=" in spec and not type_name.strip()):
            raise typer.BadParameter(
                f"expected COL or COL=TYPE, not {spec!r}", param_hint="--identifier"
            )
        columns[column.strip()] = type_name.strip() or column.strip()
    return columns


def _limits(specs: list[str]) -> dict[str, int]:
    limits: dict[str, int] = {}
    for spec in specs:
        type_name, _, number = spec.rpartition("=")
        if not number.strip().isdigit() or int(number) < 1 or ("=" in spec and not type_name):
            raise typer.BadParameter(
                f"expected N or TYPE=N with N at least 1, not {spec!r}", param_hint="--max-per-type"
            )
        limits[type_name.strip() or "*"] = int(number)
    return limits


def _print_summary(resolution: Resolution, echo: Callable[[str], None]) -> None:
    echo(
        f"{resolution.events} events: {len(resolution.profiles)} profiles, "
        f"{len(resolution.unresolved_events)} events without a usable identifier; "
        f"{len(resolution.merges)} merges, {len(resolution.refusals)} refused by a cap, "
        f"{len(resolution.blocked)} values blocked, {len(resolution.invalid)} malformed"
    )
    echo(f"identifier types: {', '.join(resolution.identifier_types) or '-'}")
    largest = sorted(resolution.profiles, key=lambda p: (-len(p.events), p.profile_id))
    if largest:
        echo("")
        echo(f"{'profile':<20}{'events':>7}  {'first seen':<21}identifiers")
    for profile in largest[:SHOWN]:
        names = "; ".join(
            f"{type_name} {', '.join(values)}"
            for type_name, values in by_type(profile.identifiers).items()
        )
        first = utc_text(profile.first_seen) or "-"
        echo(f"{profile.profile_id:<20}{len(profile.events):>7}  {first:<21}{names}")
    _more(len(largest), echo)
    blocked = sorted(resolution.blocked, key=lambda b: (-len(b.profiles), -b.events))
    for value in blocked[:SHOWN]:
        echo(
            f"blocked {value.identifier.type} {value.identifier.value}: {value.detail} "
            f"({value.events} events, {len(value.profiles)} profiles)"
        )
    _more(len(blocked), echo)
    for refusal in resolution.refusals[:SHOWN]:
        left, right = refusal.link.left, refusal.link.right
        echo(
            f"refused {left.type} {left.value} + {right.type} {right.value} "
            f"(event {refusal.link.first_event}): {refusal.would_hold} {refusal.type} "
            f"values, at most {refusal.limit}"
        )
    _more(len(resolution.refusals), echo)
    echo("(--json prints every profile, merge and refusal)")


def _more(count: int, echo: Callable[[str], None]) -> None:
    if count > SHOWN:
        echo(f"... and {count - SHOWN} more")
