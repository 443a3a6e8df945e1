"""Where every frame goes: :func:`plan` (the rules are in :mod:`telnyx_audio.model`)."""

from __future__ import annotations

import numpy as np

from telnyx_audio import codecs
from telnyx_audio.model.placement import Placed, place_track, silence_budget
from telnyx_audio.model.events import TRACKS
from telnyx_audio.model.recording import FrameTable, Plan, TrackReport

_MAX_RATE = 192_000


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
    >>> from telnyx_audio.model.events import Media
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
    info = codecs.REGISTRY.get(encoding)
    clock = info.rtp_clock if info is not None else None  # G.722's 8 kHz, Opus's 48 kHz timestamps
    placed: dict[str, Placed] = {}
    for name, rows in zip(TRACKS, track_rows):
        unplaced = int(bad_frames.get(name, 0))
        if rows.size or unplaced:
            placed[name] = place_track(frames, rows, int(sample_rate), bps, unplaced, max_gap, budget, clock)

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
        usual = p.report_args["samples_per_frame"]
        if p.short and p.by_timestamps:
            warnings.append(f"{name}: {p.short} frames shorter than the usual {usual} samples: placed by their"
                            " timestamps, the rest of each frame's time left as silence (counted in gaps)")
        elif p.short and samples is None and p.report_args["timestamp_unit"] is None:  # G.711/L16: one length
            warnings.append(f"{name}: {p.short} frames shorter than the usual {usual} samples: the audio after each"
                            " follows it directly (no timestamps to place it by), so later audio comes early")
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
