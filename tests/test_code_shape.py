"""The code's shape rules, checked on the source: short functions, curated public APIs."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "diffseg30k"
MAX_FUNCTION_LINES = 80


def test_no_function_in_the_package_is_over_80_lines():
    long = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    where = path.relative_to(PACKAGE.parent)
                    long.append(f"{where}:{node.lineno} {node.name} ({lines} lines)")
    assert not long, "split these functions into named steps:\n" + "\n".join(long)


PACKAGES = sorted(str(p.parent.relative_to(PACKAGE.parent)).replace("/", ".")
                  for p in PACKAGE.rglob("__init__.py"))


@pytest.mark.parametrize("name", PACKAGES)
def test_every_package_states_its_public_api(name):
    module = importlib.import_module(name)
    assert isinstance(getattr(module, "__all__", None), list | tuple), f"{name} has no __all__"
    missing = [n for n in module.__all__ if not hasattr(module, n)]
    assert not missing, f"{name}.__all__ names what it does not define: {missing}"


def test_building_the_cli_imports_no_torch():
    """``diffseg30k --help`` stays instant: subcommand flags (generated from configs) need no torch."""
    import subprocess
    import sys

    code = ("import sys; from diffseg30k.cli import build_parser; build_parser(); "
            "heavy = [m for m in ('torch', 'transformers', 'datasets', 'diffusers') if m in sys.modules]; "
            "assert not heavy, heavy")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
