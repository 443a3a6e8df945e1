"""Assemble one stream's media frames into aligned audio, and report what it took.

Pure: no I/O, no clock. Assembly is two steps:

- :func:`plan` looks only at the frames' counters and sizes (a :class:`FrameTable`) and
  decides where every frame goes: its sample position on its track, or nowhere (a
  duplicate). It also writes the :class:`TrackReport` of each track.
- :func:`render` decodes payload bytes into a ``(2, n)`` int16 array ``[inbound, outbound]``
  at those positions, batch by batch, so nothing but the output is ever full-size.
  :func:`telnyx_audio.capture.read_capture` renders straight from the capture file.

:func:`assemble` does both for frames held in memory.

How frames are placed, per track:

1. Order by ``chunk``; where a track's frames lack it, by ``timestamp``; then by
   ``sequence_number``; then by arrival.
2. Duplicates (the same ordering key twice) keep the first arrival.
3. Missing chunks become digital silence as long as the track's usual frame, so later audio
   stays at its true time. In timestamp order, a jump larger than the previous frame's
   length is a gap of the difference.
4. Both tracks share one timeline. A track's start is taken from ``timestamp`` when every
   track's timestamps agree with its payload lengths, otherwise from ``chunk``.

``timestamp`` units are not documented by Telnyx. Both plausible forms are accepted: the
unit is read off the data as milliseconds (the Twilio convention, and what Telnyx examples
suggest: 20 per 20 ms frame) or RTP clock samples (160 per 20 ms frame at 8 kHz); a track
whose timestamps fit neither is placed by ``chunk`` alone and says so in its report.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Sequence

import numpy as np

from telnyx_audio import codecs
from telnyx_audio.protocol import TRACKS, Media

__all__ = ["FrameTable", "TrackReport", "Plan", "Recording", "plan", "render", "assemble", "assemble_events"]

_MISSING = -1
_BATCH = 1 << 14  # frames decoded per step: temporaries stay small and in cache


@dataclass(frozen=True)
class FrameTable:
    """Media frames as columns, one row per ``media`` message, in arrival order.

    Attributes
    ----------
    track : np.ndarray of int8, shape (m,)
        0 for inbound, 1 for outbound.
    chunk, timestamp, sequence_number : np.ndarray of int64, shape (m,)
        The counters; -1 where the message had none.
    nbytes : np.ndarray of int64, shape (m,)
        Payload size in codec bytes (after base64).
    """

    track: np.ndarray
    chunk: np.ndarray
    timestamp: np.ndarray
    sequence_number: np.ndarray
    nbytes: np.ndarray

    def __len__(self) -> int:
        return int(self.track.size)

    @classmethod
    def empty(cls) -> "FrameTable":
        """A table with no frames."""
        z = np.empty(0, np.int64)
        return cls(np.empty(0, np.int8), z, z, z, z)

    @classmethod
    def from_media(cls, events: Iterable[Media]) -> tuple["FrameTable", np.ndarray]:
        """Build a table and its joined payload bytes from parsed media events.

        Returns
        -------
        (FrameTable, np.ndarray of uint8)
            The payloads joined in order; frame i's bytes start at the sum of the ``nbytes``
            before it.

        Examples
        --------
        >>> t, raw = FrameTable.from_media([Media("outbound", b"\\xff\\xff", chunk=1)])
        >>> t.track.tolist(), t.chunk.tolist(), t.timestamp.tolist(), raw.tolist()
        ([1], [1], [-1], [255, 255])
        """
        media = list(events)
        m = len(media)

        def col(values: Iterable[int | None]) -> np.ndarray:
            return np.fromiter((_MISSING if v is None else v for v in values), np.int64, m)

        table = cls(
            track=np.fromiter((TRACKS.index(e.track) for e in media), np.int8, m),
            chunk=col(e.chunk for e in media),
            timestamp=col(e.timestamp for e in media),
            sequence_number=col(e.sequence_number for e in media),
            nbytes=np.fromiter((len(e.payload) for e in media), np.int64, m),
        )
        return table, np.frombuffer(b"".join(e.payload for e in media), np.uint8)

    @classmethod
    def concat(cls, tables: Sequence["FrameTable"]) -> "FrameTable":
        """Join tables in order (arrival order is the order given)."""
        tables = [t for t in tables if len(t)]
        if not tables:
            return cls.empty()
        if len(tables) == 1:
            return tables[0]
        return cls(*(np.concatenate(cols) for cols in zip(*(t.columns() for t in tables))))

    def columns(self) -> tuple[np.ndarray, ...]:
        """The five columns, in field order."""
        return (self.track, self.chunk, self.timestamp, self.sequence_number, self.nbytes)

    def take(self, rows: np.ndarray) -> "FrameTable":
        """The table of the given rows, in the given order."""
        return FrameTable(*(c[rows] for c in self.columns()))


@dataclass(frozen=True)
class TrackReport:
    """What assembling one track took.

    ``frames_received`` counts every media message of the track (duplicates and unusable
    ones included); ``frames_expected`` is how many distinct frames the ordering key says
    were sent. ``gaps`` lists ``(start_s, duration_ms)`` of each filled gap on the shared
    timeline; ``gaps_capped`` counts gaps cut to ``max_gap_s`` (a jump in the counters that
    long is a corrupt or restarted counter, not silence worth filling).
    """

    track: str
    frames_received: int
    frames_expected: int
    duplicates: int
    reordered: int
    gaps: tuple[tuple[float, float], ...]
    gap_ms: float
    start_s: float
    duration_s: float
    samples_per_frame: int
    order_key: str
    timestamp_unit: str | None
    bad_frames: int = 0
    gaps_capped: int = 0

    @property
    def frames_missing(self) -> int:
        """Frames the ordering key says were sent but never arrived (usable)."""
        return self.frames_expected - (self.frames_received - self.duplicates - self.bad_frames)

    def as_dict(self) -> dict:
        """A JSON-able dict (for ``summary.json``)."""
        return {
            "track": self.track,
            "frames_received": self.frames_received,
            "frames_expected": self.frames_expected,
            "frames_missing": self.frames_missing,
            "duplicates": self.duplicates,
            "reordered": self.reordered,
            "bad_frames": self.bad_frames,
            "gaps": [{"start_s": s, "duration_ms": d} for s, d in self.gaps],
            "n_gaps": len(self.gaps),
            "gap_ms": self.gap_ms,
            "start_s": self.start_s,
            "duration_s": self.duration_s,
            "samples_per_frame": self.samples_per_frame,
            "order_key": self.order_key,
            "timestamp_unit": self.timestamp_unit,
            "gaps_capped": self.gaps_capped,
        }


@dataclass(frozen=True)
class Plan:
    """Where every frame goes on the shared timeline (from :func:`plan`).

    Attributes
    ----------
    n_samples : int
        Length of the timeline.
    dest : np.ndarray of int64, shape (m,)
        Per frame (arrival order), its first sample on its track's row; -1 if not used.
    samples : np.ndarray of int64, shape (m,)
        Samples in each frame.
    reports : dict of str to TrackReport
    tracks : tuple of str
        Tracks that carried usable media.
    """

    n_samples: int
    dest: np.ndarray
    samples: np.ndarray
    reports: dict[str, TrackReport]
    tracks: tuple[str, ...]
    encoding: str
    sample_rate: int


@dataclass(frozen=True)
class Recording:
    """One stream's audio on one timeline.

    Attributes
    ----------
    audio : np.ndarray of int16, shape (2, n)
        ``[inbound, outbound]``; a track that sent nothing is all zeros.
    sample_rate : int
        The stream's real rate, from ``start.media_format``.
    encoding : str
        The codec the payloads were decoded from.
    tracks : tuple of str
        The tracks that carried media, in ``TRACKS`` order.
    reports : dict of str to TrackReport
        One per track that had media messages.
    """

    audio: np.ndarray
    sample_rate: int
    encoding: str
    tracks: tuple[str, ...]
    reports: dict[str, TrackReport] = field(default_factory=dict)

    @property
    def inbound(self) -> np.ndarray:
        """The inbound track, int16 of shape (n,)."""
        return self.audio[0]

    @property
    def outbound(self) -> np.ndarray:
        """The outbound track, int16 of shape (n,)."""
        return self.audio[1]

    @property
    def duration_s(self) -> float:
        """Length of the shared timeline in seconds."""
        return self.audio.shape[1] / self.sample_rate

    def to_float(self) -> np.ndarray:
        """``audio`` as float32 in [-1, 1), shape (2, n), for analysis."""
        return self.audio.astype(np.float32) / 32768.0

    def __repr__(self) -> str:
        parts = ", ".join(
            f"{t}: {r.frames_received} frames, {len(r.gaps)} gaps ({r.gap_ms:.0f} ms)"
            for t, r in self.reports.items()
        )
        return (
            f"<Recording {self.encoding} {self.sample_rate} Hz {self.duration_s:.2f} s"
            f" tracks=[{parts}]>"
        )


def _mode(values: np.ndarray) -> int:
    """The most common value (frame lengths: small non-negative ints), in O(n)."""
    if values.size == 0:
        return 0
    if (values == values[0]).all():
        return int(values[0])
    return int(np.argmax(np.bincount(values)))


def _timestamp_scale(ts: np.ndarray, lens: np.ndarray, sr: int) -> tuple[str | None, float]:
    """Read the timestamp unit off the data: ms (20 per 20 ms frame) or RTP samples."""
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
    return None, 0.0


@dataclass
class _Placed:
    report_args: dict
    rows: np.ndarray  # frame rows (into the FrameTable) in timeline order
    pos: np.ndarray  # sample position of each, relative to the track's first sample
    lens: np.ndarray  # samples in each
    length: int
    ts_offset: float | None  # track start in samples from timestamps, when they agree
    first_chunk: int


def _place_track(frames: FrameTable, rows: np.ndarray, sr: int, bps: int, bad: int, max_gap: int) -> _Placed:
    """Order, dedupe and position one track's frames (rows are in arrival order).

    ``max_gap`` (samples) caps any one gap: a corrupt counter must not ask for hours of silence.
    """
    chunk, ts, seq = frames.chunk[rows], frames.timestamp[rows], frames.sequence_number[rows]
    if (chunk >= 0).all():
        key, name = chunk, "chunk"
    elif (ts >= 0).all():
        key, name = ts, "timestamp"
    elif (seq >= 0).all():
        key, name = seq, "sequence_number"
    else:
        key, name = np.arange(rows.size, dtype=np.int64), "arrival"
    if rows.size < 2 or (key[1:] > key[:-1]).all():
        # Already in order without duplicates: the usual case, no sort needed.
        order, sorted_key = np.arange(rows.size), key
        dup = np.zeros(rows.size, bool)
        reordered = 0
    else:
        order = np.argsort(key, kind="stable")
        sorted_key = key[order]
        dup = np.zeros(rows.size, bool)
        dup[1:] = sorted_key[1:] == sorted_key[:-1]
        first = np.ones(rows.size, bool)
        first[order[dup]] = False
        arrived = key[first]
        reordered = int((arrived[1:] < np.maximum.accumulate(arrived)[:-1]).sum())

    keep = order[~dup]
    krow = rows[keep]
    k = sorted_key[~dup]
    lens = frames.nbytes[krow] // bps
    frame_len = _mode(lens)
    unit, scale = _timestamp_scale(ts[keep], lens, sr) if (ts >= 0).all() else (None, 0.0)

    gap = np.zeros(k.size, np.int64)
    capped = 0
    if name == "chunk":
        # Cap in frames before multiplying: chunk jumps of 10^18 stay in range.
        missing, limit = np.diff(k) - 1, max_gap // max(frame_len, 1)
        capped = int((missing > limit).sum())
        gap[1:] = np.minimum(missing, limit) * frame_len
        expected = int(k[-1] - k[0] + 1) if k.size else 0
    elif name == "timestamp" and unit is not None:
        step, limit = np.diff(k), int(max_gap / scale)
        capped = int((step > limit).sum())
        gap[1:] = np.maximum(np.rint(np.minimum(step, limit) * scale).astype(np.int64) - lens[:-1], 0)
        expected = k.size + (int(np.rint(gap.sum() / frame_len)) if frame_len else 0)
    else:
        expected = int(k.size)
    pos = np.zeros(k.size, np.int64)
    if k.size:
        pos[1:] = np.cumsum(lens[:-1] + gap[1:])
    length = int(pos[-1] + lens[-1]) if k.size else 0

    ts_offset = None
    if unit is not None and k.size:
        # Timestamps agree with the payload lengths when, frame by frame, they sit where the
        # lengths put them (within one frame): then they can place the track in the call.
        resid = ts[keep] * scale - pos
        if np.abs(resid - resid[0]).max() <= max(frame_len, 1):
            ts_offset = float(resid[0])
        else:
            unit = None
    return _Placed(
        report_args=dict(
            frames_received=int(rows.size) + bad,
            frames_expected=expected,
            duplicates=int(dup.sum()),
            reordered=reordered,
            samples_per_frame=frame_len,
            order_key=name,
            timestamp_unit=unit,
            bad_frames=bad,
            gaps_capped=capped,
        ),
        rows=krow,
        pos=pos,
        lens=lens,
        length=length,
        ts_offset=ts_offset,
        first_chunk=int(chunk[keep][0]) if name == "chunk" and k.size else 0,
    )


def plan(
    frames: FrameTable,
    encoding: str,
    sample_rate: int,
    *,
    bad_frames: dict[str, int] | None = None,
    max_gap_s: float = 600.0,
) -> Plan:
    """Decide where each frame goes: order, dedupe, gaps and the tracks' alignment.

    Parameters
    ----------
    frames : FrameTable
        The stream's media frames in arrival order.
    encoding : str
        ``start.media_format.encoding`` (``"PCMU"``, ``"PCMA"`` or ``"L16"``).
    sample_rate : int
        ``start.media_format.sample_rate``.
    bad_frames : dict of str to int, optional
        Media messages per track that arrived but could not be used (e.g. bad base64);
        counted in the reports.
    max_gap_s : float
        Longest silence one gap is filled with (10 minutes by default); longer jumps in
        the counters are capped and counted in ``gaps_capped``.

    Returns
    -------
    Plan
    """
    if not isinstance(sample_rate, (int, np.integer)) or isinstance(sample_rate, bool) or sample_rate <= 0:
        raise ValueError(f"sample_rate must be a positive integer, got {sample_rate!r}")
    bps = codecs.bytes_per_sample(encoding)
    bad_frames = bad_frames or {}
    placed: dict[str, _Placed] = {}
    for index, name in enumerate(TRACKS):
        rows = np.flatnonzero(frames.track == index)
        odd = frames.nbytes[rows] % bps != 0  # L16 frames of odd length cannot be decoded
        bad = int(bad_frames.get(name, 0)) + int(odd.sum())
        rows = rows[~odd]
        if rows.size or bad:
            placed[name] = _place_track(frames, rows, sample_rate, bps, bad, int(max_gap_s * sample_rate))

    # Shared timeline: timestamps place tracks when every track's agree; else chunk numbers.
    offsets = {name: 0 for name in placed}
    live = {n: p for n, p in placed.items() if p.rows.size}
    if len(live) > 1:
        ts_offsets = [p.ts_offset for p in live.values()]
        if all(t is not None for t in ts_offsets):
            base = min(ts_offsets)  # type: ignore[type-var]
            offsets = {n: int(round(p.ts_offset - base)) for n, p in live.items()}  # type: ignore[operator]
        elif all(p.report_args["order_key"] == "chunk" for p in live.values()):
            first = min(p.first_chunk for p in live.values())
            offsets = {n: (p.first_chunk - first) * p.report_args["samples_per_frame"] for n, p in live.items()}
    total = max((offsets.get(n, 0) + p.length for n, p in placed.items()), default=0)

    dest = np.full(len(frames), -1, np.int64)
    samples = frames.nbytes // bps
    reports: dict[str, TrackReport] = {}
    for name, p in placed.items():
        off = offsets.get(name, 0)
        dest[p.rows] = p.pos + off
        if p.rows.size > 1:
            gap_rows = np.flatnonzero(np.diff(p.pos) > p.lens[:-1])
        else:
            gap_rows = np.empty(0, np.int64)
        gap_starts = p.pos[gap_rows] + p.lens[gap_rows]
        gap_lens = p.pos[gap_rows + 1] - gap_starts
        reports[name] = TrackReport(
            track=name,
            gaps=tuple(
                (float((off + s) / sample_rate), float(g * 1000.0 / sample_rate))
                for s, g in zip(gap_starts.tolist(), gap_lens.tolist())
            ),
            gap_ms=float(gap_lens.sum() * 1000.0 / sample_rate),
            start_s=off / sample_rate,
            duration_s=p.length / sample_rate,
            **p.report_args,
        )
    tracks = tuple(n for n in TRACKS if n in live)
    return Plan(total, dest, samples, reports, tracks, encoding, int(sample_rate))


def render_batch(
    out: np.ndarray, plan_: Plan, rows: np.ndarray, track: np.ndarray, payload: np.ndarray, nbytes: np.ndarray
) -> None:
    """Decode a batch of frames into ``out`` at their planned places.

    Parameters
    ----------
    out : np.ndarray of int16, shape (2, n_samples)
    rows : np.ndarray of int64
        The frames' indices in the plan.
    track : np.ndarray of int8
        Their tracks.
    payload : np.ndarray of uint8
        Their codec bytes, joined in the order of ``rows``.
    nbytes : np.ndarray of int64
        Bytes of each frame in ``payload``.
    """
    dest = plan_.dest[rows]
    use = dest >= 0
    if not use.any():
        return
    enc, bps = plan_.encoding, codecs.bytes_per_sample(plan_.encoding)
    width = int(nbytes[use][0])
    L = width // bps
    starts = np.concatenate(([0], np.cumsum(nbytes)[:-1]))
    if L and (nbytes[use] == width).all() and (dest[use] % L == 0).all():
        # Equal frames on a frame grid: whole rows; straight into place where a track's
        # frames in this batch cover consecutive slots.
        for index in range(2):
            sel = np.flatnonzero(use & (track == index))
            if sel.size == 0:
                continue
            grid = out[index, : out.shape[1] // L * L].reshape(-1, L)
            src = payload[starts[sel][:, None] + np.arange(width)] if (starts[sel] % width).any() else (
                payload[: payload.size // width * width].reshape(-1, width)[starts[sel] // width]
            )
            slots = dest[sel] // L
            if slots[-1] - slots[0] + 1 == slots.size and (np.diff(slots) > 0).all():
                codecs.decode_into(src, enc, grid[slots[0] : slots[-1] + 1])
            else:
                grid[slots] = codecs.decode(src.reshape(-1), enc).reshape(-1, L)
        return
    # Mixed lengths: one decode, one scatter by sample index.
    sel = np.flatnonzero(use)
    lens = nbytes[sel] // bps
    span = np.repeat(starts[sel] - np.concatenate(([0], np.cumsum(nbytes[sel])[:-1])), nbytes[sel])
    pcm = codecs.decode(payload[span + np.arange(span.size)], enc)
    flat_dest = np.repeat(dest[sel] - np.concatenate(([0], np.cumsum(lens)[:-1])), lens) + np.arange(pcm.size)
    rows_of = np.repeat(track[sel].astype(np.int64), lens)
    out[rows_of, flat_dest] = pcm


def render(plan_: Plan, frames: FrameTable, raw: np.ndarray) -> Recording:
    """Decode in-memory payloads into a :class:`Recording` following ``plan_``.

    Parameters
    ----------
    plan_ : Plan
    frames : FrameTable
        The frames the plan was made from.
    raw : np.ndarray of uint8
        Their payloads joined in order.
    """
    out = np.zeros((2, plan_.n_samples), np.int16)
    offsets = np.concatenate(([0], np.cumsum(frames.nbytes)))
    for lo in range(0, len(frames), _BATCH):
        hi = min(lo + _BATCH, len(frames))
        rows = np.arange(lo, hi)
        render_batch(out, plan_, rows, frames.track[lo:hi], raw[offsets[lo] : offsets[hi]], frames.nbytes[lo:hi])
    return recording_from(plan_, out)


def recording_from(plan_: Plan, audio: np.ndarray) -> Recording:
    """The :class:`Recording` of a rendered plan."""
    return Recording(audio, plan_.sample_rate, plan_.encoding, plan_.tracks, plan_.reports)


def assemble(
    frames: FrameTable,
    raw: np.ndarray,
    encoding: str,
    sample_rate: int,
    *,
    bad_frames: dict[str, int] | None = None,
) -> Recording:
    """Order, dedupe, gap-fill and align in-memory media frames.

    Parameters
    ----------
    frames : FrameTable
        The stream's media frames in arrival order.
    raw : np.ndarray of uint8
        Their payload (codec) bytes joined in order.
    encoding : str
        ``start.media_format.encoding`` (``"PCMU"``, ``"PCMA"`` or ``"L16"``).
    sample_rate : int
        ``start.media_format.sample_rate``; the output's rate.
    bad_frames : dict of str to int, optional
        See :func:`plan`.

    Returns
    -------
    Recording
        ``audio`` is int16 of shape (2, n): ``[inbound, outbound]``.

    Examples
    --------
    >>> f, raw = FrameTable.from_media([Media("inbound", b"\\x80" * 2, chunk=3),
    ...                                 Media("inbound", b"\\x80" * 2, chunk=1)])
    >>> rec = assemble(f, raw, "PCMU", 8000)
    >>> rec.inbound.tolist(), rec.reports["inbound"].gaps
    ([32124, 32124, 0, 0, 32124, 32124], ((0.00025, 0.25),))
    """
    return render(plan(frames, encoding, sample_rate, bad_frames=bad_frames), frames, raw)


def assemble_events(events: Iterable[object], encoding: str, sample_rate: int) -> Recording:
    """Assemble the ``Media`` events among ``events`` (others are ignored).

    Examples
    --------
    >>> rec = assemble_events([Media("outbound", b"\\xff", chunk=1)], "PCMU", 8000)
    >>> rec.tracks, rec.audio.shape
    (('outbound',), (2, 1))
    """
    frames, raw = FrameTable.from_media(e for e in events if isinstance(e, Media))
    return assemble(frames, raw, encoding, sample_rate)
