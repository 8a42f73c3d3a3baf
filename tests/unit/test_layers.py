"""The import layers and the pure cores hold: checked by import-linter and mypy --strict.

Both read their lists from pyproject.toml ([tool.importlinter]): the layer
order, and the pure cores that may not import I/O and must type-check
strictly. A new upward import, an I/O import in a core (even through another
module) or an untyped core function fails here.
"""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def _contracts() -> list[dict[str, object]]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    return config["tool"]["importlinter"]["contracts"]


def _run(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300,
                          check=False)


def test_every_import_contract_is_kept():
    result = _run(str(BIN / "lint-imports"), "--no-cache")
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert f"{len(_contracts())} kept, 0 broken" in result.stdout


def _core_paths() -> list[str]:
    [cores] = [c for c in _contracts() if c["type"] == "forbidden"]
    paths = []
    for module in cores["source_modules"]:  # type: ignore[union-attr]
        base = ROOT / "src" / Path(*str(module).split("."))
        paths.append(str(base) if base.is_dir() else f"{base}.py")
    return paths


def test_the_pure_cores_type_check_strictly():
    paths = _core_paths()
    assert all(Path(p).exists() for p in paths), paths
    result = _run(str(BIN / "mypy"), "--strict", "--follow-imports=silent",
                  "--cache-dir=/dev/null", *paths)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
