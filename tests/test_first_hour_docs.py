"""docs/first_hour.md runs as written (issue #23, item 7): every ``python`` block in order in
one namespace, and every ``console`` line that starts with ``telnyx-audio``, from a folder
that holds the bundled ``data/``."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "first_hour.md"


def blocks(language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```", PAGE.read_text(), flags=re.S | re.M)


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    (tmp_path / "data").symlink_to(ROOT / "data")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_every_python_block_of_the_first_hour_page_runs(workdir):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    code = blocks("python")
    assert len(code) >= 8
    namespace = {"__name__": "__main__"}
    for i, block in enumerate(code, 1):
        try:
            exec(compile(block, f"{PAGE.name}, python block {i}", "exec"), namespace)
        except Exception as exc:  # the page's fault, said with the block that failed
            pytest.fail(f"python block {i} of {PAGE.name} failed: {type(exc).__name__}: {exc}\n{block}")
    plt.close("all")
    assert (workdir / "example_call.png").stat().st_size > 10_000
    assert (workdir / "batch-out" / "calls.parquet").exists()


def test_every_command_of_the_first_hour_page_runs(workdir):
    lines = [line for block in blocks("console") for line in block.splitlines() if line.startswith("telnyx-audio ")]
    assert lines
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for line in lines:
        out = subprocess.run([sys.executable, "-m", "telnyx_audio", *shlex.split(line)[1:]], capture_output=True,
                             text=True, cwd=workdir, env=env, timeout=300)
        assert out.returncode == 0, (line, out.stderr)


def test_the_error_the_page_shows_is_the_one_the_command_gives(workdir):
    (shown,) = [b for b in blocks("text") if "$ telnyx-audio" in b]
    command, expected = shown.strip().split("\n", 1)
    env = {k: v for k, v in os.environ.items() if k != "UNSET"} | {"PYTHONPATH": str(ROOT)}
    args = shlex.split(command.removeprefix("$ ").replace('"$UNSET"', "''"))[1:]
    out = subprocess.run([sys.executable, "-m", "telnyx_audio", *args], capture_output=True, text=True, cwd=workdir,
                         env=env, timeout=60)
    assert out.returncode == 2 and out.stderr.strip() == expected.strip()
