"""Benchmark: one hour of two-track PCMU, from the capture file to aligned int16 audio.

Writes bench/_work/hour.jsonl (180,000 media messages per track, Telnyx's message shape),
then times in this one run, each in fresh processes pinned to one core:

  (a) the per-message path peers use: json.loads + base64.b64decode + audioop.ulaw2lin for
      every message, then join each track;
  (b) telnyx_audio.read_capture: the file to the aligned (2, n) int16 array;

and, as whole processes (interpreter start and imports included), the CLI
``telnyx-audio decode`` (which writes inbound, outbound and stereo WAVs and summary.json)
against a per-message script that writes the stereo WAV only.

Targets (issue #9, with every slow-path rule in place: JSON escapes, range checks, the
stream split, the G.711 law check): (b) about 5x faster than (a); the CLI at least 2.5x
faster than the script; peak memory of (b) under 3x the capture file's size.

Usage: python bench/decode.py [--minutes 60] [--repeat 3]
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
WORK = HERE / "_work"

PER_MESSAGE = r"""
import audioop, base64, json, sys, time, zlib
import numpy as np
t0 = time.perf_counter()
tracks = {"inbound": [], "outbound": []}
with open(sys.argv[1], "rb") as f:
    for line in f:
        msg = json.loads(line)
        if msg.get("event") == "media":
            m = msg["media"]
            tracks[m["track"]].append(audioop.ulaw2lin(base64.b64decode(m["payload"]), 2))
a = np.frombuffer(b"".join(tracks["inbound"]), np.int16)
b = np.frombuffer(b"".join(tracks["outbound"]), np.int16)
audio = np.stack([a, b])
print(time.perf_counter() - t0, audio.shape[1], zlib.crc32(audio[:, ::7].tobytes()))
"""

OURS = r"""
import resource, sys, time, zlib
import numpy as np
from telnyx_audio.read import read_capture
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t0 = time.perf_counter()
audio = read_capture(sys.argv[1]).recording.audio
dt = time.perf_counter() - t0
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(dt, audio.shape[1], zlib.crc32(audio[:, ::7].tobytes()), (peak - base) * 1024)
"""

SCRIPT_WAV = r"""
import audioop, base64, json, sys
import numpy as np, soundfile
tracks = {"inbound": [], "outbound": []}
with open(sys.argv[1], "rb") as f:
    for line in f:
        msg = json.loads(line)
        if msg.get("event") == "media":
            m = msg["media"]
            tracks[m["track"]].append(audioop.ulaw2lin(base64.b64decode(m["payload"]), 2))
a = np.frombuffer(b"".join(tracks["inbound"]), np.int16)
b = np.frombuffer(b"".join(tracks["outbound"]), np.int16)
soundfile.write(sys.argv[2], np.stack([a, b], axis=1), 8000, subtype="PCM_16")
"""


def voice_like(n: int, seed: int) -> np.ndarray:
    """Speech-like int16 audio: voiced harmonics under a syllable envelope, with pauses."""
    rng = np.random.default_rng(seed)
    t = np.arange(n) / 8000.0
    f0 = 110 + 40 * np.sin(2 * np.pi * 0.3 * t + seed)
    phase = 2 * np.pi * np.cumsum(f0) / 8000.0
    voiced = sum(np.sin(k * phase) / k for k in range(1, 12))
    envelope = np.clip(np.sin(2 * np.pi * 2.5 * t), 0, None) * (np.sin(2 * np.pi * 0.05 * t + seed) > -0.3)
    noise = rng.normal(0, 0.01, n)
    return np.clip((0.25 * voiced * envelope + noise) * 32767, -32768, 32767).astype(np.int16)


def write_capture(path: Path, minutes: int) -> None:
    import audioop

    frames = minutes * 60 * 50
    stream_id = "32DE0DEA-53CB-4B21-89A4-9E1819C043BC"
    tracks = {name: voice_like(frames * 160, seed) for seed, name in enumerate(("inbound", "outbound"))}
    encoded = {name: audioop.lin2ulaw(pcm.tobytes(), 2) for name, pcm in tracks.items()}
    seq = 1
    with open(path, "w") as f:
        f.write(json.dumps({"event": "connected", "version": "1.0.0"}) + "\n")
        start = {
            "user_id": "3E6F995F-85F7-4705-9741-53B116D28237",
            "call_control_id": "v2:T02llQxIyaRkhfRKxgAP8nY511EhFLizdvdUKJiSw8d6A9BborherQ",
            "call_session_id": "ff55a038-4f8a-11ee-a1d8-02420a0f7b68",
            "from": "+13122010094",
            "to": "+13122123456",
            "tags": ["bench"],
            "client_state": "aGF2ZSBhIG5pY2UgZGF5ID1d",
            "custom_parameters": {"customer_id": "customer_123"},
            "media_format": {"encoding": "PCMU", "sample_rate": 8000, "channels": 1},
        }
        f.write(json.dumps({"event": "start", "sequence_number": str(seq), "stream_id": stream_id, "start": start}) + "\n")
        for i in range(frames):
            for name in ("inbound", "outbound"):
                seq += 1
                payload = base64.b64encode(encoded[name][i * 160 : (i + 1) * 160]).decode()
                media = {"track": name, "chunk": str(i + 1), "timestamp": str(i * 20), "payload": payload}
                f.write(json.dumps({"event": "media", "sequence_number": str(seq), "stream_id": stream_id, "media": media}) + "\n")
        f.write(json.dumps({"event": "stop", "sequence_number": str(seq + 1), "stream_id": stream_id, "stop": {}}) + "\n")


def run(code: str, *args: str) -> list[str]:
    """Run Python code in a fresh process pinned to CPU 0; return its printed fields."""
    cmd = ["taskset", "-c", "0", sys.executable, "-c", code, *args]
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", PYTHONWARNINGS="ignore")
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env)
    return out.stdout.split()


def wall(cmd: list[str]) -> float:
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    t0 = time.perf_counter()
    subprocess.run(["taskset", "-c", "0", *cmd], check=True, capture_output=True, env=env)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--minutes", type=int, default=60)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    WORK.mkdir(exist_ok=True)
    capture = WORK / f"call-{args.minutes}min.jsonl"
    if not capture.exists():
        print(f"writing {capture} ...", flush=True)
        write_capture(capture, args.minutes)
    size = capture.stat().st_size
    audio_s = args.minutes * 60.0
    print(f"capture: {capture.name}, {size / 1e6:.1f} MB, {args.minutes * 60 * 50 * 2} media messages, {audio_s:.0f} s of audio")

    per_msg, ours, peaks = [], [], []
    for _ in range(args.repeat):  # alternate, so both see the same machine state
        t, n_a, h_a = run(PER_MESSAGE, str(capture))
        per_msg.append(float(t))
        t, n_b, h_b, peak = run(OURS, str(capture))
        ours.append(float(t))
        peaks.append(int(peak))
        if (n_a, h_a) != (n_b, h_b):
            raise SystemExit("the two paths disagree on the audio: benchmark void")
    a, b = min(per_msg), min(ours)
    print("\n(a) vs (b), one core, best of", args.repeat, "(median in brackets)")
    print(f"  (a) per-message json+b64+audioop : {a:7.3f} s  [{statistics.median(per_msg):.3f}]  realtime x{audio_s / a:,.0f}")
    print(f"  (b) telnyx_audio.read_capture    : {b:7.3f} s  [{statistics.median(ours):.3f}]  realtime x{audio_s / b:,.0f}")
    print(f"  speed-up (a)/(b)                 : {a / b:7.1f} x   (target about 5x)")
    peak = max(peaks)
    print(f"  peak memory of (b)               : {peak / 1e6:7.1f} MB = {peak / size:.2f} x the file   (target < 3x)")

    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "per_message_wav.py"
        script.write_text(SCRIPT_WAV)
        cli = [sys.executable, "-m", "telnyx_audio", "decode", str(capture), "--out", str(Path(tmp) / "out")]
        naive = [sys.executable, str(script), str(capture), str(Path(tmp) / "naive.wav")]
        t_cli, t_naive = [], []
        for _ in range(args.repeat):
            t_naive.append(wall(naive))
            t_cli.append(wall(cli))
    c, s = min(t_cli), min(t_naive)
    print("\nwhole processes, wall clock, best of", args.repeat)
    print(f"  per-message script (stereo WAV)  : {s:7.3f} s")
    print(f"  telnyx-audio decode (3 WAVs+json): {c:7.3f} s")
    print(f"  speed-up                         : {s / c:7.1f} x   (target >= 2.5x)")


if __name__ == "__main__":
    main()
