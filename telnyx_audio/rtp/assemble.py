"""Datagrams to recordings: RTP packets placed on one timeline, DTMF and RTP statistics.

Pure: no I/O. Forks (:mod:`telnyx_audio.forks`) and packet captures hand it datagrams
with their arrival times (:class:`~telnyx_audio.rtp.datagrams.Records`). Per track (``rx`` is
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

from telnyx_audio.rtp import packet as rtp
from telnyx_audio.model.capture import BadLine, Capture, CaptureReport
from telnyx_audio.errors import CaptureError, UnsupportedEncodingError
from telnyx_audio.rtp.render import comfort_noise, render_audio
from telnyx_audio.rtp.sources import Source, align, cap_timeline, keep_first_source, place_source
from telnyx_audio.rtp.datagrams import Records
from telnyx_audio.model.events import TRACKS, Dtmf, MediaFormat
from telnyx_audio.model.recording import MAX_LISTED, Recording, TrackReport

__all__ = ["DtmfDigit", "RtpStats", "ForkCaptureReport", "assemble_fork", "capture_from_records"]

_MAX_EXAMPLES = 20
#: Sources (SSRCs) a track keeps at most; a call has a few (one per re-INVITE or transfer).
MAX_SOURCES = 32
#: The silence a call may hold whatever its audio (seconds); beyond it, 10x its audio.
_SILENCE_FLOOR_S = 60


@dataclass(frozen=True)
class DtmfDigit:
    """One RFC 4733 DTMF event: the digit, its track, start and duration on the timeline.

    Attributes
    ----------
    digit : str
        ``"0"``-``"9"``, ``"*"``, ``"#"`` or ``"A"``-``"D"``.
    track : str
        ``"inbound"`` or ``"outbound"``.
    start_s, duration_s : float
        Where the tone starts on the call's timeline, and how long it lasts, in seconds.
    volume_dbm0 : int
        The tone's power in dBm0 (the event's volume field, sent as 0 to -63).
    ended : bool
        An end packet arrived (False: the tone was cut off, its duration is the last seen).
    """

    digit: str
    track: str
    start_s: float
    duration_s: float
    volume_dbm0: int
    ended: bool

    def as_dict(self) -> dict[str, Any]:
        """A JSON-able dict.

        Returns
        -------
        dict of str to object
            The fields by name.
        """
        return dict(vars(self))


@dataclass(frozen=True)
class RtpStats:
    """RTP statistics of one track (all its streams), as Wireshark's RTP Stream Analysis
    defines them (:mod:`telnyx_audio.rtp.stats`), and what the toolkit adds.

    Wireshark's figures, per stream (5-tuple and SSRC) then combined over the track:
    ``packets`` RTP packets received; ``expected`` from the first and last sequence numbers
    and the wraps between; ``lost`` = expected - packets (so duplicates offset losses);
    ``sequence_errors`` packets whose sequence number was not the one expected;
    ``min/mean/max_delta_ms`` time between packets; ``min/mean/max_jitter_ms`` the RFC 3550
    running estimate with the codec's RTP clock (telephone-event excluded); ``max_skew_ms``
    nominal minus arrival time at its largest; ``clock_drift_ms`` the drift of the sender's
    clock over the stream. ``streams`` holds the same figures per stream.

    The toolkit's own: ``jitter_ms`` the RFC 3550 6.4.1 estimate after the last packet;
    ``missing`` sequence numbers never received (RFC 3550 appendix A.3: expected from the
    extended span minus the distinct numbers received); ``duplicated`` repeats of a sequence
    number; ``reordered`` packets that arrived after a later one; ``outliers`` packets with
    a stray sequence number (RFC 3550 appendix A.1), dropped from the audio; ``malformed``
    datagrams that are not RTP; ``payload_types`` packets per type;
    ``comfort_noise_packets``, ``dtmf_packets`` and ``unusable_packets`` kept packets by kind;
    ``sources_left_out`` SSRCs beyond the :data:`MAX_SOURCES` a track keeps (those with the
    fewest packets).

    Attributes
    ----------
    track : str
        ``"inbound"`` or ``"outbound"``.
    packets, expected, lost, sequence_errors : int
        Wireshark's counts, as above.
    min_delta_ms, mean_delta_ms, max_delta_ms : float
        Time between packets, in milliseconds.
    min_jitter_ms, mean_jitter_ms, max_jitter_ms : float
        Wireshark's running jitter, in milliseconds.
    max_skew_ms, clock_drift_ms : float
        Largest skew, and the sender clock's drift over the stream, in milliseconds.
    jitter_ms : float
        The RFC 3550 jitter after the last packet, in milliseconds.
    missing, duplicated, reordered, outliers, malformed : int
        The toolkit's counts, as above.
    ssrcs : tuple of str
        The track's synchronisation sources, as hex.
    payload_types : dict of str to int
        Packets per payload type.
    comfort_noise_packets, dtmf_packets, unusable_packets : int
        Kept packets by kind.
    sources_left_out : int
        SSRCs beyond the ones a track keeps.
    streams : tuple of dict
        The same figures per stream (5-tuple and SSRC).
    """

    track: str
    packets: int
    expected: int
    lost: int
    sequence_errors: int
    min_delta_ms: float
    mean_delta_ms: float
    max_delta_ms: float
    min_jitter_ms: float
    mean_jitter_ms: float
    max_jitter_ms: float
    max_skew_ms: float
    clock_drift_ms: float
    jitter_ms: float
    missing: int
    duplicated: int
    reordered: int
    malformed: int
    ssrcs: tuple[str, ...]
    payload_types: dict[str, int]
    comfort_noise_packets: int
    dtmf_packets: int
    unusable_packets: int
    outliers: int = 0
    sources_left_out: int = 0
    streams: tuple[dict[str, Any], ...] = ()

    def as_dict(self) -> dict[str, Any]:
        """A JSON-able dict.

        Returns
        -------
        dict of str to object
            The fields by name; ``ssrcs`` a list, ``streams`` a list of dicts.
        """
        out = dict(vars(self))
        out["ssrcs"] = list(self.ssrcs)
        out["payload_types"] = dict(self.payload_types)
        out["streams"] = [dict(s) for s in self.streams]
        return out


@dataclass(frozen=True)
class ForkCaptureReport(CaptureReport):
    """A :class:`~telnyx_audio.model.CaptureReport` with what only RTP tells.

    ``lines`` counts datagrams (records), ``bad_lines`` the malformed ones.

    Attributes
    ----------
    lines : int
        Datagrams (records) in the capture.
    bad_lines : int
        Malformed datagrams.
    bad_examples : tuple of BadLine
        The first of them, with why each was unusable.
    events : dict of str to int
        Packets by kind.
    warnings : tuple of str
        Every guess and surprise met while reading.
    tracks : dict of str to TrackReport
        The report of each track, by name.
    rtp : dict of str to RtpStats
        The RTP statistics of each track, by name.
    dtmf_events : tuple of DtmfDigit
        The RFC 4733 DTMF events, in order.
    truncated_bytes : int
        Bytes of a torn last record, ignored.
    """

    rtp: dict[str, RtpStats] = field(default_factory=dict)
    dtmf_events: tuple[DtmfDigit, ...] = ()
    truncated_bytes: int = 0

    def as_dict(self) -> dict[str, Any]:
        """A JSON-able dict (part of ``summary.json``), with ``rtp`` and ``dtmf_events``.

        Returns
        -------
        dict of str to object
            :meth:`CaptureReport.as_dict <telnyx_audio.model.CaptureReport.as_dict>`'s keys,
            ``source_kind`` (``"fork"``), ``rtp``, the first ``dtmf_events`` (with
            ``dtmf_events_not_listed``) and ``truncated_bytes``.
        """
        out = super().as_dict()
        out["source_kind"] = "fork"
        out["rtp"] = {name: s.as_dict() for name, s in self.rtp.items()}
        out["dtmf_events"] = [d.as_dict() for d in self.dtmf_events[:MAX_LISTED]]
        out["dtmf_events_not_listed"] = max(len(self.dtmf_events) - MAX_LISTED, 0)
        out["truncated_bytes"] = self.truncated_bytes
        return out


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
    layout: dict[str, Any] | None = None,
) -> tuple[Recording, ForkCaptureReport, tuple[Dtmf, ...]]:
    """Place a fork capture's RTP packets on one timeline and decode them.

    Parameters
    ----------
    records : Records
        From :func:`telnyx_audio.forks.read_records`.
    payload_types : dict or list of str, optional
        Dynamic payload types, ``{96: "OPUS/48000"}`` or ``["96=OPUS/48000"]``; over those
        stored in the capture's header, over the static ones.
    media_format : MediaFormat, optional
        How to decode dynamic types no map names (telephone-event is still detected).
    max_gap_s : float
        Longest silence one timestamp jump is allowed to ask for; longer jumps are cut to it
        (a corrupt or restarted timestamp, not silence worth storing).
    layout : dict, optional
        Filled with where every packet went, for redaction (:mod:`telnyx_audio.rtp.redact`):
        ``cols`` (the parsed packets), ``kind`` (per packet: 0 unusable, 1 audio, 2 CN,
        3 telephone-event), ``placed`` (per track: ``rows``, ``pos``, ``kind``),
        ``samples_of`` (per track, samples of each placed audio packet), ``main``,
        ``rate``, ``digits`` (the RFC 4733 events).

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
    ptmap = rtp.payload_type_map()
    for key, value in stored.items():  # each entry on its own: one bad one spoils no other
        try:
            ptmap.update(rtp.payload_type_map({int(key): value}))
        except (ValueError, TypeError) as exc:
            warnings.append(f"payload type {str(key)[:20]!r} in the header ignored: {exc}")
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

    # Each audio packet's length in clock ticks, from its payload (never from the sender's
    # timestamps): what silence is measured against.
    ticks = np.zeros(len(records), np.int64)
    audio_rows = np.flatnonzero(kind == 1)
    if audio_rows.size:
        if info.stateful:
            from telnyx_audio.codecs.stream import frame_samples

            smp = frame_samples(main.encoding, main.clock_rate, records.buf, cols.payload_offset[audio_rows],
                                cols.payload_length[audio_rows])
        else:
            from telnyx_audio.codecs.g711 import bytes_per_sample

            smp = cols.payload_length[audio_rows] // bytes_per_sample(main.encoding)
        ticks[audio_rows] = np.rint(np.maximum(smp, 0) / ratio).astype(np.int64)
        del smp

    t0 = int(records.received_us.min()) if len(records) else 0
    wireshark = _wireshark(records, cols, good, kinds)
    stats: dict[str, dict[str, Any]] = {}
    raw: dict[int, list[Source]] = {}
    capped = {name: [0, 0.0] for name in TRACKS}  # jumps cut, ms left out
    for t, name in enumerate(TRACKS):
        in_track = records.track == t
        if not in_track.any():
            continue
        track_stats = dict(packets=int(in_track.sum()), expected=0, lost=0, duplicated=0, reordered=0,
                           jitter_ms=0.0, max_jitter_ms=0.0, malformed=int((in_track & ~good).sum()), ssrcs=[],
                           payload_types={}, comfort_noise_packets=0, dtmf_packets=0, unusable_packets=0,
                           outliers=0, sources_left_out=0)
        rows_t = np.flatnonzero(in_track & good)
        pts, n_pts = np.unique(cols.payload_type[rows_t], return_counts=True)
        track_stats["payload_types"] = {str(p): int(c) for p, c in zip(pts.tolist(), n_pts.tolist())}
        segs: list[Source] = []
        # Group by SSRC once (each group in arrival order), at most MAX_SOURCES a track.
        by_ssrc = np.argsort(cols.ssrc[rows_t], kind="stable")
        cuts = np.flatnonzero(np.diff(cols.ssrc[rows_t][by_ssrc])) + 1
        groups = np.split(rows_t[by_ssrc], cuts) if rows_t.size else []
        if len(groups) > MAX_SOURCES:
            sizes = np.array([g.size for g in groups])
            firsts = np.array([g[0] for g in groups])
            kept = np.lexsort((firsts, -sizes))[:MAX_SOURCES]
            left = np.setdiff1d(np.arange(len(groups)), kept)
            track_stats["sources_left_out"] = int(left.size)
            warnings.append(f"{name}: {len(groups)} SSRCs, more than a call has: the {MAX_SOURCES} with the most"
                            f" packets kept, {left.size} others ({int(sizes[left].sum())} packets) left out")
            groups = [groups[i] for i in kept.tolist()]
        groups.sort(key=lambda g: int(g[0]))
        for group in groups:
            ssrc = int(cols.ssrc[group[0]])
            src = place_source(group, cols, kind, records.received_us, t0, main.clock_rate, ratio, max_gap_s, ticks)
            for key in ("expected", "lost", "duplicated", "reordered", "outliers"):
                track_stats[key] += getattr(src, key)
            track_stats["ssrcs"].append(f"{ssrc:08x}")
            if src.jitter_ms is not None:
                track_stats["jitter_ms"] = src.jitter_ms
                track_stats["max_jitter_ms"] = max(track_stats["max_jitter_ms"], src.max_jitter_ms)
            if src.jumps_cut:
                capped[name][0] += src.jumps_cut
                capped[name][1] += src.cut_s * 1000.0
                warnings.append(f"{name} SSRC {ssrc:08x}: {src.jumps_cut} timestamp jumps cut, {src.cut_s:.1f} s"
                                f" of silence left out (at most {max_gap_s:g} s a jump, and max(60 s, 10x the audio)"
                                " in all: a restarted or corrupt timestamp is no silence worth storing)")
            segs.append(src)
        stats[name] = track_stats
        raw[t] = segs

    placed = align(raw, rate)
    lengths = {t: np.where(p["kind"] == 1, np.rint(ticks[p["rows"]] * ratio), 0).astype(np.int64)
               for t, p in placed.items()}
    over = keep_first_source(placed, lengths)
    if over:
        warnings.append(f"{over} audio packets of later SSRCs would have landed on the audio of their track's first"
                        " SSRC: left out (a source that joins a call never overwrites the one that began it)")
    budget = max(_SILENCE_FLOOR_S * rate, 10 * sum(int(v.sum()) for v in lengths.values()))
    cut = cap_timeline(placed, lengths, budget)
    if cut:
        warnings.append(f"{cut / rate:.1f} s of silence between sources left out: a call's silence is at most"
                        f" max({_SILENCE_FLOOR_S} s, 10x its audio), whatever its timestamps and receive times ask")

    encodings = {pt: audio_pts[pt].encoding for pt in usable}
    # Memory: what placing needed goes before the (2, n) output is made.
    del raw, lengths, ticks, audio_rows
    if stats:  # the last track's loop variables
        del segs, groups, rows_t, by_ssrc, in_track
        if "src" in locals():
            del src, group
    audio, samples_of, concealment = render_audio(records, cols, placed, main, encodings, warnings)
    cn_spans = comfort_noise(audio, records, cols, placed, samples_of)
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
        own = {k: st[k] for k in ("jitter_ms", "duplicated", "reordered", "malformed", "ssrcs", "payload_types",
                                  "comfort_noise_packets", "dtmf_packets", "unusable_packets", "outliers",
                                  "sources_left_out")}
        figures, per_stream = wireshark[t]
        if st["sources_left_out"]:  # a flood of SSRCs: list the streams of the sources kept (the figures count all)
            kept = set(st["ssrcs"])
            per_stream = [s for s in per_stream if s["ssrc"] in kept]
        rtp_stats[name] = RtpStats(track=name, missing=st["lost"], streams=tuple(per_stream),
                                   **{k: figures[k] for k in _WIRESHARK_KEYS}, **own)
        is_audio = p["kind"] == 1
        audio_pos = p["pos"] if is_audio.all() else p["pos"][is_audio]  # no copy in the usual case
        spans = [(audio_pos, audio_pos + samples_of[t]), cn_spans.get(t), dtmf_spans.get(t)]
        spans = [s for s in spans if s is not None]
        starts = np.concatenate([s[0] for s in spans]) if len(spans) > 1 else spans[0][0]
        ends = np.concatenate([s[1] for s in spans]) if len(spans) > 1 else spans[0][1]
        del spans, audio_pos, is_audio
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
    if layout is not None:
        layout.update(cols=cols, kind=kind, placed=placed, samples_of=samples_of, main=main, rate=rate,
                      digits=tuple(dtmf))
    return recording, report, events


_WIRESHARK_KEYS = ("packets", "expected", "lost", "sequence_errors", "min_delta_ms", "mean_delta_ms", "max_delta_ms",
                   "min_jitter_ms", "mean_jitter_ms", "max_jitter_ms", "max_skew_ms", "clock_drift_ms")


def _wireshark(records: Records, cols: rtp.PacketColumns, good: np.ndarray,
               kinds: dict[int, rtp.PayloadType | None]) -> dict[int, tuple[dict[str, Any], list[dict[str, Any]]]]:
    """Wireshark's RTP Stream Analysis figures per track (:func:`telnyx_audio.rtp.stats.track_stats`).

    The clock of a payload type is Wireshark's: its table for static types; for a dynamic
    type, the clock of the map that names it (SDP, the fork's header, the user), none for
    telephone-event or a type no map names.
    """
    from telnyx_audio.rtp.stats import WIRESHARK_CLOCKS, track_stats

    clock_of = np.zeros(128, np.int64)
    for pt in range(128):
        if pt < 96:
            clock_of[pt] = WIRESHARK_CLOCKS.get(pt, 0)
        else:
            k = kinds.get(pt)
            clock_of[pt] = k.clock_rate if k is not None and k.encoding != "telephone-event" else 0
    arrival = records.received_ns if records.received_ns is not None else records.received_us * 1000
    out = {}
    for t in range(len(TRACKS)):
        rows = np.flatnonzero(good & (records.track == t))
        out[t] = track_stats(rows, arrival_ns=arrival, seq=cols.sequence_number, timestamp=cols.timestamp,
                             payload_type=cols.payload_type, marker=cols.marker, ssrc=cols.ssrc, clock_of=clock_of,
                             stream=records.stream, labels=records.stream_labels or None)
    return out


def _iso(us: float) -> str:
    when = _dt.datetime.fromtimestamp(us / 1e6, _dt.timezone.utc)
    return when.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _track_report(name: str, st: dict, starts: np.ndarray, ends: np.ndarray, samples: np.ndarray,
                  rate: int, concealment: Any = None, capped: list | None = None) -> TrackReport:
    """The WebSocket-style report of one track: holes between what packets cover are gaps."""
    gaps: list[tuple[float, float]] = []
    first = last = 0
    if starts.size:
        if (starts[1:] >= starts[:-1]).all():  # in order already (the usual case): no sort, no copies
            s, e = starts, ends
        else:
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


def capture_from_records(
    records: Records,
    *,
    path: str | os.PathLike[str],
    media_format: MediaFormat | Mapping[str, Any] | None = None,
    payload_types: Mapping[int, Any] | list[str] | None = None,
    layout: dict[str, Any] | None = None,
) -> Capture:
    """One :class:`~telnyx_audio.model.Capture` from datagrams with their arrival times.

    The capture has the same shape as a WebSocket one: ``recording`` ``(2, n)`` int16
    ``[inbound, outbound]``, ``summary()`` with the track reports and DTMF digits, plus
    ``report.rtp`` (per-track RTP statistics) and ``report.dtmf_events``. A codec this
    FFmpeg cannot decode gives the capture with ``error`` set and an empty recording, as for
    a WebSocket stream.

    Parameters
    ----------
    records : Records
        The datagrams, their tracks (0 inbound, 1 outbound) and arrival times; ``records.meta``
        gives the ids (``session_id``, ``call_control_id``, ``call_session_id``,
        ``custom_parameters``) and the payload-type map (``payload_types``).
    path : str or PathLike
        Where the datagrams came from, for the capture's ``path``.
    media_format : MediaFormat or dict, optional
        How to decode dynamic payload types nothing else names.
    payload_types : dict or list of str, optional
        ``{96: "OPUS/48000"}`` or ``["96=OPUS/48000"]``, over the map in ``records.meta``.
    layout : dict, optional
        Filled with where every packet went (see :func:`assemble_fork`).

    Returns
    -------
    Capture

    Examples
    --------
    >>> from telnyx_audio.rtp.packet import build_packet
    >>> pkts = [build_packet(bytes(160), payload_type=0, sequence_number=seq, timestamp=seq * 160, ssrc=7)
    ...         for seq in range(3)]
    >>> recs = Records.from_datagrams([0, 0, 0], [0, 20000, 40000], pkts)
    >>> cap = capture_from_records(recs, path="mem")
    >>> cap.media_format.encoding, cap.recording.audio.shape
    ('PCMU', (2, 480))
    """
    if isinstance(media_format, Mapping):
        media_format = MediaFormat(str(media_format.get("encoding")), int(media_format.get("sample_rate") or 8000))
    error = exception = None
    try:
        recording, report, events = assemble_fork(records, payload_types=payload_types, media_format=media_format,
                                                  layout=layout)
    except UnsupportedEncodingError as exc:  # e.g. no decoder for the codec in this FFmpeg
        # As for a WebSocket stream: the capture with its error and an empty recording.
        error, exception = str(exc), exc
        recording = Recording(np.zeros((2, 0), np.int16), 8000, str(exc.encoding), (), {})
        report = ForkCaptureReport(lines=len(records), bad_lines=0, bad_examples=(), events={},
                                   warnings=tuple(records.problems), tracks={},
                                   truncated_bytes=records.truncated_bytes)
        events = ()
    meta = records.meta
    return Capture(
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
        error=error,
        exception=exception,
    )
