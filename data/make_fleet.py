"""Make a small fleet of captured calls from the example call: varied codecs, lengths, faults.

Run from the repository root: ``python data/make_fleet.py OUT_DIR [--calls N] [--minutes M]``.
The fleet is generated at run time (it is a few megabytes; nothing is committed) and is
deterministic for a given seed. The notebook ``notebooks/05_batch.ipynb`` and
``bench/batch.py`` use it.

Every call is the example call's two real people (the agent Allison Smith, the caller CMU
ARCTIC speaker awb: data/speech/heldout/, licences in data/speech/SOURCES.md), built clean at
16 kHz as ``make_example.parties`` builds them, and rearranged so the fleet has something to find:

- codecs: PCMU, PCMA, L16 at 8 and 16 kHz, G722, OPUS; and two calls forked as RTP
  (``fork<N>/fork.rtpcap``, as the fork receiver records them);
- lengths: from a few seconds to several repeats of the 8-second call (or ``--minutes``);
- parties: the agent answering sooner or later (response latency), speaking more or less
  (talk share), louder, clipped, or under noise (SNR);
- the network: frames lost (gaps), delivered twice, reordered; a stream that vanishes without
  ``stop``;
- and five bad files, one of each kind a batch meets: A-law bytes labelled PCMU (a codec
  mismatch), an encoding we cannot decode, a file cut mid-line, an empty file, and a file that
  is not a capture at all.

Each call's ``call_control_id`` is ``v3:fleet-NNN``; :func:`fleet_webhooks` makes a
``call.hangup`` webhook for most of them (with call quality stats), so the join has something
to join, and some calls have none.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np

from telnyx_audio.simulators.stream import call_messages

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:  # make_example sits beside this file
    sys.path.insert(0, str(HERE))
import make_example  # noqa: E402

BASE_RATE = 16000  # the parties are built at 16 kHz, so wideband calls carry wideband speech
# (encoding, the rate start.media_format reports); G722 reports its RTP clock, 8000.
CODECS = (("PCMU", 8000), ("PCMA", 8000), ("L16", 8000), ("L16", 16000), ("G722", 8000), ("OPUS", 16000))
T0 = datetime(2026, 11, 24, 10, 0, tzinfo=timezone.utc)


def _parties() -> tuple[np.ndarray, list[tuple[float, str]]]:
    """The example call's two clean tracks (2, n) int16 at BASE_RATE, and its DTMF (time, digit)."""
    return make_example.parties(BASE_RATE), list(make_example.DIGITS)


def _shift(track: np.ndarray, seconds: float, rate: int) -> np.ndarray:
    """Delay (positive) or advance a track, keeping its length."""
    n = int(round(seconds * rate))
    out = np.zeros_like(track)
    if n >= 0:
        out[n:] = track[: track.size - n]
    else:
        out[:n] = track[-n:]
    return out


def _to_int16(x: np.ndarray) -> np.ndarray:
    return np.clip(np.round(x), -32768, 32767).astype(np.int16)


def call_audio(base: np.ndarray, rng: np.random.Generator, *, seconds: float, rate: int,
               delay_s: float, agent_gain: float, caller_gain: float, noise_dbfs: float | None) -> np.ndarray:
    """One call's two tracks at ``rate``: the example (at BASE_RATE) repeated or cut to ``seconds``."""
    from scipy.signal import resample_poly

    x = base.astype(np.float64)
    x[1] = _shift(base[1], delay_s, BASE_RATE)
    x[0] *= caller_gain
    x[1] *= agent_gain
    n = int(seconds * BASE_RATE)
    x = np.tile(x, (1, -(-n // x.shape[1])))[:, :n]
    if noise_dbfs is not None:
        x += rng.normal(0, 32768 * 10 ** (noise_dbfs / 20), x.shape)
    pcm = _to_int16(x)
    if rate != BASE_RATE:
        pcm = _to_int16(resample_poly(pcm.astype(np.float64), rate, BASE_RATE, axis=1))
    return pcm


def _lines(timed: list[tuple[float, str]], start_time: datetime, stop: bool, stream_id: str) -> list[str]:
    """Capture lines from the simulator's timed messages; DTMF times made deterministic."""
    out = []
    for when, text in timed:
        if '"dtmf"' in text:
            msg = json.loads(text)
            msg["occurred_at"] = (start_time + timedelta(seconds=when)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            text = json.dumps(msg)
        out.append(text)
    if stop:
        out.append(json.dumps({"event": "stop", "sequence_number": str(len(out)), "stream_id": stream_id, "stop": {}}))
    return out


def make_call(path: Path, index: int, base: np.ndarray, digits: list[tuple[float, str]], rng: np.random.Generator,
              *, seconds: float, codec: str, rate: int, **faults) -> dict:
    """Write one call's capture; returns what went into it."""
    delay_s = float(rng.uniform(-0.4, 1.2))
    gains = (float(rng.uniform(0.5, 1.3)), float(rng.uniform(0.5, 1.3)))
    noise = faults.pop("noise_dbfs", None)
    clip = faults.pop("clip", 1.0)
    from telnyx_audio.codecs.outbound import encoding_rate

    audio = call_audio(base, rng, seconds=seconds, rate=encoding_rate(codec, rate), delay_s=delay_s,
                       caller_gain=gains[0] * clip, agent_gain=gains[1], noise_dbfs=noise)
    stream_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"telnyx-audio-fleet-{index}"))
    repeats = -(-int(seconds) // 8)
    dtmf = [(t + 8 * k, d) for k in range(repeats) for t, d in digits if t + 8 * k < seconds]
    stop = not faults.pop("vanish", False)
    label = faults.pop("label", None)
    timed, counts = call_messages(audio, codec=codec, sample_rate=rate, stream_id=stream_id,
                                  call_control_id=f"v3:fleet-{index:03d}", custom_parameters={"fleet": str(index)},
                                  dtmf=dtmf, seed=index, **faults)
    lines = _lines(timed, T0 + timedelta(minutes=index), stop, stream_id)
    if label:  # the start says one codec, the payloads are another (a misconfigured peer)
        start = json.loads(lines[1])
        start["start"]["media_format"]["encoding"] = label
        lines[1] = json.dumps(start)
    path.write_text("\n".join(lines) + "\n")
    return {"path": str(path), "codec": label or codec, "rate": rate, "seconds": seconds, "delay_s": delay_s,
            "stop": stop, **counts}


def make_fork_call(path: Path, index: int, base: np.ndarray, digits: list[tuple[float, str]],
                   rng: np.random.Generator, *, seconds: float, codec: str = "PCMU", **faults) -> dict:
    """Write one call as the fork receiver records it (RTP datagrams, ``fork.rtpcap``)."""
    from telnyx_audio.forks.rtpcap import ForkCaptureWriter
    from telnyx_audio.simulators.fork import fork_packets

    audio = call_audio(base, rng, seconds=seconds, rate=8000, delay_s=float(rng.uniform(-0.4, 1.2)),
                       caller_gain=1.0, agent_gain=1.0, noise_dbfs=None)
    dtmf = [(t + 8 * k, d) for k in range(-(-int(seconds) // 8)) for t, d in digits if t + 8 * k < seconds]
    packets, report = fork_packets(audio, codec=codec, dtmf=dtmf, seed=index, **faults)
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = {"session_id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"telnyx-audio-fleet-{index}")),
            "call_control_id": f"v3:fleet-{index:03d}"}
    with ForkCaptureWriter(path, meta) as writer:
        for p in packets:
            writer.write(p.track, p.data, int(p.due_s * 1e6))
    return {"path": str(path), "codec": codec, "seconds": seconds}


def make_fleet(out: str | Path, *, calls: int = 24, minutes: float | None = None, seed: int = 0,
               bad_files: bool = True) -> list[Path]:
    """Write a fleet of captures into ``out`` (created); returns their paths, in order.

    ``calls`` good calls with varied codecs, lengths, parties and network faults, two forked
    calls, plus (with ``bad_files``) five bad files. ``minutes`` fixes every good call's length and keeps it
    clean and two-track (the benchmark's fleet).
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    base, digits = _parties()
    rng = np.random.default_rng(seed)
    pick = random.Random(seed)
    paths = []
    for i in range(calls):
        path = out / f"call{i:03d}.jsonl"
        if minutes is not None:
            make_call(path, i, base, digits, rng, seconds=60 * minutes, codec="PCMU", rate=8000)
        else:
            codec, rate = CODECS[i % len(CODECS)]
            faults = {"drop": pick.choice((0, 0, 0.002, 0.01, 0.05)), "duplicate": pick.choice((0, 0, 0.01)),
                      "shuffle": pick.random() < 0.5}
            if i % 7 == 3:
                faults["noise_dbfs"] = pick.choice((-30.0, -24.0))
            if i % 11 == 5:
                faults["clip"] = 6.0
            if i % 9 == 8:
                faults["vanish"] = True
            make_call(path, i, base, digits, rng, seconds=pick.choice((3, 8, 8, 16, 24, 32)), codec=codec, rate=rate,
                      **faults)
        paths.append(path)
    if minutes is None:  # two calls forked as RTP (fork.rtpcap, a folder per call, as recorded)
        for k, faults in enumerate(({"reorder": 0.05}, {"drop": 0.02, "duplicate": 0.01})):
            i = calls + k
            path = out / f"fork{i:03d}" / "fork.rtpcap"
            make_fork_call(path, i, base, digits, rng, seconds=8 + 8 * k, codec=("PCMU", "PCMA")[k], **faults)
            paths.append(path)
        calls += 2
    if bad_files:
        wrong = out / "wrong_law.jsonl"
        make_call(wrong, calls, base, digits, rng, seconds=8, codec="PCMA", rate=8000, label="PCMU")
        g729 = out / "g729.jsonl"
        make_call(g729, calls + 1, base, digits, rng, seconds=3, codec="PCMU", rate=8000, label="G729")
        cut = out / "cut_short.jsonl"
        make_call(cut, calls + 2, base, digits, rng, seconds=8, codec="PCMU", rate=8000)
        data = cut.read_bytes()
        cut.write_bytes(data[: len(data) * 2 // 3])  # the writer died mid-line
        (out / "empty.jsonl").write_bytes(b"")
        (out / "notes.jsonl").write_text('{"note": "not a capture"}\n{"todo": ["label calls"]}\n')
        paths += [wrong, g729, cut, out / "empty.jsonl", out / "notes.jsonl"]
    return paths


def fleet_webhooks(paths: list[Path], out: str | Path, *, seed: int = 0) -> Path:
    """A JSONL of ``call.hangup`` webhooks (Telnyx envelopes) for most calls of the fleet."""
    rng = random.Random(seed)
    records = []
    for n, path in enumerate(paths):
        if path.parent.name.startswith("fork"):
            index = int(path.parent.name[4:])
        elif path.name.startswith("call"):
            index = int(path.stem[4:])
        else:
            continue
        if rng.random() < 0.2:  # some calls have no webhooks
            continue
        mos = round(rng.uniform(3.2, 4.5), 2)
        packets = 50 * 8 * (n + 1)
        stats = {"inbound": {"mos": str(mos), "jitter_max_variance": f"{rng.uniform(0.5, 30):.2f}",
                             "packet_count": str(packets), "skip_packet_count": str(rng.randint(0, packets // 40))},
                 "outbound": {"packet_count": str(packets), "skip_packet_count": "0"}}
        cause = rng.choice(("normal_clearing", "normal_clearing", "normal_clearing", "user_busy", "timeout"))
        when = (T0 + timedelta(minutes=index, seconds=40)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        records.append({"data": {"event_type": "call.hangup", "id": f"fleet-hangup-{index}", "occurred_at": when,
                                 "record_type": "event",
                                 "payload": {"call_control_id": f"v3:fleet-{index:03d}", "hangup_cause": cause,
                                             "hangup_source": rng.choice(("caller", "callee")),
                                             "call_quality_stats": stats}}})
    target = Path(out)
    target.write_text("".join(json.dumps(r) + "\n" for r in records))
    return target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", help="folder for the captures (created)")
    parser.add_argument("--calls", type=int, default=24, help="good calls (default 24)")
    parser.add_argument("--minutes", type=float, help="every call this long, clean, PCMU (benchmarks)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    paths = make_fleet(args.out, calls=args.calls, minutes=args.minutes, seed=args.seed,
                       bad_files=args.minutes is None)
    hooks = fleet_webhooks(paths, Path(args.out).resolve().parent / f"{Path(args.out).resolve().name}_webhooks.jsonl",
                           seed=args.seed)
    size = sum(p.stat().st_size for p in paths)
    print(f"wrote {len(paths)} captures ({size / 1e6:.1f} MB) and {hooks} to {args.out}")


if __name__ == "__main__":
    main()
