"""Packet-capture reading speed and memory: our figures beside the baselines, measured in one run.

1. A one-hour two-party PCMU call in 20 ms packets with its SIP dialog (360,000 RTP packets,
   made by :func:`make_call` with :mod:`telnyx_audio.packets.writer`, cached in bench/_work):

   - parse, group and decode to the aligned ``(2, n)`` audio: ``read_pcap_captures`` beside
     a straightforward reader built on dpkt (the common Python choice: dpkt per packet,
     grouping by 5-tuple and SSRC in dicts, ordering by sequence number, joining payloads,
     one G.711 decode per stream, placing by timestamp). Target: at least 10x faster.
   - the RTP statistics only: ``rtp_streams`` (Wireshark's RTP Streams table) beside
     ``tshark -q -z rtp,streams``. Target: at least 10x faster.
   - peak memory of the decode (traced allocations, tracemalloc), beside the call's payload
     bytes. Target: under 3x.
2. 500 short calls in one file (and 250 for comparison): peak memory of reading them call by
   call (``iter_pcap_captures``). Target: flat in the number of calls.

dpkt is a baseline here, not a dependency: ``pip install -e .[bench]`` (or ``pip install dpkt``) to run it (it is
skipped with a note otherwise). Each timing is the best of ``--repeat`` runs (the machine
may be shared).

Run from the repository root: ``.venv/bin/python bench/pcap.py`` (about 2 minutes; use
``--hours 0.1`` for a quick look).
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

WORK = Path(__file__).resolve().parent / "_work"
A, B = "10.0.0.1", "10.0.0.2"


def _sdp(ip: str, port: int) -> bytes:
    return (f"v=0\r\no=- 1 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\nm=audio {port} RTP/AVP 0 101\r\n"
            "a=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\na=ptime:20\r\n").encode()


def _sip(first: str, call_id: str, cseq: str, body: bytes = b"") -> bytes:
    head = (f"{first}\r\nVia: SIP/2.0/UDP {A}:5060;branch=z9hG4bK1\r\nFrom: <sip:alice@{A}>;tag=a1\r\n"
            f"To: <sip:bob@{B}>{'' if first.startswith('INVITE') else ';tag=b1'}\r\nCall-ID: {call_id}\r\n"
            f"CSeq: {cseq}\r\n" + ("Content-Type: application/sdp\r\n" if body else ""))
    return (head + f"Content-Length: {len(body)}\r\n\r\n").encode() + body


def make_call(path: Path, seconds: float, *, call_id: str = "bench@pcap", start_ns: int = 1_700_000_000 * 10**9,
              writer=None, a_port: int = 40000, b_port: int = 50000, seed: int = 1) -> int:
    """Write one two-party PCMU call (SIP over UDP, 20 ms RTP both ways with up to 2 ms of
    jitter) to ``path`` (or to an open ``writer``); returns the RTP payload bytes."""
    from telnyx_audio import rtp
    from telnyx_audio.packets.writer import PcapWriter, udp_packet

    rng = np.random.default_rng(seed)
    n = int(seconds * 50)
    payloads = [bytes(rng.integers(0, 256, 160, dtype=np.uint8)) for _ in range(50)]
    own = writer is None
    w = writer or PcapWriter(path)
    try:
        w.packet(start_ns, udp_packet(A, 5060, B, 5060, _sip(f"INVITE sip:bob@{B} SIP/2.0", call_id, "1 INVITE",
                                                              _sdp(A, a_port))))
        w.packet(start_ns + 50_000_000, udp_packet(B, 5060, A, 5060, _sip("SIP/2.0 200 OK", call_id, "1 INVITE",
                                                                           _sdp(B, b_port))))
        w.packet(start_ns + 60_000_000, udp_packet(A, 5060, B, 5060, _sip(f"ACK sip:bob@{B} SIP/2.0", call_id, "1 ACK")))
        base = start_ns + 100_000_000
        jitter = rng.integers(0, 2_000_000, size=(n, 2))
        flows = ((A, a_port, B, b_port), (B, b_port, A, a_port))
        for i in range(n):
            for d, (s, sp, dd, dp) in enumerate(flows):
                pkt = rtp.build_packet(payloads[(i + d) % 50], payload_type=0, sequence_number=(1000 * d + i) & 0xFFFF,
                                       timestamp=160 * i + 7 * d, ssrc=0x1234 + d)
                w.packet(base + i * 20_000_000 + int(jitter[i, d]), udp_packet(s, sp, dd, dp, pkt))
        end = base + n * 20_000_000 + 10_000_000
        w.packet(end, udp_packet(A, 5060, B, 5060, _sip(f"BYE sip:bob@{B} SIP/2.0", call_id, "2 BYE")))
        w.packet(end + 10_000_000, udp_packet(B, 5060, A, 5060, _sip("SIP/2.0 200 OK", call_id, "2 BYE")))
    finally:
        if own:
            w.close()
    return 2 * n * 160


def make_many(path: Path, calls: int, seconds: float = 10.0) -> None:
    """``calls`` calls one after another (the same ports reused, as SIPp does)."""
    from telnyx_audio.packets.writer import PcapWriter

    with PcapWriter(path) as w:
        for k in range(calls):
            make_call(path, seconds, call_id=f"c{k}@bench", start_ns=1_700_000_000 * 10**9 + k * int(seconds + 3) * 10**9,
                      writer=w, seed=k)


def dpkt_decode(path: Path) -> np.ndarray:
    """The baseline: a straightforward dpkt reader to the aligned (2, n) audio.

    dpkt parses each frame; RTP is told from SIP by its version bits; packets are grouped by
    5-tuple and SSRC in a dict, sequence numbers unwrapped as they arrive, ordered by them,
    decoded with one G.711 table lookup per stream and placed by RTP timestamp from the
    first packet's arrival (the two tracks of the first two streams).
    """
    import dpkt

    from telnyx_audio.codecs import decode

    streams: dict[tuple, list] = {}
    last: dict[tuple, int] = {}
    with open(path, "rb") as f:
        for ts, frame in dpkt.pcap.Reader(f):
            eth = dpkt.ethernet.Ethernet(frame)
            ip = eth.data
            if not isinstance(ip, dpkt.ip.IP) or not isinstance(ip.data, dpkt.udp.UDP):
                continue
            udp = ip.data
            data = bytes(udp.data)
            if len(data) < 12 or data[0] >> 6 != 2 or data[:3] == b"SIP":
                continue
            pt = data[1] & 0x7F
            seq = int.from_bytes(data[2:4], "big")
            stamp = int.from_bytes(data[4:8], "big")
            ssrc = int.from_bytes(data[8:12], "big")
            key = (ip.src, udp.sport, ip.dst, udp.dport, ssrc)
            prev = last.get(key)
            if prev is not None:  # unwrap the 16-bit sequence number near the previous one
                seq += (prev - seq + 32768) // 65536 * 65536
            last[key] = seq
            streams.setdefault(key, []).append((ts, seq, stamp, pt, data[12:]))
    tracks = []
    t0 = min(p[0][0] for p in streams.values())
    for key in sorted(streams, key=lambda k: streams[k][0][0])[:2]:
        pkts = sorted(streams[key], key=lambda p: p[1])
        pcm = decode(b"".join(p[4] for p in pkts), "PCMU")
        start = int(round((pkts[0][0] - t0) * 8000))
        span = (pkts[-1][2] - pkts[0][2]) % (1 << 32)
        out = np.zeros(start + span + len(pkts[-1][4]), np.int16)
        at_pcm = 0
        for p in pkts:  # place each packet by its timestamp
            at = start + (p[2] - pkts[0][2]) % (1 << 32)
            n = len(p[4])
            out[at : at + n] = pcm[at_pcm : at_pcm + n]
            at_pcm += n
        tracks.append(out)
    n = max(t.size for t in tracks)
    audio = np.zeros((2, n), np.int16)
    for i, t in enumerate(tracks):
        audio[i, : t.size] = t
    return audio


def _same_track(x: np.ndarray, y: np.ndarray, max_lag: int) -> bool:
    nz = np.flatnonzero(x)
    if not nz.size:
        return False
    i = int(nz[0]) + 2 * max_lag
    probe = x[i : i + 8000]
    lags = [d for d in range(-max_lag, max_lag + 1) if np.array_equal(y[i + d : i + d + 8000], probe)]
    if len(lags) != 1:
        return False
    d = lags[0]
    lo, hi = i, min(x.size, y.size - d) - 2 * max_lag
    return np.array_equal(x[lo:hi], y[lo + d : hi + d])


def same_audio(ours: np.ndarray, ref: np.ndarray, *, max_lag: int = 64) -> bool:
    """Whether the baseline's (2, n) audio holds the same samples as ours, track by track (in
    either order: without SIP the baseline cannot tell who called), up to the few samples
    the two alignments may differ by (arrival jitter on the first packet)."""
    return any(all(_same_track(ours[t], ref[order[t]], max_lag) for t in range(2)) for order in ((0, 1), (1, 0)))


def ours_decode(path: Path) -> np.ndarray:
    from telnyx_audio.packets.read import read_pcap_captures

    (cap,) = read_pcap_captures(path)
    return cap.recording.audio


def ours_stats(path: Path):
    from telnyx_audio.packets.read import rtp_streams

    return rtp_streams(path)


def tshark_stats(path: Path) -> str:
    return subprocess.run(["tshark", "-r", str(path), "-q", "-z", "rtp,streams"], capture_output=True, text=True,
                          check=True).stdout


def same_figures(table, text: str) -> bool:
    """Whether our RTP Streams table gives tshark's packets, lost and max delta and jitter per SSRC."""
    theirs = {}
    for line in text.splitlines():
        f = line.split()
        if len(f) > 16 and f[6].startswith("0x"):
            theirs[f[6][2:].lower()] = (int(f[8]), int(f[9]), float(f[13]), float(f[16]))
    ours = {r.ssrc: (r.packets, r.lost, round(r.max_delta_ms, 3), round(r.max_jitter_ms, 3))
            for r in table.itertuples()}
    return bool(theirs) and all(k in ours and ours[k][:2] == v[:2] and abs(ours[k][2] - v[2]) <= 0.002
                                and abs(ours[k][3] - v[3]) <= 0.002 for k, v in theirs.items())


def _cpu() -> float:
    """CPU seconds of this process and its finished children (tshark)."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


class Timing:
    """The best wall-clock and the best CPU time of several runs (the CPU time does not count
    the time other processes of a shared machine took)."""

    def __init__(self, wall: float, cpu: float) -> None:
        self.wall, self.cpu = wall, cpu

    def __str__(self) -> str:
        return f"{self.wall:7.3f} s ({self.cpu:6.3f} s CPU)"

    def ratio(self, ours: "Timing") -> str:
        return f"{self.wall / ours.wall:5.1f}x faster ({self.cpu / ours.cpu:4.1f}x in CPU time)"


def best(fn, path: Path, repeat: int) -> tuple[Timing, object]:
    walls, cpus, out = [], [], None
    for _ in range(repeat):
        t, c = time.perf_counter(), _cpu()
        out = fn(path)
        walls.append(time.perf_counter() - t)
        cpus.append(_cpu() - c)
    return Timing(min(walls), min(cpus)), out


def traced_peak(fn, *args) -> int:
    tracemalloc.start()
    fn(*args)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hours", type=float, default=1.0)
    ap.add_argument("--calls", type=int, default=500)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    WORK.mkdir(exist_ok=True)
    hour = WORK / f"call_{args.hours:g}h.pcap"
    payload = int(args.hours * 3600 * 50) * 2 * 160
    if not hour.exists():
        t = time.perf_counter()
        make_call(hour, args.hours * 3600)
        print(f"made {hour.name}: {hour.stat().st_size / 1e6:.0f} MB in {time.perf_counter() - t:.1f} s")
    n_packets = int(args.hours * 3600 * 50) * 2
    print(f"\n1. one call of {args.hours:g} h: {n_packets:,} RTP packets, {payload / 1e6:.1f} MB of payload,"
          f" file {hour.stat().st_size / 1e6:.1f} MB")
    ours_decode(hour)  # warm: imports, page cache
    t_ours, audio = best(ours_decode, hour, args.repeat)
    print(f"   decode to (2, n) audio   ours   {t_ours}   {audio.shape}")
    try:
        import dpkt  # noqa: F401
    except ImportError:
        print("   dpkt baseline skipped: pip install dpkt (a bench baseline, not a dependency)")
    else:
        t_dpkt, ref = best(dpkt_decode, hour, max(1, args.repeat - 1))
        same = same_audio(audio, ref)
        print(f"                            dpkt   {t_dpkt}   -> ours {t_dpkt.ratio(t_ours)}"
              f" (target 10x); same audio: {same}")
    t_stats, table = best(ours_stats, hour, args.repeat)
    print(f"   RTP statistics only      ours   {t_stats}   {len(table)} streams")
    if shutil.which("tshark"):
        t_tshark, text = best(tshark_stats, hour, args.repeat)
        print(f"                            tshark {t_tshark}   -> ours {t_tshark.ratio(t_stats)}"
              f" (target 10x); same figures: {same_figures(table, text)}")
    else:
        print("   tshark baseline skipped: tshark not installed")
    peak = traced_peak(ours_decode, hour)
    audio_bytes = audio.nbytes
    print(f"   peak traced memory of the decode {peak / 1e6:7.1f} MB = {peak / payload:4.2f}x the payload"
          f" (target < 3x; the (2, n) int16 result alone is {audio_bytes / 1e6:.1f} MB ="
          f" {audio_bytes / payload:.2f}x: working memory besides it {(peak - audio_bytes) / payload:4.2f}x)")

    from telnyx_audio.packets.read import iter_pcap_captures

    print("\n2. many short calls (10 s each, one after another on the same ports), read call by call")
    peaks = {}
    for n in (args.calls // 2, args.calls):
        path = WORK / f"calls_{n}.pcap"
        if not path.exists():
            make_many(path, n)
        held = []

        def consume(p: Path) -> int:
            k = 0
            for _ in iter_pcap_captures(p):
                k += 1
            held.append(tracemalloc.get_traced_memory()[0])  # what reading the file left behind
            return k

        t = time.perf_counter()
        peaks[n] = traced_peak(consume, path)
        print(f"   {n:4d} calls ({path.stat().st_size / 1e6:6.1f} MB): peak traced memory {peaks[n] / 1e6:6.1f} MB,"
              f" held after the last call {held[0] / 1e6:5.1f} MB ({time.perf_counter() - t:.1f} s)")
    lo, hi = sorted(peaks)
    print(f"   {hi} calls / {lo} calls peak: {peaks[hi] / peaks[lo]:.2f}x (target: flat, ~1x; both files are"
          " several read chunks long)")

if __name__ == "__main__":
    main()
