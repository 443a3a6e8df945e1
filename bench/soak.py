"""Soak: 50 concurrent calls, continuously replaced, over TLS, with metrics scraped every 5 s.

The capture server runs as in production (``telnyx-audio capture --certfile --keyfile
--metrics-port``, a certificate authority and server certificate made for the run). A separate
load process keeps ``--calls`` two-track PCMU calls open at real-time pacing (one 20 ms frame
per track every 20 ms) over ``wss://``, verifying the server's certificate; each call lasts a
random 20-90 s, ends with ``stop`` and is replaced at once by a new one, for ``--minutes``. A
scraper in this process reads ``/metrics`` over HTTPS every 5 s (as Prometheus would) and
samples the server process's resident memory and open file descriptors.

Measured in the same run, first a plain ``ws://`` phase of ``--plain-minutes`` (the baseline),
then the TLS soak. Printed, per phase: media messages sent, written to disk (counted in every
``messages.jsonl``) and counted by ``telnyx_audio_media_messages_total`` (all three must be
equal: 0 frames lost); calls; the server's CPU per media message on the streaming path (the
server process, its finalising workers apart), TLS beside plain; server RSS from minute 2 to the
end (growth, and the peak rise); open file descriptors (min and max after minute 2, flat means
the same at the end as at minute 2 give or take the calls in flight); late ticks of the load.

Targets (issue 21): 0 frames lost; RSS growth under 20 MB from minute 2 to the end; open file
descriptors flat; CPU per message over TLS printed beside plain.

Usage: python bench/soak.py [--minutes 20] [--plain-minutes 3] [--calls 50]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import random
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests"))

from capture_load import cpu_seconds, free_port, raise_fd_limit, serving, settle, tree, wait_listening  # noqa: E402

SCRAPE_S = 5.0
WARMUP_S = 120.0  # "from minute 2 to the end"


# --- the load process ----------------------------------------------------------------------

async def one_slot(url: str, slot: int, deadline: float, ctx: ssl.SSLContext | None, rng: random.Random,
                   result: dict) -> None:
    """Keep one call open until ``deadline``: each lasts 20-90 s, then a new one replaces it."""
    from websockets.asyncio.client import connect
    from websockets.exceptions import WebSocketException

    payload = base64.b64encode(bytes((i * 37 + slot) % 256 for i in range(160))).decode()
    n = 0
    while time.monotonic() < deadline - 1.0:
        n += 1
        stream_id = f"00000000-0000-4000-{slot:04d}-{n:012d}"
        length = min(rng.uniform(20.0, 90.0), deadline - time.monotonic())
        frames = max(1, int(length / 0.02))
        seq = 1
        sent = 0
        try:
            async with connect(url, ssl=ctx, compression=None, max_size=None, open_timeout=60) as ws:
                await ws.send(json.dumps({"event": "connected", "version": "1.0.0"}))
                await ws.send(json.dumps({"event": "start", "sequence_number": "1", "stream_id": stream_id, "start": {
                    "call_control_id": f"v3:soak-{slot}-{n}", "call_session_id": stream_id, "custom_parameters": {},
                    "media_format": {"encoding": "PCMU", "sample_rate": 8000, "channels": 1}}}))
                t0 = time.monotonic()
                for chunk in range(1, frames + 1):
                    delay = t0 + chunk * 0.02 - time.monotonic()
                    if delay > 0:
                        await asyncio.sleep(delay)
                    elif delay < -0.1:
                        result["late"] += 1
                    for track in ("inbound", "outbound"):
                        seq += 1
                        await ws.send(
                            f'{{"event": "media", "sequence_number": "{seq}", "stream_id": "{stream_id}", "media": '
                            f'{{"track": "{track}", "chunk": "{chunk}", "timestamp": "{(chunk - 1) * 20}", '
                            f'"payload": "{payload}"}}}}')
                        sent += 1
                await ws.send(json.dumps({"event": "stop", "sequence_number": str(seq + 1), "stream_id": stream_id,
                                          "stop": {}}))
            result["calls"] += 1
        except (OSError, asyncio.TimeoutError, WebSocketException) as exc:  # a failed call is reported, not fatal
            result["failed"] += 1
            result["errors"].append(repr(exc)[:160])
        result["sent"] += sent
        result["per_stream"][stream_id] = sent


async def load(url: str, calls: int, seconds: float, cafile: str | None) -> dict:
    ctx = ssl.create_default_context(cafile=cafile) if url.startswith("wss://") else None
    result = {"sent": 0, "late": 0, "calls": 0, "failed": 0, "errors": [], "per_stream": {}}
    deadline = time.monotonic() + seconds
    rngs = [random.Random(slot) for slot in range(calls)]
    await asyncio.gather(*(one_slot(url, slot, deadline, ctx, rngs[slot], result) for slot in range(calls)))
    result["errors"] = sorted(set(result["errors"]))[:5]
    return result


# --- the harness ---------------------------------------------------------------------------

def rss_kb(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/status").read_text().split("VmRSS:")[1].split()[0])
    except (OSError, IndexError):
        return 0


def open_fds(pid: int) -> int:
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return -1


class Scraper:
    """Every 5 s: /metrics over HTTP(S) (as Prometheus), the server's RSS and open descriptors."""

    def __init__(self, pid: int, metrics_url: str, cafile: str | None) -> None:
        self.pid, self.url, self.verify = pid, metrics_url + "metrics", cafile or True
        self.samples: list[dict] = []
        self.failures: list[str] = []
        self.t0 = time.monotonic()
        self.done = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def scrape(self) -> dict:
        import requests
        from prometheus_client.parser import text_string_to_metric_families

        text = requests.get(self.url, timeout=4, verify=self.verify).text
        out: dict[str, float] = {}
        for family in text_string_to_metric_families(text):
            for s in family.samples:
                if s.name in ("telnyx_audio_media_messages_total", "telnyx_audio_streams_total",
                              "telnyx_audio_streams_active", "telnyx_audio_finalize_queue"):
                    out[s.name] = out.get(s.name, 0.0) + s.value
        return out

    def sample(self) -> None:
        row: dict = {"t": time.monotonic() - self.t0, "rss_kb": rss_kb(self.pid), "fds": open_fds(self.pid)}
        try:
            row.update(self.scrape())
        except OSError as exc:  # requests' errors are OSErrors
            self.failures.append(repr(exc)[:160])
        self.samples.append(row)

    def run(self) -> None:
        while not self.done.wait(SCRAPE_S):
            self.sample()

    def stop(self) -> None:
        self.done.set()
        self.thread.join()
        self.sample()  # the final counts, after every call has been finalised


def written_per_stream(folder: Path) -> dict[str, int]:
    out = {}
    for log in folder.glob("*/messages.jsonl"):
        with open(log, "rb") as f:
            out[log.parent.name] = sum(1 for line in f if b'"event": "media"' in line)
    return out


def phase(name: str, calls: int, seconds: float, certs) -> dict:
    out = Path(tempfile.mkdtemp(prefix=f"soak-{'tls' if certs else 'plain'}-"))
    port, mport = free_port(), free_port()
    tls = certs is not None
    cmd = [sys.executable, "-m", "telnyx_audio", "capture", "--port", str(port), "--out", str(out / "calls"),
           "--metrics-port", str(mport), "--log-level", "warning"]
    if tls:
        cmd += ["--certfile", str(certs.cert), "--keyfile", str(certs.key)]
    server = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=HERE.parent)
    scheme = "https" if tls else "http"
    cafile = str(certs.ca) if tls else None
    try:
        wait_listening(port)
        settle(server.pid, 2)
        receivers = serving(server.pid)
        cpu0 = cpu_seconds(receivers)
        scraper = Scraper(server.pid, f"{scheme}://127.0.0.1:{mport}/", cafile)
        client = subprocess.run([sys.executable, __file__, "--client", f"{'wss' if tls else 'ws'}://127.0.0.1:{port}/",
                                 "--calls", str(calls), "--seconds", str(seconds)] + (["--cafile", cafile] if tls else []),
                                capture_output=True, text=True, timeout=seconds * 3 + 300)
        cpu = cpu_seconds(receivers) - cpu0
        if client.returncode:
            raise SystemExit(f"load process failed: {client.stderr[-2000:]}")
        sent = json.loads(client.stdout.strip().splitlines()[-1])
        n_streams = len(sent["per_stream"])
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and len(list((out / "calls").glob("*/summary.json"))) < n_streams:
            time.sleep(0.5)
        time.sleep(SCRAPE_S)
        scraper.stop()
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=300)
        except subprocess.TimeoutExpired:
            server.kill()
        server.stderr.close()
    written = written_per_stream(out / "calls")
    shutil.rmtree(out)  # some GB: 50 calls write ~6.5 MB per call-minute (bench/disk_per_minute.py)
    short = {s: (n, written.get(s, 0)) for s, n in sent["per_stream"].items() if written.get(s, 0) != n}
    during = [s for s in scraper.samples if WARMUP_S <= s["t"] <= seconds]
    at2, end = (during[0], during[-1]) if during else (scraper.samples[0], scraper.samples[-1])
    return {
        "name": name, "seconds": seconds, "sent": sent["sent"], "written": sum(written.values()),
        "metric": scraper.samples[-1].get("telnyx_audio_media_messages_total"), "calls": sent["calls"],
        "streams_metric": scraper.samples[-1].get("telnyx_audio_streams_total"), "failed": sent["failed"],
        "errors": sent["errors"], "late": sent["late"], "short": dict(list(short.items())[:5]), "n_short": len(short),
        "us_per_msg": cpu / max(sent["sent"], 1) * 1e6, "rss_at2_mb": at2["rss_kb"] / 1024,
        "rss_end_mb": end["rss_kb"] / 1024, "rss_peak_mb": max(s["rss_kb"] for s in during or scraper.samples) / 1024,
        "fds_at2": at2["fds"], "fds_end": end["fds"], "fds_min": min(s["fds"] for s in during or scraper.samples),
        "fds_max": max(s["fds"] for s in during or scraper.samples), "scrapes": len(scraper.samples),
        "scrape_failures": scraper.failures[:3], "n_scrape_failures": len(scraper.failures),
        "rss_series_mb": [round(s["rss_kb"] / 1024, 1) for s in scraper.samples[:: max(1, len(scraper.samples) // 12)]],
    }


def report(rows: list[dict], calls: int) -> None:
    print(f"{'phase':18s} {'min':>5s} {'calls':>6s} {'sent':>9s} {'written':>9s} {'metric':>9s} {'lost':>5s}"
          f" {'CPU us/msg':>11s} {'RSS@2min':>9s} {'RSS end':>8s} {'growth':>7s} {'peak':>7s} {'fds@2':>6s}"
          f" {'fds end':>7s} {'fds min-max':>11s} {'late':>5s}")
    for r in rows:
        print(f"{r['name']:18s} {r['seconds'] / 60:5.1f} {r['calls']:6d} {r['sent']:9d} {r['written']:9d}"
              f" {r['metric'] or 0:9.0f} {r['sent'] - r['written']:5d} {r['us_per_msg']:11.1f}"
              f" {r['rss_at2_mb']:8.1f}M {r['rss_end_mb']:7.1f}M {r['rss_end_mb'] - r['rss_at2_mb']:+6.1f}M"
              f" {r['rss_peak_mb']:6.1f}M {r['fds_at2']:6d} {r['fds_end']:7d} {r['fds_min']:5d}-{r['fds_max']:<5d}"
              f" {r['late']:5d}")
        if r["failed"] or r["n_short"] or r["n_scrape_failures"]:
            print(f"   failed calls {r['failed']} {r['errors']}; streams short on disk {r['n_short']} {r['short']};"
                  f" scrape failures {r['n_scrape_failures']} {r['scrape_failures']}")
        step = max(1, r["scrapes"] // 12) * SCRAPE_S / 60
        print(f"   RSS every {step:.1f} min (MB): {r['rss_series_mb']}; {r['scrapes']} scrapes")
    plain, soak = rows[0], rows[-1]
    lost = sum(r["sent"] - r["written"] + r["n_short"] for r in rows)
    metric_ok = all(r["metric"] == r["written"] for r in rows)
    growth = soak["rss_end_mb"] - soak["rss_at2_mb"]
    fd_band = soak["fds_max"] - soak["fds_min"]
    print(f"\ntargets: 0 frames lost: {'met' if lost == 0 else 'NOT met'} ({lost});"
          f" metrics equal disk: {'yes' if metric_ok else 'NO'};"
          f" RSS growth minute 2 to end < 20 MB: {'met' if growth < 20 else 'NOT met'} ({growth:+.1f} MB);"
          f" fds flat: {'met' if abs(soak['fds_end'] - soak['fds_at2']) <= 2 * calls // 5 + 4 else 'NOT met'}"
          f" (end - minute 2 = {soak['fds_end'] - soak['fds_at2']:+d}; band {fd_band} with {calls} calls in flight)")
    print(f"CPU per media message on the streaming path: TLS {soak['us_per_msg']:.1f} us beside plain"
          f" {plain['us_per_msg']:.1f} us ({soak['us_per_msg'] / plain['us_per_msg']:.2f}x)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--minutes", type=float, default=20.0, help="length of the TLS soak (default 20)")
    ap.add_argument("--plain-minutes", type=float, default=3.0, help="length of the plain baseline (default 3)")
    ap.add_argument("--calls", type=int, default=50)
    ap.add_argument("--client", metavar="URL", help=argparse.SUPPRESS)
    ap.add_argument("--seconds", type=float, help=argparse.SUPPRESS)
    ap.add_argument("--cafile", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.client:
        raise_fd_limit()
        print(json.dumps(asyncio.run(load(args.client, args.calls, args.seconds, args.cafile))))
        return
    from tls_certs import make_certs

    certs = make_certs(Path(tempfile.mkdtemp(prefix="soak-certs-")))
    print(f"{args.calls} concurrent two-track PCMU calls, each 20-90 s then replaced, real-time pacing"
          f" ({args.calls * 100} media messages/s); /metrics scraped every {SCRAPE_S:.0f} s; load from a separate"
          f" process; {os.cpu_count()} cores\n", flush=True)
    rows = [phase("plain ws://", args.calls, args.plain_minutes * 60, None)]
    rows.append(phase("TLS wss:// (soak)", args.calls, args.minutes * 60, certs))
    report(rows, args.calls)


if __name__ == "__main__":
    main()
