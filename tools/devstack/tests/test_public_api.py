"""The dev stack is the one harness of the tests and the bench: they import its public API (the names of
`llmagg_devstack`), never one of its modules, so it can change inside without touching them."""

from __future__ import annotations

import ast
from pathlib import Path

import llmagg_devstack

ROOT = Path(__file__).resolve().parents[3]
# Every test of the tree but the dev stack's own, and the bench.
USERS = [
    ROOT / "conftest.py",
    *sorted((ROOT / "tests").rglob("*.py")),
    *sorted((ROOT / "bench").rglob("*.py")),
    *sorted(
        path
        for path in ROOT.glob("*/**/tests/**/*.py")
        if "devstack" not in path.parts and ".venv" not in path.parts and "node_modules" not in path.parts
    ),
]


def _devstack_imports(path: Path) -> list[tuple[str, list[str]]]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("llmagg_devstack"):
            found.append((node.module, [alias.name for alias in node.names]))
        elif isinstance(node, ast.Import):
            found += [(a.name, []) for a in node.names if a.name.startswith("llmagg_devstack.")]
    return found


def test_tests_and_the_bench_import_only_the_public_api():
    inside = {
        f"{path.relative_to(ROOT)}: {module}"
        for path in USERS
        for module, _ in _devstack_imports(path)
        if module != "llmagg_devstack"
    }
    assert inside == set()


def test_every_name_they_import_is_public_and_there():
    for path in USERS:
        for _, names in _devstack_imports(path):
            for name in names:
                assert name in llmagg_devstack.__all__ and not name.startswith("_"), f"{path}: {name}"
                assert getattr(llmagg_devstack, name) is not None
