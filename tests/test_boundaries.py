"""Architecture rules that keep Plaza's parts apart."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PACKAGES = ("posts", "search", "ads", "accounts", "ops", "ml", "config", "bench")


def imported_modules(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


@pytest.mark.integration
def test_ml_never_imports_django():
    """ml/ is plain Python: no module in it imports Django, directly or at run time."""
    offenders = {
        str(path.relative_to(REPO)): sorted(
            n
            for n in imported_modules(path)
            if n.split(".")[0] in {"django", "rest_framework", "celery"}
        )
        for path in (REPO / "ml").rglob("*.py")
    }
    offenders = {path: names for path, names in offenders.items() if names}
    assert offenders == {}, f"ml/ must not import Django or Celery: {offenders}"

    modules = [
        ".".join(path.relative_to(REPO).with_suffix("").parts).removesuffix(".__init__")
        for path in (REPO / "ml").rglob("*.py")
    ]
    probe = (
        "import importlib, sys\n"
        f"for name in ['ml', *{modules!r}]: importlib.import_module(name)\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('django', 'celery')))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        env={"PATH": "/usr/bin:/bin", "HF_HUB_OFFLINE": "1"},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip() == "[]"


def test_the_boundary_check_catches_an_offender(tmp_path):
    """The check above is not vacuous: it sees a Django import when one is there."""
    offender = tmp_path / "bad.py"
    offender.write_text("from django.db import models\nimport numpy\n")
    assert "django.db" in imported_modules(offender)


def test_platform_is_not_a_python_package():
    """A package named platform would shadow the standard library's platform module."""
    assert (REPO / "platform").is_dir()
    assert not (REPO / "platform" / "__init__.py").exists()
    import platform

    assert Path(platform.__file__).parent != REPO / "platform"


def lint_imports(root: Path) -> subprocess.CompletedProcess:
    """import-linter on the contracts in root's pyproject.toml, with root on the path."""
    script = Path(sys.executable).with_name("lint-imports")
    if not script.exists():
        pytest.fail("import-linter is missing: bash platform/install.sh cpu,dev")
    return subprocess.run(
        [str(script), "--no-cache"],  # reads root's pyproject.toml
        cwd=root,
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(root)},
    )


def test_import_contracts_hold():
    """The import directions of STYLE.md hold (pyproject.toml, [tool.importlinter]): posts
    imports neither search nor ads, search and ads never import each other, ops imports no
    domain app, ml imports no app and no Django, no app imports config."""
    result = lint_imports(REPO)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "0 broken" in result.stdout


def test_the_import_contracts_catch_an_offender(tmp_path):
    """The same contracts fail a tree where posts imports search, and name the import."""
    (tmp_path / "pyproject.toml").write_text((REPO / "pyproject.toml").read_text())
    for package in ("posts", "search", "ads", "accounts", "ops", "ml", "config"):
        (tmp_path / package).mkdir()
        (tmp_path / package / "__init__.py").write_text("")
    (tmp_path / "search" / "services.py").write_text("def index_request(): ...\n")
    (tmp_path / "posts" / "services.py").write_text("from search.services import index_request\n")
    result = lint_imports(tmp_path)
    assert result.returncode != 0
    assert "posts.services -> search.services" in result.stdout


def private_imports(path: Path) -> list[str]:
    """`from <project module> import _name` lines in path: another module's private name."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        project = isinstance(node, ast.ImportFrom) and node.module and node.level == 0
        if project and node.module.split(".")[0] in PACKAGES:
            found += [
                f"{node.lineno}: from {node.module} import {alias.name}"
                for alias in node.names
                if alias.name.startswith("_") and not alias.name.startswith("__")
            ]
    return found


def test_no_module_imports_another_modules_private_names():
    """A name that starts with `_` is its module's own: no module of Plaza or bench imports
    one from another (a shared helper gets a public name, in a module both may import)."""
    offenders = {
        str(path.relative_to(REPO)): lines
        for package in PACKAGES
        for path in (REPO / package).rglob("*.py")
        if (lines := private_imports(path))
    }
    assert offenders == {}


def test_the_private_import_check_catches_an_offender(tmp_path):
    offender = tmp_path / "bad.py"
    offender.write_text("from ml.generation import _load_transformers, Generator\n")
    assert private_imports(offender) == ["1: from ml.generation import _load_transformers"]
