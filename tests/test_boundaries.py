"""Architecture rules that keep Plaza's parts apart."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def imported_modules(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


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

    modules = [f"ml.{p.stem}" for p in (REPO / "ml").glob("*.py") if p.stem != "__init__"]
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
