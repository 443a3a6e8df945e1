"""Fork captures to recordings: RTP packets placed on one timeline, DTMF and RTP statistics.

Pure (no I/O but reading the file in :func:`read_fork_captures`). Per track (``rx`` is
inbound, ``tx`` outbound), per SSRC in order of first arrival:

1. Sequence numbers and timestamps are extended past their wrap (in arrival order).
2. Packets are ordered by extended sequence number; a repeated number keeps the first
   arrival (counted as duplicated); one arriving after a later number is reordered.
3. Audio is placed by RTP timestamp (x2 for G.722, whose clock is 8 kHz for 16 kHz audio),
   so lost packets, DTMF events and comfort noise keep the later audio at its true time.
   Packets of any size are placed the same way.
4. Each SSRC's timestamps are anchored on the receive clock: its offset is the smallest
   ``arrival - timestamp`` over its first packets (the least-delayed packet). That puts
   ``rx`` and ``tx`` on one timeline (to the millisecond: arrival times carry jitter), and
   continues a track across an SSRC change (a re-INVITE, a transfer) where the new source
   began, never over the old one's audio.
5. Comfort noise (PT 13, RFC 3389) fills its span with noise at the signalled level and is
   never decoded as audio; RFC 4733 events become one DTMF digit per event (the packets
   sharing its timestamp), however many end packets repeat it.

RTP statistics per track: packets lost (expected from the sequence span minus received),
reordered, duplicated, and RFC 3550 section 6.4.1 interarrival jitter in ms.
"""

from __future__ import annotations

import datetime as _dt
import os
from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np
from numpy.lib.stride_tricks import as_strided, sliding_window_view

from telnyx_audio import rtp
from telnyx_audio.capture import BadLine, Capture, CaptureReport
from telnyx_audio.errors import CaptureError
from telnyx_audio.fork.capturefile import Records, read_records
from telnyx_audio.protocol import TRACKS, Dtmf, MediaFormat
from telnyx_audio.recording import Recording, TrackReport

__all__ = ["DtmfDigit", "RtpStats", "ForkCaptureReport", "assemble_fork", "read_fork_captures", "read_fork_capture"]

_ANCHOR_PACKETS = 250  # first packets of an SSRC whose least delay anchors it (5 s at 20 ms)
_MAX_EXAMPLES = 20
_BATCH = 1 << 16


@dataclass(frozen=True)
class DtmfDigit:
    """One RFC 4733 DTMF event: the digit, its track, start and duration on the timeline."""

    digit: str
    track: str
    start_s: float
    duration_s: float
    volume_dbm0: int
    ended: bool

    def as_dict(self) -> dict[str, Any]:
        """A JSON-able dict."""
        return dict(vars(self))


@dataclass(frozen=True)
class RtpStats:
    """RTP statistics of one track (all its SSRCs).

    ``lost`` is expected minus received (distinct) packets, RFC 3550 appendix A.3, per SSRC
    summed; ``jitter_ms`` is the RFC 3550 6.4.1 estimate after the last packet (of the last
    SSRC), ``max_jitter_ms`` its largest value along the way.
    """

    track: str
    packets: int
    expected: int
    lost: int
    duplicated: int
    reordered: int
    jitter_ms: float
    max_jitter_ms: float
    malformed: int
    ssrcs: tuple[str, ...]
    payload_types: dict[str, int]
    comfort_noise_packets: int
    dtmf_packets: int
    unusable_packets: int

    def as_dict(self) -> dict[str, Any]:
        """A JSON-able dict."""
        out = dict(vars(self))
        out["ssrcs"] = list(self.ssrcs)
        out["payload_types"] = dict(self.payload_types)
        return out


@dataclass(frozen=True)
class ForkCaptureReport(CaptureReport):
    """A :class:`~telnyx_audio.capture.CaptureReport` with what only RTP tells.

    ``lines`` counts datagrams (records), ``bad_lines`` the malformed ones.
    """

    rtp: dict[str, RtpStats] = field(default_factory=dict)
    dtmf_events: tuple[DtmfDigit, ...] = ()
    truncated_bytes: int = 0

    def as_dict(self) -> dict[str, Any]:
        """A JSON-able dict (part of ``summary.json``), with ``rtp`` and ``dtmf_events``."""
        out = super().as_dict()
        out["source_kind"] = "fork"
        out["rtp"] = {name: s.as_dict() for name, s in self.rtp.items()}
        out["dtmf_events"] = [d.as_dict() for d in self.dtmf_events]
        out["truncated_bytes"] = self.truncated_bytes
        return out


@dataclass
class _Track:
    """Per-track results gathered while placing."""

    rows: list[np.ndarray] = field(default_factory=list)  # kept audio/CN/event rows
    pos: list[np.ndarray] = field(default_factory=list)
    stats: dict[str, Any] = field(default_factory=dict)
    ends: int = 0


def _kinds(cols: rtp.PacketColumns, records: Records, good: np.ndarray, ptmap: dict[int, rtp.PayloadType],
           fallback: MediaFormat | None, warnings: list[str]) -> dict[int, rtp.PayloadType | None]:
    """What each payload type in the capture is; None for types that cannot be used."""
    kinds: dict[int, rtp.PayloadType | None] = {}
    for pt in np.unique(cols.payload_type[good]).tolist():
        if pt in ptmap:
            kinds[pt] = ptmap[pt]
            continue
        sel = np.flatnonzero(good & (cols.payload_type == pt))
        off, n = cols.payload_offset[sel], cols.payload_length[sel]
        head = records.buf[np.minimum(off[:, None] + np.arange(4), records.buf.size - 1)]
        if rtp.looks_like_telephone_event(head, n):
            kinds[pt] = rtp.PayloadType("telephone-event", 0)  # clock: the audio's
            warnings.append(f"payload type {pt} is not in the map: taken as telephone-event (RFC 4733) from its shape")
        elif fallback is not None:
            from telnyx_audio.codecs import REGISTRY, normalize_encoding

            enc = normalize_encoding(fallback.encoding)
            clock = REGISTRY[enc].rtp_clock or fallback.sample_rate
            kinds[pt] = rtp.PayloadType(enc, int(clock))
            warnings.append(f"payload type {pt} is not in the map: decoded as {enc}/{clock} (media_format given)")
        else:
            kinds[pt] = None
            warnings.append(f"payload type {pt} is not in the map and is not telephone-event: {sel.size} packets"
                            " skipped (pass payload_types={pt: 'ENCODING/CLOCK'} or --payload-type PT=ENCODING/CLOCK)")
    return kinds


def assemble_fork(
    records: Records,
    *,
    payload_types: Mapping[int, Any] | list[str] | None = None,
    media_format: MediaFormat | None = None,
    max_gap_s: float = 600.0,
) -> tuple[Recording, ForkCaptureReport, tuple[Dtmf, ...]]:
    """Place a fork capture's RTP packets on one timeline and decode them.

    Parameters
    ----------
    records : Records
        From :func:`telnyx_audio.fork.read_records`.
    payload_types : dict or list of str, optional
        Dynamic payload types, ``{96: "OPUS/48000"}`` or ``["96=OPUS/48000"]``; over those
        stored in the capture's header, over the static ones.
    media_format : MediaFormat, optional
        How to decode dynamic types no map names (telephone-event is still detected).
    max_gap_s : float
        Longest silence one timestamp jump is allowed to ask for; longer jumps are cut to it
        (a corrupt or restarted timestamp, not silence worth storing).

    Returns
    -------
    (Recording, ForkCaptureReport, tuple of Dtmf)
        ``recording.audio`` is int16 of shape (2, n), ``[inbound, outbound]``.
    """
    from telnyx_audio.codecs import REGISTRY

    warnings: list[str] = list(records.problems)
    if records.truncated_bytes:
        warnings.append(f"the last record is torn ({records.truncated_bytes} bytes): ignored")
    stored = records.meta.get("payload_types") if isinstance(records.meta.get("payload_types"), dict) else {}
    try:
        ptmap = rtp.payload_type_map({int(k): v for k, v in stored.items()})
    except (ValueError, TypeError) as exc:
        warnings.append(f"payload types in the header ignored: {exc}")
        ptmap = rtp.payload_type_map()
    given = rtp.payload_type_map(payload_types)  # static types under the caller's: keep the header's
    ptmap.update({pt: k for pt, k in given.items() if rtp.STATIC_PAYLOAD_TYPES.get(pt) != k})
    cols = rtp.parse_packets(records.buf, records.offset, records.length)
    good = cols.reason == 0
    kinds = _kinds(cols, records, good, ptmap, media_format, warnings)

    # The call's audio codec: the most used audio payload type.
    audio_pts = {pt: k for pt, k in kinds.items() if k is not None and k.encoding in REGISTRY}
    counts = {pt: int((good & (cols.payload_type == pt)).sum()) for pt in audio_pts}
    if counts:
        main_pt = max(counts, key=lambda p: counts[p])
        main = audio_pts[main_pt]
    else:
        main = rtp.PayloadType("PCMU", 8000)
        if good.any():
            warnings.append("no audio packets: an empty recording")
    info = REGISTRY[main.encoding]
    rate = info.rate(main.clock_rate)
    ratio = rate / main.clock_rate  # audio samples per RTP clock tick
    # Another audio type joins the track only when it decodes the same way (PCMU <-> PCMA).
    g711 = {"PCMU", "PCMA"}
    usable = {pt for pt, k in audio_pts.items() if k.clock_rate == main.clock_rate
              and (k.encoding == main.encoding or {k.encoding, main.encoding} <= g711)}
    for pt in sorted(set(audio_pts) - usable):
        warnings.append(f"payload type {pt} ({audio_pts[pt]}) does not decode like the call's main type"
                        f" {main_pt} ({main}): its packets are skipped")
    kind_code = np.zeros(128, np.int8)  # 0 unusable, 1 audio, 2 CN, 3 telephone-event
    for pt, k in kinds.items():
        if pt in usable:
            kind_code[pt] = 1
        elif k is not None and k.encoding == "CN":
            kind_code[pt] = 2
        elif k is not None and k.encoding == "telephone-event":
            kind_code[pt] = 3
    kind = np.where(good, kind_code[cols.payload_type], 0)

    t0 = int(records.received_us.min()) if len(records) else 0
    arrival = (records.received_us - t0) * (rate / 1e6)  # in output samples
    max_gap = int(max_gap_s * rate)
    placed: dict[int, dict[str, np.ndarray]] = {}
    stats: dict[str, dict[str, Any]] = {}
    offsets: dict[int, list[tuple[np.ndarray, np.ndarray, np.ndarray]]] = {}
    raw: dict[int, list[tuple[np.ndarray, np.ndarray, np.ndarray, float]]] = {}
    capped = {name: [0, 0.0] for name in TRACKS}  # jumps cut, ms left out
    for t, name in enumerate(TRACKS):
        in_track = records.track == t
        if not in_track.any():
            continue
        track_stats = dict(packets=int(in_track.sum()), expected=0, lost=0, duplicated=0, reordered=0,
                           jitter_ms=0.0, max_jitter_ms=0.0, malformed=int((in_track & ~good).sum()), ssrcs=[],
                           payload_types={}, comfort_noise_packets=0, dtmf_packets=0, unusable_packets=0)
        rows_t = np.flatnonzero(in_track & good)
        pts, n_pts = np.unique(cols.payload_type[rows_t], return_counts=True)
        track_stats["payload_types"] = {str(p): int(c) for p, c in zip(pts.tolist(), n_pts.tolist())}
        segs: list[tuple[np.ndarray, np.ndarray, np.ndarray, float]] = []  # rows, place, kind, offset
        ssrc_vals, first = np.unique(cols.ssrc[rows_t], return_index=True)
        for ssrc in ssrc_vals[np.argsort(first)].tolist():
            r = rows_t[cols.ssrc[rows_t] == ssrc]  # arrival order
            seq = rtp.extend_sequence(cols.sequence_number[r])
            ts = rtp.extend_timestamp(cols.timestamp[r])
            order = np.argsort(seq, kind="stable")
            s_seq = seq[order]
            dup_sorted = np.zeros(r.size, bool)
            dup_sorted[1:] = s_seq[1:] == s_seq[:-1]
            keep = order[~dup_sorted]  # first arrivals, in sequence order
            first_arrival = np.ones(r.size, bool)
            first_arrival[order[dup_sorted]] = False
            arrived = seq[first_arrival]
            reordered = int((arrived[1:] < np.maximum.accumulate(arrived)[:-1]).sum()) if arrived.size > 1 else 0
            expected = int(s_seq[-1] - s_seq[0] + 1)
            track_stats["expected"] += expected
            track_stats["lost"] += expected - int(keep.size)
            track_stats["duplicated"] += int(dup_sorted.sum())
            track_stats["reordered"] += reordered
            track_stats["ssrcs"].append(f"{ssrc:08x}")
            # Jitter (RFC 3550 6.4.1) over first arrivals, events excluded (their timestamp is
            # the event's start, not when the packet was sampled).
            jit = first_arrival & (kind[r] != 3)
            if jit.sum() > 1:
                clock = main.clock_rate
                j = rtp.interarrival_jitter((records.received_us[r][jit] - t0) * (clock / 1e6), ts[jit])
                track_stats["jitter_ms"] = float(j[-1] * 1000 / clock)
                track_stats["max_jitter_ms"] = max(track_stats["max_jitter_ms"], float(j.max() * 1000 / clock))
            # Place by timestamp, relative to this SSRC's first packet in sequence order, with
            # the silence timestamp jumps ask for bounded.
            rel, n_cut, cut_ticks = _bound_jumps(ts[keep] - ts[keep][0], max_gap / ratio, 60 * main.clock_rate)
            if n_cut:
                capped[name][0] += n_cut
                capped[name][1] += cut_ticks * 1000.0 / main.clock_rate
                warnings.append(f"{name} SSRC {ssrc:08x}: {n_cut} timestamp jumps cut, {cut_ticks / main.clock_rate:.1f} s"
                                f" of silence left out (at most {max_gap_s:g} s a jump, and max(60 s, 10x the audio)"
                                " in all: a restarted or corrupt timestamp is no silence worth storing)")
            pos_rel = np.rint(rel * ratio).astype(np.int64)
            # Anchor on the receive clock: the least-delayed of the first packets (first
            # arrivals are exactly the kept packets).
            by_arrival = np.empty(r.size, np.int64)
            by_arrival[keep] = pos_rel
            first_keep = np.flatnonzero(first_arrival)[:_ANCHOR_PACKETS]
            anchor_pos = by_arrival[first_keep]
            offset = float(np.min(arrival[r][first_keep] - anchor_pos))
            segs.append((r[keep], pos_rel, kind[r[keep]], offset))
        stats[name] = track_stats
        raw[t] = segs

    # Arrival times carry network and scheduling jitter: tracks are aligned to the
    # millisecond (relative to the earliest), not to a sample the clock cannot vouch for.
    ms = rate / 1000
    firsts = [segs[0][3] + float(segs[0][1].min()) for segs in raw.values() if segs]
    base = min(firsts) if firsts else 0.0
    for t, segs in raw.items():
        prev_end = None
        out_segs = []
        for rows, pos_rel, k, offset in segs:
            start = offset + float(pos_rel.min())
            offset = base + round((start - base) / ms) * ms - float(pos_rel.min())
            if prev_end is not None and offset + pos_rel.min() < prev_end:
                offset = prev_end - float(pos_rel.min())  # a new source never over the old one
            pos = np.rint(offset + pos_rel).astype(np.int64)
            out_segs.append((rows, pos, k))
            # Where this source's audio ends: its last packet's place plus a usual packet.
            step = np.diff(pos[k == 1])
            prev_end = int(pos.max()) + (int(np.median(step)) if step.size else 0)
        offsets[t] = out_segs

    # One timeline for both tracks: shift so the earliest placed sample is 0.
    all_pos = [s[1] for segs in offsets.values() for s in segs if s[1].size]
    origin = int(min(p.min() for p in all_pos)) if all_pos else 0
    for t, segs in offsets.items():
        if not segs:  # only malformed datagrams on this track
            empty = np.empty(0, np.int64)
            placed[t] = {"rows": empty, "pos": empty, "kind": np.empty(0, np.int8)}
            continue
        rows = np.concatenate([s[0] for s in segs])
        pos = np.concatenate([s[1] for s in segs]) - origin
        k = np.concatenate([s[2] for s in segs])
        placed[t] = {"rows": rows, "pos": pos, "kind": k}

    encodings = {pt: audio_pts[pt].encoding for pt in usable}
    audio, samples_of, concealment = _render(records, cols, placed, main, encodings, info, rate, warnings)
    cn_spans = _comfort_noise(audio, records, cols, placed, samples_of)
    dtmf, dtmf_spans = _dtmf(records, cols, placed, main, ratio, rate, t0, stats)
    reports: dict[str, TrackReport] = {}
    rtp_stats: dict[str, RtpStats] = {}
    for t, name in enumerate(TRACKS):
        if name not in stats:
            continue
        p = placed[t]
        st = stats[name]
        st["comfort_noise_packets"] = int((p["kind"] == 2).sum())
        st["dtmf_packets"] = int((p["kind"] == 3).sum())
        st["unusable_packets"] = int((p["kind"] == 0).sum())
        st["ssrcs"] = tuple(st["ssrcs"])
        rtp_stats[name] = RtpStats(track=name, **st)
        is_audio = p["kind"] == 1
        spans = [(p["pos"][is_audio], p["pos"][is_audio] + samples_of[t]), cn_spans.get(t), dtmf_spans.get(t)]
        starts = np.concatenate([s[0] for s in spans if s is not None])
        ends = np.concatenate([s[1] for s in spans if s is not None])
        reports[name] = _track_report(name, st, starts, ends, samples_of[t], rate, concealment.get(t), capped[name])
    tracks = tuple(n for t, n in enumerate(TRACKS) if t in placed and (placed[t]["kind"] == 1).any())
    recording = Recording(audio, rate, main.encoding, tracks, reports)
    bad = np.flatnonzero(~good)
    examples = tuple(
        BadLine(int(i) + 1, rtp.REASONS[int(cols.reason[i])],
                records.buf[records.offset[i] : records.offset[i] + min(int(records.length[i]), 32)].tobytes().hex())
        for i in bad[:_MAX_EXAMPLES].tolist()
    )
    report = ForkCaptureReport(
        lines=len(records),
        bad_lines=int(bad.size),
        bad_examples=examples,
        events={"rtp": int(good.sum()), "media": int((kind == 1).sum()), "comfort_noise": int((kind == 2).sum()),
                "telephone_event": int((kind == 3).sum()), "dtmf": len(dtmf)},
        warnings=tuple(warnings),
        tracks=reports,
        rtp=rtp_stats,
        dtmf_events=tuple(dtmf),
        truncated_bytes=records.truncated_bytes,
    )
    events = tuple(
        Dtmf(d.digit, occurred_at=_iso(t0 + d.start_s * 1e6)) for d in sorted(dtmf, key=lambda d: d.start_s)
    )
    return recording, report, events


def _bound_jumps(rel: np.ndarray, max_jump: float, floor: float) -> tuple[np.ndarray, int, int]:
    """Bound the silence timestamp jumps ask for (all in RTP clock ticks, sequence order).

    A forward jump's silence (beyond the usual step between packets) is cut to ``max_jump``.
    A backward jump beyond ``max_jump`` first gives back what earlier cuts took (one packet
    with a corrupt timestamp: the next is where it belongs); otherwise it is a restarted
    timestamp, and the packets after it follow on. Then, if the silence still exceeds
    ``max(floor, 10x the audio)``, the longest silences are cut to one level so that it does
    not (water-filling: short gaps stay exact). Returns the new relative timestamps, how
    many jumps were cut and the ticks of silence left out.

    Examples
    --------
    >>> rel, n, left = _bound_jumps(np.array([0, 160, 10**9, 320, 480]), 8000, 16000)
    >>> rel.tolist(), n, left
    ([0, 160, 8320, 320, 480], 2, 0)
    """
    jumps = np.diff(rel).astype(np.int64)
    if jumps.size == 0:
        return rel, 0, 0
    forward = jumps[jumps > 0]
    step = int(np.median(forward)) if forward.size else 0
    new = jumps.copy()
    big = np.flatnonzero((jumps > step + max_jump) | (jumps < -max_jump))
    owed = 0  # ticks earlier cuts took that a backward jump may give back
    for i in big.tolist():  # a few corrupt or restarted timestamps, not one per packet
        if jumps[i] > 0:
            new[i] = step + int(max_jump)
            owed += int(jumps[i] - new[i])
        else:
            back = int(jumps[i]) + owed
            new[i] = min(back, step + int(max_jump)) if back >= -max_jump else step
            owed = 0
    left = owed
    silence = np.maximum(new - step, 0)
    budget = max(floor, 10 * step * rel.size)
    if silence.sum() > budget:
        # The level L with sum(min(silence, L)) == budget: with the k longest cut to L,
        # k * L + (the rest) == budget, for the k where L falls between the k-th and k+1-th.
        desc = np.sort(silence)[::-1].astype(np.float64)
        k = np.arange(1, desc.size + 1)
        levels = (budget - (desc.sum() - np.cumsum(desc))) / k
        below = np.concatenate((desc[1:], [0.0]))
        level = int(levels[np.argmax((levels <= desc) & (levels >= below))])
        trimmed = np.minimum(silence, level)
        left += int((silence - trimmed).sum())
        new = new - (silence - trimmed)
    cut = int((new != jumps).sum())
    return np.concatenate(([0], np.cumsum(new))).astype(np.int64), cut, left


def _iso(us: float) -> str:
    when = _dt.datetime.fromtimestamp(us / 1e6, _dt.timezone.utc)
    return when.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _track_report(name: str, st: dict, starts: np.ndarray, ends: np.ndarray, samples: np.ndarray,
                  rate: int, concealment: Any = None, capped: list | None = None) -> TrackReport:
    """The WebSocket-style report of one track: holes between what packets cover are gaps."""
    gaps: list[tuple[float, float]] = []
    first = last = 0
    if starts.size:
        order = np.argsort(starts, kind="stable")
        s, e = starts[order], ends[order]
        reach = np.maximum.accumulate(e)
        hole = np.flatnonzero(s[1:] > reach[:-1])
        gaps = [(float(reach[i] / rate), float((s[i + 1] - reach[i]) * 1000.0 / rate)) for i in hole.tolist()]
        first, last = int(s[0]), int(reach[-1])
    frame = int(np.bincount(samples).argmax()) if samples.size else 0
    return TrackReport(
        track=name,
        frames_received=st["packets"],
        frames_expected=st["expected"],
        duplicates=st["duplicated"],
        reordered=st["reordered"],
        gaps=tuple(gaps),
        gap_ms=float(sum(g[1] for g in gaps)),
        start_s=first / rate,
        duration_s=(last - first) / rate,
        samples_per_frame=frame,
        order_key="sequence_number",
        timestamp_unit="rtp",
        bad_frames=st["malformed"],
        unplaced=st["malformed"],  # not RTP: no sequence number, so no place and no loss
        gaps_capped=int(capped[0]) if capped else 0,
        capped_ms=float(capped[1]) if capped else 0.0,
        **(concealment.as_dict() if concealment is not None else {}),
    )


def _render(records: Records, cols: rtp.PacketColumns, placed: dict[int, dict[str, np.ndarray]],
            main: rtp.PayloadType, encodings: dict[int, str], info: Any, rate: int,
            warnings: list[str]) -> tuple[np.ndarray, dict[int, np.ndarray], dict[int, Any]]:
    """Decode every audio packet into a (2, n) int16 array at its place.

    Stateless codecs (G.711, L16): packets of one size are gathered as rows of a sliding
    window over the file and written as rows of a sliding window over the output: no
    per-sample index arrays. Stateful ones (G.722, OPUS, AMR-WB) go through
    :func:`telnyx_audio.codecs.stream.render`, as WebSocket frames do: one decoder per track
    in timeline order, gaps concealed by the decoder.

    Returns the audio, each track's samples per audio packet, and the stateful decoders'
    :class:`~telnyx_audio.codecs.stream.Concealment` per track.
    """
    from telnyx_audio.codecs import REGISTRY

    bps = 2 if main.encoding == "L16" else 1
    samples_of: dict[int, np.ndarray] = {}
    n = 0
    for t, p in placed.items():
        rows = p["rows"][p["kind"] == 1]
        off, nbytes = cols.payload_offset[rows], cols.payload_length[rows]
        if info.stateful:
            from telnyx_audio.codecs.stream import frame_samples

            samples_of[t] = frame_samples(main.encoding, main.clock_rate, records.buf, off, nbytes)
            bad = int((samples_of[t] < 0).sum())
            if bad:
                warnings.append(f"{TRACKS[t]}: {bad} {main.encoding} payloads are not {main.encoding} frames: concealed")
        else:
            samples_of[t] = nbytes // bps
        if rows.size:
            n = max(n, int((p["pos"][p["kind"] == 1] + np.maximum(samples_of[t], 0)).max()))
        other = p["kind"] != 1
        if other.any():
            n = max(n, int(p["pos"][other].max()) + 1)
    if info.stateful:
        from telnyx_audio.codecs.stream import render as render_stateful

        tracks = sorted(placed)
        audio_of = {t: placed[t]["kind"] == 1 for t in tracks}
        rows = np.concatenate([placed[t]["rows"][audio_of[t]] for t in tracks]) if tracks else np.empty(0, np.int64)
        track = np.concatenate([np.full(int(audio_of[t].sum()), t, np.int8) for t in tracks]) if tracks else rows
        samples = np.concatenate([samples_of[t] for t in tracks]) if tracks else rows
        dest = np.concatenate([placed[t]["pos"][audio_of[t]] for t in tracks]) if tracks else rows
        dest = np.where(samples >= 0, dest, -1)
        out, concealment = render_stateful(main.encoding, main.clock_rate, n, track, dest, np.maximum(samples, 0),
                                           records.buf, cols.payload_offset[rows], cols.payload_length[rows])
        for t in tracks:
            samples_of[t] = np.maximum(samples_of[t], 0)
        return out, samples_of, concealment
    out = np.zeros((2, n), np.int16)
    for t, p in placed.items():
        a = np.flatnonzero(p["kind"] == 1)
        if not a.size:
            continue
        rows, pos, lens = p["rows"][a], p["pos"][a], samples_of[t]
        pts = cols.payload_type[rows]
        for pt in np.unique(pts).tolist():
            decode = REGISTRY[encodings.get(pt, main.encoding)].stateless_decode
            same_pt = pts == pt
            for size in np.unique(lens[same_pt]).tolist():
                if size == 0:
                    continue
                sel = np.flatnonzero(same_pt & (lens == size))
                width = size * bps
                src = sliding_window_view(records.buf, width)
                row = out[t]
                dst = as_strided(row, shape=(row.size - size + 1, size), strides=(row.strides[0],) * 2)
                for lo in range(0, sel.size, _BATCH):
                    part = sel[lo : lo + _BATCH]
                    raw = src[cols.payload_offset[rows[part]]]
                    dst[pos[part]] = decode(raw.reshape(-1)).reshape(part.size, size)
    return out, samples_of, {}


def _comfort_noise(audio: np.ndarray, records: Records, cols: rtp.PacketColumns,
                   placed: dict[int, dict[str, np.ndarray]], samples_of: dict[int, np.ndarray]) -> dict[int, tuple]:
    """Fill each CN packet's span (to the track's next packet) with noise at its level.

    RFC 3389 section 3: the level byte is -dBov; 0 dBov is a full-scale square wave, so the
    noise's RMS is ``32767 * 10 ** (-level / 20)``. Deterministic (seeded by place).
    """
    spans: dict[int, tuple] = {}
    for t, p in placed.items():
        cn = np.flatnonzero(p["kind"] == 2)
        if not cn.size:
            continue
        audio_pos = p["pos"][p["kind"] == 1]
        audio_end = audio_pos + samples_of[t]
        others = np.sort(np.concatenate((audio_pos, p["pos"][p["kind"] != 1])))
        starts = p["pos"][cn]
        # The span ends where the next packet of the track (audio, CN or event) begins.
        nxt = np.searchsorted(others, starts, side="right")
        ends = np.where(nxt < others.size, others[np.minimum(nxt, others.size - 1)], starts)
        # Never over audio that covers the CN packet's own place.
        covered = np.zeros(starts.size, bool)
        if audio_pos.size:
            k = np.searchsorted(audio_pos, starts, side="right") - 1
            order = np.argsort(audio_pos)
            sp, se = audio_pos[order], audio_end[order]
            k = np.searchsorted(sp, starts, side="right") - 1
            covered = (k >= 0) & (se[np.maximum(k, 0)] > starts)
        ends = np.where(covered, starts, np.minimum(ends, audio.shape[1]))
        spans[t] = (starts, ends)
        off = cols.payload_offset[p["rows"][cn]]
        has = cols.payload_length[p["rows"][cn]] > 0
        level = np.where(has, records.buf[np.where(has, off, 0)] & 0x7F, 127)
        for s, e, lv in zip(starts.tolist(), ends.tolist(), level.tolist()):
            if e > s and lv < 127:
                rng = np.random.default_rng(s)
                noise = rng.standard_normal(e - s) * (32767 * 10 ** (-lv / 20))
                audio[t, s:e] = np.clip(np.rint(noise), -32768, 32767).astype(np.int16)
    return spans


def _dtmf(records: Records, cols: rtp.PacketColumns, placed: dict[int, dict[str, np.ndarray]],
          main: rtp.PayloadType, ratio: float, rate: int, t0: int, stats: dict) -> tuple[list[DtmfDigit], dict]:
    """One digit per RFC 4733 event: the packets of one SSRC sharing one timestamp."""
    digits: list[DtmfDigit] = []
    spans: dict[int, tuple] = {}
    for t, p in placed.items():
        ev = np.flatnonzero(p["kind"] == 3)
        if not ev.size:
            continue
        rows = p["rows"][ev]
        pos = p["pos"][ev]
        key = np.stack((cols.ssrc[rows], pos))
        _, group = np.unique(key, axis=1, return_inverse=True)
        group = group.reshape(-1)
        s_list, e_list = [], []
        for g in range(int(group.max()) + 1):
            members = rows[group == g]
            start = int(pos[group == g][0])
            payloads = [records.buf[o : o + 4].tobytes() for o in cols.payload_offset[members].tolist()]
            events = [e for e in map(rtp.parse_telephone_event, payloads) if e is not None]
            if not events:
                continue
            duration = max(e.duration for e in events)
            length = int(round(duration * ratio))
            digits.append(DtmfDigit(
                digit=events[0].digit, track=TRACKS[t], start_s=start / rate, duration_s=length / rate,
                volume_dbm0=-events[0].volume, ended=any(e.end for e in events)))
            s_list.append(start)
            e_list.append(start + length)
        spans[t] = (np.array(s_list, np.int64), np.array(e_list, np.int64))
    digits.sort(key=lambda d: (d.start_s, d.track))
    return digits, spans


def read_fork_captures(
    path: str | os.PathLike[str],
    *,
    media_format: MediaFormat | Mapping[str, Any] | None = None,
    payload_types: Mapping[int, Any] | list[str] | None = None,
) -> list[Capture]:
    """Read a fork capture into a one-element list of :class:`~telnyx_audio.capture.Capture`.

    The capture has the same shape as a WebSocket one: ``recording`` ``(2, n)`` int16
    ``[inbound, outbound]``, ``summary()`` with the track reports and DTMF digits, plus
    ``report.rtp`` (per-track RTP statistics) and ``report.dtmf_events``.

    Parameters
    ----------
    path : str or PathLike
        A file written by the fork receiver (``fork.rtpcap``).
    media_format : MediaFormat or dict, optional
        How to decode dynamic payload types nothing else names.
    payload_types : dict or list of str, optional
        ``{96: "OPUS/48000"}`` or ``["96=OPUS/48000"]``, over the map in the file's header.

    Raises
    ------
    CaptureError
        If the file cannot be read or is not a fork capture.
    """
    if isinstance(media_format, Mapping):
        media_format = MediaFormat(str(media_format.get("encoding")), int(media_format.get("sample_rate") or 8000))
    try:
        records = read_records(path)
    except IsADirectoryError as exc:
        raise CaptureError(f"{os.fspath(path)!r} is a directory, expected a capture file") from exc
    except OSError as exc:
        raise CaptureError(f"cannot read capture {os.fspath(path)!r}: {exc.strerror or exc}") from exc
    except ValueError as exc:
        raise CaptureError(str(exc)) from exc
    recording, report, events = assemble_fork(records, payload_types=payload_types, media_format=media_format)
    meta = records.meta
    return [Capture(
        path=os.fspath(path),
        stream_id=meta.get("session_id"),
        call_control_id=meta.get("call_control_id"),
        call_session_id=meta.get("call_session_id"),
        media_format=MediaFormat(recording.encoding, recording.sample_rate, 1),
        custom_parameters=dict(meta.get("custom_parameters") or {}),
        start=dict(meta),
        recording=recording,
        report=report,
        events=events,
    )]


def read_fork_capture(path: str | os.PathLike[str], **kwargs: Any) -> Capture:
    """The one :class:`~telnyx_audio.capture.Capture` of a fork capture; see :func:`read_fork_captures`."""
    return read_fork_captures(path, **kwargs)[0]
