"""Small signal helpers shared by the server, the simulator and analysis."""

from __future__ import annotations

from math import gcd

import numpy as np


def to_int16(audio: np.ndarray) -> np.ndarray:
    """int16 as is; float in [-1, 1) scaled by 32768 and clipped (the inverse of x / 32768).

    >>> to_int16(np.array([0.0, 0.5, -1.0, 2.0])).tolist()
    [0, 16384, -32768, 32767]
    """
    arr = np.asarray(audio)
    if arr.dtype == np.int16:
        return arr
    if arr.dtype.kind != "f":
        raise TypeError(f"audio must be int16 or float, got {arr.dtype}")
    return np.clip(np.round(arr * 32768), -32768, 32767).astype(np.int16)


def resample(audio: np.ndarray, rate: int, target: int) -> np.ndarray:
    """int16 audio from ``rate`` to ``target`` Hz along the last axis (polyphase, scipy).

    >>> resample(np.zeros(160, np.int16), 8000, 16000).shape
    (320,)
    """
    if rate == target:
        return audio
    from scipy.signal import resample_poly

    g = gcd(int(rate), int(target))
    out = resample_poly(audio.astype(np.float64), int(target) // g, int(rate) // g, axis=-1)
    return np.clip(np.round(out), -32768, 32767).astype(np.int16)
