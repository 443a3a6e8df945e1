"""Notebook affordances for audio: a track that carries its sample rate, and an HTML audio player.

:class:`Track` is a numpy array (one track's int16 samples) with a ``sample_rate``, so
analysis and plotting functions need no ``sr=`` when given one; slices of it keep the rate.
:func:`audio_html` is what :meth:`Recording._repr_html_ <telnyx_audio.Recording>` shows: an
``<audio>`` player holding a base64 WAV and a one-line summary.
"""

from __future__ import annotations

import base64
import html
import io
import wave
from typing import Any

import numpy as np

__all__ = ["Track", "audio_html"]

#: Seconds of audio a notebook's player holds at most (the rest is cut, and the summary says
#: so): each minute of 8 kHz stereo is about 2.6 MB of base64 in the notebook. Set it lower
#: to keep notebooks small, or give ``max_s`` to :meth:`Recording.player <telnyx_audio.Recording.player>`.
PLAYER_MAX_S = 120.0


class Track(np.ndarray):
    """One track's samples (int16, shape (n,)) that know their sample rate.

    Everything a numpy array does, it does; slices keep ``sample_rate``, and reductions
    (``t.max()``) give plain numbers.

    Parameters
    ----------
    samples : array_like of int16, shape (n,)
        The track's samples; an array is viewed, not copied.
    sample_rate : int
        Samples per second, kept by every slice and view of the track.

    Examples
    --------
    >>> t = Track(np.zeros(16000, np.int16), 8000)
    >>> t.sample_rate, t[:8000].sample_rate, t.duration_s
    (8000, 8000, 2.0)
    >>> type(t.max())
    <class 'numpy.int16'>
    """

    sample_rate: int | None

    def __new__(cls, samples: Any, sample_rate: int) -> "Track":
        obj = np.asarray(samples).view(cls)
        obj.sample_rate = int(sample_rate)
        return obj

    def __array_finalize__(self, obj: Any) -> None:
        self.sample_rate = getattr(obj, "sample_rate", None)

    def __array_wrap__(self, obj: Any, context: Any = None, return_scalar: bool = False) -> Any:
        if obj.ndim == 0:  # a reduction: a number, not a 0-d Track
            return obj[()]
        return super().__array_wrap__(obj, context, return_scalar)

    @property
    def duration_s(self) -> float:
        """Length in seconds."""
        return self.shape[-1] / self.sample_rate if self.sample_rate else float("nan")

    def _repr_html_(self) -> str:
        if self.ndim != 1 or not self.sample_rate:
            return html.escape(repr(self))
        return audio_html(np.asarray(self)[None], self.sample_rate, f"track, {self.sample_rate} Hz, {self.duration_s:.2f} s")


def _wav_bytes(audio: np.ndarray, sample_rate: int) -> bytes:
    """A 16-bit PCM WAV of ``audio`` (tracks, n), channels interleaved (stdlib ``wave``)."""
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(audio.shape[0])
        w.setsampwidth(2)
        w.setframerate(int(sample_rate))
        w.writeframes(np.ascontiguousarray(audio.T).astype("<i2").tobytes())
    return buf.getvalue()


def audio_html(audio: np.ndarray, sample_rate: int, summary: str, *, max_s: float | None = None) -> str:
    """An HTML ``<audio>`` player (base64 WAV, tracks as channels) above a one-line summary.

    Audio longer than ``max_s`` (default :data:`PLAYER_MAX_S`, 2 minutes) is cut to its
    first ``max_s`` seconds in the player, and the summary says so.

    Parameters
    ----------
    audio : np.ndarray, shape (tracks, n) or (n,)
        int16 samples (float is converted); tracks become the WAV's channels.
    sample_rate : int
        Hz.
    summary : str
        The line shown under the player (HTML-escaped).
    max_s : float, optional
        Seconds the player holds at most.

    Returns
    -------
    str
        The HTML fragment.

    Examples
    --------
    >>> page = audio_html(np.zeros((2, 800), np.int16), 8000, "a call")
    >>> page.startswith("<div><audio controls") and "data:audio/wav;base64," in page and "a call" in page
    True
    """
    audio = np.asarray(audio)
    if audio.ndim == 1:
        audio = audio[None]
    if audio.dtype != np.int16:
        from telnyx_audio._util.dsp import to_int16

        audio = to_int16(audio)
    max_s = PLAYER_MAX_S if max_s is None else float(max_s)
    if not max_s > 0:
        raise ValueError(f"max_s must be a positive number of seconds, got {max_s!r}")
    limit = int(max_s * sample_rate)
    note = ""
    if audio.shape[-1] > limit:
        audio = audio[:, :limit]
        note = f" (the player holds the first {max_s:g} s)"
    data = base64.b64encode(_wav_bytes(audio, sample_rate)).decode("ascii")
    return (f'<div><audio controls preload="none" src="data:audio/wav;base64,{data}"></audio>'
            f"<div><code>{html.escape(summary + note)}</code></div></div>")
