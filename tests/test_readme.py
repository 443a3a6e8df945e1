"""The README is a short front door whose examples, commands and links all work."""

from __future__ import annotations

import doctest
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"


def _fenced(text: str, language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```", text, re.M | re.S)


def test_the_readme_is_a_front_door_of_at_most_150_lines():
    lines = README.read_text().splitlines()
    assert len(lines) <= 150, f"README.md has {len(lines)} lines; the details belong in docs/"


def test_the_readme_examples_print_what_the_readme_says(monkeypatch):
    monkeypatch.chdir(ROOT)  # the examples name data/ from the repository's root
    text = README.read_text()
    examples = "\n".join(_fenced(text, "pycon"))
    assert ">>>" in examples, "the README has no runnable example"
    test = doctest.DocTestParser().get_doctest(examples, {}, "README.md", str(README), 0)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    runner.run(test, out=lambda s: pytest.fail("README example went wrong:\n" + s))
    assert runner.tries == len(test.examples) > 0


def _command_lines() -> list[str]:
    lines = []
    for block in _fenced(README.read_text(), "sh"):
        for line in block.splitlines():
            line = line.split("  #", 1)[0].strip()
            if line.startswith("telnyx-audio "):
                lines.append(line)
    return lines


def test_every_command_in_the_readme_is_one_the_command_line_accepts():
    from telnyx_audio.cli import build_parser

    lines = _command_lines()
    assert len(lines) >= 5
    for line in lines:
        args = shlex.split(line)[1:]
        try:
            build_parser().parse_args(args)
        except SystemExit as exc:
            pytest.fail(f"README command is refused by the parser (exit {exc.code}): {line}")


def test_the_readmes_decode_command_decodes_the_example_call(tmp_path):
    line = next(line for line in _command_lines() if line.startswith("telnyx-audio decode "))
    args = [str(tmp_path) if a == "out/" else a for a in shlex.split(line)[1:]]
    done = subprocess.run([sys.executable, "-m", "telnyx_audio", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert "400 frames arrived" in done.stdout and "Traceback" not in done.stderr
    assert sorted(p.name for p in (tmp_path / "example_call").iterdir()) == [
        "inbound.wav", "outbound.wav", "stereo.wav", "summary.json"]


def test_every_relative_link_and_image_in_the_readme_names_a_file_in_the_repository():
    text = README.read_text()
    targets = re.findall(r"\]\(([^)\s]+)\)", text)
    relative = [t for t in targets if not re.match(r"^[a-z]+:", t) and not t.startswith("#")]
    assert len(relative) >= 10
    missing = [t for t in relative if not (ROOT / t.split("#", 1)[0]).exists()]
    assert not missing, f"README links to files that do not exist: {missing}"
