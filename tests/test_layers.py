"""The package's layering (pyproject.toml's import-linter contract) holds, and it is a real check."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import grimp

from conftest import REPO

LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def lint_imports(package_root: Path) -> subprocess.CompletedProcess[str]:
    """`lint-imports` with pyproject.toml's contract, on the package under `package_root`."""
    env = dict(os.environ, PYTHONPATH=str(package_root), NO_COLOR="1")
    return subprocess.run([str(LINT_IMPORTS), "--no-cache"], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=120)


def test_the_layers_contract_is_kept():
    result = lint_imports(REPO / "py")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 kept, 0 broken" in result.stdout


def test_an_upward_import_breaks_the_contract(tmp_path):
    shutil.copytree(REPO / "py" / "alog_edge", tmp_path / "alog_edge", ignore=shutil.ignore_patterns("__pycache__"))
    vocab = tmp_path / "alog_edge" / "formats" / "vocab.py"
    vocab.write_text(vocab.read_text() + "\n\ndef _upward():\n    from alog_edge.export import convert  # noqa: F401\n")
    result = lint_imports(tmp_path)
    assert result.returncode != 0
    assert "alog_edge.formats.vocab -> alog_edge.export.convert" in result.stdout


def test_no_module_imports_one_that_imports_it_back():
    graph = grimp.build_graph("alog_edge", cache_dir=None)
    cycles = sorted(f"{a} -> {b} -> ... -> {a}" for a in graph.modules for b in graph.find_modules_directly_imported_by(a)
                    if a != b and graph.chain_exists(importer=b, imported=a))
    assert cycles == []
