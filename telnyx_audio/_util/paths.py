"""Folder names from untrusted ids: nothing an id contains can reach outside a root."""

from __future__ import annotations

import re
from pathlib import Path

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
#: Suffixes a capture file's name loses to name its outputs (``x.jsonl.gz`` -> ``x``).
CAPTURE_SUFFIXES = (".gz", ".jsonl", ".json", ".ndjson", ".log", ".txt", ".rtpcap", ".pcapng", ".pcap", ".cap")
#: Names the capture server (``messages.jsonl``) and the fork receiver (``fork.rtpcap``) give
#: every capture, without suffixes: the folder they are in names the call.
GENERIC_CAPTURE_NAMES = ("messages", "fork")


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


def capture_stem(path: str | Path) -> str:
    """The name a capture file's outputs take: its name without its capture suffixes
    (:data:`CAPTURE_SUFFIXES`), or its folder's name for the names the capture server and the
    fork receiver give every capture (``<stream>/messages.jsonl``, ``<call>/fork.rtpcap``).
    Not made safe: pass it through :func:`safe_name`.

    Examples
    --------
    >>> capture_stem("a/x.jsonl"), capture_stem("b/y.jsonl.gz"), capture_stem("c/call.rtpcap")
    ('x', 'y', 'call')
    >>> capture_stem("captures/v3_abc/fork.rtpcap"), capture_stem("captures/s1/messages.jsonl.gz")
    ('v3_abc', 's1')
    """
    path = Path(path)
    name = path.name
    for suffix in CAPTURE_SUFFIXES:
        if name.endswith(suffix) and len(name) > len(suffix):
            name = name[: -len(suffix)]
    return path.resolve().parent.name if name in GENERIC_CAPTURE_NAMES else name


def stream_folders(stream_ids: list[str | None]) -> list[str]:
    """Each stream's folder inside its capture file's: none (``""``) for a one-stream file,
    else its stream id made safe, with ``-2``, ``-3``... where two would clash (as
    ``telnyx-audio decode`` and ``telnyx-audio batch`` name them).

    Examples
    --------
    >>> stream_folders(["a"]), stream_folders(["a/b", None, "a_b"])
    ([''], ['a_b', 'stream-2', 'a_b-2'])
    """
    if len(stream_ids) == 1:
        return [""]
    used: set[str] = set()
    names = []
    for i, stream_id in enumerate(stream_ids, 1):
        names.append(claim_name(safe_name(stream_id, f"stream-{i}"), used))
    return names


def claim_name(base: str, used: set[str]) -> str:
    """``base``, or ``base-2``, ``base-3``... the first not in ``used``; added to ``used``.

    Examples
    --------
    >>> used = set(); [claim_name("a", used) for _ in range(3)]
    ['a', 'a-2', 'a-3']
    """
    name, k = base, 1
    while name in used:
        k += 1
        name = f"{base}-{k}"
    used.add(name)
    return name
