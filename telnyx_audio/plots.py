"""Plots of call audio with matplotlib: spectrograms, waveforms, and whole calls.

Each function takes ``ax=None`` (a new figure when not given) and returns the artists it
drew. Hour-long audio is reduced for display (min/max envelopes, max-pooled spectrogram
columns), so plots stay quick; the time axis is always in seconds at the real sample rate.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from telnyx_audio.analysis import Spectrogram, detect_speech, spectrogram
from telnyx_audio.analysis._common import _as_float, _rate

__all__ = ["plot_spectrogram", "plot_waveform", "plot_call"]


def _axes(ax: Any) -> Any:
    if ax is not None:
        return ax
    import matplotlib.pyplot as plt

    return plt.subplots(figsize=(10, 3))[1]


def plot_spectrogram(spec: Spectrogram | np.ndarray, sr: int | None = None, *, ax: Any = None, max_columns: int = 2000,
                     vmin: float | None = None, cmap: str = "magma") -> Any:
    """Show a spectrogram (or compute one from a track) as an image.

    Parameters
    ----------
    spec : Spectrogram or np.ndarray, shape (n,)
    sr : int
        Needed with a raw track.
    max_columns : int
        More frames than this are max-pooled for display (short events stay visible).
    vmin : float, optional
        Lowest dB shown (default: 80 dB below the loudest).

    Returns
    -------
    matplotlib.image.AxesImage
    """
    if not isinstance(spec, Spectrogram):
        spec = spectrogram(spec, sr)
    ax = _axes(ax)
    db = spec.db
    step = max(1, -(-db.shape[1] // max_columns))
    if step > 1:
        cols = db.shape[1] // step * step
        db = db[:, :cols].reshape(db.shape[0], -1, step).max(axis=2)
    t_end = spec.times[-1] if spec.times.size else 0.0
    top = float(db.max()) if db.size else 0.0
    image = ax.imshow(db, origin="lower", aspect="auto", cmap=cmap, interpolation="nearest",
                      extent=(0.0, float(t_end), 0.0, float(spec.freqs[-1])), vmin=top - 80 if vmin is None else vmin, vmax=top)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("frequency (Hz)")
    return image


def plot_waveform(pcm: np.ndarray, sr: int | None = None, *, ax: Any = None, max_points: int = 4000,
                  t0: float = 0.0, **style: Any) -> Any:
    """Plot a track's waveform; long audio is drawn as its min/max envelope.

    Returns
    -------
    matplotlib.collections.PolyCollection
        The filled envelope (one band between min and max per display column).
    """
    rate = _rate(sr, pcm)
    x = _as_float(pcm)
    if x.ndim != 1:
        raise ValueError(f"plot_waveform takes one track, shape (n,); got {x.shape}")
    ax = _axes(ax)
    step = max(1, -(-x.size // max_points))
    cols = x.size // step
    if cols == 0:
        lo = hi = x
        times = t0 + np.arange(x.size) / rate
    else:
        blocks = x[: cols * step].reshape(cols, step)
        lo, hi = blocks.min(axis=1), blocks.max(axis=1)
        times = t0 + (np.arange(cols) * step + step / 2) / rate
    artist = ax.fill_between(times, lo, hi, linewidth=0.5, **({"color": "C0"} | style))
    ax.set_xlabel("time (s)")
    ax.set_ylim(-1.05, 1.05)
    return artist


def plot_call(audio: Any, sr: int | None = None, *, ax: Sequence[Any] | None = None, parties: Sequence[str] = ("inbound", "outbound"),
              dtmf: Any = None, speech: dict | None = None) -> dict[str, Any]:
    """Both tracks on one time axis, with speech regions, overlaps and DTMF marked.

    Parameters
    ----------
    audio : Recording or np.ndarray, shape (2, n)
        ``[inbound, outbound]``.
    ax : pair of Axes, optional
        One per track (sharing the time axis); new ones when not given.
    dtmf : DataFrame, optional
        From :func:`telnyx_audio.analysis.detect_dtmf` (``digit``, ``start_s``); marked on the inbound track.
    speech : dict, optional
        Per party :class:`~telnyx_audio.analysis.Speech` (computed when not given).

    Returns
    -------
    dict
        ``waveforms`` (two PolyCollections), ``speech`` (spans), ``overlaps`` (spans), ``dtmf``
        (texts), and ``axes``.
    """
    rate = _rate(sr, audio)
    x = _as_float(audio)
    if x.ndim != 2 or x.shape[0] != 2:
        raise ValueError(f"plot_call takes two tracks, shape (2, n); got {x.shape}")
    if ax is None:
        import matplotlib.pyplot as plt

        ax = plt.subplots(2, 1, figsize=(12, 4), sharex=True)[1]
    speech = speech or {p: detect_speech(x[i], rate) for i, p in enumerate(parties)}
    out: dict[str, Any] = {"axes": list(ax), "waveforms": [], "speech": [], "overlaps": [], "dtmf": []}
    for i, (name, axis) in enumerate(zip(parties, ax)):
        out["waveforms"].append(plot_waveform(x[i], rate, ax=axis, color=f"C{i}"))
        for start, end in speech[name].segments[["start_s", "end_s"]].itertuples(index=False):
            out["speech"].append(axis.axvspan(start, end, color=f"C{i}", alpha=0.15, linewidth=0))
        axis.set_ylabel(name)
    a, b = (speech[p].mask for p in parties)
    n = min(a.size, b.size)
    both = a[:n] & b[:n]
    edges = np.flatnonzero(np.diff(np.concatenate(([0], both.astype(np.int8), [0]))))
    frame_s = speech[parties[0]].frame_s
    for start, end in zip(edges[::2] * frame_s, edges[1::2] * frame_s):
        for axis in ax:
            out["overlaps"].append(axis.axvspan(start, end, color="red", alpha=0.25, linewidth=0))
    if dtmf is not None:
        for digit, start in dtmf[["digit", "start_s"]].itertuples(index=False):
            out["dtmf"].append(ax[0].annotate(digit, (start, 0.9), color="black", fontsize=9, fontweight="bold"))
    ax[-1].set_xlabel("time (s)")
    return out
