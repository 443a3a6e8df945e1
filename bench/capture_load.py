"""Benchmark: many concurrent two-track calls, at real-time pacing, against the capture server.

A separate load process opens N WebSocket streams and sends each call's two tracks as Telnyx
does: one 20 ms PCMU frame per track every 20 ms, after ``connected`` and ``start``, then
``stop``. Measured in the same run:

- the capture server (``telnyx-audio capture``) with 1 and with 2 workers (SO_REUSEPORT);
- a naive reference server on the same websockets version: ``json.loads`` +
  ``base64.b64decode`` + a file write per message, nothing else.

Printed: media messages sent and written (they must be equal: zero lost), server CPU seconds
per media message (read from /proc from the first message until every stream's WAVs and
summary are written: ours logs, orders and decodes, the naive one only decodes), their ratio to
the naive server's, the p99 time from receipt to the line being flushed to disk, and whether
the load generator kept real time.

Targets: zero lost at 100 calls on 2 cores; CPU per message at most 1.25x the naive server's.

Usage: python bench/capture_load.py [--calls 100] [--seconds 20]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
TICK = os.sysconf("SC_CLK_TCK")

NAIVE_SERVER = r"""
import asyncio, base64, json, os, signal, sys
from websockets.asyncio.server import serve

out, port = sys.argv[1], int(sys.argv[2])
written = 0

async def handler(ws):
    global written
    path = os.path.join(out, f"stream-{id(ws)}.raw")
    with open(path, "ab") as f:
        async for message in ws:
            m = json.loads(message)
            if m.get("event") == "media":
                f.write(base64.b64decode(m["media"]["payload"]))
                written += 1

async def main():
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    async with serve(handler, "127.0.0.1", port, compression=None, max_size=1 << 20):
        print("listening", flush=True)
        await stop.wait()
    with open(os.path.join(out, "written.json"), "w") as f:
        json.dump({"media_written": written}, f)

asyncio.run(main())
"""


# --- the load process ----------------------------------------------------------------------

async def one_call(url: str, n: int, seconds: float, t0: float, result: dict) -> None:
    from websockets.asyncio.client import connect

    stream_id = f"00000000-0000-4000-8000-{n:012d}"
    payload = base64.b64encode(bytes((i * 37 + n) % 256 for i in range(160))).decode()
    seq = 1
    async with connect(url, compression=None, max_size=None, open_timeout=60) as ws:
        await ws.send(json.dumps({"event": "connected", "version": "1.0.0"}))
        await ws.send(json.dumps({"event": "start", "sequence_number": "1", "stream_id": stream_id, "start": {
            "call_control_id": f"v3:load-{n}", "call_session_id": stream_id,
            "custom_parameters": {}, "media_format": {"encoding": "PCMU", "sample_rate": 8000, "channels": 1}}}))
        frames = int(seconds / 0.02)
        for chunk in range(1, frames + 1):
            due = t0 + chunk * 0.02
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            elif delay < -0.1:
                result["late"] += 1
            for track in ("inbound", "outbound"):
                seq += 1
                await ws.send(
                    f'{{"event": "media", "sequence_number": "{seq}", "stream_id": "{stream_id}", "media": '
                    f'{{"track": "{track}", "chunk": "{chunk}", "timestamp": "{(chunk - 1) * 20}", "payload": "{payload}"}}}}')
                result["sent"] += 1
        await ws.send(json.dumps({"event": "stop", "sequence_number": str(seq + 1), "stream_id": stream_id, "stop": {}}))


async def load(url: str, calls: int, seconds: float) -> dict:
    result = {"sent": 0, "late": 0, "failed": 0}
    t0 = time.monotonic() + 1.0 + calls * 0.005  # connect everyone first, then start the clock
    outcomes = await asyncio.gather(*(one_call(url, n, seconds, t0, result) for n in range(calls)), return_exceptions=True)
    result["failed"] = sum(isinstance(o, Exception) for o in outcomes)
    result["errors"] = sorted({repr(o)[:120] for o in outcomes if isinstance(o, Exception)})[:3]
    return result


# --- the harness ---------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tree(pid: int) -> list[int]:
    """pid and all its descendants."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        for task in Path(f"/proc/{p}/task").glob("*"):
            try:
                todo += [int(c) for c in (task / "children").read_text().split()]
            except OSError:
                pass
    return out


def cpu_seconds(pids: list[int]) -> float:
    total = 0
    for p in pids:
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime + stime
        except OSError:
            pass
    return total / TICK


def wait_listening(port: int, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise SystemExit(f"server on port {port} did not start")


def run(kind: str, calls: int, seconds: float, workers: int = 1) -> dict:
    out = Path(tempfile.mkdtemp(prefix=f"load-{kind}-"))
    port = free_port()
    stats = out / "stats.json"
    if kind == "naive":
        cmd = [sys.executable, "-c", NAIVE_SERVER, str(out), str(port)]
    else:
        cmd = [sys.executable, "-m", "telnyx_audio", "capture", "--port", str(port), "--out", str(out / "captures"),
               "--workers", str(workers), "--stats", str(stats)]
    server = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        wait_listening(port)
        time.sleep(0.5)
        pids = tree(server.pid)
        cpu0 = cpu_seconds(pids)
        client = subprocess.run([sys.executable, __file__, "--client", f"ws://127.0.0.1:{port}/",
                                 "--calls", str(calls), "--seconds", str(seconds)],
                                capture_output=True, text=True, timeout=seconds * 4 + 120)
        cpu_streaming = cpu_seconds(tree(server.pid)) - cpu0
        # Ours also orders and decodes: count its CPU until every stream's WAVs and summary exist.
        deadline = time.monotonic() + 120
        while kind != "naive" and time.monotonic() < deadline and \
                len(list((out / "captures").glob("*/summary.json"))) < calls - json.loads(client.stdout.strip().splitlines()[-1])["failed"]:
            time.sleep(0.1)
        time.sleep(0.3)
        cpu = cpu_seconds(tree(server.pid)) - cpu0
        if client.returncode:
            raise SystemExit(f"load process failed: {client.stderr[-2000:]}")
        sent = json.loads(client.stdout.strip().splitlines()[-1])
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=seconds * 10 + 120)
        except subprocess.TimeoutExpired:
            server.kill()
        server.stderr.close()
    if kind == "naive":
        written = json.loads((out / "written.json").read_text())["media_written"]
        latency = None
    else:
        written = sum(sum(1 for line in open(f, "rb") if b'"event": "media"' in line)
                      for f in (out / "captures").glob("*/messages.jsonl"))
        files = [stats] if workers == 1 else [Path(f"{stats}.{n}") for n in range(workers)]
        lat = [json.loads(f.read_text())["receipt_to_disk_us"] for f in files if f.exists()]
        latency = max((x["p99"] for x in lat if x["p99"] is not None), default=None)
    return {"kind": kind, "workers": workers, "sent": sent["sent"], "written": written, "late": sent["late"],
            "failed": sent["failed"], "errors": sent.get("errors"), "cpu_s": cpu,
            "streaming_us_per_msg": cpu_streaming / max(sent["sent"], 1) * 1e6,
            "cpu_us_per_msg": cpu / max(sent["sent"], 1) * 1e6, "p99_us": latency}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--calls", type=int, default=100)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--client", metavar="URL", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.client:
        print(json.dumps(asyncio.run(load(args.client, args.calls, args.seconds))))
        return
    print(f"{args.calls} concurrent two-track calls, {args.seconds:.0f} s of real-time audio each "
          f"({args.calls * 100} media messages/s), load from a separate process, {os.cpu_count()} cores\n")
    rows = [run("naive", args.calls, args.seconds), run("ours", args.calls, args.seconds, 1),
            run("ours", args.calls, args.seconds, 2)]
    naive = rows[0]["cpu_us_per_msg"]
    print(f"{'server':28s} {'sent':>8s} {'written':>8s} {'lost':>5s} {'CPU us/msg':>11s} {'vs naive':>9s} {'(streaming)':>11s} {'p99 to disk':>12s} {'late ticks':>10s}")
    for r in rows:
        name = "naive reference" if r["kind"] == "naive" else f"telnyx-audio capture x{r['workers']}"
        p99 = f"{r['p99_us']:.0f} us" if r["p99_us"] is not None else "-"
        print(f"{name:28s} {r['sent']:8d} {r['written']:8d} {r['sent'] - r['written']:5d} {r['cpu_us_per_msg']:11.1f}"
              f" {r['cpu_us_per_msg'] / naive:8.2f}x {r['streaming_us_per_msg']:11.1f} {p99:>12s} {r['late']:10d}"
              + (f"  failed calls: {r['failed']} {r['errors']}" if r["failed"] else ""))
    ours = rows[1]
    print(f"\ntargets: zero lost at {args.calls} calls: {'met' if ours['sent'] == ours['written'] and rows[2]['sent'] == rows[2]['written'] else 'NOT met'};"
          f" CPU per message <= 1.25x naive: {'met' if ours['cpu_us_per_msg'] <= 1.25 * naive else 'NOT met'}"
          f" ({ours['cpu_us_per_msg'] / naive:.2f}x)")


if __name__ == "__main__":
    main()
