"""The package's import layers (pyproject.toml, [tool.importlinter]): no module imports from a layer above its own."""

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _lint(config: Path) -> subprocess.CompletedProcess:
    lint = Path(sys.executable).parent / "lint-imports"  # import-linter's command, installed with the test extras
    return subprocess.run([str(lint), "--no-cache", str(config)], cwd=REPO, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(REPO / "lib")})


def test_no_module_imports_from_a_layer_above_its_own():
    result = _lint(REPO / "pyproject.toml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Contracts: 1 kept, 0 broken." in result.stdout


def test_an_upward_import_breaks_the_contract(tmp_path):
    """The contract can fail: the same layers with data placed above stages (which imports data) are broken."""
    text = (REPO / "pyproject.toml").read_text()
    swapped = text.replace('"taskspace.data",\n', "").replace(
        '    "taskspace.stages |', '    "taskspace.data",\n    "taskspace.stages |')
    assert swapped != text
    config = tmp_path / "pyproject.toml"
    config.write_text(swapped)
    result = _lint(config)
    assert result.returncode != 0
    assert "taskspace.stages is not allowed to import taskspace.data" in result.stdout
