"""Imports point one way: pipelines → serving → models → ops (DESIGN.md, STYLE.md #3)."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PROJECT = {"ops", "models", "serving", "pipelines", "feature_repo"}
ALLOWED = {
    "ops": set(),
    "feature_repo": set(),
    "models": {"ops"},
    "serving": {"models", "ops"},
    "pipelines": {"serving", "models", "ops", "feature_repo"},
}


def project_imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found & PROJECT


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_package_imports_only_the_layers_below_it(package):
    offenders = {
        str(path.relative_to(ROOT)): sorted(project_imports(path) - ALLOWED[package] - {package})
        for path in (ROOT / package).rglob("*.py")
    }
    assert {path: bad for path, bad in offenders.items() if bad} == {}
