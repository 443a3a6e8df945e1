"""In-band DTMF digits (ITU-T Q.23/Q.24) found with Goertzel bins, and a cross-check with the stream's events."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Iterable

import numpy as np

from numpy.lib.stride_tricks import sliding_window_view

from telnyx_audio.analysis._common import _EPS, _as_array, _as_float, _edges, _rate

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

__all__ = ["DTMF_LOW", "DTMF_HIGH", "DTMF_KEYS", "detect_dtmf", "cross_check_dtmf"]

DTMF_LOW = np.array([697.0, 770.0, 852.0, 941.0])
DTMF_HIGH = np.array([1209.0, 1336.0, 1477.0, 1633.0])
DTMF_KEYS = np.array([list("123A"), list("456B"), list("789C"), list("*0#D")])

_BLOCK_FRAMES = 1024  # windows per pass (10 s of audio): under a MB of float32 at 8 kHz


def detect_dtmf(pcm: np.ndarray, sr: int | None = None, *, min_s: float = 0.04, min_level_dbfs: float = -45.0,
                max_twist_db: float = 8.0, max_reverse_twist_db: float = 4.0) -> "pd.DataFrame":
    """Find in-band DTMF digits (ITU-T Q.23/Q.24 tones) with their times.

    Each 25.6 ms window (hop 10 ms) is measured at the eight DTMF frequencies and their
    second harmonics with the Goertzel algorithm's bins (the DFT at just those frequencies,
    a matrix product per block of windows). A window *holds* a digit when, as receivers
    built to Q.24 check:

    - both tones are louder than ``min_level_dbfs``;
    - twist: the high tone is at most ``max_twist_db`` under the low one (normal twist) and
      the low tone at most ``max_reverse_twist_db`` under the high one (reverse twist);
    - each tone stands 8 dB over the other three frequencies of its group;
    - the two tones carry 60 % of the window's energy, and their second harmonics are
      10 dB under them (speech and music have harmonics and spread energy; DTMF has neither).

    A window *keeps* a tone going under looser limits (6 dB less level, 4 dB more twist,
    3 dB group ratio, 30 % of the energy, harmonics 6 dB under), and a lone window between
    two keeping the same digit whose loudest tones are still that digit's is a dropout: line
    noise that spoils a window inside a key press does not split it into two digits. A key press is a stretch of windows with a tone,
    from silence to silence: one digit per stretch (the one its windows hold most), so the
    same or another digit counts again only after a pause (a window with no tone: 26 ms or
    more without it), and only when its windows that hold it span ``min_s`` (Q.24: 40 ms).
    Start and end are those of the windows that hold it.

    Parameters
    ----------
    pcm : np.ndarray, shape (n,)
        int16 or float audio (a Recording track carries its rate).
    sr : int, optional
        Sample rate, for plain arrays.
    min_s : float
        Shortest tone reported, seconds.
    min_level_dbfs : float
        Quietest tone, dB re full scale (a full-scale sine is 0 dBFS).
    max_twist_db, max_reverse_twist_db : float
        Largest normal twist (high tone under low) and reverse twist (low under high), dB.

    Returns
    -------
    pandas.DataFrame
        ``digit``, ``start_s``, ``end_s``, ``duration_s``, ``level_dbfs`` (the two tones' power).

    Examples
    --------
    >>> sr = 8000
    >>> t = np.arange(int(0.1 * sr)) / sr
    >>> five = 0.3 * (np.sin(2 * np.pi * 770 * t) + np.sin(2 * np.pi * 1336 * t))
    >>> detect_dtmf(np.concatenate([np.zeros(800), five, np.zeros(800), five, np.zeros(800)]), sr)["digit"].tolist()
    ['5', '5']
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
    # (strict, loose) limits: a window must meet the first to hold a digit, the second to keep one going.
    floor = 10 ** (np.array([min_level_dbfs, min_level_dbfs - 6]) / 10)
    normal = 10 ** (-np.array([max_twist_db, max_twist_db + 4]) / 10)
    reverse = 10 ** (-np.array([max_reverse_twist_db, max_reverse_twist_db + 4]) / 10)
    group = 10 ** (-np.array([8.0, 3.0]) / 10)
    share = np.array([0.6, 0.3])
    harmonic = 10 ** (-np.array([10.0, 6.0]) / 10)
    # Per window only what the rules below need: its digit code when it holds one and when it
    # keeps one going (-1: none), and its tone power.
    holds = np.full(n_frames, -1, np.int64)
    keeps = np.full(n_frames, -1, np.int64)
    tone_power = np.zeros(n_frames)
    strongest = np.full(n_frames, -1, np.int64)  # the loudest low and high tone's code
    # The call goes through in blocks of windows: each block's samples become float32 on their
    # own, so memory stays at one block's (under a MB) whatever the call's length.
    for k0 in range(0, n_frames, _BLOCK_FRAMES):
        k1 = min(k0 + _BLOCK_FRAMES, n_frames)
        piece = _as_float(x[k0 * hop : (k1 - 1) * hop + size])
        frames = sliding_window_view(piece, size)[::hop]
        # Mean square of every window from a running sum (a tone of amplitude a has a^2/2).
        # Only windows loud enough to hold two tones are measured at all: in a call most are
        # silence or quiet line, so the DFT runs on a fraction of them.
        squares = np.concatenate(([0.0], np.cumsum(np.square(piece, dtype=np.float64))))
        begin = np.arange(k1 - k0) * hop
        frame_power = (squares[begin + size] - squares[begin]) / size + _EPS
        candidates = np.flatnonzero(frame_power > 2 * floor[1])
        if candidates.size == 0:
            continue
        parts = (frames[candidates] * window) @ basis
        power = (np.square(parts[:, : 2 * freqs.size]) + np.square(parts[:, 2 * freqs.size :])) * scale
        low, high, harm = power[:, :4], power[:, 4:8], power[:, 8:]
        li, hi = low.argmax(axis=1), high.argmax(axis=1)
        rows = np.arange(len(li))
        lp, hp = low[rows, li], high[rows, hi]
        runner_up = np.maximum(np.sort(low, axis=1)[:, -2] / lp, np.sort(high, axis=1)[:, -2] / hp)
        overtone = np.maximum(harm[rows, li], harm[rows, 4 + hi]) / np.maximum(lp, hp)
        code = li * 4 + hi
        for out, j in ((holds, 0), (keeps, 1)):
            ok = ((np.minimum(lp, hp) > floor[j]) & (hp > normal[j] * lp) & (lp > reverse[j] * hp)
                  & (runner_up < group[j]) & (lp + hp > share[j] * frame_power[candidates]) & (overtone < harmonic[j]))
            out[k0 + candidates[ok]] = code[ok]
        tone_power[k0 + candidates] = lp + hp
        strongest[k0 + candidates] = code
    keeps[holds >= 0] = holds[holds >= 0]
    # A lone window between two that keep the same digit, whose loudest tones are still that
    # digit's at no less than a quarter of its neighbours' power, is a dropout (Q.24: a break
    # of 10 ms is no pause): a pause long enough to count has a window without the tone.
    lone = ((keeps[1:-1] < 0) & (keeps[:-2] >= 0) & (keeps[:-2] == keeps[2:]) & (strongest[1:-1] == keeps[:-2])
            & (tone_power[1:-1] > 0.25 * np.minimum(tone_power[:-2], tone_power[2:])))
    keeps[1:-1][lone] = keeps[:-2][lone]
    # Key presses: stretches of windows with a tone, from pause to pause; each one digit.
    first, _ = _edges(keeps >= 0)
    if first.size == 0:
        return empty
    starts_here = np.zeros(n_frames, np.int64)
    starts_here[first] = 1
    press = np.cumsum(starts_here) - 1  # the stretch each window with a tone belongs to
    held = np.flatnonzero(holds >= 0)  # all inside stretches: a window that holds a digit keeps it
    votes = np.bincount(press[held] * 16 + holds[held], minlength=first.size * 16).reshape(first.size, 16)
    digit = votes.argmax(axis=1)
    # First and last window holding the chosen digit in each stretch, its mean tone power.
    chosen = held[holds[held] == digit[press[held]]]
    owner = press[chosen]
    count = np.bincount(owner, minlength=first.size)
    start = np.full(first.size, n_frames)
    np.minimum.at(start, owner, chosen)
    stop = np.full(first.size, -1)
    np.maximum.at(stop, owner, chosen)
    power = np.bincount(owner, weights=tone_power[chosen], minlength=first.size)
    duration = (stop - start) * hop / rate + size / rate
    keep = (count > 0) & (duration >= min_s - 1e-9)
    if not keep.any():
        return empty
    start, duration, digit = start[keep], duration[keep], digit[keep]
    level = 10 * np.log10(power[keep] / count[keep] + _EPS)
    return pd.DataFrame({"digit": DTMF_KEYS.ravel()[digit], "start_s": start * hop / rate,
                         "end_s": start * hop / rate + duration, "duration_s": duration, "level_dbfs": level})


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
