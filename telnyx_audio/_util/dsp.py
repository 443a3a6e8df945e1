"""Small signal helpers shared by the server, the simulator and analysis."""

from __future__ import annotations

import numpy as np


def to_int16(audio: np.ndarray) -> np.ndarray:
    """int16 as is; float in [-1, 1) scaled by 32768 and clipped (the inverse of x / 32768).

    NaN or infinite samples are refused: they have no sound to send, and casting them would
    give arbitrary values with only numpy's warning to say so.

    >>> to_int16(np.array([0.0, 0.5, -1.0, 2.0])).tolist()
    [0, 16384, -32768, 32767]
    >>> to_int16(np.array([0.0, np.nan]))
    Traceback (most recent call last):
    ...
    ValueError: audio must be finite: 1 of 2 samples are NaN or infinite (at index 1)
    """
    arr = np.asarray(audio)
    if arr.dtype == np.int16:
        return arr
    if arr.dtype.kind != "f":
        raise TypeError(f"audio must be int16 or float, got {arr.dtype}")
    bad = ~np.isfinite(arr)
    if bad.any():
        raise ValueError(f"audio must be finite: {int(bad.sum())} of {arr.size} samples are NaN or infinite"
                         f" (at index {int(np.flatnonzero(bad.reshape(-1))[0])})")
    return np.clip(np.round(arr * 32768), -32768, 32767).astype(np.int16)


def resample(audio: np.ndarray, rate: int, target: int) -> np.ndarray:
    """int16 audio from ``rate`` to ``target`` Hz along the last axis (libsoxr, "HQ").

    soxr is a well-kept, high-quality resampler (SoX's, band-limited, linear phase); its
    output length is ``round(n * target / rate)``. Shape (n,) or (channels, n).

    >>> resample(np.zeros(160, np.int16), 8000, 16000).shape
    (320,)
    >>> resample(np.zeros((2, 441), np.int16), 44100, 8000).shape
    (2, 80)
    """
    if rate == target:
        return audio
    import soxr

    arr = np.asarray(audio)
    if arr.dtype != np.int16:
        raise TypeError(f"audio must be int16, got {arr.dtype}")
    if arr.shape[-1] == 0:
        return np.zeros(arr.shape[:-1] + (0,), np.int16)
    # soxr takes (frames, channels); time is on our last axis.
    out = soxr.resample(np.ascontiguousarray(arr.T), int(rate), int(target), quality="HQ")
    return np.ascontiguousarray(out.T)
