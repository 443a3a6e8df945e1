"""Fork receiving and decoding speed: our figures beside the baselines, measured in one run.

1. Load: N concurrent forks (2N RTP streams, 50 packets a second each: 100 forks = 10,000
   packets a second) sent for S seconds from a separate process on 127.0.0.1, received by
   the fork receiver (every datagram to its call's capture file, flushed per datagram).
   Target: zero packets lost (sent = written). Printed: CPU per packet of our receiver
   beside a naive asyncio receiver on the same sockets that only writes each datagram
   (``os.write``, the same durability as ours).
2. Decode: a one-hour two-track PCMU call as a fork capture and as a WebSocket JSONL
   capture; ``read_capture`` of each to the aligned ``(2, n)`` array. Target: the fork
   capture at least as fast as the WebSocket one.

Run from the repository root: ``.venv/bin/python bench/fork.py`` (about 2 minutes; use
``--forks 10 --seconds 5 --hours 0.1`` for a quick look).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import struct
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

PACKET_S = 0.02
PAYLOAD = 160  # PCMU, 20 ms


def _free_base(n: int) -> int:
    """A base port with n consecutive free UDP ports (checked by binding them)."""
    rng = np.random.default_rng()
    for _ in range(100):
        base = int(rng.integers(20000, 60000 - n)) // 2 * 2
        socks = []
        try:
            for p in range(base, base + n):
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                socks.append(s)
                s.bind(("127.0.0.1", p))
            return base
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError(f"no {n} consecutive free ports")


def sender(base: int, streams: int, seconds: float) -> None:
    """The separate process: RTP to ports base..base+streams-1, 50 packets/s each."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
    packet = bytearray(12 + PAYLOAD)
    packet[0] = 0x80
    packet[12:] = bytes(range(PAYLOAD))
    ticks = int(seconds / PACKET_S)
    sent = 0
    start = time.monotonic()
    for i in range(ticks):
        delay = start + i * PACKET_S - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        for s in range(streams):
            struct.pack_into("!HII", packet, 2, i & 0xFFFF, (i * PAYLOAD) & 0xFFFFFFFF, 1000 + s)
            while True:
                try:
                    sock.sendto(packet, ("127.0.0.1", base + s))
                    break
                except BlockingIOError:  # the send buffer is full: wait, never drop
                    time.sleep(0.0005)
            sent += 1
    print(json.dumps({"sent": sent, "seconds": time.monotonic() - start}), flush=True)


async def _run_sender(base: int, streams: int, seconds: float) -> int:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, __file__, "--sender", str(base), str(streams), str(seconds), stdout=asyncio.subprocess.PIPE)
    out, _ = await proc.communicate()
    return int(json.loads(out)["sent"])


async def _until(predicate, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not predicate() and time.monotonic() < deadline:
        await asyncio.sleep(0.05)


class _Naive(asyncio.DatagramProtocol):
    count = 0

    def __init__(self, fd: int) -> None:
        self.fd = fd

    def datagram_received(self, data: bytes, addr) -> None:
        os.write(self.fd, data)
        _Naive.count += 1


async def naive_load(out: Path, base: int, forks: int, seconds: float) -> dict:
    """The baseline: an asyncio receiver that only writes each datagram."""
    loop = asyncio.get_running_loop()
    fds, transports = [], []
    for k in range(forks):
        fd = os.open(out / f"naive-{k}.raw", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        fds.append(fd)
        for port in (base + 2 * k, base + 2 * k + 1):
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
            sock.bind(("127.0.0.1", port))
            tr, _ = await loop.create_datagram_endpoint(lambda fd=fd: _Naive(fd), sock=sock)
            transports.append(tr)
    _Naive.count = 0
    cpu = time.process_time()
    sent = await _run_sender(base, 2 * forks, seconds)
    await _until(lambda: _Naive.count >= sent, 5.0)
    cpu = time.process_time() - cpu
    received = _Naive.count
    for tr in transports:
        tr.close()
    for fd in fds:
        os.close(fd)
    return {"sent": sent, "written": received, "cpu_s": cpu}


async def our_load(out: Path, base: int, forks: int, seconds: float) -> dict:
    """Our receiver: listen on every pair of the range, one capture file per call."""
    from telnyx_audio.forks.rtpcap import read_records
    from telnyx_audio.forks.receiver import ForkReceiver

    receiver = ForkReceiver(out, ports=(base, base + 2 * forks - 1), listen_all=True)
    task = asyncio.ensure_future(receiver.serve_async())
    await _until(lambda: receiver.listening, 30.0)
    cpu = time.process_time()
    sent = await _run_sender(base, 2 * forks, seconds)
    await _until(lambda: receiver.datagrams >= sent, 5.0)
    cpu = time.process_time() - cpu
    counted = receiver.datagrams
    finalize = time.perf_counter()
    receiver.request_stop()
    await task  # every call finalised: WAVs and summary.json
    finalize = time.perf_counter() - finalize
    on_disk = sum(len(read_records(s.capture_path)) for s in receiver.sessions)
    done = sum(s.state == "done" for s in receiver.sessions)
    return {"sent": sent, "written": on_disk, "counted": counted, "cpu_s": cpu, "calls": len(receiver.sessions),
            "calls_done": done, "finalize_s": finalize}


def decode_comparison(tmp: Path, hours: float, repeats: int) -> None:
    from telnyx_audio import codecs
    from telnyx_audio.read import read_capture
    from telnyx_audio.forks.rtpcap import MAGIC, RECORD
    from telnyx_audio.simulators.stream import call_messages

    rate = 8000
    n = int(hours * 3600 * rate) // 160 * 160
    rng = np.random.default_rng(0)
    t = np.arange(n, dtype=np.float32) / rate
    audio = np.stack([3000 * np.sin(2 * np.pi * 300 * t), 3000 * np.sin(2 * np.pi * 500 * t)])
    audio = (audio + rng.normal(0, 300, audio.shape)).astype(np.int16)
    del t

    # The same call as a WebSocket capture, as the simulator sends it.
    ws = tmp / "call.jsonl"
    made = time.perf_counter()
    timed, _ = call_messages(audio, codec="PCMU")
    with open(ws, "w") as f:
        for _, message in timed:
            f.write(message + "\n")
        f.write(json.dumps({"event": "stop", "stop": {}}) + "\n")
    del timed

    # ... and as a fork capture: rx/tx datagrams interleaved as they arrive, 20 ms apart.
    fork = tmp / "call.rtpcap"
    frames = n // 160
    with open(fork, "wb") as f:
        f.write(MAGIC + b'{"session_id": "bench"}\n')
        rec = np.zeros((frames, 2, RECORD.size + 12 + 160), np.uint8)
        rec[:, :, 0] = 0xA7
        rec[:, 1, 1] = 1
        rec[:, :, 2:4] = np.frombuffer(struct.pack("<H", 172), np.uint8)
        us = (np.arange(frames, dtype=np.int64) * 20000 + 1_700_000_000_000_000)
        rec[:, :, 4:12] = us.astype("<i8").view(np.uint8).reshape(frames, 1, 8)
        rtp = rec[:, :, RECORD.size :]
        rtp[:, :, 0] = 0x80
        seq = np.arange(frames, dtype=np.int64) & 0xFFFF
        ts = (np.arange(frames, dtype=np.int64) * 160) & 0xFFFFFFFF
        rtp[:, :, 2:4] = seq.astype(">u2").view(np.uint8).reshape(frames, 1, 2)
        rtp[:, :, 4:8] = ts.astype(">u4").view(np.uint8).reshape(frames, 1, 4)
        rtp[:, 0, 8:12] = np.frombuffer(struct.pack("!I", 1), np.uint8)
        rtp[:, 1, 8:12] = np.frombuffer(struct.pack("!I", 2), np.uint8)
        for k in range(2):
            rtp[:, k, 12:] = np.frombuffer(codecs.encode(audio[k], "PCMU"), np.uint8).reshape(frames, 160)
        f.write(rec.tobytes())
        del rec, rtp
    made = time.perf_counter() - made
    print(f"decode: {hours:g} h two-track PCMU call; WebSocket capture {ws.stat().st_size / 1e6:.0f} MB,"
          f" fork capture {fork.stat().st_size / 1e6:.0f} MB (made in {made:.1f} s)")
    best = {}
    for name, path in (("websocket", ws), ("fork", fork)):
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            cap = read_capture(path)
            times.append(time.perf_counter() - t0)
        best[name] = min(times)
        same = cap.recording.audio.shape[1] == n and (cap.recording.audio == np.stack(
            [codecs.decode(codecs.encode(a, "PCMU"), "PCMU") for a in audio])).all()
        print(f"  {name:9s} read_capture -> (2, {cap.recording.audio.shape[1]}) int16: best of {repeats}"
              f" {best[name]:.2f} s ({hours * 3600 / best[name]:.0f}x real time); audio exact: {same}")
        del cap
    verdict = "OK" if best["fork"] <= best["websocket"] else "SLOWER"
    print(f"  OURS fork {best['fork']:.2f} s vs BASELINE websocket {best['websocket']:.2f} s:"
          f" {best['websocket'] / best['fork']:.2f}x  [{verdict}]")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--forks", type=int, default=100, help="concurrent forks (2 streams each; default 100)")
    ap.add_argument("--seconds", type=float, default=20.0, help="seconds of sending (default 20)")
    ap.add_argument("--hours", type=float, default=1.0, help="length of the decode comparison's call (default 1)")
    ap.add_argument("--repeats", type=int, default=3, help="decode timings to take the best of (default 3)")
    ap.add_argument("--skip-load", action="store_true")
    ap.add_argument("--skip-decode", action="store_true")
    ap.add_argument("--sender", nargs=3, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.sender:
        sender(int(args.sender[0]), int(args.sender[1]), float(args.sender[2]))
        return 0
    with tempfile.TemporaryDirectory(prefix="bench-fork-") as tmp_name:
        tmp = Path(tmp_name)
        if not args.skip_load:
            pps = 2 * args.forks / PACKET_S
            print(f"load: {args.forks} forks ({2 * args.forks} RTP streams, {pps:.0f} packets/s) for {args.seconds:g} s"
                  " from a separate process on 127.0.0.1")
            base = _free_base(2 * args.forks)
            naive = asyncio.run(naive_load(tmp, base, args.forks, args.seconds))
            base = _free_base(2 * args.forks)
            ours = asyncio.run(our_load(tmp / "ours", base, args.forks, args.seconds))
            for name, r in (("BASELINE naive", naive), ("OURS receiver", ours)):
                lost = r["sent"] - r["written"]
                print(f"  {name:14s}: sent {r['sent']}, written {r['written']}, lost {lost};"
                      f" CPU {r['cpu_s']:.2f} s = {r['cpu_s'] / max(r['sent'], 1) * 1e6:.1f} us/packet")
            print(f"  ours: {ours['calls_done']}/{ours['calls']} calls finalised (WAVs + summary) in"
                  f" {ours['finalize_s']:.1f} s after stop;"
                  f" zero loss: {'OK' if ours['sent'] == ours['written'] else 'FAILED'};"
                  f" CPU per packet {ours['cpu_s'] / naive['cpu_s']:.2f}x the naive receiver's")
        if not args.skip_decode:
            decode_comparison(tmp, args.hours, args.repeats)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
