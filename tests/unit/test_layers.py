"""Dependencies point inward (ARCHITECTURE.md): api -> services -> store/runner/... -> data."""

from __future__ import annotations

import ast
from pathlib import Path

import opensage

ROOT = Path(opensage.__file__).parent
# layer -> the opensage layers it must never import
FORBIDDEN = {
    "store": {"api", "services", "cli", "server", "runner", "serving", "tuning"},
    "services": {"api", "cli", "server"},
    "runner": {"api", "cli", "server"},
    "serving": {"api", "cli"},
    "tuning": {"api", "cli", "server"},
    "algorithms": {"api", "services", "store", "cli", "server", "runner", "serving", "tuning"},
    "data": {"api", "services", "store", "cli", "server", "runner", "serving", "tuning",
             "algorithms"},
    "errors": {"api", "services", "store", "cli", "server"},
    "settings": {"api", "services", "store", "cli", "server"},
}


def imported_layers(path: Path) -> set[str]:
    layers = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        for name in names:
            parts = name.split(".")
            if parts[0] == "opensage" and len(parts) > 1:
                layers.add(parts[1])
    return layers


def test_no_module_imports_an_outer_layer():
    violations = []
    for path in ROOT.rglob("*.py"):
        layer = path.relative_to(ROOT).parts[0].removesuffix(".py")
        bad = imported_layers(path) & FORBIDDEN.get(layer, set())
        if bad:
            violations.append(f"{path.relative_to(ROOT)} imports {sorted(bad)}")
    assert violations == []


def test_the_check_sees_imports():
    assert "api" in imported_layers(ROOT / "server.py")
