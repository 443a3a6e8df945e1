"""Benchmark: one hour of two-track G722, OPUS and AMR-WB, from the capture file to int16 audio.

For each codec, writes bench/_work/wideband-<codec>-<minutes>min.jsonl (Telnyx's message
shape, 20 ms per message, both tracks: 360,000 media messages an hour) and the same
bitstreams as raw files, then times in this one run, each in a fresh process pinned to one
core:

  (ours)   telnyx_audio.read_capture: the capture file to the aligned (2, n) int16 array
           (JSON, base64, ordering, stateful decode in stream order included);
  (ffmpeg) the ``ffmpeg`` command decoding the same two bitstreams from raw files
           (.g722, Ogg Opus, .amr storage format) to s16le, nothing else;
  (decoder) our decoders alone on those raw bitstreams, in process (what ours costs beyond
           it is JSON, base64 and ordering). For AMR-WB this is opencore-amrwb, the 3GPP
           reference decoder (comfort noise for SID frames, concealment); the ``ffmpeg``
           command uses FFmpeg's own amrwb decoder, about twice as fast, which refuses SID
           frames and leaves lost or NO_DATA frames as zeros.

Times are CPU seconds (user + system) of each process: on a machine shared with other work
the wall clock measures the neighbours; it is printed too. Targets: ours within 1.5x of
ffmpeg; peak memory of ours (RSS growth) under 3x the capture
file. The bitstreams: a minute of speech-like audio per track encoded by the ``ffmpeg``
command (g722, libopus 16 kHz 20 ms) and the VisualOn AMR-WB encoder (libvo-amrwbenc0,
mode 8, via ctypes), repeated to the length asked for.

Usage: python bench/wideband.py [--minutes 60] [--repeat 3] [--codecs G722,OPUS,AMR-WB]
"""

from __future__ import annotations

import argparse
import base64
import ctypes
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
WORK = HERE / "_work"
sys.path.insert(0, str(HERE.parent))

OURS = r"""
import resource, sys, time, zlib
import numpy as np
from telnyx_audio.read import read_capture
import av  # imported before the baseline RSS: the decoders' library is not the capture's cost
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t0, c0 = time.perf_counter(), time.process_time()
cap = read_capture(sys.argv[1])
audio = cap.recording.audio
cpu, dt = time.process_time() - c0, time.perf_counter() - t0
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
if cap.error:
    raise SystemExit(cap.error)
print(cpu, dt, audio.shape[1], zlib.crc32(audio[:, ::7].tobytes()), (peak - base) * 1024)
"""


DECODER = r"""
import sys, time
import numpy as np
import av
from telnyx_audio.codecs import wideband
codec, paths = sys.argv[1], sys.argv[2:]
inputs = []
for path in paths:  # read and demux before the clock starts: the decoder alone is timed
    if codec == "OPUS":
        with av.open(path) as c:
            packets = [bytes(p) for p in c.demux(audio=0) if p.size]
        raw = np.frombuffer(b"".join(packets), np.uint8)
        nb = np.array([len(p) for p in packets], np.int64)
        inputs.append((raw, np.concatenate(([0], np.cumsum(nb)[:-1])), nb))
    else:
        inputs.append(open(path, "rb").read()[9 if codec == "AMR-WB" else 0:])
c0 = time.process_time()
for item in inputs:
    dec = wideband.make_decoder(codec, 16000)
    if codec == "OPUS":
        raw, starts, nb = item
        out = np.empty(320 * nb.size, np.int16)
        dec.decode_run(out, raw, starts, nb, np.full(nb.size, 320, np.int64))
    else:
        frames = dec._ctx.decode(av.Packet(item))
print(time.process_time() - c0)
"""


def voice_like(n: int, rate: int, seed: int) -> np.ndarray:
    """Speech-like int16 audio: voiced harmonics under a syllable envelope, with pauses."""
    rng = np.random.default_rng(seed)
    t = np.arange(n) / rate
    f0 = 110 + 40 * np.sin(2 * np.pi * 0.3 * t + seed)
    phase = 2 * np.pi * np.cumsum(f0) / rate
    voiced = sum(np.sin(k * phase) / k for k in range(1, 24))
    envelope = np.clip(np.sin(2 * np.pi * 2.5 * t), 0, None) * (np.sin(2 * np.pi * 0.05 * t + seed) > -0.3)
    noise = rng.normal(0, 0.01, n)
    return np.clip((0.25 * voiced * envelope + noise) * 32767, -32768, 32767).astype(np.int16)


def ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", *args], check=True)


def segment_packets(codec: str, pcm: np.ndarray, tag: str) -> list[bytes]:
    """One minute of audio encoded by an independent encoder: the packets (payload bodies)."""
    raw = WORK / f"{tag}.raw"
    pcm.tofile(raw)
    src = ["-f", "s16le", "-ar", "16000", "-ac", "1", "-i", str(raw)]
    if codec == "G722":
        out = WORK / f"{tag}.g722"
        ffmpeg(*src, "-c:a", "g722", "-f", "g722", str(out))
        data = out.read_bytes()
        return [data[i : i + 160] for i in range(0, len(data) - 159, 160)]
    if codec == "OPUS":
        import av

        out = WORK / f"{tag}.ogg"
        ffmpeg(*src, "-c:a", "libopus", "-b:a", "24k", "-application", "voip", "-frame_duration", "20", str(out))
        with av.open(str(out)) as container:
            return [bytes(p) for p in container.demux(audio=0) if p.size]
    lib = ctypes.CDLL("libvo-amrwbenc.so.0")  # apt-get install -y libvo-amrwbenc0
    lib.E_IF_init.restype = ctypes.c_void_p
    lib.E_IF_encode.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int]
    lib.E_IF_exit.argtypes = [ctypes.c_void_p]
    state, buf, frames = lib.E_IF_init(), (ctypes.c_ubyte * 64)(), []
    for i in range(0, pcm.size - 319, 320):
        block = np.ascontiguousarray(pcm[i : i + 320])
        frames.append(bytes(buf[: lib.E_IF_encode(state, 8, block.ctypes.data, buf, 0)]))
    lib.E_IF_exit(state)
    return frames


def write_raw(codec: str, packets: list[bytes], path: Path) -> None:
    """The bitstream as the file ffmpeg reads: raw G.722, Ogg Opus, or AMR-WB storage format."""
    if codec == "G722":
        path.write_bytes(b"".join(packets))
    elif codec == "AMR-WB":
        path.write_bytes(b"#!AMR-WB\n" + b"".join(packets))
    else:
        import av

        template = WORK / f"{path.stem}-template.ogg"
        ffmpeg("-f", "lavfi", "-i", "anullsrc=r=16000:cl=mono", "-t", "0.1", "-c:a", "libopus", str(template))
        with av.open(str(template)) as src, av.open(str(path), "w", format="ogg") as dst:
            stream = dst.add_stream_from_template(src.streams.audio[0])
            for i, body in enumerate(packets):
                packet = av.Packet(body)
                packet.stream, packet.time_base = stream, stream.time_base
                packet.pts = packet.dts = i * 960 * stream.time_base.denominator // (48000 * stream.time_base.numerator or 1)
                dst.mux(packet)


def payloads_for(codec: str, packets: list[bytes]) -> list[bytes]:
    if codec != "AMR-WB":
        return packets
    from telnyx_audio.codecs import amrwb

    return [amrwb.pack([f], "octet-aligned") for f in packets]


def write_capture(codec: str, path: Path, tracks: dict[str, list[bytes]]) -> None:
    stream_id = "32DE0DEA-53CB-4B21-89A4-9E1819C043BC"
    rate = {"G722": 8000, "OPUS": 16000, "AMR-WB": 16000}[codec]  # G722: as Telnyx may report it
    n = min(len(p) for p in tracks.values())
    seq = 1
    with open(path, "w") as f:
        f.write(json.dumps({"event": "connected", "version": "1.0.0"}) + "\n")
        start = {"call_control_id": "v3:bench", "call_session_id": "ff55a038-4f8a-11ee-a1d8-02420a0f7b68",
                 "custom_parameters": {}, "media_format": {"encoding": codec, "sample_rate": rate, "channels": 1}}
        f.write(json.dumps({"event": "start", "sequence_number": str(seq), "stream_id": stream_id, "start": start}) + "\n")
        for i in range(n):
            for name, packets in tracks.items():
                seq += 1
                media = {"track": name, "chunk": str(i + 1), "timestamp": str(i * 20),
                         "payload": base64.b64encode(packets[i]).decode()}
                f.write(json.dumps({"event": "media", "sequence_number": str(seq), "stream_id": stream_id,
                                    "media": media}) + "\n")
        f.write(json.dumps({"event": "stop", "sequence_number": str(seq + 1), "stream_id": stream_id, "stop": {}}) + "\n")


def prepare(codec: str, minutes: int) -> tuple[Path, list[Path]]:
    tag = codec.lower().replace("-", "")
    capture = WORK / f"wideband-{tag}-{minutes}min.jsonl"
    ext = {"G722": "g722", "OPUS": "ogg", "AMR-WB": "amr"}[codec]
    raws = [WORK / f"wideband-{tag}-{minutes}min-{t}.{ext}" for t in ("inbound", "outbound")]
    if capture.exists() and all(r.exists() for r in raws):
        return capture, raws
    seg_s = min(60, minutes * 60)
    tracks = {}
    for seed, (name, raw) in enumerate(zip(("inbound", "outbound"), raws)):
        packets = segment_packets(codec, voice_like(seg_s * 16000, 16000, seed), f"{tag}-{name}")
        packets = (packets * -(-minutes * 60 // seg_s))[: minutes * 60 * 50]
        write_raw(codec, packets, raw)
        tracks[name] = payloads_for(codec, packets)
    write_capture(codec, capture, tracks)
    return capture, raws


def run(code: str, *args: str) -> list[str]:
    """Run Python code in a fresh process pinned to CPU 0; return its printed fields."""
    cmd = ["taskset", "-c", "0", sys.executable, "-c", code, *args]
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", PYTHONWARNINGS="ignore")
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env)
    return out.stdout.split()


def ffmpeg_decode(codec: str, raws: list[Path]) -> tuple[float, float]:
    """CPU seconds (user + system) and wall clock of the ffmpeg command decoding both
    tracks' bitstreams to s16le."""
    fmt = {"G722": ["-f", "g722"], "OPUS": [], "AMR-WB": []}[codec]
    cmd = ["taskset", "-c", "0", "ffmpeg", "-hide_banner", "-loglevel", "error", "-threads", "1"]
    for raw in raws:
        cmd += [*fmt, "-i", str(raw)]
    for i in range(len(raws)):
        cmd += ["-map", f"{i}:a", "-f", "s16le", "-y", "/dev/null"]
    before, t0 = resource.getrusage(resource.RUSAGE_CHILDREN), time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True)
    after, wall = resource.getrusage(resource.RUSAGE_CHILDREN), time.perf_counter() - t0
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), wall


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--minutes", type=int, default=60)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--codecs", default="G722,OPUS,AMR-WB")
    args = ap.parse_args()
    WORK.mkdir(exist_ok=True)
    for codec in args.codecs.split(","):
        capture, raws = prepare(codec, args.minutes)
        size = capture.stat().st_size
        ours, base, peaks, alone, walls = [], [], [], [], {"ours": [], "ffmpeg": []}
        for _ in range(args.repeat):  # alternate, so all see the same machine state
            cpu, wall = ffmpeg_decode(codec, raws)
            base.append(cpu)
            walls["ffmpeg"].append(wall)
            cpu, wall, n, _, peak = run(OURS, str(capture))
            ours.append(float(cpu))
            walls["ours"].append(float(wall))
            peaks.append(int(peak))
            alone.append(float(run(DECODER, codec, *map(str, raws))[0]))
        o, b = min(ours), min(base)
        print(f"\n{codec}: {capture.name}, {size / 1e6:.1f} MB, {args.minutes * 60 * 50 * 2} media messages,"
              f" {int(n) / 16000:.0f} s per track at 16 kHz; one core, CPU seconds (user + system), best of"
              f" {args.repeat} [median] (best wall clock)")
        print(f"  (ffmpeg) decode of the raw bitstreams : {b:7.3f} s  [{statistics.median(base):.3f}]"
              f"  (wall {min(walls['ffmpeg']):.3f} s)")
        print(f"  (ours)   read_capture, file to array  : {o:7.3f} s  [{statistics.median(ours):.3f}]"
              f"  (wall {min(walls['ours']):.3f} s)")
        print(f"  ours / ffmpeg                         : {o / b:7.2f} x   (target <= 1.5x)")
        print(f"  (decoder) our decoder alone, raw file : {min(alone):7.3f} s  [{statistics.median(alone):.3f}]"
              "   (no JSON, base64 or ordering)")
        peak, audio_bytes = max(peaks), 2 * 2 * int(n)
        print(f"  peak memory of ours                   : {peak / 1e6:7.1f} MB = {peak / size:.2f} x the file"
              "   (target < 3x)")
        print(f"    of which the decoded (2, n) int16   : {audio_bytes / 1e6:7.1f} MB = {audio_bytes / size:.2f} x the file")


if __name__ == "__main__":
    main()
