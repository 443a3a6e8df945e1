"""Helpers shared by the analysis modules: input coercion, framing, runs of a mask."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

_EPS = 1e-12


def _source(pcm: Any) -> Any:
    """A Capture's recording, else the object itself."""
    rec = getattr(pcm, "recording", None)
    return rec if rec is not None and hasattr(rec, "audio") else pcm


def _as_array(pcm: Any) -> np.ndarray:
    """The int16 or float samples of an array, track, Recording or Capture, as they are (no copy)."""
    arr = np.asarray(getattr(_source(pcm), "audio", pcm) if not isinstance(pcm, np.ndarray) else pcm)
    if arr.dtype != np.int16 and arr.dtype.kind != "f":
        raise TypeError(f"pcm must be int16 or float, got {arr.dtype}")
    return arr


def _as_float(pcm: Any) -> np.ndarray:
    """float32 in [-1, 1) from int16 or float input (array, track, Recording or Capture); 1-D or (tracks, n)."""
    arr = _as_array(pcm)
    if arr.dtype == np.int16:
        return np.multiply(arr, np.float32(1 / 32768), dtype=np.float32)  # one pass, no int16 -> float copy first
    return arr.astype(np.float32, copy=False)


def _lost_spans(audio: Any, parties: Any, lost: Any = None) -> list[np.ndarray]:
    """Per track, the ``(start_s, end_s)`` spans the network lost, shape (k, 2) float64 each:
    ``lost`` when given (a pair of span lists, or a dict by party or by track name), else what
    a Recording (or a Capture's) reports in its ``lost``; none for plain arrays."""
    if lost is None:
        lost = getattr(_source(audio), "lost", None) if not isinstance(audio, np.ndarray) else None
        if not isinstance(lost, dict):
            return [np.zeros((0, 2)) for _ in parties]
        lost = [lost.get(track, ()) for track in ("inbound", "outbound")]
    elif isinstance(lost, dict):
        unknown = set(lost) - set(parties) - {"inbound", "outbound"}
        if unknown:
            raise ValueError(f"lost names tracks {sorted(unknown)}; expected {list(parties)} or inbound/outbound")
        lost = [lost.get(p, lost.get(t, ())) for p, t in zip(parties, ("inbound", "outbound"))]
    elif len(lost) != len(parties):
        raise ValueError(f"lost must hold one list of (start_s, end_s) spans per track, got {len(lost)} for {len(parties)} tracks")
    return [np.asarray(spans, np.float64).reshape(-1, 2) for spans in lost]


def _rate(sr: Any, pcm: Any = None) -> int:
    """The sample rate: ``sr`` when given, else the one the audio carries (Recording, track, Capture)."""
    rate = sr if sr is not None else getattr(_source(pcm), "sample_rate", None)
    if rate is None:
        raise ValueError("sr is required for a plain array (a Recording or one of its tracks carries its own)")
    if isinstance(rate, bool) or not float(rate).is_integer() or rate <= 0:
        raise ValueError(f"sr must be a positive sample rate in Hz, got {rate!r}")
    return int(rate)


def _frames(x: np.ndarray, size: int, hop: int) -> np.ndarray:
    """(n_frames, size) view of a 1-D signal (no copy), the tail that does not fill a frame dropped."""
    if x.size < size:
        return np.zeros((0, size), x.dtype)
    return sliding_window_view(x, size)[::hop]


def _edges(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start and end (exclusive) indices of the runs of True."""
    edges = np.diff(np.concatenate(([0], mask.astype(np.int8), [0])))
    return np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)


def _segments(mask: np.ndarray, frame_s: float) -> "pd.DataFrame":
    """``start_s``, ``end_s``, ``duration_s`` of each run of True frames."""
    import pandas as pd

    starts, ends = _edges(mask)
    return pd.DataFrame({"start_s": starts * frame_s, "end_s": ends * frame_s, "duration_s": (ends - starts) * frame_s})


def _spans_to_mask(starts_s: np.ndarray, ends_s: np.ndarray, n: int, frame_s: float) -> np.ndarray:
    """Frames (of ``frame_s``) touched by any ``[start, end)`` span, as a bool mask of length n."""
    lo = np.clip(np.floor(np.asarray(starts_s) / frame_s + 1e-9).astype(int), 0, n)
    hi = np.clip(np.ceil(np.asarray(ends_s) / frame_s - 1e-9).astype(int), 0, n)
    return _fill(lo, hi, n)


def _fill(starts: np.ndarray, ends: np.ndarray, n: int) -> np.ndarray:
    """Bool mask of length n, True in every ``[start, end)`` run (runs may overlap)."""
    out = np.zeros(n + 1, np.int32)
    np.add.at(out, starts, 1)
    np.add.at(out, ends, -1)
    return np.cumsum(out[:-1]) > 0
