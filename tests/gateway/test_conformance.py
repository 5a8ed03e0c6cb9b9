"""The suite answers as its OpenAPI document says: schemathesis against the gateway's merged
``/openapi.json``, with the whole suite running as processes (issue 12, defect 6).

It is the run that found the defects, made small: every check schemathesis has (statuses,
content types and response schemas as documented, schema-valid data accepted and invalid data
refused, 405 with ``Allow`` for undocumented methods, ``OPTIONS`` listing every method, no 5xx)
on every operation, in the examples, coverage and fuzzing phases, with a few examples per
operation and a fixed seed: the deterministic coverage phase does most of the work. The
stateful phase is left out: it chains calls from the key listing into revocations, and a
revoked test key would turn the rest of the run into 401s.

Two values are pinned: a survey answer's ``occurred_at``, which must not be in the future (a
rule relative to the server's clock, which no schema can state; it says so in words, and the
service's own tests check it), and a webhook endpoint's ``url``, so that every delivery the run
sets off goes to a closed port on loopback, never to a generated host elsewhere. Routing refuses,
with 422, what JSON Schema cannot state: its staffing calculations (interval starts evenly
spaced, the traffic, agents and Erlang A steps one request may take) and the references a
routing request makes to the tenant's own state (a queue, a skill or a channel that exists, a
rule's queue); for routing's operations only, a 422 to schema-valid data is an accepted answer.
Feedback's likewise, on the operations with rules no schema states: an answer's invitation
token must name an open invitation of the tenant, an import's CSV header must name known
fields, a case rule needs a condition and one score at most, a survey's conditions must name
fields of their event, a taxonomy's topics differ and remove only built-in ones, and a range's
``to`` comes after its ``from``. Journey's triggers too: a trigger's ``when`` holds exactly one
condition, ``>``/``<`` compare numbers and ``in`` takes a list, a gesture needs a budget, a
dry run cannot replay a delayed-handoff trigger, and a tenant's time zone must exist.
The live streams are left out (the event stream and an agent's offers): they answer for as long
as the client listens, which a conformance run does not end; their own tests check them.
"""

import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from cxops.cli.supervisor import Suite
from tests.support.suite import SuiteFactory

#: Examples per operation and generation mode in the fuzzing phase.
MAX_EXAMPLES = 8
SEED = 20261207
EVENT_STREAM = "/v1/events/stream"
OFFERS_STREAM = "/v1/routing/agents/{agent_id}/offers"
#: Routing and journey, and what answers schema-valid data there: the defaults (schemathesis's),
#: and 422 for the rules beyond the schema (a map's stages in order, a split of values the
#: profile holds, an identifier valid for its type...).
ROUTING = "/v1/routing"
JOURNEY = "/v1/journey"
BEYOND_SCHEMA_ACCEPTS = '["2xx", "3xx", "401", "403", "404", "409", "422", "429", "5xx"]'
#: Feedback's operations with rules beyond their schema (see above).
FEEDBACK_BEYOND_SCHEMA = (
    r"^/v1/feedback/(responses(/import)?|case-rules|surveys/[^/]+|taxonomy|calibration"
    r"|cases/root-causes)$"
)
#: Journey's operations with rules beyond their schema (see above).
JOURNEY_BEYOND_SCHEMA = r"^/v1/journey/(triggers/[^/]+(/dry-run)?|trigger-settings)$"
#: Port 9 (discard) on loopback: nothing listens, a delivery fails at once and stays here.
CLOSED_LOOPBACK_URL = "http://127.0.0.1:9/webhook"

#: Out of the way: per-key and per-address limits (they are tested on their own).
UNLIMITED = {
    "CXOPS_GATEWAY_RATE_LIMIT_PER_SECOND": "100000",
    "CXOPS_GATEWAY_RATE_LIMIT_BURST": "100000",
    "CXOPS_GATEWAY_AUTH_FAILURE_BURST": "100000",
}


@pytest.fixture
def conformance_suite(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Suite]:
    factory = SuiteFactory(
        tmp_path_factory.mktemp("conformance"),
        lambda: request.getfixturevalue("postgres_server"),
    )
    try:
        yield factory.start(env=UNLIMITED)
    finally:
        factory.close()


#: The run itself is bounded at 600 s (below); the suite's start and stop come on top of it, and the
#: run grows with every operation the services document (about three minutes on a busy CI box).
@pytest.mark.timeout(900)
def test_every_operation_answers_as_documented(conformance_suite: Suite, tmp_path: Path) -> None:
    key = conformance_suite.create_api_key(tenant="conformance", role="admin", name="schemathesis")
    command = [
        str(Path(sys.executable).with_name("st")),
        "run",
        f"{conformance_suite.gateway_url}/openapi.json",
        f"--header=Authorization: Bearer {key}",
        "--phases=examples,coverage,fuzzing",
        f"--max-examples={MAX_EXAMPLES}",
        f"--seed={SEED}",
        "--generation-deterministic",
        "--workers=1",
        "--request-timeout=30",
        "--no-color",
        f"--exclude-path={EVENT_STREAM}",
        f"--exclude-path={OFFERS_STREAM}",
    ]
    # In a directory of its own: only this configuration is read, no example database is left.
    (tmp_path / "schemathesis.toml").write_text(
        "[parameters]\n"
        '"body.occurred_at" = "2026-01-15T09:30:00+01:00"\n'
        f'"body.url" = "{CLOSED_LOOPBACK_URL}"\n'
        "\n[[operations]]\n"
        f'include-path-regex = "^{ROUTING}/"\n'
        f"checks.positive_data_acceptance.expected-statuses = {BEYOND_SCHEMA_ACCEPTS}\n"
        "\n[[operations]]\n"
        f'include-path-regex = "^{JOURNEY}/"\n'
        f"checks.positive_data_acceptance.expected-statuses = {BEYOND_SCHEMA_ACCEPTS}\n"
        "\n[[operations]]\n"
        f"include-path-regex = '{FEEDBACK_BEYOND_SCHEMA}'\n"
        f"checks.positive_data_acceptance.expected-statuses = {BEYOND_SCHEMA_ACCEPTS}\n"
        "\n[[operations]]\n"
        f"include-path-regex = '{JOURNEY_BEYOND_SCHEMA}'\n"
        f"checks.positive_data_acceptance.expected-statuses = {BEYOND_SCHEMA_ACCEPTS}\n"
    )
    run = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout[-20_000:] + run.stderr[-5_000:]
    selected = re.search(r"Selected: (\d+)/(\d+)", run.stdout)
    assert selected is not None, run.stdout
    # Every operation but the two streams, and no fewer than the run that found the defects.
    assert int(selected[1]) == int(selected[2]) - 2 >= 12, run.stdout
