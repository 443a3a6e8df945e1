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
from telnyx_audio._placement import Placed, place_track, silence_budget
from telnyx_audio.protocol import TRACKS, Media
from telnyx_audio.track import Track, audio_html

__all__ = ["FrameTable", "TrackReport", "Plan", "Recording", "plan", "render", "assemble", "assemble_events",
           "plan_stateful", "render_stateful"]

_MISSING = -1
_MAX_RATE = 192_000
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
        Payload size in codec bytes (after base64); -1 for a frame that arrived with an
        unusable payload (it keeps its place as silence, see :func:`plan`).
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
    were sent. ``bad_frames`` arrived but their payload could not be used (not base64):
    they keep their place as silence and are not gaps; ``unplaced`` of them had no usable
    counters either. ``gaps`` lists ``(start_s, duration_ms)`` of each filled gap on the
    shared timeline; ``gaps_capped`` counts gaps cut short by ``max_gap_s`` or by the
    silence budget, and ``capped_ms`` the silence left out (a jump in the counters that long
    is a corrupt or restarted counter, not silence worth filling). ``stray_bytes`` counts
    bytes past the last whole sample of a frame (an odd-length L16 payload), dropped.
    Stateful codecs (G722, OPUS, AMR-WB) fill gaps by concealment: ``concealed_frames``
    frames were made up by the decoder (``concealment`` says how), ``corrupt_frames`` of
    them in place of payloads it rejected, ``fec_frames`` recovered from in-band FEC.
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
    unplaced: int = 0
    stray_bytes: int = 0
    capped_ms: float = 0.0
    concealed_frames: int = 0
    corrupt_frames: int = 0
    fec_frames: int = 0
    concealment: str = ""

    @property
    def frames_missing(self) -> int:
        """Frames the ordering key says were sent but never arrived."""
        return self.frames_expected - (self.frames_received - self.duplicates - self.unplaced)

    def describe(self) -> str:
        """One line: ``received N of M expected (K duplicates)``, and what else happened.

        Examples
        --------
        >>> TrackReport("inbound", 10, 12, 1, 0, ((0.1, 40.0),), 40.0, 0.0, 0.24, 160, "chunk", "ms").describe()
        'inbound: received 10 of 12 expected (1 duplicates), 1 gaps (40 ms)'
        """
        text = (f"{self.track}: received {self.frames_received} of {self.frames_expected} expected"
                f" ({self.duplicates} duplicates), {len(self.gaps)} gaps ({self.gap_ms:.0f} ms)")
        extra = [f"{self.reordered} reordered" if self.reordered else "",
                 f"{self.bad_frames} bad frames" if self.bad_frames else "",
                 f"{self.stray_bytes} stray bytes" if self.stray_bytes else "",
                 f"{self.gaps_capped} gaps capped ({self.capped_ms / 1000:.1f} s left out)" if self.gaps_capped else "",
                 f"{self.concealed_frames} frames concealed ({self.concealment})" if self.concealed_frames else ""]
        return ", ".join([text, *(e for e in extra if e)])

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
            "capped_ms": self.capped_ms,
            "unplaced": self.unplaced,
            "stray_bytes": self.stray_bytes,
            "concealed_frames": self.concealed_frames,
            "corrupt_frames": self.corrupt_frames,
            "fec_frames": self.fec_frames,
            "concealment": self.concealment,
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
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class Recording:
    """One stream's audio on one timeline.

    Attributes
    ----------
    audio : np.ndarray of int16, shape (2, n)
        ``[inbound, outbound]``; a track that sent nothing is all zeros.
    sample_rate : int
        The audio's rate: ``start.media_format``'s, except G.722 and AMR-WB (16 kHz).
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
    def inbound(self) -> Track:
        """The inbound track, int16 of shape (n,), carrying ``sample_rate``."""
        return Track(self.audio[0], self.sample_rate)

    @property
    def outbound(self) -> Track:
        """The outbound track, int16 of shape (n,), carrying ``sample_rate``."""
        return Track(self.audio[1], self.sample_rate)

    def slice(self, start_s: float, end_s: float) -> "Recording":
        """The audio from ``start_s`` to ``end_s`` (seconds on the shared timeline), as a Recording.

        Track reports stay with the whole call, so a slice has none.

        Examples
        --------
        >>> rec = Recording(np.zeros((2, 8000), np.int16), 8000, "PCMU", ("inbound",))
        >>> rec.slice(0.25, 0.5).duration_s
        0.25
        """
        if not 0 <= start_s <= end_s:
            raise ValueError(f"slice needs 0 <= start_s <= end_s, got start_s={start_s!r}, end_s={end_s!r}")
        lo, hi = (min(int(round(t * self.sample_rate)), self.audio.shape[1]) for t in (start_s, end_s))
        return Recording(self.audio[:, lo:hi], self.sample_rate, self.encoding, self.tracks)

    def turn(self, k: int, analysis: object = None) -> "Recording":
        """The ``k``-th turn of the call (from :func:`telnyx_audio.analyze_call`), as a slice.

        Pass ``analysis`` (a :class:`~telnyx_audio.analysis.CallAnalysis` of this recording)
        to avoid measuring the call again.
        """
        from telnyx_audio.analysis import analyze_call

        turns = (analysis if analysis is not None else analyze_call(self)).turns
        if not -len(turns) <= k < len(turns):
            raise IndexError(f"turn {k} out of range: the call has {len(turns)} turns")
        row = turns.iloc[k]
        return self.slice(float(row["start_s"]), float(row["end_s"]))

    def _repr_html_(self) -> str:
        """An audio player (inbound left, outbound right) and a one-line summary, for Jupyter."""
        summary = f"{self.encoding} {self.sample_rate} Hz, {self.duration_s:.2f} s, tracks: {', '.join(self.tracks) or 'none'}"
        return audio_html(self.audio, self.sample_rate, summary)

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


def plan(
    frames: FrameTable,
    encoding: str,
    sample_rate: int,
    *,
    bad_frames: dict[str, int] | None = None,
    max_gap_s: float = 600.0,
    max_silence_s: float | None = None,
    samples: np.ndarray | None = None,
) -> Plan:
    """Decide where each frame goes: order, dedupe, gaps and the tracks' alignment.

    Parameters
    ----------
    frames : FrameTable
        The stream's media frames in arrival order. Frames with ``nbytes`` -1 arrived with
        an unusable payload: they keep their place as silence and count as bad, not as gaps.
    encoding : str
        ``start.media_format.encoding`` (``"PCMU"``, ``"PCMA"`` or ``"L16"``).
    sample_rate : int
        ``start.media_format.sample_rate`` (1 to 192,000 Hz).
    bad_frames : dict of str to int, optional
        Media messages per track that arrived unusable and without usable counters;
        counted in the reports.
    max_gap_s : float
        Longest silence one gap is filled with (10 minutes by default); longer jumps in
        the counters are capped and counted in ``gaps_capped``.
    max_silence_s : float, optional
        Most silence inserted on one track in all (gaps and its start offset). By default
        ``max(60 s, 10 x the audio received)``: a few corrupt counters cannot turn a
        small capture into gigabytes. What the caps leave out is in each report
        (``capped_ms``) and in ``Plan.warnings``.
    samples : np.ndarray of int64, shape (m,), optional
        Each frame's length in samples (-1: undecodable), for stateful codecs whose frame
        lengths are in their bytes (:func:`plan_stateful` reads them); by default
        ``nbytes`` over the encoding's bytes per sample.

    Returns
    -------
    Plan

    Examples
    --------
    >>> f = FrameTable.from_media([Media("inbound", b"\\xff" * 160, chunk=1),
    ...                            Media("inbound", b"\\xff" * 160, chunk=10**12)])[0]
    >>> p = plan(f, "PCMU", 8000)
    >>> p.n_samples / 8000, p.reports["inbound"].gaps_capped, p.warnings[0].split(",")[0]
    (60.04, 1, 'inbound: 1 gaps capped')
    """
    if not isinstance(sample_rate, (int, np.integer)) or isinstance(sample_rate, bool) or not 0 < sample_rate <= _MAX_RATE:
        raise ValueError(f"sample_rate must be a positive integer of at most {_MAX_RATE} Hz, got {sample_rate!r}")
    if samples is not None:  # lengths read off the payloads: place frames as if one byte a sample
        frames = FrameTable(frames.track, frames.chunk, frames.timestamp, frames.sequence_number,
                            np.where(frames.nbytes < 0, -1, samples))
        bps = 1
    else:
        bps = codecs.bytes_per_sample(encoding)
    bad_frames = bad_frames or {}
    max_gap = int(max_gap_s * sample_rate)
    track_rows = [np.flatnonzero(frames.track == index) for index in range(len(TRACKS))]
    received = max((int(np.maximum(frames.nbytes[r], 0).sum()) // bps for r in track_rows), default=0)
    budget = silence_budget(received, int(sample_rate), max_silence_s)
    placed: dict[str, Placed] = {}
    for name, rows in zip(TRACKS, track_rows):
        unplaced = int(bad_frames.get(name, 0))
        if rows.size or unplaced:
            placed[name] = place_track(frames, rows, int(sample_rate), bps, unplaced, max_gap, budget)

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
            # In frames first, as gaps are: a chunk of 2**53 must not overflow.
            offsets = {n: min(p.first_chunk - first, budget) * p.report_args["samples_per_frame"]
                       for n, p in live.items()}
    warnings: list[str] = []
    for name, p in placed.items():
        # The offset between tracks is silence too: it shares the track's budget.
        room = max(budget - (p.length - int(p.lens.sum())), 0)  # budget less the gaps' silence
        if offsets.get(name, 0) > room:
            p.capped += offsets[name] - room
            p.report_args["gaps_capped"] += 1
            offsets[name] = room
        if p.capped:
            warnings.append(f"{name}: {p.report_args['gaps_capped']} gaps capped, {p.capped / sample_rate:.2g} s of"
                            f" silence left out (at most {budget / sample_rate:.0f} s is inserted: max(60 s, 10x the"
                            " audio received); the counters jump further than any real call)")
    total = max((offsets.get(n, 0) + p.length for n, p in placed.items()), default=0)

    dest = np.full(len(frames), -1, np.int64)
    samples = np.maximum(frames.nbytes, 0) // bps
    reports: dict[str, TrackReport] = {}
    for name, p in placed.items():
        off = offsets.get(name, 0)
        dest[p.rows[p.good]] = p.pos[p.good] + off
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
            capped_ms=p.capped * 1000.0 / sample_rate,
            **p.report_args,
        )
    tracks = tuple(n for n in TRACKS if n in live)
    return Plan(total, dest, samples, reports, tracks, encoding, int(sample_rate), tuple(warnings))


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
    nbytes = np.maximum(nbytes, 0)  # -1: a frame without a usable payload (and no bytes here)
    enc, bps = plan_.encoding, codecs.bytes_per_sample(plan_.encoding)
    width = int(nbytes[use][0])
    L = width // bps
    starts = np.concatenate(([0], np.cumsum(nbytes)[:-1]))
    if L and width == L * bps and (nbytes[use] == width).all() and (dest[use] % L == 0).all():
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
    whole = lens * bps  # an odd-length L16 frame keeps its whole samples
    span = np.repeat(starts[sel] - np.concatenate(([0], np.cumsum(whole)[:-1])), whole)
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
    offsets = np.concatenate(([0], np.cumsum(np.maximum(frames.nbytes, 0))))
    for lo in range(0, len(frames), _BATCH):
        hi = min(lo + _BATCH, len(frames))
        rows = np.arange(lo, hi)
        render_batch(out, plan_, rows, frames.track[lo:hi], raw[offsets[lo] : offsets[hi]], frames.nbytes[lo:hi])
    return recording_from(plan_, out)


def plan_stateful(frames: FrameTable, raw: np.ndarray, encoding: str, sample_rate: int, **options) -> Plan:
    """:func:`plan` for a stateful codec (G722, OPUS, AMR-WB): frame lengths from the bytes.

    ``sample_rate`` is the rate Telnyx reported; the plan's is the decoded audio's
    (:meth:`telnyx_audio.codecs.CodecInfo.rate`: G.722 is 16 kHz even when 8000 is
    reported). ``raw`` holds the payloads joined in frame order (none for ``nbytes`` -1).
    """
    from telnyx_audio.codecs import stream

    info = codecs.codec_info(encoding)
    rate = info.rate(sample_rate)
    nbytes = np.maximum(frames.nbytes, 0)
    starts = np.concatenate(([0], np.cumsum(nbytes)[:-1])).astype(np.int64)
    samples = stream.frame_samples(info.name, rate, raw, starts, nbytes)
    return plan(frames, info.name, rate, samples=samples, **options)


def render_stateful(plan_: Plan, frames: FrameTable, raw: np.ndarray) -> Recording:
    """Decode a stateful codec's frames in plan (``chunk``) order, one decoder per track.

    Gaps are concealed by the decoder (Opus PLC/FEC, AMR-WB concealment; G.722 silence) so
    later audio stays at its true time; each report counts what was concealed.
    """
    from dataclasses import replace

    from telnyx_audio.codecs import stream

    nbytes = np.maximum(frames.nbytes, 0)
    starts = np.concatenate(([0], np.cumsum(nbytes)[:-1])).astype(np.int64)
    usual = {TRACKS.index(n): r.samples_per_frame for n, r in plan_.reports.items()}
    audio, done = stream.render(plan_.encoding, plan_.sample_rate, plan_.n_samples, frames.track, plan_.dest,
                                plan_.samples, raw, starts, nbytes, usual)
    reports = {n: replace(r, **done[TRACKS.index(n)].as_dict()) if TRACKS.index(n) in done else r
               for n, r in plan_.reports.items()}
    return Recording(audio, plan_.sample_rate, plan_.encoding, plan_.tracks, reports)


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
        ``start.media_format.encoding``: ``PCMU PCMA L16 G722 OPUS AMR-WB`` (any spelling
        :func:`telnyx_audio.codecs.normalize_encoding` takes).
    sample_rate : int
        ``start.media_format.sample_rate``; the output's rate, except that G.722 and
        AMR-WB are always 16 kHz audio (and OPUS decodes at the next libopus rate).
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
    info = codecs.codec_info(encoding)  # any spelling: "audio/x-mulaw" is PCMU
    encoding = info.name
    if info.stateful:  # G722, OPUS, AMR-WB: decoded in stream order
        return render_stateful(plan_stateful(frames, raw, encoding, sample_rate, bad_frames=bad_frames), frames, raw)
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
