"""The network side of a diagnosis: loss, burstiness and jitter per track, and what Telnyx reported.

Where the figures come from, best first:

- an RTP fork (``.rtpcap``): the packets' sequence numbers (network loss, G.107 burst ratio)
  and arrival times (RFC 3550 jitter, and three simulated de-jitter buffers, as VoIPmonitor
  reports them: fixed 50 ms, fixed 200 ms, adaptive up to 500 ms; the packets a buffer
  discards as late count as lost for it);
- a WebSocket stream: its frame counters (``chunk``/``sequence_number``): frames expected,
  frames missing and where the gaps are;
- Telnyx's ``call.hangup`` webhook: ``call_quality_stats`` per track (its MOS, packets,
  skipped packets, jitter), kept beside ours and used for the E-model only when the capture
  measured nothing (provenance ``reported``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np

from telnyx_audio.analysis.emodel import JitterBuffer, jitter_buffer, loss_stats

__all__ = ["TrackNetwork", "BUFFERS", "network_of", "telnyx_quality", "NETWORK_THRESHOLDS"]

TRACKS = ("inbound", "outbound")

#: The simulated de-jitter buffers: (name, kind, depth in ms). The E-model uses the adaptive one.
BUFFERS = (("fixed_50ms", "fixed", 50.0), ("fixed_200ms", "fixed", 200.0), ("adaptive_500ms", "adaptive", 500.0))

#: Thresholds of the network findings (percent of packets; ms).
NETWORK_THRESHOLDS: dict[str, float] = {
    "loss_warning_pct": 1.0,  # packets lost (network, or discarded late by the adaptive buffer): a warning ...
    "loss_problem_pct": 5.0,  # ... a problem (G.711 with PLC loses about 1 MOS point at 5 %)
    "jitter_warning_ms": 30.0,  # RFC 3550 interarrival jitter (largest along the call): a warning ...
    "jitter_problem_ms": 60.0,  # ... a problem
    "late_warning_pct": 1.0,  # packets a fixed 50 ms buffer discards as late: a jitter warning ...
    "late_problem_pct": 5.0,  # ... a problem
}


@dataclass(frozen=True)
class TrackNetwork:
    """What the capture shows of one track's network.

    Attributes
    ----------
    track : str
    source : {"rtp", "frames", ""}
        RTP sequence numbers and arrival times, the stream's frame counters, or nothing.
    n_expected, n_lost : int
        Packets (or frames) expected and never received.
    loss_pct, burst_ratio : float
        Network loss, percent, and G.107's burst ratio of it.
    effective_loss_pct, effective_burst_ratio : float
        With the adaptive jitter buffer's late discards (RTP only; else the network's).
    jitter_ms, max_jitter_ms : float
        RFC 3550 interarrival jitter (RTP only; NaN otherwise).
    buffer_delay_ms : float
        The adaptive buffer's mean delay (RTP only; NaN otherwise).
    buffers : dict
        Per simulated buffer (:data:`BUFFERS`): ``loss_pct``, ``late``, ``burst_ratio``, ``mean_delay_ms``.
    gaps : list of (start_s, end_s)
        Where audio is missing, on the recording's timeline.
    """

    track: str
    source: str
    n_expected: int = 0
    n_lost: int = 0
    loss_pct: float = 0.0
    burst_ratio: float = 1.0
    effective_loss_pct: float = 0.0
    effective_burst_ratio: float = 1.0
    jitter_ms: float = float("nan")
    max_jitter_ms: float = float("nan")
    buffer_delay_ms: float = float("nan")
    buffers: dict[str, dict[str, float]] = field(default_factory=dict)
    gaps: list[tuple[float, float]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe: NaN becomes None.

        Returns
        -------
        dict
            Figure name to value.
        """
        def clean(v: Any) -> Any:
            if isinstance(v, float):
                return round(v, 4) if np.isfinite(v) else None
            if isinstance(v, dict):
                return {k: clean(x) for k, x in v.items()}
            if isinstance(v, (list, tuple)):
                return [clean(x) for x in v]
            return v

        return {k: clean(v) for k, v in vars(self).items()}


def _gap_spans(report: Any) -> list[tuple[float, float]]:
    return [(float(s), float(s) + float(ms) / 1000.0) for s, ms in getattr(report, "gaps", ())]


def _frames_network(name: str, report: Any) -> TrackNetwork:
    """From a stream's frame counters: a loss sequence with each gap a run of lost frames."""
    expected = int(getattr(report, "frames_expected", 0))
    missing = max(int(getattr(report, "frames_missing", 0)), 0)
    gaps = _gap_spans(report)
    if expected <= 0:
        return TrackNetwork(name, "", gaps=gaps)
    duration = float(getattr(report, "duration_s", 0.0))
    frame_s = duration / expected if duration > 0 else 0.02
    lost = np.zeros(expected, bool)
    start = float(getattr(report, "start_s", 0.0))
    for a, b in gaps:  # one slice per gap
        i = int(round((a - start) / frame_s))
        k = max(1, int(round((b - a) / frame_s)))
        lost[max(i, 0) : max(i, 0) + k] = True
    if int(lost.sum()) != missing and missing > 0 and not gaps:
        lost[np.linspace(0, expected - 1, missing).astype(int)] = True  # counters without places: spread
    stats = loss_stats(lost) if lost.any() else {"loss_pct": 0.0, "burst_ratio": 1.0}
    loss_pct = 100.0 * missing / expected
    return TrackNetwork(name, "frames", expected, missing, loss_pct, stats["burst_ratio"], loss_pct,
                        stats["burst_ratio"], gaps=gaps)


def _rtp_packets(path: str, capture: Any = None) -> dict[int, dict[str, np.ndarray]] | None:
    """Per track (0 rx, 1 tx): the audio packets' arrival (s), extended sequence, timestamp, ssrc.

    A fork capture is read again for its datagrams; a packet capture's call (found by its key,
    the capture's ``stream_id``) too, as :func:`telnyx_audio.packets.calls.read_calls` gives it.
    """
    from telnyx_audio.rtp.packet import parse_packets

    if not path or not os.path.isfile(path):
        return None
    from telnyx_audio.forks.rtpcap import is_fork_capture, read_records

    if is_fork_capture(path):
        try:
            records = read_records(path)
        except (OSError, ValueError):
            return None
        buf, offset, length, track, arrival_us = (records.buf, records.offset, records.length, records.track,
                                                  records.received_us)
    elif (getattr(capture, "start", None) or {}).get("source") == "pcap":
        from telnyx_audio.errors import TelnyxAudioError
        from telnyx_audio.packets.calls import read_calls

        try:
            call = next((c for c in read_calls(path) if c.key == capture.stream_id), None)
        except (OSError, ValueError, TelnyxAudioError):
            return None
        if call is None:
            return None
        buf, offset, length, track, arrival_us = call.buf, call.offset, call.length, call.track, call.received_us
    else:
        return None
    cols = parse_packets(buf, offset, length)
    good = cols.reason == 0
    out = {}
    for t in (0, 1):
        rows = np.flatnonzero(good & (track == t))
        if not rows.size:
            continue
        pts, counts = np.unique(cols.payload_type[rows], return_counts=True)
        main = pts[np.argmax(counts)]  # the audio's type; RFC 4733 events and comfort noise are few
        rows = rows[cols.payload_type[rows] == main]
        out[t] = {"arrival": arrival_us[rows] / 1e6, "seq": cols.sequence_number[rows],
                  "ts": cols.timestamp[rows], "ssrc": cols.ssrc[rows]}
    return out


def _rtp_network(name: str, packets: Mapping[str, np.ndarray], clock: int, stats: Any, report: Any) -> TrackNetwork:
    """From RTP packets: loss by SSRC and simulated buffers."""
    from telnyx_audio.rtp.packet import extend_timestamp, validate_sequence

    lost_net: list[np.ndarray] = []
    lost_buf: dict[str, list[np.ndarray]] = {b[0]: [] for b in BUFFERS}
    results: dict[str, list[JitterBuffer]] = {b[0]: [] for b in BUFFERS}
    for ssrc in np.unique(packets["ssrc"]):
        rows = np.flatnonzero(packets["ssrc"] == ssrc)
        if rows.size < 2:
            continue
        seq, valid = validate_sequence(packets["seq"][rows])
        rows, seq = rows[valid], seq[valid]
        ts = extend_timestamp(packets["ts"][rows])
        arrival = packets["arrival"][rows]
        n_exp = int(seq.max() - seq.min() + 1)
        net = np.ones(n_exp, bool)
        net[seq - seq.min()] = False
        lost_net.append(net)
        for label, kind, depth in BUFFERS:
            jb = jitter_buffer(arrival, ts, clock, sequence=seq, kind=kind, depth_ms=depth)
            lost_buf[label].append(jb.lost)
            results[label].append(jb)
    if not lost_net:
        return TrackNetwork(name, "", gaps=_gap_spans(report))
    net = np.concatenate(lost_net)
    s = loss_stats(net)
    buffers = {}
    for label, _, _ in BUFFERS:
        lost = np.concatenate(lost_buf[label])
        b = loss_stats(lost)
        delays = [jb.mean_delay_ms for jb in results[label]]
        buffers[label] = {"loss_pct": b["loss_pct"], "late": int(sum(jb.n_late for jb in results[label])),
                          "burst_ratio": b["burst_ratio"], "mean_delay_ms": float(np.mean(delays))}
    adaptive = buffers["adaptive_500ms"]
    jitter = float(getattr(stats, "jitter_ms", np.nan)) if stats is not None else np.nan
    max_jitter = float(getattr(stats, "max_jitter_ms", np.nan)) if stats is not None else np.nan
    return TrackNetwork(name, "rtp", s["n_expected"], s["n_lost"], s["loss_pct"], s["burst_ratio"],
                        adaptive["loss_pct"], adaptive["burst_ratio"], jitter, max_jitter, adaptive["mean_delay_ms"],
                        buffers, _gap_spans(report))


def network_of(capture: Any, recording: Any) -> dict[str, TrackNetwork]:
    """Per track with audio: what the capture shows of its network (see the module docstring).

    Parameters
    ----------
    capture : Capture or None
        Its ``report`` (frame counters, RTP statistics) and ``path`` (a fork capture is read
        again for its packets' arrival times).
    recording : Recording
        Its ``reports`` when there is no capture.

    Returns
    -------
    dict of str to TrackNetwork

    Examples
    --------
    >>> from telnyx_audio.read import read_capture
    >>> cap = read_capture("data/example_call.jsonl")
    >>> net = network_of(cap, cap.recording)["inbound"]
    >>> net.source, net.n_lost, net.n_expected, net.loss_pct
    ('frames', 3, 400, 0.75)
    """
    reports = dict(getattr(getattr(capture, "report", None), "tracks", None) or getattr(recording, "reports", {}) or {})
    rtp_stats = getattr(getattr(capture, "report", None), "rtp", None)
    out: dict[str, TrackNetwork] = {}
    packets = None
    if rtp_stats:
        packets = _rtp_packets(os.fspath(capture.path), capture) if getattr(capture, "path", None) else None
    clock = 8000
    if packets:
        from telnyx_audio.codecs.registry import codec_info

        try:
            clock = codec_info(recording.encoding).rtp_clock or int(recording.sample_rate)
        except (KeyError, ValueError):
            clock = int(recording.sample_rate)
    for t, name in enumerate(TRACKS):
        report = reports.get(name)
        if packets and t in packets:
            out[name] = _rtp_network(name, packets[t], clock, rtp_stats.get(name), report)
        elif report is not None:
            out[name] = _frames_network(name, report)
    return out


def _number(value: Any) -> float | None:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    return v if np.isfinite(v) else None


def telnyx_quality(webhooks: Any, *, call_control_id: str | None = None,
                   call_session_id: str | None = None) -> dict[str, dict[str, Any]] | None:
    """Telnyx's ``call_quality_stats`` of one call, per track, from its ``call.hangup`` webhook.

    Parameters
    ----------
    webhooks : DataFrame, path, glob or list
        What :func:`~telnyx_audio.load_webhooks` returns or takes.
    call_control_id, call_session_id : str, optional
        The call to look for (either matches).

    Returns
    -------
    dict or None
        ``{track: {"mos", "packet_count", "skip_packet_count", "loss_pct", "jitter_max_variance",
        "jitter_packet_count"}}``, numbers or None; None when the call has no ``call.hangup``
        with quality stats.

    Examples
    --------
    >>> q = telnyx_quality("data/example_webhooks.jsonl", call_control_id="v3:u5OAKGEPT3Dx8SZSSDRWEMdNH2OripQhO")
    >>> q["inbound"]["mos"], q["inbound"]["loss_pct"]
    (4.41, 0.75)
    """
    import pandas as pd

    from telnyx_audio.webhooks import load_webhooks

    frame = webhooks if isinstance(webhooks, pd.DataFrame) else load_webhooks(webhooks)
    if frame.empty or "event_type" not in frame.columns:
        return None
    hangup = frame[frame["event_type"] == "call.hangup"]
    match = np.zeros(len(hangup), bool)
    if call_control_id and "call_control_id" in hangup.columns:
        match |= (hangup["call_control_id"] == call_control_id).to_numpy()
    if call_session_id and "call_session_id" in hangup.columns:
        match |= (hangup["call_session_id"] == call_session_id).to_numpy()
    hangup = hangup[match]
    if hangup.empty:
        return None
    row = hangup.iloc[-1]
    out: dict[str, dict[str, Any]] = {}
    for track in TRACKS:
        prefix = f"call_quality_stats.{track}."
        keys = [c for c in hangup.columns if c.startswith(prefix)]
        if not keys:
            continue
        stats = {c[len(prefix):]: _number(row[c]) for c in keys}
        packets, skipped = stats.get("packet_count"), stats.get("skip_packet_count")
        stats["loss_pct"] = round(100.0 * skipped / packets, 4) if packets and skipped is not None else None
        out[track] = stats
    return out or None
