"""``docker-compose.yml``: an offline equivalent of ``docker compose config``, and the invariants
the one-host deployment relies on.

No container engine or compose plugin is needed: the file is loaded as compose loads it (YAML
merge keys resolved, ``${...}`` interpolated from ``.env.example``) and validated, as written and
as resolved, against the Compose Specification's JSON schema (vendored by check-jsonschema).
A missing file fails these tests; nothing is skipped.

Settings stay one truth: every ``CXOPS_*`` variable a service sets is a field of that component's
settings class, and the values, with ``.env.example``'s placeholders, build a valid production
configuration.
"""

from __future__ import annotations

import fnmatch
import json
import re
from collections.abc import Iterator, Mapping
from importlib.resources import files
from typing import Any

import jsonschema
import pytest
import yaml

from cxops.cli.components import NATS
from cxops.cli.nats_auth import public_key_variable, server_config_from_environment
from cxops.common.components import COMPONENTS, GATEWAY, SERVICES, env_prefix
from tests.support.manifests import (
    MUST_SET_ALL,
    MUST_SET_GATEWAY,
    ROOT,
    build_settings,
    settings_class,
)

PORT = 8000
NATS_CLIENT_PORT = 4222
POSTGRES = "postgres"

#: Every component's settings need these besides MUST_SET_ALL (one NATS node: stream_replicas
#: stays 1): each connects to NATS with an identity of its own.
MUST_SET_NATS = {"nats_url", "nats_nkey_seed"}

#: The interpolation forms the compose file uses: ``${VAR}``, ``${VAR:-default}``,
#: ``${VAR:?message}``. Any other ``$`` (``$VAR``, ``$$``, ``${VAR-x}``, ``${VAR:+x}``…) fails.
VARIABLE = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:-|:\?)(?P<arg>[^${}]*))?\}")
#: A required variable, the only way a secret may enter the file.
REQUIRED_VARIABLE = re.compile(r"\$\{[A-Za-z_][A-Za-z0-9_]*:\?[^${}]*\}")
SECRET_NAME = re.compile(r"PASSWORD|SECRET|TOKEN|SEED|(^|_)KEY($|_)")
URL_PASSWORD = re.compile(r"://[^:/@\s]+:(?P<password>[^@]*)@")

#: ``.env.example``'s "change-me" is 9 characters and production refuses a signing secret under
#: 32 (see BaseCxopsSettings): an operator replaces it, so the check stands in a 40-character one.
TEST_SIGNING_SECRET = "t" * 40
PLACEHOLDER = "change-me"

Object = dict[str, Any]


def read(relative: str) -> str:
    path = ROOT / relative
    if not path.is_file():
        pytest.fail(f"{relative} is missing (looked for {path})")
    return path.read_text()


def parse_env_file(text: str) -> dict[str, str]:
    """``KEY=value`` lines, comments and blank lines: the subset of compose's .env format used."""
    values: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, value = line.partition("=")
        assert sep and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name), f"line {number}: {line!r}"
        assert not value.startswith(("'", '"')), f"line {number}: quoted values are not handled"
        assert name not in values, f"line {number}: {name} is set twice"
        values[name] = value
    return values


def interpolate(value: str, env: Mapping[str, str], where: str) -> str:
    """Substitute ``${...}`` in one value as compose does (an empty value counts as unset for
    ``:-`` and ``:?``); a plain ``${VAR}`` that is unset fails rather than becoming empty."""
    if "$" in VARIABLE.sub("", value):
        pytest.fail(f"{where}: an interpolation form this check does not handle: {value!r}")

    def substitute(match: re.Match[str]) -> str:
        name, op, arg = match["name"], match["op"], match["arg"]
        current = env.get(name, "")
        if op == ":-":
            return current or arg
        if op == ":?" and not current:
            pytest.fail(f"{where}: {name} is required ({arg})")
        if op is None and name not in env:
            pytest.fail(f"{where}: {name} is not set in .env.example")
        return current

    return VARIABLE.sub(substitute, value)


def interpolate_all(node: Any, env: Mapping[str, str], where: str = "") -> Any:
    if isinstance(node, dict):
        for key in node:
            assert isinstance(key, str) and "$" not in key, f"{where}: key {key!r}"
        return {k: interpolate_all(v, env, f"{where}.{k}") for k, v in node.items()}
    if isinstance(node, list):
        return [interpolate_all(v, env, f"{where}[{i}]") for i, v in enumerate(node)]
    if isinstance(node, str):
        return interpolate(node, env, where)
    return node


def walk(node: Any, where: str = "") -> Iterator[tuple[str, Any, Any]]:
    """(path, key, value) for every mapping entry, depth first."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield where, key, value
            yield from walk(value, f"{where}.{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from walk(value, f"{where}[{index}]")


def load_raw(text: str) -> Object:
    """The file with merge keys resolved (PyYAML's safe loader applies ``<<``), not interpolated."""
    document = yaml.safe_load(text)
    assert isinstance(document, dict), "docker-compose.yml is not a mapping"
    leftover = [f"{where}.{key}" for where, key, _ in walk(document) if key == "<<"]
    assert not leftover, f"merge keys not resolved: {leftover}"
    return document


def load(text: str, env_text: str) -> Object:
    """What ``docker compose config`` would work on, with ``.env.example`` as the ``.env``."""
    resolved: Object = interpolate_all(load_raw(text), parse_env_file(env_text))
    return resolved


@pytest.fixture(scope="module")
def raw() -> Object:
    return load_raw(read("docker-compose.yml"))


@pytest.fixture(scope="module")
def compose() -> Object:
    return load(read("docker-compose.yml"), read(".env.example"))


def services_of(compose: Object) -> dict[str, Object]:
    services = compose.get("services")
    assert isinstance(services, dict) and services, "no services"
    return services


def depends_on(service: Object) -> dict[str, str]:
    """The service's dependencies and their conditions (the list form means service_started)."""
    deps = service.get("depends_on", {})
    if isinstance(deps, list):
        return dict.fromkeys(deps, "service_started")
    return {name: (spec or {}).get("condition", "service_started") for name, spec in deps.items()}


def healthcheck_enabled(service: Object) -> bool:
    check: Object = service.get("healthcheck") or {}
    return bool(check) and not check.get("disable", False)


def environment(service: Object) -> dict[str, str]:
    env = service.get("environment", {})
    if isinstance(env, list):
        env = dict(item.partition("=")[::2] for item in env)
    return {name: str(value) for name, value in env.items()}


def named_volumes(service: Object) -> Iterator[tuple[str, str]]:
    """(source, target) of every volume mount; bind mounts have a path as their source."""
    for mount in service.get("volumes", []):
        if isinstance(mount, dict):
            yield mount["source"], mount["target"]
        else:
            source, _, rest = mount.partition(":")
            yield source, rest.partition(":")[0]


def is_bind(source: str) -> bool:
    return source.startswith((".", "/", "~"))


def compose_spec_validator() -> Any:
    """A validator for the Compose Specification's JSON schema, as check-jsonschema vendors it
    (offline), checking formats too."""
    schema_file = files("check_jsonschema.builtin_schemas.vendor").joinpath("compose-spec.json")
    schema = json.loads(schema_file.read_text())
    validator_class = jsonschema.validators.validator_for(schema)
    validator_class.check_schema(schema)
    return validator_class(schema, format_checker=validator_class.FORMAT_CHECKER)


@pytest.mark.parametrize("form", ["raw", "compose"])
def test_follows_the_compose_spec_schema(form: str, request: pytest.FixtureRequest) -> None:
    """As written, and as ``docker compose config`` resolves it with ``.env.example``."""
    validator = compose_spec_validator()
    assert list(validator.iter_errors({"services": {"x": {"imagee": "y"}}})), "not strict"
    document: Object = request.getfixturevalue(form)
    errors = sorted(validator.iter_errors(document), key=lambda e: list(map(str, e.path)))
    assert not errors, "\n".join(f"{'.'.join(map(str, e.path))}: {e.message}" for e in errors)


def test_the_project_and_its_builds(compose: Object) -> None:
    assert compose.get("name") == "cxops", "the volumes are documented as cxops_<volume>"
    for name, service in services_of(compose).items():
        assert "image" in service or "build" in service, f"{name}: neither image nor build"
        if "build" in service:
            assert (ROOT / service["build"]["context"] / service["build"]["dockerfile"]).is_file()
        check = service.get("healthcheck")
        if check is not None and not check.get("disable", False):
            assert check.get("test"), f"{name}: a healthcheck without a test"


def test_dependencies_exist_and_can_be_met(compose: Object) -> None:
    services = services_of(compose)
    for name, service in services.items():
        for dependency, condition in depends_on(service).items():
            where = f"{name} -> {dependency}"
            assert dependency in services and dependency != name, f"{where}: no such service"
            target = services[dependency]
            if condition == "service_healthy":
                assert healthcheck_enabled(target), f"{where}: {dependency} has no healthcheck"
            if condition == "service_completed_successfully":
                assert target.get("restart", "no") == "no", f"{where}: a one-shot must not restart"

    # No cycle: every service can be started once its dependencies are.
    started: set[str] = set()
    while len(started) < len(services):
        ready = {
            n for n, s in services.items() if n not in started and depends_on(s).keys() <= started
        }
        assert ready, f"a depends_on cycle among {sorted(set(services) - started)}"
        started |= ready


def test_only_the_gateway_is_published(compose: Object) -> None:
    published = {name: s["ports"] for name, s in services_of(compose).items() if s.get("ports")}
    assert published == {GATEWAY: [f"{PORT}:{PORT}"]}


def test_volumes_are_declared_and_bind_mounts_exist(compose: Object) -> None:
    declared = compose.get("volumes") or {}
    used: set[str] = set()
    for name, service in services_of(compose).items():
        for source, target in named_volumes(service):
            assert target.startswith("/"), f"{name}: mount target {target!r}"
            if is_bind(source):
                assert (ROOT / source).exists(), f"{name}: bind mount {source} does not exist"
            else:
                assert source in declared, f"{name}: volume {source!r} is not declared"
                used.add(source)
    assert used == set(declared), f"declared but unused: {sorted(set(declared) - used)}"


def test_each_component_migrates_then_serves(compose: Object) -> None:
    services = services_of(compose)
    assert set(services) == {POSTGRES, NATS} | set(COMPONENTS) | {
        f"migrate-{c}" for c in COMPONENTS
    }
    for component in COMPONENTS:
        server, migrate = services[component], services[f"migrate-{component}"]
        prefix = env_prefix(component)
        assert migrate["command"] == ["python", "-m", "cxops.common.migrate", component]
        assert migrate["image"] == server["image"] == f"cxops-{component}:0.1.0"
        assert migrate["build"] == server["build"], "the migration runs the server's image"
        assert server["build"]["args"]["COMPONENT"] == component
        assert migrate["restart"] == "no" and not healthcheck_enabled(migrate)
        assert depends_on(migrate) == {POSTGRES: "service_healthy"}
        assert environment(migrate) == {
            f"{prefix}DATABASE_URL": environment(server)[f"{prefix}DATABASE_URL"]
        }, "the migration reads only its database URL, the server's"

        deps = depends_on(server)
        assert deps[f"migrate-{component}"] == "service_completed_successfully", component
        assert healthcheck_enabled(server), component
        assert "/readyz" in " ".join(server["healthcheck"]["test"]), component
        # Every component reads NATS (the gateway for webhooks and the event stream).
        assert deps[NATS] == "service_healthy", component
        if component == GATEWAY:
            # It starts last, once the services are ready.
            assert all(deps[s] == "service_healthy" for s in SERVICES)


def test_nats_runs_jetstream_and_is_checked_on_it(compose: Object) -> None:
    nats = services_of(compose)[NATS]
    assert re.fullmatch(r"nats:2\.10(\.\d+)?(-alpine)?", nats["image"])
    command = nats["command"]
    assert "--jetstream" in command or "-js" in command
    assert "--http_port=8222" in command
    assert any(source == "nats-data" for source, _ in named_volumes(nats))
    assert "http://127.0.0.1:8222/healthz?js-enabled-only=true" in nats["healthcheck"]["test"]


def test_nats_refuses_anyone_but_the_components(compose: Object) -> None:
    """The mounted authorization is the one the code derives (each component its own subjects),
    with every component's public key from the environment."""
    nats = services_of(compose)[NATS]
    mounts = dict(named_volumes(nats))
    assert mounts["./deploy/nats/nats.conf"] == "/etc/nats/cxops.conf"
    assert "--config=/etc/nats/cxops.conf" in nats["command"]
    config = "\n".join(
        line for line in read("deploy/nats/nats.conf").splitlines() if not line.startswith("#")
    )
    assert config + "\n" == server_config_from_environment(), (
        "deploy/nats/nats.conf differs from the permissions the code derives; regenerate it from "
        "cxops.cli.nats_auth.server_config_from_environment()"
    )
    env = environment(nats)
    assert set(env) == {public_key_variable(component) for component in COMPONENTS}


def test_postgres_is_16_and_creates_a_database_per_component(compose: Object) -> None:
    postgres = services_of(compose)[POSTGRES]
    assert re.fullmatch(r"postgres:16(\.\d+)*(-[a-z0-9.]+)?", postgres["image"])
    mounts = dict(named_volumes(postgres))
    init = "./deploy/postgres/init.sh"
    assert init in mounts, "the init script is not mounted"
    assert re.fullmatch(r"/docker-entrypoint-initdb\.d/[\w.-]+\.sh", mounts[init])
    script = read("deploy/postgres/init.sh")
    loop = re.search(r"^for component in ([a-z ]+); do$", script, re.MULTILINE)
    assert loop and loop[1].split() == list(COMPONENTS), "init.sh must create every component"
    env = environment(postgres)
    for component in COMPONENTS:
        assert env[f"{component.upper()}_DB_PASSWORD"], component
    for name in ("POSTGRES_USER", "POSTGRES_DB", "POSTGRES_PASSWORD"):
        assert env[name], name


def test_environment_is_what_the_settings_read(compose: Object) -> None:
    services = services_of(compose)
    for component in COMPONENTS:
        cls = settings_class(component)
        prefix = env_prefix(component)
        assert cls.model_config.get("env_prefix") == prefix
        fields = set(cls.model_fields)
        for service_name in (component, f"migrate-{component}"):
            for name in environment(services[service_name]):
                assert name.startswith(prefix), (
                    f"{service_name}: {cls.__name__} does not read {name}"
                )
                assert name[len(prefix) :].lower() in fields, f"{service_name}: no field for {name}"

        env = environment(services[component])
        set_fields = {name[len(prefix) :].lower() for name in env}
        required = {name for name, field in cls.model_fields.items() if field.is_required()}
        must = required | MUST_SET_ALL | MUST_SET_NATS
        must |= MUST_SET_GATEWAY if component == GATEWAY else set()
        assert must <= set_fields, f"{component}: {sorted(must - set_fields)} not set"

        assert env[f"{prefix}SIGNING_SECRET"] == PLACEHOLDER
        values = {**env, f"{prefix}SIGNING_SECRET": TEST_SIGNING_SECRET}
        settings = build_settings(cls, prefix, values)
        assert settings.environment == env[f"{prefix}ENVIRONMENT"] == "production", component
        url = re.fullmatch(
            r"postgresql\+asyncpg://(\w+):[^@]+@([\w-]+):5432/(\w+)", settings.database_url
        )
        assert url, f"{component}: database_url {settings.database_url!r}"
        assert url.groups() == (f"cxops_{component}", POSTGRES, f"cxops_{component}"), component
        assert settings.nats_url == f"nats://{NATS}:{NATS_CLIENT_PORT}", component
        seed = f"${{{component.upper()}_NATS_SEED:?"
        assert raw_env(component)[f"{prefix}NATS_NKEY_SEED"].startswith(seed), component
        if component == GATEWAY:
            for service in SERVICES:
                assert getattr(settings, f"{service}_url") == f"http://{service}:{PORT}"
                assert service in services


def raw_env(component: str) -> dict[str, str]:
    """A component's environment as written, before interpolation."""
    return environment(load_raw(read("docker-compose.yml"))["services"][component])


def test_no_secret_is_written_in_the_file(raw: Object) -> None:
    for where, key, value in walk(raw):
        if not isinstance(value, str):
            continue
        if isinstance(key, str) and SECRET_NAME.search(key):
            assert REQUIRED_VARIABLE.fullmatch(value), f"{where}.{key}: a secret must be ${{VAR:?}}"
        for match in URL_PASSWORD.finditer(value):
            assert REQUIRED_VARIABLE.fullmatch(match["password"]), f"{where}.{key}: URL password"


def test_each_database_url_uses_its_components_password(raw: Object) -> None:
    for name, service in raw["services"].items():
        for variable, value in environment(service).items():
            if variable.endswith("_DATABASE_URL"):
                component = name.removeprefix("migrate-")
                assert f"${{{component.upper()}_DB_PASSWORD:?" in value, f"{name}: {variable}"


def test_env_example_lists_exactly_the_variables_compose_reads() -> None:
    used = {m["name"] for m in VARIABLE.finditer(read("docker-compose.yml"))}
    example = parse_env_file(read(".env.example"))
    assert used == set(example), (
        f"only in compose: {used - set(example)}, only in .env.example: {set(example) - used}"
    )
    for name, value in example.items():
        if SECRET_NAME.search(name):
            assert value == PLACEHOLDER, f".env.example: {name} must stay a placeholder"


def test_dot_env_is_git_ignored() -> None:
    def ignored(filename: str) -> bool:
        verdict = False
        for line in read(".gitignore").splitlines():
            pattern = line.strip()
            if not pattern or pattern.startswith("#"):
                continue
            negated = pattern.startswith("!")
            pattern = pattern.lstrip("!").lstrip("/")
            if fnmatch.fnmatchcase(filename, pattern):
                verdict = not negated
        return verdict

    assert ignored(".env"), ".env holds the secrets: .gitignore must list it"
    assert not ignored(".env.example"), ".env.example must stay committed"
