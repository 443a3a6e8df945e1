"""Benchmark: many concurrent two-track calls, at real-time pacing, against the capture server.

A separate load process opens N WebSocket streams and sends each call's two tracks as Telnyx
does: one 20 ms PCMU frame per track every 20 ms, after ``connected`` and ``start``, then
``stop``. Measured in the same run:

- the capture server (``telnyx-audio capture``) with 1 and with 2 workers (SO_REUSEPORT);
- a naive reference server on the same websockets version: ``json.loads`` +
  ``base64.b64decode`` + a file write per message, nothing else.

Printed: media messages sent and written (they must be equal: zero lost); server CPU seconds
per media message on the streaming path (read from /proc: the server process(es) only, from
before the first connection until the last call has sent ``stop``; the finalising worker
processes and the time after the calls are left out), its ratio to the naive server's over the
same window; the whole process tree's CPU per message until every stream's WAVs and summary
are written (including finalising: decoding, WAVs, summaries in the bounded worker pool); the
p99 time from receipt to the line being flushed to disk; and whether the load generator kept
real time.

Targets: zero lost at 100 calls on 2 cores; CPU per message on the streaming path at most
1.25x the naive server's (the developers' guide: finalising is extra work and belongs in a
bounded pool, so it is reported, not compared).

The hostile phase (issue 13) runs the same real calls against the server with a token, once
alone (the baseline) and once while a separate attack process keeps up, from other loopback
addresses (127.0.0.2 and up): 1,000 silent sockets (reopened as the server closes them), 20
pre-start flooders (authenticated, 8 KiB messages and never a ``start``, reconnecting when
cut) and 10 streams whose every frame jumps 10 minutes ahead. Printed: frames lost among the
real calls (target 0), the server's peak RSS (target under 500 MB; its finalising workers
apart), the delay from each real call's ``stop`` to its ``summary.json`` (median and worst),
and what the attackers met.

Usage: python bench/capture_load.py [--calls 100] [--seconds 20] [--phase all|load|hostile]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import resource
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
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

TOKEN = "bench-token-not-a-secret"


async def one_call(url: str, n: int, seconds: float, t0: float, result: dict, token: str | None = None) -> None:
    from websockets.asyncio.client import connect

    stream_id = f"00000000-0000-4000-8000-{n:012d}"
    payload = base64.b64encode(bytes((i * 37 + n) % 256 for i in range(160))).decode()
    seq = 1
    headers = {"x-telnyx-streaming-auth-token": token} if token else None
    async with connect(url, compression=None, max_size=None, open_timeout=60, additional_headers=headers) as ws:
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
        result.setdefault("stopped_at", {})[stream_id] = time.time()


async def load(url: str, calls: int, seconds: float, token: str | None = None) -> dict:
    result = {"sent": 0, "late": 0, "failed": 0}
    t0 = time.monotonic() + 1.0 + calls * 0.005  # connect everyone first, then start the clock
    outcomes = await asyncio.gather(*(one_call(url, n, seconds, t0, result, token) for n in range(calls)),
                                    return_exceptions=True)
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


def finalisers(pids: list[int]) -> set[int]:
    """The capture server's finalising worker processes among ``pids``."""
    found = set()
    for p in pids:
        try:
            if b"telnyx_audio.streams.server._worker" in Path(f"/proc/{p}/cmdline").read_bytes():
                found.add(p)
        except OSError:
            pass
    return found


def serving(pid: int) -> list[int]:
    """The processes of a server's tree that receive and write streams (its finalisers left out)."""
    pids = tree(pid)
    workers = finalisers(pids)
    return [p for p in pids if p not in workers]


def wait_listening(port: int, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise SystemExit(f"server on port {port} did not start")


def settle(pid: int, processes: int, timeout: float = 60) -> None:
    """Wait until the server's process tree has started and its CPU use has stopped rising."""
    deadline = time.monotonic() + timeout
    last = cpu_seconds(tree(pid))
    while time.monotonic() < deadline:
        time.sleep(0.5)
        now = cpu_seconds(tree(pid))
        if len(tree(pid)) >= processes and now - last < 0.02:
            return
        last = now


def run(kind: str, calls: int, seconds: float, workers: int = 1) -> dict:
    out = Path(tempfile.mkdtemp(prefix=f"load-{kind}-"))
    port = free_port()
    stats = out / "stats.json"
    if kind == "naive":
        cmd = [sys.executable, "-c", NAIVE_SERVER, str(out), str(port)]
    else:
        cmd = [sys.executable, "-m", "telnyx_audio", "capture", "--port", str(port), "--out", str(out / "captures"),
               "--workers", str(workers), "--stats", str(stats), "--log-level", "warning"]
    server = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        wait_listening(port)
        # ours: each server process and the finalising worker it starts at once, started and idle
        settle(server.pid, 1 if kind == "naive" else 2 if workers == 1 else 1 + workers * 2)
        pids = tree(server.pid)
        cpu0 = cpu_seconds(pids)
        receivers = serving(server.pid)  # the streaming path: the server process(es), not the finalisers
        cpu0_streaming = cpu_seconds(receivers)
        client = subprocess.run([sys.executable, __file__, "--client", f"ws://127.0.0.1:{port}/",
                                 "--calls", str(calls), "--seconds", str(seconds)],
                                capture_output=True, text=True, timeout=seconds * 4 + 120)
        cpu_streaming = cpu_seconds(receivers) - cpu0_streaming  # as the last call has sent stop
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


# --- the hostile phase ----------------------------------------------------------------------

def raise_fd_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


async def attack(port: int, seconds: float, silent: int, flooders: int, gappy: int) -> dict:
    """Attack the server from 127.0.0.2 and up for ``seconds``; returns what the attackers met."""
    from websockets.asyncio.client import connect

    stats = {"silent_connects": 0, "silent_503": 0, "silent_closed_by_server": 0, "connect_errors": 0,
             "flood_connects": 0, "flood_bytes": 0, "flood_cut": 0, "gap_streams_sent": 0, "gap_errors": 0}
    end = time.monotonic() + seconds
    source = lambda n: f"127.0.0.{2 + n % 10}"  # noqa: E731 - ten addresses, as from ten machines

    async def one_silent(n: int) -> None:
        while time.monotonic() < end:
            try:
                reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(source(n), 0))
            except OSError:
                stats["connect_errors"] += 1
                await asyncio.sleep(0.5)
                continue
            stats["silent_connects"] += 1
            try:
                data = await asyncio.wait_for(reader.read(), max(end - time.monotonic(), 0.01))
                if data.startswith(b"HTTP/1.1 503"):
                    stats["silent_503"] += 1
                    await asyncio.sleep(0.5)
                else:
                    stats["silent_closed_by_server"] += 1
            except (asyncio.TimeoutError, OSError):
                pass
            writer.close()

    async def one_flooder(n: int) -> None:
        message = json.dumps({"event": "martian", "fill": "z" * 8192})
        while time.monotonic() < end:
            try:
                async with connect(f"ws://127.0.0.1:{port}/", compression=None, open_timeout=20,
                                   additional_headers={"x-telnyx-streaming-auth-token": TOKEN}) as ws:
                    stats["flood_connects"] += 1
                    while time.monotonic() < end:
                        await ws.send(message)
                        stats["flood_bytes"] += len(message)
            except Exception:  # noqa: BLE001 - cut by the server (or its 503): reconnect
                stats["flood_cut"] += 1
                await asyncio.sleep(0.2)

    async def one_gappy(n: int) -> None:
        sid = f"gaps-{n:04d}"
        payload = base64.b64encode(bytes(160)).decode()
        try:
            async with connect(f"ws://127.0.0.1:{port}/", compression=None, open_timeout=20,
                               additional_headers={"x-telnyx-streaming-auth-token": TOKEN}) as ws:
                await ws.send(json.dumps({"event": "start", "stream_id": sid, "start": {
                    "call_control_id": f"v3:{sid}", "media_format": {"encoding": "PCMU", "sample_rate": 8000}}}))
                for i in range(200):  # every frame 10 minutes after the last
                    for track in ("inbound", "outbound"):
                        await ws.send(json.dumps({"event": "media", "stream_id": sid, "media": {
                            "track": track, "chunk": str(1 + i * 30_000), "timestamp": str(i * 600_000),
                            "payload": payload}}))
                    await asyncio.sleep(min(0.02, max(seconds - 2, 0) / 200))
                await ws.send(json.dumps({"event": "stop", "stream_id": sid, "stop": {}}))
                stats["gap_streams_sent"] += 1
        except Exception:  # noqa: BLE001
            stats["gap_errors"] += 1

    await asyncio.gather(*(one_silent(n) for n in range(silent)), *(one_flooder(n) for n in range(flooders)),
                         *(one_gappy(n) for n in range(gappy)))
    return stats


class Peak:
    """Polls a process tree's resident memory: the server's own peak, and its children's."""

    def __init__(self, pid: int) -> None:
        self.pid, self.server_kb, self.children_kb = pid, 0, 0
        self.done = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    @staticmethod
    def rss_kb(pid: int) -> int:
        try:
            return int(Path(f"/proc/{pid}/status").read_text().split("VmRSS:")[1].split()[0])
        except (OSError, IndexError):
            return 0

    def run(self) -> None:
        while not self.done.wait(0.2):
            self.server_kb = max(self.server_kb, self.rss_kb(self.pid))
            self.children_kb = max(self.children_kb, max((self.rss_kb(p) for p in tree(self.pid)[1:]), default=0))
        try:
            hwm = int(Path(f"/proc/{self.pid}/status").read_text().split("VmHWM:")[1].split()[0])
            self.server_kb = max(self.server_kb, hwm)
        except (OSError, IndexError):
            pass

    def stop(self) -> None:
        self.done.set()
        self.thread.join()


def run_hostile(calls: int, seconds: float, attacked: bool) -> dict:
    raise_fd_limit()
    out = Path(tempfile.mkdtemp(prefix="load-hostile-"))
    port = free_port()
    errlog = open(out / "server.log", "w")
    server = subprocess.Popen([sys.executable, "-m", "telnyx_audio", "capture", "--port", str(port), "--out",
                               str(out / "captures"), "--auth-token", TOKEN, "--log-level", "info"],
                              stdout=subprocess.DEVNULL, stderr=errlog, text=True)
    peak = Peak(server.pid)
    attacker = None
    try:
        wait_listening(port)
        time.sleep(1.0)
        client = subprocess.Popen([sys.executable, __file__, "--client", f"ws://127.0.0.1:{port}/", "--calls", str(calls),
                                   "--seconds", str(seconds), "--token", TOKEN], stdout=subprocess.PIPE, text=True)
        if attacked:
            time.sleep(1.5 + calls * 0.005)  # the real calls are connected and streaming
            attacker = subprocess.Popen([sys.executable, __file__, "--attack", str(port), "--seconds", str(seconds - 1)],
                                        stdout=subprocess.PIPE, text=True)
        stdout, _ = client.communicate(timeout=seconds * 4 + 120)
        sent = json.loads(stdout.strip().splitlines()[-1])
        attack_stats = json.loads(attacker.communicate(timeout=seconds * 4 + 120)[0].strip().splitlines()[-1]) \
            if attacker else {}
        real = {sid: out / "captures" / sid / "summary.json" for sid in sent.get("stopped_at", {})}
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not all(p.exists() for p in real.values()):
            time.sleep(0.1)
        delays = [p.stat().st_mtime - sent["stopped_at"][sid] for sid, p in real.items() if p.exists()]
    finally:
        if attacker is not None and attacker.poll() is None:
            attacker.kill()
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=seconds * 10 + 120)
        except subprocess.TimeoutExpired:
            server.kill()
        peak.stop()
        errlog.close()
    written = sum(sum(1 for line in open(out / "captures" / sid / "messages.jsonl", "rb") if b'"event": "media"' in line)
                  for sid in real if (out / "captures" / sid / "messages.jsonl").exists())
    gap_summaries = [json.loads(p.read_text()) for p in (out / "captures").glob("gaps-*/summary.json")]
    log_text = (out / "server.log").read_text()
    return {"attacked": attacked, "sent": sent["sent"], "written": written, "failed": sent["failed"],
            "errors": sent.get("errors"), "late": sent["late"], "server_mb": peak.server_kb / 1000,
            "workers_mb": peak.children_kb / 1000, "summaries": len(delays), "calls": calls,
            "delay_p50": statistics.median(delays) if delays else None, "delay_max": max(delays, default=None),
            "attack": attack_stats, "refusal_lines": log_text.count(" refused "),
            "gap_summaries": len(gap_summaries), "gap_errors": sum(1 for g in gap_summaries if g.get("error")),
            "token_in_log": TOKEN in log_text}


def hostile_report(calls: int, seconds: float) -> None:
    print(f"\nhostile phase: {calls} real two-track calls of {seconds:.0f} s (auth token), alone and while 1,000 silent"
          " sockets, 20 pre-start flooders and 10 streams of 10-minute gaps attack from 127.0.0.2-11\n")
    rows = [run_hostile(calls, seconds, False), run_hostile(calls, seconds, True)]
    print(f"{'real calls':24s} {'sent':>8s} {'written':>8s} {'lost':>5s} {'server peak RSS':>16s} {'finalisers':>11s}"
          f" {'summaries':>10s} {'stop->summary p50':>18s} {'max':>7s}")
    for r in rows:
        name = "under attack" if r["attacked"] else "alone (baseline)"
        p50 = f"{r['delay_p50']:.2f} s" if r["delay_p50"] is not None else "-"
        worst = f"{r['delay_max']:.2f} s" if r["delay_max"] is not None else "-"
        print(f"{name:24s} {r['sent']:8d} {r['written']:8d} {r['sent'] - r['written']:5d} {r['server_mb']:13.0f} MB"
              f" {r['workers_mb']:8.0f} MB {r['summaries']:6d}/{r['calls']:<3d} {p50:>18s} {worst:>7s}"
              + (f"  failed calls: {r['failed']} {r['errors']}" if r["failed"] else ""))
    a = rows[1]
    s = a["attack"]
    print(f"\nthe attackers met: {s.get('silent_connects', 0)} silent connections ({s.get('silent_503', 0)} answered 503 at"
          f" once, {s.get('silent_closed_by_server', 0)} closed at the deadline), {s.get('connect_errors', 0)} connect"
          f" errors; {s.get('flood_connects', 0)} flood connections cut after {s.get('flood_bytes', 0) / 1e6:.1f} MB in all;"
          f" {s.get('gap_streams_sent', 0)} gap streams sent, {a['gap_summaries']} summarised"
          f" ({a['gap_errors']} with an error); {a['refusal_lines']} refusal lines logged;"
          f" token in the log: {'YES' if a['token_in_log'] else 'no'}")
    print(f"targets: 0 frames lost among the real calls under attack: {'met' if a['sent'] == a['written'] and not a['failed'] else 'NOT met'}"
          f" ({a['sent'] - a['written']}); server peak RSS under 500 MB: {'met' if a['server_mb'] < 500 else 'NOT met'}"
          f" ({a['server_mb']:.0f} MB)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--calls", type=int, default=100)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--phase", choices=("all", "load", "hostile"), default="all")
    ap.add_argument("--client", metavar="URL", help=argparse.SUPPRESS)
    ap.add_argument("--token", help=argparse.SUPPRESS)
    ap.add_argument("--attack", metavar="PORT", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.client:
        raise_fd_limit()
        print(json.dumps(asyncio.run(load(args.client, args.calls, args.seconds, args.token))))
        return
    if args.attack:
        raise_fd_limit()
        print(json.dumps(asyncio.run(attack(args.attack, args.seconds, silent=1000, flooders=20, gappy=10))))
        return
    if args.phase == "hostile":
        hostile_report(args.calls, args.seconds)
        return
    print(f"{args.calls} concurrent two-track calls, {args.seconds:.0f} s of real-time audio each "
          f"({args.calls * 100} media messages/s), load from a separate process, {os.cpu_count()} cores\n")
    rows = [run("naive", args.calls, args.seconds), run("ours", args.calls, args.seconds, 1),
            run("ours", args.calls, args.seconds, 2)]
    naive = rows[0]["streaming_us_per_msg"]
    naive_all = rows[0]["cpu_us_per_msg"]
    print(f"{'server':28s} {'sent':>8s} {'written':>8s} {'lost':>5s} {'CPU us/msg streaming':>21s} {'vs naive':>9s}"
          f" {'incl. finalising':>17s} {'vs naive':>9s} {'p99 to disk':>12s} {'late ticks':>10s}")
    for r in rows:
        name = "naive reference" if r["kind"] == "naive" else f"telnyx-audio capture x{r['workers']}"
        p99 = f"{r['p99_us']:.0f} us" if r["p99_us"] is not None else "-"
        print(f"{name:28s} {r['sent']:8d} {r['written']:8d} {r['sent'] - r['written']:5d}"
              f" {r['streaming_us_per_msg']:21.1f} {r['streaming_us_per_msg'] / naive:8.2f}x"
              f" {r['cpu_us_per_msg']:17.1f} {r['cpu_us_per_msg'] / naive_all:8.2f}x {p99:>12s} {r['late']:10d}"
              + (f"  failed calls: {r['failed']} {r['errors']}" if r["failed"] else ""))
    ours = rows[1]
    ratio = ours["streaming_us_per_msg"] / naive
    print(f"\ntargets: zero lost at {args.calls} calls: {'met' if ours['sent'] == ours['written'] and rows[2]['sent'] == rows[2]['written'] else 'NOT met'};"
          f" CPU per message on the streaming path <= 1.25x naive: {'met' if ratio <= 1.25 else 'NOT met'}"
          f" ({ratio:.2f}x)")
    print(f"whole process tree including finalising (WAVs and summaries in the bounded worker pool, not a target):"
          f" {ours['cpu_us_per_msg']:.1f} us/msg, {ours['cpu_us_per_msg'] / naive_all:.2f}x naive")
    if args.phase == "all":
        hostile_report(args.calls, args.seconds)


if __name__ == "__main__":
    main()
