"""Which G.711 law does decoded audio read naturally in? The core of
:func:`telnyx_audio.analysis.check_codec`, kept free of the analysis package so the capture
reader can run it on every decode at no import cost.

Everything runs in blocks of :data:`_BLOCK` samples (float64 sums of each block), so a call of
any length costs a few hundred kB beside its int16 audio, never a float copy of the whole call.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

__all__ = ["naturalness", "law_score"]

_BLOCK = 1 << 15  # samples per pass: a block's float64 copy and its differences stay in cache


@lru_cache(maxsize=2)
def _misread(encoding: str) -> np.ndarray:
    """int16 -> int16 for every sample value (indexed by its uint16 bits): what the other law
    makes of the byte ``encoding`` gives that value (G.711 is lossless on its own output)."""
    from telnyx_audio.codecs import g711 as codecs

    other = "PCMA" if encoding == "PCMU" else "PCMU"
    values = np.arange(65536, dtype=np.uint16).view(np.int16)
    table = codecs.decode(codecs.encode(values, encoding), other)
    table.flags.writeable = False
    return table


def _sums(pcm: np.ndarray, table: np.ndarray | None = None) -> np.ndarray:
    """Sum, sum of squares and sum of squared first differences of ``pcm`` (mapped through
    ``table`` first when given), in float64, block by block."""
    n = pcm.size
    out = np.zeros(3)
    for lo in range(0, n, _BLOCK):
        hi = min(lo + _BLOCK, n)
        piece = pcm[lo : hi + 1]  # one sample more: the difference across the block's edge
        if table is not None:
            piece = table[piece.view(np.uint16)]
        b = piece.astype(np.float64)
        own = b[: hi - lo]
        step = np.diff(b)
        out += (own.sum(), np.dot(own, own), np.dot(step, step))
    return out


def _natural(n: int, sums: np.ndarray) -> float:
    if n < 2:
        return 0.0
    s1, s2, sd = sums / np.array([32768.0, 32768.0**2, 32768.0**2])
    mean = s1 / n
    energy = max(s2 / n - mean * mean, 0.0) + 1e-12  # the mean square about the mean
    rough = (sd / (n - 1)) / energy  # 0 for smooth, 2 for white, up to 4
    return float(-rough - 0.5 * np.log10(energy))


def naturalness(x: np.ndarray) -> float:
    """High for speech and quiet lines (smooth, low level); low for static (rough, loud).

    ``x`` is int16 (or float on the int16 scale), shape (n,).

    Examples
    --------
    >>> t = np.arange(8000) / 8000
    >>> voice = (3000 * np.sin(2 * np.pi * 220 * t)).astype(np.int16)
    >>> static = np.random.default_rng(0).integers(-20000, 20000, 8000).astype(np.int16)
    >>> naturalness(voice) > naturalness(static)
    True
    """
    x = np.asarray(x).reshape(-1)
    return _natural(x.size, _sums(x))


def law_score(pcm: np.ndarray, encoding: str) -> float:
    """How much more natural the other G.711 law reads the same bytes (> 0.5: likely wrong).

    ``pcm`` (int16, shape (n,)) was decoded as ``encoding``; it is re-encoded (G.711 is
    lossless on its own output) to the bytes on the wire, which are decoded with the other
    law too, and the two compared. The two steps are one lookup per sample (a 64k-entry
    table), block by block.

    Examples
    --------
    >>> from telnyx_audio import codecs
    >>> voice = (3000 * np.sin(2 * np.pi * 220 * np.arange(8000) / 8000)).astype(np.int16)
    >>> law_score(codecs.decode(codecs.encode(voice, "PCMA"), "PCMU"), "PCMU") > 0.5 > law_score(voice, "PCMU")
    True
    """
    if encoding not in ("PCMU", "PCMA"):
        raise ValueError(f"law_score applies to PCMU or PCMA audio, got {encoding!r}")
    pcm = np.asarray(pcm).reshape(-1)
    if pcm.dtype != np.int16:
        raise TypeError(f"law_score takes int16 audio, got {pcm.dtype}")
    n = pcm.size
    return _natural(n, _sums(pcm, _misread(encoding))) - _natural(n, _sums(pcm))
