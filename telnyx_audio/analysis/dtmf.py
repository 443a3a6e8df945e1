"""In-band DTMF digits (ITU-T Q.23/Q.24) found with Goertzel bins, and a cross-check with the stream's events."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Iterable

import numpy as np

from numpy.lib.stride_tricks import sliding_window_view

from telnyx_audio.analysis._common import _EPS, _as_array, _as_float, _rate

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

__all__ = ["DTMF_LOW", "DTMF_HIGH", "DTMF_KEYS", "detect_dtmf", "cross_check_dtmf"]

DTMF_LOW = np.array([697.0, 770.0, 852.0, 941.0])
DTMF_HIGH = np.array([1209.0, 1336.0, 1477.0, 1633.0])
DTMF_KEYS = np.array([list("123A"), list("456B"), list("789C"), list("*0#D")])

_BLOCK_FRAMES = 1024  # windows per pass (10 s of audio): under a MB of float32 at 8 kHz


def detect_dtmf(pcm: np.ndarray, sr: int | None = None, *, min_s: float = 0.04, min_level_dbfs: float = -45.0,
                max_twist_db: float = 8.0) -> "pd.DataFrame":
    """Find in-band DTMF digits (ITU-T Q.23/Q.24 tones) with their times.

    Each 25.6 ms window (hop 10 ms) is measured at the eight DTMF frequencies with the
    Goertzel algorithm's bins (the DFT at just those frequencies, computed for all windows at
    once as one matrix product). A window holds a digit when its strongest low and high
    tones together carry most of its energy, both are loud enough, their levels differ by
    less than ``max_twist_db``, and no other DTMF tone comes close; a digit is reported when
    it lasts at least ``min_s``.

    Returns
    -------
    pandas.DataFrame
        ``digit``, ``start_s``, ``end_s``, ``duration_s``, ``level_dbfs``.

    Examples
    --------
    >>> sr = 8000
    >>> t = np.arange(int(0.1 * sr)) / sr
    >>> five = 0.3 * (np.sin(2 * np.pi * 770 * t) + np.sin(2 * np.pi * 1336 * t))
    >>> detect_dtmf(np.concatenate([np.zeros(800), five, np.zeros(800)]), sr)["digit"].tolist()
    ['5']
    """
    import pandas as pd

    rate = _rate(sr, pcm)
    x = _as_array(pcm)
    if x.ndim != 1:
        raise ValueError(f"detect_dtmf takes one track, shape (n,); got {x.shape}")
    size = int(round(0.0256 * rate))  # 205 samples at 8 kHz: the classic Goertzel block
    hop = int(round(0.01 * rate))
    n_frames = (x.size - size) // hop + 1 if x.size >= size else 0
    empty = pd.DataFrame({"digit": pd.Series(dtype=str), "start_s": pd.Series(dtype=float), "end_s": pd.Series(dtype=float),
                          "duration_s": pd.Series(dtype=float), "level_dbfs": pd.Series(dtype=float)})
    if n_frames == 0:
        return empty
    window = np.hamming(size).astype(np.float32)
    scale = np.float32(2.0 / (window.sum() ** 2))
    freqs = np.concatenate([DTMF_LOW, DTMF_HIGH])
    phase = 2 * np.pi * np.outer(np.arange(size), np.concatenate([freqs, 2 * freqs])) / rate
    basis = np.concatenate([np.cos(phase), np.sin(phase)], axis=1).astype(np.float32)  # tones, then 2nd harmonics
    # Per window only what the rules below need: its digit code (-1: none) and tone power.
    code = np.full(n_frames, -1, np.int64)
    tone_power = np.zeros(n_frames)
    # The call goes through in blocks of windows: each block's samples become float32 on their
    # own, so memory stays at one block's (under a MB) whatever the call's length.
    for k0 in range(0, n_frames, _BLOCK_FRAMES):
        k1 = min(k0 + _BLOCK_FRAMES, n_frames)
        piece = _as_float(x[k0 * hop : (k1 - 1) * hop + size])
        frames = sliding_window_view(piece, size)[::hop]
        # Mean square of every window from a running sum (a tone of amplitude a has a^2/2).
        # Only windows loud enough to hold two tones at min_level_dbfs are measured at all:
        # in a call most are silence or quiet line, so the DFT runs on a fraction of them.
        squares = np.concatenate(([0.0], np.cumsum(np.square(piece, dtype=np.float64))))
        begin = np.arange(k1 - k0) * hop
        frame_power = (squares[begin + size] - squares[begin]) / size + _EPS
        candidates = np.flatnonzero(frame_power > 2 * 10 ** (min_level_dbfs / 10))
        if candidates.size == 0:
            continue
        parts = (frames[candidates] * window) @ basis
        power = (np.square(parts[:, : 2 * freqs.size]) + np.square(parts[:, 2 * freqs.size :])) * scale
        low, high, harm = power[:, :4], power[:, 4:8], power[:, 8:]
        li, hi = low.argmax(axis=1), high.argmax(axis=1)
        rows = np.arange(len(li))
        lp, hp = low[rows, li], high[rows, hi]
        # Energy check: the two tones hold most of the window's power (speech and noise do not).
        tonal = lp + hp > 0.6 * frame_power[candidates]
        loud = 10 * np.log10(np.minimum(lp, hp) + _EPS) > min_level_dbfs
        twist = np.abs(10 * np.log10((lp + _EPS) / (hp + _EPS))) < max_twist_db
        low_sorted, high_sorted = np.sort(low, axis=1), np.sort(high, axis=1)
        clean = (low_sorted[:, -2] < 0.1 * lp) & (high_sorted[:, -2] < 0.1 * hp)
        # Second harmonics: speech has them, DTMF does not.
        pure = harm.max(axis=1) < 0.1 * np.maximum(lp, hp)
        passed = tonal & loud & twist & clean & pure
        code[k0 + candidates[passed]] = (li * 4 + hi)[passed]
        tone_power[k0 + candidates] = lp + hp
    edges = np.flatnonzero(np.diff(np.concatenate(([-1], code, [-1]))) != 0)
    starts, ends = edges[:-1], edges[1:]
    values = code[starts]
    keep = values >= 0
    starts, ends, values = starts[keep], ends[keep], values[keep]
    duration = (ends - starts - 1) * hop / rate + size / rate
    long_enough = duration >= min_s
    starts, ends, values, duration = starts[long_enough], ends[long_enough], values[long_enough], duration[long_enough]
    if values.size == 0:
        return empty
    energy = np.concatenate(([0.0], np.cumsum(tone_power)))
    level = 10 * np.log10((energy[ends] - energy[starts]) / (ends - starts) + _EPS)
    return pd.DataFrame({"digit": DTMF_KEYS.ravel()[values], "start_s": starts * hop / rate,
                         "end_s": starts * hop / rate + duration, "duration_s": duration, "level_dbfs": level})


def cross_check_dtmf(in_band: "pd.DataFrame", events: Iterable[Any]) -> "pd.DataFrame":
    """Line up in-band digits with the stream's ``dtmf`` events (in order).

    Parameters
    ----------
    in_band : DataFrame
        From :func:`detect_dtmf`.
    events : iterable of Dtmf events or digit strings

    Returns
    -------
    pandas.DataFrame
        One row per position: ``in_band`` digit (and ``start_s``), ``event`` digit, and
        ``status``: ``"match"``, ``"mismatch"``, ``"only in band"`` or ``"only event"``.
    """
    import pandas as pd

    digits = [getattr(e, "digit", e) for e in events if isinstance(getattr(e, "digit", e), str)]
    found = in_band["digit"].tolist()
    n = max(len(found), len(digits))
    rows = []
    for i in range(n):  # a handful of digits: a plain loop is the clear way
        a = found[i] if i < len(found) else None
        b = digits[i] if i < len(digits) else None
        status = "match" if a == b else "only event" if a is None else "only in band" if b is None else "mismatch"
        rows.append({"in_band": a, "start_s": float(in_band["start_s"].iloc[i]) if a is not None else np.nan,
                     "event": b, "status": status})
    return pd.DataFrame(rows, columns=["in_band", "start_s", "event", "status"])
