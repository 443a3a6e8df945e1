"""A check for audio decoded with the wrong G.711 law (A-law read as mu-law, or the reverse)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from telnyx_audio._dsp import to_int16

__all__ = ["CodecCheck", "check_codec"]


@dataclass(frozen=True)
class CodecCheck:
    """Whether audio looks decoded with the wrong G.711 law.

    ``score`` compares how natural the audio looks as decoded (``encoding``) and as the other
    law would decode the same bytes: positive means the other law fits better.
    """

    encoding: str
    suspect: bool
    likely_encoding: str
    score: float

    def __repr__(self) -> str:
        verdict = f"looks like {self.likely_encoding} decoded as {self.encoding}" if self.suspect else "looks right"
        return f"<CodecCheck {self.encoding}: {verdict} (score {self.score:+.2f})>"


def _naturalness(x: np.ndarray) -> float:
    """High for speech and quiet lines (smooth, low level); low for static (rough, loud)."""
    x = x.astype(np.float64) / 32768
    if x.size < 2:
        return 0.0
    centred = x - x.mean()
    energy = np.mean(centred**2) + 1e-12
    rough = np.mean(np.diff(centred) ** 2) / energy  # 0 for smooth, 2 for white, up to 4
    return float(-rough - 0.5 * np.log10(energy))


def check_codec(pcm: np.ndarray, encoding: str) -> CodecCheck:
    """Flag audio that looks like A-law decoded as mu-law, or the reverse (loud static).

    The decoded samples are re-encoded with ``encoding`` (G.711 is lossless on its own
    output), giving back the bytes on the wire; those bytes are decoded with the other law
    too, and the two results compared: the right law gives smooth, speech-like audio, the
    wrong one loud, rough static.

    Examples
    --------
    >>> from telnyx_audio import codecs
    >>> t = np.arange(8000) / 8000
    >>> voice = (3000 * np.sin(2 * np.pi * 220 * t)).astype(np.int16)
    >>> wrong = codecs.decode(codecs.encode(voice, "PCMA"), "PCMU")   # A-law bytes read as mu-law
    >>> check_codec(wrong, "PCMU").suspect, check_codec(voice, "PCMU").suspect
    (True, False)
    """
    from telnyx_audio import codecs

    if encoding not in ("PCMU", "PCMA"):
        raise ValueError(f"check_codec applies to PCMU or PCMA audio, got {encoding!r}")
    arr = to_int16(pcm)
    other = "PCMA" if encoding == "PCMU" else "PCMU"
    raw = np.frombuffer(codecs.encode(arr.reshape(-1), encoding), np.uint8)
    as_other = codecs.decode(raw, other)
    score = _naturalness(as_other) - _naturalness(arr.reshape(-1))
    suspect = score > 0.5
    return CodecCheck(encoding, suspect, other if suspect else encoding, score)
