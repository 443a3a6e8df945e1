"""Counted, non-fatal problems met while reading a packet capture.

Nothing a capture holds ends the reading: a bad record, a lying IP header, a SIP message
that never ends... each is counted under its reason, with the first few examples (frame
number and detail) kept, and the calls that can be read are read.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["Problems"]

_EXAMPLES = 5


@dataclass
class Problems:
    """Counts of problems by reason, with a few examples each.

    Examples
    --------
    >>> p = Problems()
    >>> p.add("IP header lies about its length", frame=7, detail="total length 1500 > 60 bytes")
    >>> p.add("IP header lies about its length", n=2)
    >>> p.counts, p.total
    ({'IP header lies about its length': 3}, 3)
    >>> p.lines()
    ['IP header lies about its length: 3 (first: frame 7: total length 1500 > 60 bytes)']
    """

    counts: dict[str, int] = field(default_factory=dict)
    examples: dict[str, list[tuple[int | None, str]]] = field(default_factory=dict)

    def add(self, reason: str, *, n: int = 1, frame: int | None = None, detail: str = "") -> None:
        """Count ``n`` problems of ``reason``; keep ``frame``/``detail`` as an example."""
        if n <= 0:
            return
        self.counts[reason] = self.counts.get(reason, 0) + int(n)
        ex = self.examples.setdefault(reason, [])
        if (frame is not None or detail) and len(ex) < _EXAMPLES:
            ex.append((frame, detail))

    def merge(self, other: "Problems") -> None:
        """Add every count and example of ``other``."""
        for reason, n in other.counts.items():
            self.counts[reason] = self.counts.get(reason, 0) + n
            ex = self.examples.setdefault(reason, [])
            ex.extend(other.examples.get(reason, [])[: max(0, _EXAMPLES - len(ex))])

    @property
    def total(self) -> int:
        """How many problems in all."""
        return sum(self.counts.values())

    def __bool__(self) -> bool:
        return bool(self.counts)

    def lines(self) -> list[str]:
        """One readable line per reason (for a report's warnings)."""
        out = []
        for reason, n in self.counts.items():
            ex = self.examples.get(reason) or []
            first = ""
            if ex:
                frame, detail = ex[0]
                where = f"frame {frame}" if frame is not None else ""
                first = f" (first: {where}{': ' if where and detail else ''}{detail})"
            out.append(f"{reason}: {n}{first}")
        return out

    def as_dict(self) -> dict[str, Any]:
        """A JSON-able dict: ``{reason: {"count": n, "examples": [...]}}``."""
        return {
            reason: {"count": n, "examples": [{"frame": f, "detail": d} for f, d in self.examples.get(reason, [])]}
            for reason, n in self.counts.items()
        }
