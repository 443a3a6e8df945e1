"""Spectrograms: power in dB over time and frequency."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from telnyx_audio.analysis._common import _as_array, _as_float, _frames, _rate

__all__ = ["Spectrogram", "spectrogram"]


@dataclass(frozen=True)
class Spectrogram:
    """Power in dB over time and frequency.

    Attributes
    ----------
    db : np.ndarray of float32, shape (n_freqs, n_times)
        Power spectral density in dB (re. full scale squared per Hz).
    freqs : np.ndarray, shape (n_freqs,)
        Hz.
    times : np.ndarray, shape (n_times,)
        Seconds, the centre of each frame.
    sample_rate : int
    """

    db: np.ndarray
    freqs: np.ndarray
    times: np.ndarray
    sample_rate: int

    def __repr__(self) -> str:
        return f"<Spectrogram {self.db.shape[0]} freqs x {self.db.shape[1]} frames, {self.sample_rate} Hz>"


def spectrogram(pcm: np.ndarray, sr: int | None = None, *, frame_s: float = 0.032, overlap: float = 0.5,
                floor_db: float = -140.0) -> Spectrogram:
    """Spectrogram of one track.

    Parameters
    ----------
    pcm : np.ndarray, shape (n,)
        int16 or float audio.
    sr : int
        Its real sample rate (a :class:`~telnyx_audio.Recording` track carries it).
    frame_s : float
        Frame length (32 ms by default: 256 samples at 8 kHz; a power of two is used).
        Longer frames resolve pitch harmonics, shorter ones follow fast changes.
    overlap : float
        Fraction of each frame shared with the next (0 to 0.9).
    floor_db : float
        Lowest value returned (digital silence would be minus infinity).

    Returns
    -------
    Spectrogram

    Examples
    --------
    >>> t = np.arange(8000) / 8000
    >>> spec = spectrogram(np.sin(2 * np.pi * 1000 * t), 8000)
    >>> float(spec.freqs[spec.db.mean(axis=1).argmax()])
    1000.0
    """
    from scipy import fft

    rate = _rate(sr, pcm)
    x = _as_array(pcm)  # int16 stays int16: each block of frames becomes float32 on its own
    if x.ndim != 1:
        raise ValueError(f"spectrogram takes one track, shape (n,); got {x.shape} (pass audio[0] or audio[1])")
    if not 0 <= overlap <= 0.9:
        raise ValueError(f"overlap must be between 0 and 0.9, got {overlap}")
    size = 1 << max(4, int(np.ceil(np.log2(max(frame_s, 1e-3) * rate))))
    hop = max(1, int(round(size * (1 - overlap))))
    window = np.hanning(size + 1)[:-1].astype(np.float32)
    frames = _frames(x, size, hop)
    scale = np.float32(2.0 / (rate * (window**2).sum()))
    floor = np.float32(10 ** (floor_db / 10))
    out = np.empty((frames.shape[0], size // 2 + 1), np.float32)
    step = max(1, (1 << 18) // size)  # frames per pass: temporaries (a MB) stay in cache, memory stays near the output
    for lo in range(0, frames.shape[0], step):
        spec = fft.rfft(_as_float(frames[lo : lo + step]) * window, axis=1)
        power = np.square(spec.real) + np.square(spec.imag)
        power *= scale
        np.maximum(power, floor, out=power)
        np.log10(power, out=power)
        np.multiply(power, np.float32(10), out=out[lo : lo + step])
    db = out.T  # (n_freqs, n_times), time on the last axis
    times = (np.arange(frames.shape[0]) * hop + size / 2) / rate
    return Spectrogram(db.astype(np.float32, copy=False), np.fft.rfftfreq(size, 1 / rate), times, rate)
