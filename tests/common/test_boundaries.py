"""The import boundaries ``make lint`` enforces (the import-linter contracts in the root
``pyproject.toml``) hold on the real tree, still bite, and cover every part of the suite.

A contract can quietly stop checking anything: a module renamed under it, a service added
without it. So besides running the linter on the tree, the tests plant a violation of every
contract in a copy of the sources and require the linter to name each one, and compare the
contracts' module lists with the packages that exist.
"""

import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import grimp

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = ROOT / "pyproject.toml"
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"
#: Where each part's sources live, from the root: (folder holding ``cxops/``, its package).
SOURCES = [
    *((path.parent.parent, f"cxops.{path.name}") for path in ROOT.glob("libs/*/src/cxops/*")),
    (ROOT / "gateway" / "src", "cxops.gateway"),
    *((path.parent.parent, f"cxops.{path.name}") for path in ROOT.glob("services/*/src/cxops/*")),
    (ROOT / "src", "cxops.cli"),
]
SERVICES = sorted(path.name for path in ROOT.glob("services/*/src/cxops/*"))


def config() -> dict[str, Any]:
    settings: dict[str, Any] = tomllib.loads(PYPROJECT.read_text())["tool"]["importlinter"]
    return settings


def contract(name_starts: str) -> dict[str, Any]:
    return next(c for c in config()["contracts"] if c["name"].startswith(name_starts))


def lint_imports(cwd: Path, pythonpath: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/bin:/bin", "PYTHONDONTWRITEBYTECODE": "1"}
    if pythonpath is not None:
        env["PYTHONPATH"] = pythonpath
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", "--config", str(PYPROJECT)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_tree_keeps_every_contract() -> None:
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"Contracts: {len(config()['contracts'])} kept, 0 broken." in result.stdout


#: One violation of each contract, planted in a copy: (package, module, what it imports).
PLANTED = [
    *((f"cxops.{service}.domain", "planted_io", "import fastapi") for service in SERVICES),
    *(
        (f"cxops.{service}.domain", "planted_kit", "import cxops.common.errors")
        for service in SERVICES
    ),
    ("cxops.feedback.domain", "planted_room", "import cxops.feedback.formats"),
    ("cxops.routing", "planted_neighbour", "import cxops.feedback.app"),
    ("cxops.gateway", "planted_service", "import cxops.journey.app"),
    ("cxops.common", "planted_caller", "import cxops.gateway.app"),
    ("cxops.scorecard", "planted_command", "import cxops.cli.main"),
    ("cxops.stats", "planted_kit", "import cxops.common.settings"),
    ("cxops.stats", "planted_library", "import numpy"),
    ("cxops.cli", "planted_format", "import csv"),
]


def test_a_planted_violation_of_each_contract_is_reported(tmp_path: Path) -> None:
    roots = []
    for index, (folder, _) in enumerate(SOURCES):
        copy = tmp_path / str(index)
        shutil.copytree(
            folder / "cxops", copy / "cxops", ignore=shutil.ignore_patterns("__pycache__")
        )
        roots.append(copy)
    for package, module, statement in PLANTED:
        folder = next(
            root / Path(*package.split("."))
            for root, (_, top) in zip(roots, SOURCES, strict=True)
            if package == top or package.startswith(f"{top}.")
        )
        (folder / f"{module}.py").write_text(f"{statement}\n")

    result = lint_imports(tmp_path, ":".join(map(str, roots)))

    assert result.returncode == 1, result.stdout + result.stderr
    assert f"Contracts: 0 kept, {len(config()['contracts'])} broken." in result.stdout
    for package, module, _ in PLANTED:
        assert f"{package}.{module}" in result.stdout, f"{package}.{module} was not reported"


def test_every_part_of_the_suite_is_under_contract() -> None:
    packages = {package for _, package in SOURCES}
    assert set(config()["root_packages"]) == packages
    domains = {f"cxops.{service}.domain" for service in SERVICES}
    assert set(contract("A domain core is pure")["source_modules"]) == domains
    assert {f"cxops.{service}.*" for service in SERVICES} <= set(
        contract("A domain core is pure")["forbidden_modules"]
    )
    components = {f"cxops.{service}" for service in SERVICES} | {"cxops.gateway"}
    assert set(contract("Services and the gateway")["modules"]) == components
    callers = packages - {"cxops.common", "cxops.stats"}
    assert set(contract("cxops.common imports none")["forbidden_modules"]) == callers
    assert set(contract("No component imports the cxops command")["source_modules"]) == (
        packages - {"cxops.cli"}
    )
    assert packages - {"cxops.stats"} <= set(contract("cxops.stats imports")["forbidden_modules"])
    assert contract("The command reads no format")["source_modules"] == ["cxops.cli"]


def test_the_statistics_need_only_the_standard_library() -> None:
    """``cxops-stats`` declares no dependencies: everything it imports outside itself must ship
    with Python."""
    graph = grimp.build_graph("cxops.stats", include_external_packages=True)
    imported = {
        target
        for module in graph.modules
        if module.startswith("cxops.stats")
        for target in graph.find_modules_directly_imported_by(module)
        if not target.startswith("cxops.stats")
    }
    assert imported, "the graph lost the imports: this test would check nothing"
    assert imported <= sys.stdlib_module_names, sorted(imported - sys.stdlib_module_names)
