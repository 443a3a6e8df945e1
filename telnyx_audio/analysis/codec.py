"""A check for audio decoded with the wrong G.711 law (A-law read as mu-law, or the reverse)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from telnyx_audio._util.dsp import to_int16
from telnyx_audio.codecs.g711law import law_score

__all__ = ["CodecCheck", "check_codec"]


@dataclass(frozen=True)
class CodecCheck:
    """Whether audio looks decoded with the wrong G.711 law.

    ``score`` compares how natural the audio looks as decoded (``encoding``) and as the other
    law would decode the same bytes: positive means the other law fits better.

    Attributes
    ----------
    encoding : str
        The law the audio was decoded with, ``"PCMU"`` or ``"PCMA"``.
    suspect : bool
        True when the other law fits the bytes better: the audio is likely loud static.
    likely_encoding : str
        The law that fits best (``encoding`` itself when nothing is suspect).
    score : float
        How much better the other law fits; positive means it fits better.
    """

    encoding: str
    suspect: bool
    likely_encoding: str
    score: float

    def __repr__(self) -> str:
        verdict = f"looks like {self.likely_encoding} decoded as {self.encoding}" if self.suspect else "looks right"
        return f"<CodecCheck {self.encoding}: {verdict} (score {self.score:+.2f})>"


def check_codec(pcm: np.ndarray, encoding: str) -> CodecCheck:
    """Flag audio that looks like A-law decoded as mu-law, or the reverse (loud static).

    The decoded samples are re-encoded with ``encoding`` (G.711 is lossless on its own
    output), giving back the bytes on the wire; those bytes are decoded with the other law
    too, and the two results compared: the right law gives smooth, speech-like audio, the
    wrong one loud, rough static.

    Parameters
    ----------
    pcm : np.ndarray
        The decoded samples (int16 or float), one track or several.
    encoding : str
        The law they were decoded with: ``"PCMU"`` or ``"PCMA"``, in any case or MIME
        spelling (``"ulaw"``, ``"audio/x-alaw"``...), as everywhere in the toolkit.

    Returns
    -------
    CodecCheck
        ``suspect`` is True when the other law fits better.

    Raises
    ------
    ValueError
        If ``encoding`` is not PCMU or PCMA.

    Examples
    --------
    >>> from telnyx_audio import codecs
    >>> t = np.arange(8000) / 8000
    >>> voice = (3000 * np.sin(2 * np.pi * 220 * t)).astype(np.int16)
    >>> wrong = codecs.decode(codecs.encode(voice, "PCMA"), "PCMU")   # A-law bytes read as mu-law
    >>> check_codec(wrong, "PCMU").suspect, check_codec(voice, "PCMU").suspect
    (True, False)
    """
    from telnyx_audio.codecs import normalize_encoding

    given = encoding
    try:
        encoding = normalize_encoding(encoding)
    except ValueError:
        pass  # said below, with what check_codec takes
    if encoding not in ("PCMU", "PCMA"):
        raise ValueError(f"check_codec applies to PCMU or PCMA audio (mu-law or A-law), got {given!r}")
    arr = to_int16(pcm)
    other = "PCMA" if encoding == "PCMU" else "PCMU"
    score = law_score(arr.reshape(-1), encoding)  # shared with the capture reader's check
    suspect = score > 0.5
    return CodecCheck(encoding, suspect, other if suspect else encoding, score)
