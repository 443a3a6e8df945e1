"""The layer contract of docs/architecture.md, checked by import-linter (and grimp's graph).

Every import counts: at module level, inside functions and under ``if TYPE_CHECKING:``.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import grimp

ROOT = Path(__file__).resolve().parents[1]
LINT = Path(sys.executable).parent / "lint-imports"


def _lint(cwd: Path, pythonpath: Path | None = None) -> subprocess.CompletedProcess:
    env = {"PATH": str(LINT.parent), "PYTHONPATH": str(pythonpath or cwd), "LANG": "C.UTF-8"}
    return subprocess.run([str(LINT), "--no-cache"], cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


def _circles(graph: grimp.ImportGraph) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    found: list[list[str]] = []
    for root in sorted(graph.modules):
        if root in index:
            continue
        work = [(root, iter(sorted(graph.find_modules_directly_imported_by(root))))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on.add(root)
        while work:
            node, children = work[-1]
            for child in children:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on.add(child)
                    work.append((child, iter(sorted(graph.find_modules_directly_imported_by(child)))))
                    break
                if child in on:
                    low[node] = min(low[node], index[child])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    part = []
                    while True:
                        m = stack.pop()
                        on.discard(m)
                        part.append(m)
                        if m == node:
                            break
                    if len(part) > 1:
                        found.append(sorted(part))
    return found


def test_the_layer_contract_holds():
    result = _lint(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 kept, 0 broken" in result.stdout


def test_no_module_imports_a_module_that_imports_it_back():
    graph = grimp.build_graph("telnyx_audio", cache_dir=None)
    assert len(graph.modules) > 60
    assert _circles(graph) == []


def test_a_new_circle_fails_the_contract_with_the_modules_named(tmp_path):
    shutil.copytree(ROOT / "telnyx_audio", tmp_path / "telnyx_audio", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    registry = tmp_path / "telnyx_audio" / "codecs" / "registry.py"
    # The codec table reaching up into the model: a layer violation and (with g711) a circle.
    registry.write_text(registry.read_text() + "\n\ndef _bad():\n    from telnyx_audio.model import recording  # noqa\n"
                        "    from telnyx_audio.codecs import g711  # noqa\n")
    g711 = tmp_path / "telnyx_audio" / "codecs" / "g711.py"
    g711.write_text(g711.read_text() + "\n\ndef _back():\n    from telnyx_audio.codecs import registry  # noqa\n")
    result = _lint(tmp_path)
    assert result.returncode != 0
    assert "telnyx_audio.codecs.registry -> telnyx_audio.model.recording" in result.stdout
    assert "BROKEN" in result.stdout
    # The circle check on the copy, in a process where telnyx_audio is the copy.
    found = subprocess.run([sys.executable, __file__], env={"PYTHONPATH": str(tmp_path)}, cwd=tmp_path,
                           capture_output=True, text=True, timeout=120, check=True).stdout
    assert any({"telnyx_audio.codecs.g711", "telnyx_audio.codecs.registry"} <= set(c) for c in json.loads(found))


if __name__ == "__main__":  # the circles of whatever telnyx_audio is on the path, as JSON
    print(json.dumps(_circles(grimp.build_graph("telnyx_audio", cache_dir=None))))


def test_module_paths_of_0_1_still_import_with_a_warning_naming_the_new_path():
    import importlib

    import pytest

    import telnyx_audio

    for old, new in telnyx_audio._MOVED.items():
        sys.modules.pop(old, None)
        with pytest.warns(DeprecationWarning, match=f"{old} is now {new}"):
            module = importlib.import_module(old)
        assert module is importlib.import_module(new)
    from telnyx_audio.server import CaptureServer  # the README of 0.1's example still works

    assert CaptureServer is telnyx_audio.CaptureServer
