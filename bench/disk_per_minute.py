"""Disk sizing: bytes written per call-minute, per codec, by the capture server and the fork
receiver (for docs/deploy.md).

A 60 s two-track call of real speech (the committed recordings in ``data/speech``, laid end to
end with pauses, a different order on each track) is streamed to a real :class:`CaptureServer`
in each codec Telnyx streams (PCMU, PCMA, L16 at 16 kHz, G722, OPUS at 16 kHz; AMR-WB when the
installed FFmpeg can encode it), and forked as RTP (PCMU, PCMA, G722) to a real
:class:`ForkReceiver`. Printed per codec: the bytes of every file kind the call left (the raw
capture, the WAVs, the summary) per call-minute, beside the baseline measured in the same run:
the codec payload bytes themselves (what the call is worth before any framing).

Usage: python bench/disk_per_minute.py
"""

from __future__ import annotations

import base64
import csv
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's package

import numpy as np
import soundfile as sf

from telnyx_audio._util.dsp import resample
from telnyx_audio.codecs.wideband import CodecUnavailableError
from telnyx_audio.forks.receiver import ForkReceiver
from telnyx_audio.simulators.fork import simulate_fork
from telnyx_audio.simulators.stream import simulate
from telnyx_audio.streams.server import CaptureServer

ROOT = Path(__file__).resolve().parents[1]
SECONDS = 60.0


def speech_call(rate: int) -> np.ndarray:
    """(2, 60 s) int16 at ``rate``: [inbound, outbound], speech with 0.5-1.5 s pauses."""
    index = list(csv.DictReader(open(ROOT / "data" / "speech" / "index.csv")))
    clips = []
    for row in index:
        audio, sr = sf.read(ROOT / "data" / "speech" / row["path"], dtype="int16", always_2d=True)
        clips.append(resample(audio[:, 0], sr, rate))
    rng = np.random.default_rng(0)
    tracks = []
    for track in range(2):
        parts, n = [], 0
        for i in rng.permutation(len(clips)) if track else range(len(clips)):
            pause = np.zeros(int(rng.uniform(0.5, 1.5) * rate), np.int16)
            parts += [clips[i], pause]
            n += len(clips[i]) + len(pause)
            if n >= SECONDS * rate:
                break
        tracks.append(np.concatenate(parts)[: int(SECONDS * rate)])
    call = np.stack(tracks)
    return call.astype(np.int16)


def kind(path: Path) -> str:
    if path.suffix == ".wav":
        return "wav"
    if path.name in ("messages.jsonl", "capture.rtpcap") or path.suffix == ".rtpcap":
        return "capture"
    return "other"


def sizes(folder: Path) -> dict[str, int]:
    out = {"capture": 0, "wav": 0, "other": 0}
    for f in folder.rglob("*"):
        if f.is_file():
            out[kind(f)] += f.stat().st_size
    return out


def stream_row(codec: str, rate: int, out: Path) -> dict | None:
    from telnyx_audio.codecs.outbound import encoding_rate

    audio = speech_call(encoding_rate(codec, rate))
    with CaptureServer(out) as srv:
        try:
            simulate(audio, srv.url, codec=codec, sample_rate=rate)
        except CodecUnavailableError as exc:
            return {"name": f"stream {codec}", "skipped": str(exc)}
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not all(i.state in ("done", "error") for i in srv.streams):
            time.sleep(0.05)
    [folder] = [p for p in out.iterdir() if p.is_dir()]
    payload = 0
    for line in open(folder / "messages.jsonl"):
        msg = json.loads(line).get("message")
        if isinstance(msg, dict) and msg.get("event") == "media":
            payload += len(base64.b64decode(msg["media"]["payload"]))
    return {"name": f"stream {codec} {rate // 1000} kHz", "payload": payload, **sizes(folder)}


def fork_row(codec: str, out: Path) -> dict:
    from telnyx_audio.forks.rtpcap import read_records
    from telnyx_audio.simulators.fork import default_rate

    audio = speech_call(16000 if codec == "G722" else default_rate(codec))
    with ForkReceiver(out, allow=["127.0.0.1"]) as receiver:
        call = receiver.allocate("v3:sizing")
        simulate_fork(audio, ("127.0.0.1", call.rx_port), ("127.0.0.1", call.tx_port), codec=codec, speed=50.0)
        time.sleep(0.5)
        receiver.finish(call)
    records = read_records(call.capture_path)
    payload = int(records.length.sum()) - 12 * len(records.length)  # RTP payload: the datagrams less 12-byte headers
    return {"name": f"fork {codec}", "payload": payload, **sizes(call.folder)}


def main() -> None:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for n, (codec, rate) in enumerate([("PCMU", 8000), ("PCMA", 8000), ("L16", 16000), ("G722", 16000),
                                           ("OPUS", 16000), ("AMR-WB", 16000)]):
            rows.append(stream_row(codec, rate, tmp / f"s{n}"))
        for n, codec in enumerate(["PCMU", "PCMA", "G722"]):
            rows.append(fork_row(codec, tmp / f"f{n}"))
    per_min = 60.0 / SECONDS
    print(f"bytes per call-minute (two tracks, {SECONDS:.0f} s of speech with pauses), in kB (1000 B)\n")
    print(f"{'call':20s} {'baseline: payload':>18s} {'raw capture':>12s} {'x payload':>10s} {'WAVs':>8s}"
          f" {'summary etc.':>13s} {'total':>8s}")
    for r in rows:
        if "skipped" in r:
            print(f"{r['name']:20s} skipped: {r['skipped'][:90]}")
            continue
        total = r["capture"] + r["wav"] + r["other"]
        print(f"{r['name']:20s} {r['payload'] * per_min / 1e3:18.0f} {r['capture'] * per_min / 1e3:12.0f}"
              f" {r['capture'] / r['payload']:10.2f} {r['wav'] * per_min / 1e3:8.0f} {r['other'] * per_min / 1e3:13.1f}"
              f" {total * per_min / 1e3:8.0f}")


if __name__ == "__main__":
    main()
