"""A fork simulator: play a WAV or a capture as ``fork_start`` would, RTP to two UDP ports.

:func:`fork_packets` is the pure part: the RTP packets of a call, each with the time it is
due and its track (0 to ``rx``, 1 to ``tx``), with the faults networks and peers bring:
loss, reordering, duplication, an SSRC change mid-call (a re-INVITE or transfer) and
RFC 4733 DTMF (the ``rx`` audio pauses while a key is down, as senders do; the end packet
is sent three times). :func:`simulate_fork` sends them over a UDP socket.
"""

from __future__ import annotations

import os
import random
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from telnyx_audio import codecs, rtp

__all__ = ["ForkPacket", "ForkSimulationReport", "default_rate", "fork_packets", "load_fork_source", "simulate_fork"]

_PT = {"PCMU": 0, "PCMA": 8, "G722": 9, "L16": 96, "OPUS": 111}
#: The audio rate each codec is sent at by default (its RTP clock is the registry's).
_RATE = {"PCMU": 8000, "PCMA": 8000, "G722": 16000, "L16": 16000, "OPUS": 48000}


def default_rate(codec: str) -> int:
    """The audio rate the simulator sends ``codec`` at unless told otherwise.

    Parameters
    ----------
    codec : str
        A codec name, in any form :func:`telnyx_audio.normalize_encoding` reads.

    Returns
    -------
    int
        The rate in Hz (8000 for a codec it does not know).

    Examples
    --------
    >>> default_rate("PCMU"), default_rate("g722"), default_rate("OPUS")
    (8000, 16000, 48000)
    """
    return _RATE.get(codecs.normalize_encoding(codec), 8000)


@dataclass(frozen=True)
class ForkPacket:
    """One datagram of a simulated fork: when it is due (s), its track (0 rx, 1 tx), bytes.

    Attributes
    ----------
    due_s : float
        When it is sent, in seconds from the start of the call.
    track : int
        0: ``rx`` (inbound), 1: ``tx`` (outbound).
    data : bytes
        The datagram: an RTP packet.
    """

    due_s: float
    track: int
    data: bytes


@dataclass
class ForkSimulationReport:
    """What a simulated fork sent.

    Attributes
    ----------
    packets_sent : int
        Datagrams sent (by :func:`simulate_fork`; 0 from :func:`fork_packets` alone).
    audio_packets : int
        Audio packets made, before the faults.
    dropped, duplicated, reordered : int
        Packets the faults dropped, repeated and swapped.
    dtmf_packets : int
        RFC 4733 event packets.
    ssrcs : dict of str to list of str
        Per track, its SSRCs in hex, in the order used.
    seconds : float
        The call's length.
    """

    packets_sent: int = 0
    audio_packets: int = 0
    dropped: int = 0
    duplicated: int = 0
    reordered: int = 0
    dtmf_packets: int = 0
    ssrcs: dict[str, list[str]] = field(default_factory=dict)
    seconds: float = 0.0


def load_fork_source(source: str | os.PathLike[str], rate: int) -> tuple[np.ndarray, list[tuple[float, str]]]:
    """(2, n) int16 audio at ``rate`` and DTMF ``(time_s, digit)`` from a WAV or any capture.

    A fork capture brings its DTMF events' own times; a WebSocket capture or WAV is read by
    the WebSocket simulator's loader.

    Parameters
    ----------
    source : str or PathLike
        A WAV (mono: inbound; stereo: L inbound, R outbound) or a capture (WebSocket or fork).
    rate : int
        The sample rate to resample to, in Hz.

    Returns
    -------
    audio : np.ndarray of int16, shape (2, n)
        ``[inbound, outbound]`` at ``rate``.
    dtmf : list of (time_s, digit)
        The keys pressed in the source.

    Raises
    ------
    CaptureError
        If ``source`` is neither a capture nor a WAV.
    """
    from telnyx_audio.forks.rtpcap import is_fork_capture

    path = Path(source)
    if is_fork_capture(path):
        from telnyx_audio._util.dsp import resample
        from telnyx_audio.forks.read import read_fork_capture

        cap = read_fork_capture(path)
        dtmf = [(d.start_s, d.digit) for d in cap.report.dtmf_events]  # type: ignore[attr-defined]
        return resample(cap.recording.audio, cap.recording.sample_rate, rate), dtmf
    from telnyx_audio.errors import CaptureError
    from telnyx_audio.simulators.stream import _load_audio

    if not path.is_file():
        raise CaptureError(f"{os.fspath(path)!r} is not a file (expected a WAV or a capture)")
    try:
        audio, dtmf, _ = _load_audio(path, rate)
    except RuntimeError as exc:  # soundfile's LibsndfileError: not audio it can read
        raise CaptureError(f"{os.fspath(path)!r} is neither a capture nor a WAV: {exc}") from exc
    return audio, dtmf


def fork_packets(
    audio: np.ndarray,
    *,
    codec: str = "PCMU",
    sample_rate: int | None = None,
    packet_ms: int = 20,
    tracks: str = "both",
    dtmf: Sequence[tuple[float, str]] = (),
    dtmf_duration_s: float = 0.16,
    dtmf_payload_type: int = 101,
    payload_type: int | None = None,
    ssrc_change_at: float | None = None,
    drop: float = 0.0,
    reorder: float = 0.0,
    duplicate: float = 0.0,
    seq_start: int | None = None,
    ts_start: int | None = None,
    seed: int = 0,
) -> tuple[list[ForkPacket], ForkSimulationReport]:
    """The RTP packets a fork of this call sends, in sending order, with their faults.

    Parameters
    ----------
    audio : np.ndarray of int16, shape (2, n)
        ``[inbound, outbound]`` at the codec's rate (:func:`default_rate`: 8 kHz for G.711,
        16 kHz for G.722 and L16, 48 kHz for OPUS; or ``sample_rate``).
    codec : {"PCMU", "PCMA", "G722", "L16", "OPUS"}
        Payload types 0, 8, 9 and (dynamic) 96 for L16, 111 for OPUS unless
        ``payload_type`` says otherwise. G.722 and OPUS are encoded with PyAV (FFmpeg).
    sample_rate : int, optional
        The rate of ``audio``, in Hz (default: :func:`default_rate` of ``codec``).
    packet_ms : int
        Audio per packet (20 ms is usual; any size works; OPUS: 20 only).
    tracks : {"both", "inbound", "outbound"}
        Which tracks to send.
    dtmf : sequence of (time_s, digit)
        Keys pressed on the ``rx`` side, sent as RFC 4733 events of ``dtmf_duration_s``.
    dtmf_duration_s : float
        How long each key is held.
    dtmf_payload_type : int
        The payload type of the RFC 4733 events.
    payload_type : int, optional
        The audio's payload type, instead of the codec's usual one.
    ssrc_change_at : float, optional
        From this time on, both tracks continue under a new SSRC with new random sequence
        numbers and timestamps.
    drop, reorder, duplicate : float
        Per-packet probabilities of loss, a swap with a packet 1-4 places later, a repeat.
    seq_start, ts_start : int, optional
        First sequence number / timestamp (random by default), e.g. 65530 to cross the wrap.
    seed : int
        Seed of the faults, SSRCs and starting numbers: the same seed, the same packets.

    Returns
    -------
    packets : list of ForkPacket
        In sending order.
    report : ForkSimulationReport
        What was made and what the faults did.

    Examples
    --------
    >>> pkts, rep = fork_packets(np.zeros((2, 800), np.int16), dtmf=[(0.04, "5")])
    >>> rep.audio_packets, rep.dtmf_packets, sorted({p.track for p in pkts})
    (7, 5, [0, 1])

    Five 20 ms packets a track; on rx the key is down from 40 ms on: three updates of the
    event, the last (its end) sent three times.
    """
    codec = codecs.normalize_encoding(codec)
    if codec not in _PT:
        raise ValueError(f"the fork simulator sends {', '.join(_PT)} (FFmpeg has no AMR-WB encoder), got {codec!r}")
    if codec == "OPUS" and packet_ms != 20:
        raise ValueError(f"OPUS is sent in 20 ms packets, got packet_ms={packet_ms}")
    if tracks not in ("inbound", "outbound", "both"):
        raise ValueError(f"tracks must be 'inbound', 'outbound' or 'both', got {tracks!r}")
    for name, p in (("drop", drop), ("reorder", reorder), ("duplicate", duplicate)):
        if not 0 <= p <= 1:
            raise ValueError(f"{name} must be a probability in [0, 1], got {p}")
    if not isinstance(packet_ms, int) or packet_ms <= 0:
        raise ValueError(f"packet_ms must be a positive integer, got {packet_ms!r}")
    rate = sample_rate or _RATE[codec]
    clock = codecs.REGISTRY[codec].rtp_clock or rate  # G.722 8000 (RFC 3551), OPUS 48000 (RFC 7587)
    pt = _PT[codec] if payload_type is None else payload_type
    audio = np.asarray(audio, np.int16).reshape(2, -1)
    per = rate * packet_ms // 1000  # audio samples per packet
    step = clock * packet_ms // 1000  # RTP clock ticks per packet
    n = -(-audio.shape[1] // per)
    audio = np.pad(audio, ((0, 0), (0, n * per - audio.shape[1])))
    rng = random.Random(seed)
    report = ForkSimulationReport()
    wanted = [t for t, name in enumerate(("inbound", "outbound")) if tracks in (name, "both")]
    key_down = np.zeros(n, bool)  # rx packets replaced by DTMF events
    presses = []
    for when, digit in sorted(dtmf):
        code = rtp.DTMF_EVENTS.find(str(digit).upper())
        if code < 0 or len(str(digit)) != 1:
            raise ValueError(f"DTMF digit must be one of {rtp.DTMF_EVENTS}, got {digit!r}")
        first = int(round(when * 1000 / packet_ms))
        count = max(1, int(round(dtmf_duration_s * 1000 / packet_ms)))
        if first < n:
            key_down[first : first + count] = True
            presses.append((first, min(count, n - first), code))
    sent: list[ForkPacket] = []
    for t in wanted:
        payloads = _payloads(audio[t], codec, rate, per, packet_ms)
        sources = [rng.getrandbits(32), rng.getrandbits(32)]
        seq0 = [seq_start if seq_start is not None else rng.getrandbits(16), rng.getrandbits(16)]
        ts0 = [ts_start if ts_start is not None else rng.getrandbits(32), rng.getrandbits(32)]
        report.ssrcs[("inbound", "outbound")[t]] = [f"{s:08x}" for s in sources]
        change = n if ssrc_change_at is None else int(round(ssrc_change_at * 1000 / packet_ms))
        seq_of = [seq0[0], seq0[1]]
        events = {first: (count, code) for first, count, code in presses} if t == 0 else {}
        i = 0
        while i < n:
            part = 0 if i < change else 1
            base = 0 if part == 0 else change
            ts = ts0[part] + (i - base) * step
            if i in events:
                count, code = events[i]
                for k in range(count + 2):  # the end packet three times
                    duration = step * min(k + 1, count)
                    end = k >= count - 1
                    body = bytes([code, (0x80 if end else 0) | 10, (duration >> 8) & 0xFF, duration & 0xFF])
                    data = rtp.build_packet(body, payload_type=dtmf_payload_type, sequence_number=seq_of[part],
                                            timestamp=ts, ssrc=sources[part], marker=k == 0)
                    seq_of[part] += 1
                    sent.append(ForkPacket((i + min(k, count - 1) + 1) * packet_ms / 1000, t, data))
                    report.dtmf_packets += 1
                i += count
                continue
            data = rtp.build_packet(payloads[i], payload_type=pt,
                                    sequence_number=seq_of[part], timestamp=ts, ssrc=sources[part],
                                    marker=(i == 0 or i == change))
            seq_of[part] += 1
            sent.append(ForkPacket((i + 1) * packet_ms / 1000, t, data))
            report.audio_packets += 1
            i += 1
    sent.sort(key=lambda p: p.due_s)  # stable: rx before tx within a time
    faulty: list[ForkPacket] = []
    for p in sent:
        if rng.random() < drop:
            report.dropped += 1
            continue
        faulty.append(p)
        if rng.random() < duplicate:
            report.duplicated += 1
            faulty.append(p)
    for i in range(len(faulty) - 1):
        if rng.random() < reorder:
            j = min(len(faulty) - 1, i + rng.randint(1, 4))
            a, b = faulty[i], faulty[j]
            faulty[i], faulty[j] = ForkPacket(a.due_s, b.track, b.data), ForkPacket(b.due_s, a.track, a.data)
            report.reordered += 1
    report.seconds = n * packet_ms / 1000
    return faulty, report


def _payloads(pcm: np.ndarray, codec: str, rate: int, per: int, packet_ms: int) -> list[bytes]:
    """One payload per packet: G.711/L16 cut from one whole-buffer encode; G.722 and OPUS
    through the toolkit's encoders (PyAV), as Telnyx's media would be."""
    if codec in ("G722", "OPUS"):
        from telnyx_audio.codecs.outbound import encode_payloads

        return encode_payloads(pcm, rate, codec, target_rate=rate, payload_s=packet_ms / 1000)
    raw = codecs.encode(pcm, codec)
    width = per * codecs.bytes_per_sample(codec)
    return [raw[i : i + width] for i in range(0, len(raw), width)]


def simulate_fork(
    source: str | os.PathLike[str] | np.ndarray,
    rx: tuple[str, int] | None,
    tx: tuple[str, int] | None,
    *,
    codec: str = "PCMU",
    realtime: bool = False,
    speed: float = 20.0,
    extra: Sequence[tuple[float, int, bytes]] = (),
    **kwargs: Any,
) -> ForkSimulationReport:
    """Send a call as a fork: RTP for the inbound track to ``rx``, outbound to ``tx``.

    Parameters
    ----------
    source : str, PathLike or np.ndarray
        A WAV (mono: inbound; stereo: L inbound, R outbound), a capture (WebSocket JSONL or
        fork), or a (2, n) int16 array at the codec's rate.
    rx, tx : (host, port) or None
        Where each track goes; None leaves that track out.
    codec : str
        The codec to send, as for :func:`fork_packets`.
    realtime : bool
        Pace packets as a live call does; otherwise ``speed`` times faster than real time
        (still paced: a burst of thousands of datagrams would only test socket buffers).
    speed : float
        How many times faster than real time, when not ``realtime``.
    extra : sequence of (due_s, track, bytes)
        More datagrams to send among the packets (malformed ones, for tests).
    **kwargs
        Passed to :func:`fork_packets` (``drop``, ``reorder``, ``duplicate``,
        ``ssrc_change_at``, ``dtmf``, ``packet_ms``, ``seed``...).

    Returns
    -------
    ForkSimulationReport
        What was sent, with ``packets_sent``.
    """
    if speed <= 0:
        raise ValueError(f"speed must be positive, got {speed}")
    rate = kwargs.get("sample_rate") or default_rate(codec)
    if isinstance(source, np.ndarray):
        audio = source
    else:
        audio, file_dtmf = load_fork_source(source, rate)
        kwargs.setdefault("dtmf", file_dtmf)
    if rx is None and tx is None:
        raise ValueError("simulate_fork needs rx, tx or both")
    kwargs.setdefault("tracks", "both" if rx and tx else ("inbound" if rx else "outbound"))
    packets, report = fork_packets(audio, codec=codec, **kwargs)
    timed = sorted([(p.due_s, p.track, p.data) for p in packets] + list(extra), key=lambda x: x[0])
    targets = {0: rx, 1: tx}
    factor = 1.0 if realtime else 1.0 / speed
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        started = time.monotonic()
        for due, track, data in timed:
            target = targets[track]
            if target is None:
                continue
            delay = started + due * factor - time.monotonic()
            if delay > 0.002:
                time.sleep(delay)
            sock.sendto(data, target)
            report.packets_sent += 1
    return report
