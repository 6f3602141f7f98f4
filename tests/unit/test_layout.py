"""The code's shape: layers whose imports point one way, no cycles, modules, classes and lines small enough to
read."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PACKAGE = REPO / "platform" / "longshore"
MAX_MODULE_LINES = 400
MAX_CLASS_LINES = 200
MAX_LINE_CHARACTERS = 120


def modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def test_the_import_contracts_hold():
    # import-linter checks the layers, the forbidden imports and the absence of cycles, from the code's own
    # imports (function-level ones included): see [tool.importlinter] in pyproject.toml
    lint = shutil.which("lint-imports") or str(Path(sys.executable).parent / "lint-imports")
    checked = subprocess.run([lint, "--config", str(REPO / "pyproject.toml")], cwd=REPO,
                             capture_output=True, text=True, timeout=120)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "0 broken" in checked.stdout


def test_the_source_root_is_never_a_package():
    assert not (REPO / "platform" / "__init__.py").exists()


@pytest.mark.parametrize("path", modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_module_is_too_long_to_read_in_one_sitting(path):
    assert len(path.read_text().splitlines()) <= MAX_MODULE_LINES


@pytest.mark.parametrize("path", modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_class_is_too_long(path):
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ClassDef):
            assert node.end_lineno - node.lineno + 1 <= MAX_CLASS_LINES, f"class {node.name} in {path.name}"


@pytest.mark.parametrize("path", modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_line_is_wider_than_a_side_by_side_diff_shows(path):
    wide = [number for number, line in enumerate(path.read_text().splitlines(), 1) if len(line) > MAX_LINE_CHARACTERS]
    assert not wide, f"lines over {MAX_LINE_CHARACTERS} characters: {wide}"


def test_no_two_test_modules_share_a_basename():
    # pytest imports test modules by basename (rootdir-relative, no packages): two of a name cannot both run.
    names = [path.name for path in (REPO / "tests").rglob("test_*.py")]
    assert sorted(name for name in set(names) if names.count(name) > 1) == []
