"""Placing one track's frames on its timeline: order, dedupe, gaps, and the silence budget.

Private helpers of :func:`telnyx_audio.model.plan` (the rules are documented there).
Nothing here allocates in proportion to what the counters claim: every gap is cut to the
per-gap limit, and the silence inserted on a track, gaps and start offset together, to a
budget set by the audio actually received (:func:`silence_budget`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Silence a capture may always ask for, however little audio it holds (seconds).
MIN_SILENCE_BUDGET_S = 60.0
#: Beyond that, inserted silence is at most this many times the audio received.
SILENCE_BUDGET_RATIO = 10


def silence_budget(received_samples: int, sample_rate: int, max_silence_s: float | None) -> int:
    """Samples of silence one track may receive in all: ``max(60 s, 10 x audio received)``.

    Examples
    --------
    >>> silence_budget(8000, 8000, None), silence_budget(8000 * 600, 8000, None), silence_budget(0, 8000, 1.5)
    (480000, 48000000, 12000)
    """
    if max_silence_s is not None:
        return int(max_silence_s * sample_rate)
    return int(max(MIN_SILENCE_BUDGET_S * sample_rate, SILENCE_BUDGET_RATIO * received_samples))


def mode(values: np.ndarray) -> int:
    """The most common value (frame lengths: small non-negative ints), in O(n)."""
    if values.size == 0:
        return 0
    if (values == values[0]).all():
        return int(values[0])
    return int(np.argmax(np.bincount(values)))


def timestamp_scale(ts: np.ndarray, lens: np.ndarray, sr: int, clock: int | None = None) -> tuple[str | None, float]:
    """Read the timestamp unit off the data: ms (20 per 20 ms frame), samples of the audio
    (``"samples"``) or ticks of the codec's own RTP clock where it differs (``"rtp"``: G.722's
    8 kHz, Opus's 48 kHz).

    Examples
    --------
    >>> lens = np.full(3, 320)
    >>> timestamp_scale(np.array([0, 160, 320]), lens, 16000, 8000)
    ('rtp', 2.0)
    >>> timestamp_scale(np.array([0, 20, 40]), lens, 16000, 8000)
    ('ms', 16.0)
    """
    if ts.size < 2:
        return ("ms", sr / 1000.0) if ts.size else (None, 0.0)
    step = float(np.median(np.diff(ts)))
    frame = float(np.median(lens[:-1]))
    if frame <= 0:
        return None, 0.0
    frame_ms = frame * 1000.0 / sr
    if abs(step - frame_ms) <= 0.25 * frame_ms:
        return "ms", sr / 1000.0
    if abs(step - frame) <= 0.25 * frame:
        return "samples", 1.0
    if clock and clock != sr and abs(step - frame * clock / sr) <= 0.25 * frame * clock / sr:
        return "rtp", sr / clock
    return None, 0.0


@dataclass
class Placed:
    report_args: dict
    rows: np.ndarray  # frame rows (into the FrameTable) in timeline order, bad frames included
    pos: np.ndarray  # sample position of each, relative to the track's first sample
    lens: np.ndarray  # samples in each
    good: np.ndarray  # whether each has audio (bad frames keep their slot, silent)
    length: int
    ts_offset: float | None  # track start in samples from timestamps, when they agree
    first_chunk: int
    capped: float  # samples of silence the caps left out
    short: int = 0  # frames (not the last) shorter than the usual frame
    by_timestamps: bool = False  # placed by timestamps although the lengths disagree with them


def _cap_total(gap: np.ndarray, budget: int) -> tuple[np.ndarray, np.ndarray, int]:
    """Cut gaps, in order, so their sum stays within ``budget``; (gaps, which were cut, samples cut)."""
    if int(gap.sum()) <= budget:
        return gap, np.zeros(gap.size, bool), 0
    total = np.cumsum(gap)
    new = np.diff(np.minimum(total, budget), prepend=0)
    return new, new < gap, int(total[-1] - budget)


def _timestamp_gaps(step: np.ndarray, lens: np.ndarray, limit: int, scale: float) -> tuple[np.ndarray, np.ndarray, float]:
    """Gaps (samples) before each frame from timestamp steps, each cut to ``limit``; (gaps, which were cut, samples cut)."""
    most = int(limit / scale)
    gap = np.zeros(lens.size, np.int64)
    capped = np.zeros(lens.size, bool)
    capped[1:] = step > most
    gap[1:] = np.maximum(np.rint(np.minimum(step, most) * scale).astype(np.int64) - lens[:-1], 0)
    return gap, capped, float(np.maximum(step - most, 0).sum(dtype=np.float64)) * scale


def place_track(frames, rows: np.ndarray, sr: int, bps: int, unplaced: int, max_gap: int, budget: int,
                clock: int | None = None) -> Placed:
    """Order, dedupe and position one track's frames (rows are in arrival order).

    ``max_gap`` (samples) caps any one gap and ``budget`` all of them together: a corrupt
    counter must not ask for hours of silence. Frames with ``nbytes < 0`` (arrived, payload
    unusable) keep their slot as silence and are not gaps; among duplicates a usable frame
    wins over an unusable one, then the first arrival.
    """
    chunk, ts, seq = frames.chunk[rows], frames.timestamp[rows], frames.sequence_number[rows]
    is_bad = frames.nbytes[rows] < 0
    if (chunk >= 0).all():
        key, name = chunk, "chunk"
    elif (ts >= 0).all():
        key, name = ts, "timestamp"
    elif (seq >= 0).all():
        key, name = seq, "sequence_number"
    else:
        key, name = np.arange(rows.size, dtype=np.int64), "arrival"
    dup = np.zeros(rows.size, bool)
    if rows.size < 2 or (key[1:] > key[:-1]).all():
        # Already in order without duplicates: the usual case, no sort needed.
        order, sorted_key = np.arange(rows.size), key
        reordered = 0
    else:
        order = np.lexsort((is_bad, key)) if is_bad.any() else np.argsort(key, kind="stable")
        sorted_key = key[order]
        dup[1:] = sorted_key[1:] == sorted_key[:-1]
        first = np.ones(rows.size, bool)
        first[order[dup]] = False
        arrived = key[first]
        reordered = int((arrived[1:] < np.maximum.accumulate(arrived)[:-1]).sum())

    keep = order[~dup] if dup.any() else order
    krow = rows[keep]
    k = sorted_key[~dup] if dup.any() else sorted_key
    good = ~is_bad[keep]
    nbytes = frames.nbytes[krow]
    lens = nbytes // bps
    stray = int((nbytes % bps).sum()) if bps > 1 else 0
    if good.all():
        frame_len = mode(lens)
    else:  # bad frames (-1 bytes) take the usual frame's length, silent
        stray = int((nbytes[good] % bps).sum()) if bps > 1 else 0
        frame_len = mode(lens[good])
        lens[~good] = frame_len
    unit, scale = timestamp_scale(ts[keep], lens, sr, clock) if (ts >= 0).all() else (None, 0.0)

    limit = min(max_gap, budget)
    gap = np.zeros(k.size, np.int64)
    capped = np.zeros(k.size, bool)
    if name == "chunk":
        # Cap in frames before multiplying: chunk jumps of 2**53 stay in range.
        missing, most = np.diff(k) - 1, limit // max(frame_len, 1)
        capped[1:] = missing > most
        gap[1:] = np.minimum(missing, most) * frame_len
        asked = float(np.maximum(missing - most, 0).sum(dtype=np.float64)) * frame_len  # float: 2**53 jumps add up
        expected = int(k[-1] - k[0] + 1) if k.size else 0
    elif name == "timestamp" and unit is not None:
        gap, capped, asked = _timestamp_gaps(np.diff(k), lens, limit, scale)
        expected = k.size + (int(np.rint(gap.sum() / frame_len)) if frame_len else 0)
    else:
        asked = 0
        expected = int(k.size)
    gap, cut_mask, cut = _cap_total(gap, budget)
    capped |= cut_mask
    pos = np.zeros(k.size, np.int64)
    if k.size:
        pos[1:] = np.cumsum(lens[:-1] + gap[1:])
    length = int(pos[-1] + lens[-1]) if k.size else 0

    ts_offset = None
    by_timestamps = False
    if unit is not None and k.size:
        # Timestamps agree with the payload lengths when, frame by frame, they sit where the
        # lengths put them (within one frame): then they can place the track in the call.
        resid = ts[keep] * scale - pos
        if np.abs(resid - resid[0]).max() <= max(frame_len, 1):
            ts_offset = float(resid[0])
        else:
            # Lengths vary (a short frame): where the timestamps step as the counters do (a usual
            # frame per step) and never overlap a frame with the next, they place each frame,
            # and a frame shorter than its step leaves a gap.
            tk = ts[keep]
            step = np.diff(tk)
            ticks = np.rint(step * scale).astype(np.int64)
            hole = ticks - lens[:-1]
            if ((lens != frame_len).any() and (step > 0).all() and (hole >= -int(np.ceil(scale))).all()
                    and (np.abs(ticks - np.diff(k) * frame_len) <= frame_len // 2).all()):
                gap, capped, asked = _timestamp_gaps(step, lens, limit, scale)
                gap, cut_mask, cut = _cap_total(gap, budget)
                capped |= cut_mask
                pos[1:] = np.cumsum(lens[:-1] + gap[1:])
                length = int(pos[-1] + lens[-1])
                ts_offset, by_timestamps = float(tk[0] * scale), True
            else:
                unit = None
    short = int((good[:-1] & (lens[:-1] < frame_len)).sum()) if k.size else 0
    n_bad = int(is_bad.sum())
    return Placed(
        report_args=dict(
            frames_received=int(rows.size) + unplaced,
            frames_expected=expected,
            duplicates=int(dup.sum()),
            reordered=reordered,
            samples_per_frame=frame_len,
            order_key=name,
            timestamp_unit=unit,
            bad_frames=n_bad + unplaced,
            unplaced=unplaced,
            gaps_capped=int(capped.sum()),
            stray_bytes=stray,
        ),
        rows=krow,
        pos=pos,
        lens=lens,
        good=good,
        length=length,
        ts_offset=ts_offset,
        first_chunk=int(chunk[keep][0]) if name == "chunk" and k.size else 0,
        capped=asked + cut,
        short=short,
        by_timestamps=by_timestamps,
    )
