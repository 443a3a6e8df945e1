"""Which G.711 law does decoded audio read naturally in? The core of
:func:`telnyx_audio.analysis.check_codec`, kept free of the analysis package so the capture
reader can run it on every decode at no import cost."""

from __future__ import annotations

import numpy as np

__all__ = ["naturalness", "law_score"]


def naturalness(x: np.ndarray) -> float:
    """High for speech and quiet lines (smooth, low level); low for static (rough, loud)."""
    x = x.astype(np.float64) / 32768
    if x.size < 2:
        return 0.0
    centred = x - x.mean()
    energy = np.mean(centred**2) + 1e-12
    rough = np.mean(np.diff(centred) ** 2) / energy  # 0 for smooth, 2 for white, up to 4
    return float(-rough - 0.5 * np.log10(energy))


def law_score(pcm: np.ndarray, encoding: str) -> float:
    """How much more natural the other G.711 law reads the same bytes (> 0.5: likely wrong).

    ``pcm`` (int16, shape (n,)) was decoded as ``encoding``; it is re-encoded (G.711 is
    lossless on its own output) to the bytes on the wire, which are decoded with the other
    law too, and the two compared.

    Examples
    --------
    >>> from telnyx_audio import codecs
    >>> voice = (3000 * np.sin(2 * np.pi * 220 * np.arange(8000) / 8000)).astype(np.int16)
    >>> law_score(codecs.decode(codecs.encode(voice, "PCMA"), "PCMU"), "PCMU") > 0.5 > law_score(voice, "PCMU")
    True
    """
    from telnyx_audio import codecs

    other = "PCMA" if encoding == "PCMU" else "PCMU"
    raw = np.frombuffer(codecs.encode(pcm, encoding), np.uint8)
    return naturalness(codecs.decode(raw, other)) - naturalness(pcm)
