"""Rewrite ``docs/docstring_debt.txt``: the public names whose docstrings fail numpydoc's checks.

    python docs/_ext/docstring_debt.py

Builds the site once with every name validated (no exemptions, warnings not errors) and
writes each failing name with the checks it fails. Fixed names drop off the list. Run it only
to accept debt knowingly (say, after merging a branch that adds public names); the aim is an
empty list. ``make docs`` then passes with the names listed and fails on any other.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

DOCS = Path(__file__).resolve().parents[1]
DEBT = DOCS / "docstring_debt.txt"
HEADER = """\
# Public names whose docstrings fail numpydoc validation (docs/conf.py, numpydoc_validation_checks).
# Remove a line when you fix its docstring; a name not listed here must pass. Each line: the
# name, then the checks it fails. Rewritten by docs/_ext/docstring_debt.py.
"""


def failing_names(log: str) -> dict[str, set[str]]:
    """Names and check codes from numpydoc's validation warnings in a build log."""
    debt: dict[str, set[str]] = {}
    current = None
    for line in log.splitlines():
        m = re.search(r"Validation warnings while processing docstring for '([^']+)'", line)
        if m:
            current = m.group(1)
            debt.setdefault(current, set())
            continue
        m = re.match(r"\s+([A-Z]{2}\d{2}):", line)
        if current and m:
            debt[current].add(m.group(1))
        elif not line.startswith(" "):
            current = None
    return debt


def main() -> int:
    """Build, collect, write; print how the list changed."""
    before = {line.split()[0] for line in DEBT.read_text().splitlines() if line.strip() and not line.startswith("#")}
    with tempfile.TemporaryDirectory() as out:
        done = subprocess.run(
            [sys.executable, "-m", "sphinx", "-E", "-b", "html", "-j", "2", "-q", str(DOCS), out],
            env={**os.environ, "TELNYX_AUDIO_DOCS_NO_DEBT": "1"}, capture_output=True, text=True,
        )
    debt = failing_names(done.stderr)
    DEBT.write_text(HEADER + "".join(f"{name}  {' '.join(sorted(codes))}\n" for name, codes in sorted(debt.items())))
    print(f"{DEBT}: {len(debt)} names ({len(set(debt) - before)} added, {len(before - set(debt))} fixed)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
