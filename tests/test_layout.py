"""The code's layout rules: every module of the packages says its job in a docstring and stays
under 400 lines (larger ones are split by role)."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MODULES = sorted(p for package in ("experiments", "models", "initializers") for p in (ROOT / package).rglob("*.py"))


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(ROOT)))
def test_module_has_a_docstring_and_at_most_400_lines(path):
    text = path.read_text()
    assert ast.get_docstring(ast.parse(text)), "the module's first lines should say its job"
    assert len(text.splitlines()) <= 400, "split the module by role"


def test_every_package_module_is_checked():
    assert len(MODULES) > 60 and ROOT / "experiments" / "cli" / "commands.py" in MODULES
