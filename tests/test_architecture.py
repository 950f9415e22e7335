"""The layering holds without tricks: no module of the panel imports one of its own modules inside a
function (the way cycles used to be dodged). The import-linter contracts (pyproject.toml, run by
`make lint`) check the direction of the imports; this checks that none of them hides in a function.

Allowed: an AppConfig.ready() that imports a module for what it registers (checks, reconciler handlers).
"""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("ccp", "templates_engine", "instances", "upgrades")


def _own(node: ast.Import | ast.ImportFrom, packages: tuple[str, ...] = PACKAGES) -> bool:
    if isinstance(node, ast.ImportFrom):
        return node.level > 0 or (node.module or "").split(".")[0] in packages
    return any(alias.name.split(".")[0] in packages for alias in node.names)


def _function_level_imports(path: Path, root: Path = ROOT, packages: tuple[str, ...] = PACKAGES) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = []
    for function in ast.walk(tree):
        if not isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        if path.name == "apps.py" and function.name == "ready":
            continue
        for node in ast.walk(function):
            if isinstance(node, ast.Import | ast.ImportFrom) and _own(node, packages):
                found.append(f"{path.relative_to(root)}:{node.lineno} in {function.name}()")
    return found


def test_no_module_imports_its_own_project_inside_a_function():
    found = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            if "migrations" not in path.parts:
                found += _function_level_imports(path)
    assert found == [], "function-level imports of the project's own modules:\n" + "\n".join(found)


def test_the_tests_import_the_project_at_the_top_too():
    found = []
    for path in sorted((ROOT / "tests").rglob("*.py")):
        found += _function_level_imports(path, packages=(*PACKAGES, "tests"))
    assert found == [], "function-level imports in the tests:\n" + "\n".join(found)


def test_no_test_module_imports_another_test_module():
    """Helpers shared between test modules live in helpers modules (tests/upgrades/helpers.py, …), and
    shared fixtures in fixture modules (tests/testbed/tenant_fixtures.py); nothing imports a test
    module or a conftest.py."""
    found = []
    for path in sorted((ROOT / "tests").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[-1].startswith(
                ("test_", "conftest")
            ):
                found.append(f"{path.relative_to(ROOT)}:{node.lineno} imports {node.module}")
    assert found == [], "\n".join(found)


def test_the_check_sees_a_function_level_import(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text("def f():\n    from instances.models import Node\n    import json\n")
    assert _function_level_imports(sample, tmp_path) == ["sample.py:2 in f()"]
