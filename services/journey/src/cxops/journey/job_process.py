"""A job's run, in a process of its own: the CPU-bound work away from the service's event loop,
and killable when the job is canceled.

Processes are forked from a *fork server* that has imported this module and the run's code only
(polars, the domain), not the service: starting one takes milliseconds, where a fresh
interpreter importing the service takes seconds. The server never runs a query itself, so
polars' thread pool does not exist yet when it forks.
"""

import json
import multiprocessing
import os
import threading
import time
from multiprocessing.connection import Connection
from multiprocessing.context import ForkServerContext
from pathlib import Path
from typing import Any

import polars as pl

from cxops.journey.domain.log import Columns, LogError
from cxops.journey.domain.simulation.experiments import RunSettings
from cxops.journey.formats.journey_map import load_journey_map
from cxops.journey.formats.simulation import load_model
from cxops.journey.runs import mine_log, simulation_result


def context() -> ForkServerContext:
    """The multiprocessing context job processes start from."""
    forkserver = multiprocessing.get_context("forkserver")
    forkserver.set_forkserver_preload([__name__])
    return forkserver


def run(sending: Connection, spec: dict[str, Any]) -> None:
    """A job's work, in a process of its own: sends ``("progress", share)`` between phases, then
    ``("done", {...})`` or ``("error", message)``."""
    _exit_with_parent()

    def progress(share: float) -> None:
        sending.send(("progress", share))

    try:
        if spec["kind"] == "mining":
            designed = load_journey_map(spec["map"]) if spec["map"] is not None else None
            mined = mine_log(
                Path(spec["path"]),
                Columns(**spec["columns"]),
                journey_map=designed,
                top=spec["top"],
                progress=progress,
            )
            sending.send(
                ("done", {"result": mined.json, "cases": mined.cases, "events": mined.events})
            )
        else:
            model = load_model(spec["model"])
            settings = RunSettings.of(
                model,
                load=spec["load"],
                hours=spec["hours"],
                warmup_hours=spec["warmup_hours"],
                replications=spec["replications"],
                seed=spec["seed"],
            )
            result = simulation_result(
                model, settings, breaking_point=spec["breaking_point"], progress=progress
            )
            sending.send(("done", {"result": json.dumps(result), "events": result["events"]}))
    except LogError as exc:
        sending.send(("error", str(exc)))
    except pl.exceptions.PolarsError as exc:
        sending.send(("error", f"cannot read the log: {str(exc).splitlines()[0]}"))
    except Exception as exc:  # noqa: BLE001 - reported as the job's error
        sending.send(("error", f"{type(exc).__name__}: {exc}"))
    finally:
        sending.close()


def _exit_with_parent(poll_seconds: float = 0.5) -> None:
    """End this process when the worker that started it is gone (killed, say): its job will
    be taken up again elsewhere, and must not also run here."""
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(poll_seconds)
        os._exit(1)

    threading.Thread(target=watch, daemon=True, name="exit-with-parent").start()
