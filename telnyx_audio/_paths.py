"""Folder names from untrusted ids: nothing an id contains can reach outside a root."""

from __future__ import annotations

import re
from pathlib import Path

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def safe_name(text: str | None, fallback: str = "stream") -> str:
    """A file-system name from untrusted text: no separators, no dot-only names, bounded.

    Examples
    --------
    >>> safe_name("../../etc/passwd"), safe_name("v3:abc/def"), safe_name(".."), safe_name(None)
    ('etc_passwd', 'v3_abc_def', 'stream', 'stream')
    """
    name = _UNSAFE.sub("_", text or "").strip("._")[:120]
    return name or fallback


def unique_child(root: Path, name: str) -> Path:
    """``root/name`` (or ``name-2``, ``name-3``...) created fresh, and checked to be inside root."""
    root = root.resolve()
    base = safe_name(name)
    n = 1
    while True:
        candidate = root / (base if n == 1 else f"{base}-{n}")
        if not candidate.resolve().is_relative_to(root):  # belt and braces
            raise ValueError(f"refusing a path outside {root}: {candidate}")
        try:
            candidate.mkdir(parents=True)
            return candidate
        except FileExistsError:
            n += 1
