"""The floors of the code: the kernel (`energymon`) imports no application; each application
imports only the kernel; the harness sits above the applications and the `energymon` command
above everything. Read from the source, lazy imports inside functions included."""

from __future__ import annotations

import ast
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
KERNEL = "energymon"
APPLICATIONS = ("collector", "replicator", "simulator", "energymon_grafana")
HARNESS = "harness"
ENTRY = "energymon_cli"
# What each package may import besides itself.
ALLOWED: dict[str, frozenset[str]] = {
    KERNEL: frozenset(),
    **{app: frozenset({KERNEL}) for app in APPLICATIONS},
    HARNESS: frozenset({KERNEL, *APPLICATIONS}),
    ENTRY: frozenset({KERNEL, *APPLICATIONS, HARNESS}),
}


def imports(package: str) -> Iterator[tuple[str, str, str]]:
    """(file, imported package, statement) for every import of another of ours in `package`."""
    for path in sorted((ROOT / package).rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules = [node.module]
            else:
                continue
            for module in modules:
                top = module.split(".")[0]
                if top in ALLOWED and top != package:
                    yield f"{path.relative_to(ROOT)}:{node.lineno}", top, ast.unparse(node)


def test_every_installed_package_has_a_floor() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert set(pyproject["tool"]["setuptools"]["packages"]) == set(ALLOWED)
    assert set(pyproject["tool"]["mypy"]["packages"]) == set(ALLOWED)


@pytest.mark.parametrize("package", ALLOWED)
def test_a_package_imports_only_the_floors_below_it(package: str) -> None:
    upward = [
        f"{where}: {statement}"
        for where, imported, statement in imports(package)
        if imported not in ALLOWED[package]
    ]
    assert not upward, "\n".join(upward)


def test_no_import_cycle_between_packages() -> None:
    graph = {p: {imported for _, imported, _ in imports(p)} for p in ALLOWED}
    done: set[str] = set()

    def visit(package: str, path: list[str]) -> None:
        if package in path:
            raise AssertionError(" -> ".join([*path[path.index(package) :], package]))
        if package in done:
            return
        for imported in sorted(graph[package]):
            visit(imported, [*path, package])
        done.add(package)

    for package in ALLOWED:
        visit(package, [])
