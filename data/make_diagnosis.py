"""Two-track calls built from real human speech, with known impairments: the diagnosis examples and benchmark.

Run from the repository root: ``python data/make_diagnosis.py OUT_DIR`` writes the example
calls of ``notebooks/06_diagnosis.ipynb`` (:data:`EXAMPLES`, from the held-out speech) as
the captures Telnyx would give: WebSocket JSONL streams and one RTP fork (``.rtpcap``), and
prints what each holds. Nothing is committed but this script: the calls are deterministic.
``bench/diagnose.py`` builds its calls with :func:`make_call` too.

The speech is ``data/speech/`` (see its SOURCES.md): ``tune/`` for choosing thresholds,
``heldout/`` for scoring; never the other way round. In each set the far-end talker (the
outbound track: the bot or agent) and the near-end talker (the inbound track: the caller)
use disjoint recordings, so a call without echo holds no correlation between its tracks:

- tune: far end = the LibriVox reader, near end = the CMU speakers;
- heldout: far end = Allison Smith's prompts, near end = the CMU ARCTIC speaker awb (one
  speaker a side: Allison's prompts share words and intonation, so splitting them between
  the two sides would correlate the tracks as an echo would).

A call: each talker speaks utterances with pauses, independently (so they also talk over
each other: double talk), at telephone levels. The echo is the decoded outbound track through
an echo path (a bulk delay and a short decaying response, like a hybrid's), scaled to the
echo return loss asked for, measured on this call's audio; telephone-band noise at the SNR
asked for (near-end speech level over noise) joins it; the inbound track is that mix through
the codec. Truth: the echo's delay (path's main tap plus the codec's own delay, measured) and
its return loss (outbound power over echo power).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import soundfile
from scipy.signal import butter, sosfilt

ROOT = Path(__file__).resolve().parents[1]
HERE = Path(__file__).resolve().parent
SPEECH = ROOT / "data" / "speech"
RATE = 16000


@lru_cache(maxsize=4)
def pools(split: str) -> tuple[tuple[np.ndarray, ...], tuple[np.ndarray, ...]]:
    """(far-end utterances, near-end utterances) of ``split`` ("tune" or "heldout"), 16 kHz float32."""
    if split not in ("tune", "heldout"):
        raise ValueError(f"split must be 'tune' or 'heldout', got {split!r}")
    with open(SPEECH / "index.csv", newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["set"] == split]
    rows.sort(key=lambda r: r["path"])
    far, near = [], []
    for r in rows:
        x, sr = soundfile.read(SPEECH / r["path"], dtype="float32")
        assert sr == RATE, (r["path"], sr)
        x = x / (np.abs(x).max() + 1e-9)
        if split == "tune":
            (far if r["voice"].startswith("librivox") or "librivox" in r["path"] else near).append(x)
        elif "allison" in r["path"]:
            far.append(x)
        else:
            near.append(x)
    if not far or not near:
        raise RuntimeError(f"no speech for {split!r} in {SPEECH}: bring it in with `git checkout data -- data/speech`")
    return tuple(far), tuple(near)


def telephone_noise(n: int, rate: int, rng: np.random.Generator) -> np.ndarray:
    """Unit-power noise in the telephone band (300-3400 Hz), half pink, half white."""
    white = rng.normal(0, 1, n)
    pink = np.cumsum(white) - np.convolve(np.cumsum(white), np.ones(64) / 64, mode="same")
    sos = butter(4, [300, min(3400, rate / 2 - 100)], btype="bandpass", fs=rate, output="sos")
    band = sosfilt(sos, 0.5 * pink / pink.std() + 0.5 * white)
    return (band / band.std()).astype(np.float32)


def talk(utterances: tuple[np.ndarray, ...], seconds: float, rng: np.random.Generator, *, pause_s=(0.4, 2.5),
         level_dbfs: float = -22.0, start_s: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """One talker's track at 16 kHz: utterances in random order with pauses, speech at ``level_dbfs``
    (active level: RMS of the loud part); and a per-sample mask of where they speak."""
    n = int(seconds * RATE)
    out = np.zeros(n, np.float32)
    mask = np.zeros(n, bool)
    t = int(start_s * RATE)
    order = list(rng.permutation(len(utterances)))
    while t < n:
        if not order:
            order = list(rng.permutation(len(utterances)))
        u = utterances[order.pop()]
        loud = np.abs(u) > 0.02
        gain = 10 ** (level_dbfs / 20) / (np.sqrt(np.mean(u[loud] ** 2)) + 1e-9)
        piece = (u * gain)[: n - t]
        out[t : t + piece.size] += piece
        mask[t : t + piece.size] |= loud[: piece.size]
        t += piece.size + int(rng.uniform(*pause_s) * RATE)
    return out, mask


def to_int16(x: np.ndarray) -> np.ndarray:
    return np.clip(np.round(x * 32768), -32768, 32767).astype(np.int16)


def codec_round_trip(x16k: np.ndarray, codec: str, rate: int = RATE) -> np.ndarray:
    """Float audio at ``rate`` through ``codec`` (PCMU/PCMA at 8 kHz, G722 at 16 kHz): decoded int16 at its rate."""
    from telnyx_audio import codecs
    from telnyx_audio._util.dsp import resample

    pcm = to_int16(x16k)
    if codec in ("PCMU", "PCMA"):
        return codecs.decode(codecs.encode(resample(pcm, rate, 8000), codec), codec)
    if codec == "G722":
        from telnyx_audio.codecs.outbound import encode_payloads
        from telnyx_audio.codecs.wideband import make_decoder

        decoder = make_decoder("G722", 16000)
        payloads = encode_payloads(pcm, RATE, "G722", target_rate=16000, payload_s=1.0)
        return np.concatenate([decoder.decode(p) for p in payloads])[: pcm.size]
    if codec == "L16":
        return pcm
    raise ValueError(f"codec must be PCMU, PCMA, G722 or L16, got {codec!r}")


def codec_rate(codec: str) -> int:
    return 8000 if codec in ("PCMU", "PCMA") else RATE


@lru_cache(maxsize=8)
def codec_delay(codec: str) -> int:
    """The codec's own delay in samples at its rate, measured with noise (G.722: 22 at 16 kHz)."""
    rng = np.random.default_rng(0)
    x = 0.1 * rng.normal(0, 1, RATE).astype(np.float32)
    y = codec_round_trip(x, codec).astype(np.float64)
    ref = codec_round_trip(x, "L16") if codec == "G722" else to_int16(x)
    if codec in ("PCMU", "PCMA"):
        from telnyx_audio._util.dsp import resample

        ref = resample(to_int16(x), RATE, 8000)
    # c[k] = sum_i ref[936 + k + i] y[1000 + i]: y(t) = ref(t - d) peaks at k = 64 - d (longer array first).
    c = np.correlate(ref.astype(np.float64)[1000 - 64 : -1000 + 64], y[1000:-1000], mode="valid")
    return int(64 - np.argmax(c))


def echo_path(delay_ms: float, rate: int, rng: np.random.Generator) -> tuple[np.ndarray, int]:
    """An echo impulse response: the bulk delay, then a main tap and a decaying tail of ~2 ms
    with random signs (a hybrid's). Returns the response and the main tap's index."""
    bulk = int(round(delay_ms * rate / 1000))
    tail = int(0.002 * rate)
    taps = rng.normal(0, 1, tail) * np.exp(-np.arange(tail) / (0.0005 * rate)) * 0.35
    taps[0] = 1.0 if rng.random() < 0.5 else -1.0
    return np.concatenate([np.zeros(bulk), taps]), bulk


@dataclass
class Call:
    """A built call: ``audio`` int16 (2, n) [inbound, outbound] at ``rate``, and its truth."""

    audio: np.ndarray
    rate: int
    codec: str
    echo: bool
    delay_ms: float
    erl_db: float
    snr_db: float
    one_way: str | None


def make_call(split: str, *, codec: str = "PCMU", seconds: float = 30.0, delay_ms: float | None = None,
              erl_db: float | None = None, snr_db: float | None = 30.0, seed: int = 0, one_way: str | None = None,
              far_level_dbfs: float | None = None, near_level_dbfs: float | None = None,
              pools_override: tuple[tuple[np.ndarray, ...], tuple[np.ndarray, ...]] | None = None) -> Call:
    """A two-party call from ``split``'s speech through ``codec``.

    ``delay_ms`` and ``erl_db`` set an echo of the outbound track in the inbound one (None: no
    echo). ``one_way``: None (both talk), ``"silent"`` (the inbound track is digital silence)
    or ``"noise"`` (the inbound track holds only line noise). ``pools_override``: (far-end,
    near-end) utterances to use instead of ``split``'s.
    """
    rng = np.random.default_rng(seed)
    far_pool, near_pool = pools(split) if pools_override is None else pools_override
    far_level = rng.uniform(-26, -18) if far_level_dbfs is None else far_level_dbfs
    near_level = rng.uniform(-30, -18) if near_level_dbfs is None else near_level_dbfs
    far, _ = talk(far_pool, seconds, rng, level_dbfs=far_level, start_s=rng.uniform(0.2, 1.0))
    near, near_mask = talk(near_pool, seconds, rng, level_dbfs=near_level, start_s=rng.uniform(0.5, 3.0))
    rate = codec_rate(codec)
    outbound = codec_round_trip(far, codec)
    x = outbound.astype(np.float64) / 32768
    n = x.size
    from telnyx_audio._util.dsp import resample

    near_r = resample(to_int16(near), RATE, rate).astype(np.float64) / 32768 if rate != RATE else near.astype(np.float64)
    mix = np.zeros(n) if one_way else near_r[:n].copy()
    truth_delay = truth_erl = np.nan
    if delay_ms is not None and erl_db is not None:
        path, main = echo_path(delay_ms, rate, rng)
        from scipy.signal import oaconvolve

        e = oaconvolve(x, path)[:n]
        gain = np.sqrt(np.mean(x**2) / (np.mean(e**2) + 1e-20) / 10 ** (erl_db / 10))
        mix += gain * e
        truth_delay = (main + codec_delay(codec)) * 1000 / rate
        truth_erl = float(erl_db)
    if snr_db is not None and one_way != "silent":
        ref_level = near_level if not one_way else far_level
        noise_rms = 10 ** ((ref_level - snr_db) / 20)
        mix += telephone_noise(n, rate, rng) * noise_rms
    if one_way == "silent":
        inbound = np.zeros(n, np.int16)
    else:
        inbound = codec_round_trip(mix.astype(np.float32), codec, rate)[:n]
        if inbound.size < n:
            inbound = np.pad(inbound, (0, n - inbound.size))
    audio = np.stack([inbound, outbound[:n]])
    return Call(audio, rate, codec, bool(np.isfinite(truth_delay)), float(truth_delay), float(truth_erl),
                float(snr_db) if snr_db is not None else np.nan, one_way)


def turn_call(split: str, *, codec: str = "PCMU", seconds: float = 40.0, response_s: tuple[float, float] = (0.4, 1.0),
              seed: int = 0, snr_db: float | None = 35.0) -> np.ndarray:
    """A call taken in turns: the caller (inbound) says something, the bot (outbound) replies
    after ``response_s`` (a range, seconds), and so on; int16 (2, n) at the codec's rate."""
    rng = np.random.default_rng(seed)
    far_pool, near_pool = pools(split)
    n = int(seconds * RATE)
    tracks = np.zeros((2, n), np.float32)
    t = int(rng.uniform(0.3, 1.0) * RATE)
    who = 0
    while t < n:
        pool = near_pool if who == 0 else far_pool
        u = pool[int(rng.integers(len(pool)))]
        loud = np.abs(u) > 0.02
        gain = 10 ** (-22 / 20) / (np.sqrt(np.mean(u[loud] ** 2)) + 1e-9)
        piece = (u * gain)[: n - t]
        tracks[who, t : t + piece.size] = piece
        t += piece.size
        t += int((rng.uniform(*response_s) if who == 0 else rng.uniform(0.6, 1.2)) * RATE)
        who = 1 - who
    rate = codec_rate(codec)
    out = []
    for i in range(2):
        x = tracks[i].astype(np.float64)
        if snr_db is not None:
            x = x + telephone_noise(n, RATE, rng) * 10 ** ((-22 - snr_db) / 20)
        y = codec_round_trip(x.astype(np.float32), codec)
        out.append(np.pad(y, (0, max(0, int(seconds * rate) - y.size)))[: int(seconds * rate)])
    return np.stack(out)


def _gain(track: np.ndarray, db: float) -> np.ndarray:
    return np.clip(np.round(track.astype(np.float64) * 10 ** (db / 20)), -32768, 32767).astype(np.int16)


#: The notebook's example calls: name -> (what it shows, how it is built).
EXAMPLES = {
    "clean": "a clean PCMU call: both sides talk, nothing wrong",
    "echo_60ms": "the bot's audio comes back in the caller's track 60 ms later, 15 dB down",
    "echo_250ms": "the same echo 250 ms later (a long, audible echo)",
    "echo_500ms": "the same echo 500 ms later, 10 dB down: the bot hears itself and stops",
    "one_way": "the caller's track is digital silence while the bot talks",
    "lossy_fork": "an RTP fork with 6 % of the caller's packets lost in bursts and jittery arrivals",
    "clipped": "the caller's leg 20 dB too hot: clipped at full scale",
    "quiet": "the bot's leg 26 dB too quiet",
    "slow_bot": "the bot replies 3 to 5 s after the caller stops",
}


def example_audio(name: str) -> tuple[np.ndarray, int, str]:
    """The example call ``name``'s two tracks (int16, (2, n)), rate and codec, from the held-out speech."""
    if name == "clean":
        c = make_call("heldout", codec="PCMU", seconds=30, seed=1, snr_db=35)
    elif name.startswith("echo_"):
        delay = float(name.split("_")[1].removesuffix("ms"))
        c = make_call("heldout", codec="PCMU", seconds=30, seed=2, delay_ms=delay, erl_db=10.0 if delay >= 500 else 15.0,
                      snr_db=30)
    elif name == "one_way":
        c = make_call("heldout", codec="PCMU", seconds=30, seed=3, one_way="silent")
    elif name == "lossy_fork":
        c = make_call("heldout", codec="PCMU", seconds=30, seed=4, snr_db=35)
    elif name == "clipped":
        c = make_call("heldout", codec="PCMU", seconds=30, seed=5, snr_db=35)
        return np.stack([_gain(c.audio[0], 20.0), c.audio[1]]), c.rate, c.codec
    elif name == "quiet":
        c = make_call("heldout", codec="PCMU", seconds=30, seed=6, snr_db=35)
        return np.stack([c.audio[0], _gain(c.audio[1], -26.0)]), c.rate, c.codec
    elif name == "slow_bot":
        return turn_call("heldout", codec="PCMU", seconds=40, response_s=(3.0, 5.0), seed=7), 8000, "PCMU"
    else:
        raise ValueError(f"no example call {name!r}; the examples are {', '.join(EXAMPLES)}")
    return c.audio, c.rate, c.codec


def write_stream(path: Path, audio: np.ndarray, codec: str, *, call_control_id: str) -> Path:
    """The call as a WebSocket capture (JSONL of Telnyx messages, as the capture server logs them)."""
    import json
    import uuid

    from telnyx_audio.simulators.stream import call_messages

    stream_id = str(uuid.uuid5(uuid.NAMESPACE_URL, call_control_id))
    timed, _ = call_messages(audio, codec=codec, stream_id=stream_id, call_control_id=call_control_id)
    lines = [text for _, text in timed]
    lines.append(json.dumps({"event": "stop", "sequence_number": str(len(lines) + 1), "stream_id": stream_id,
                             "stop": {"call_control_id": call_control_id}}))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return path


def write_fork(path: Path, audio: np.ndarray, codec: str, *, call_control_id: str, drop: float = 0.0,
               burst: int = 1, jitter_ms: float = 0.0, seed: int = 0) -> Path:
    """The call as the fork receiver records it (``.rtpcap``): the inbound (rx) packets lost
    in bursts of ``burst`` (a share ``drop`` of them) and delayed by up to ``jitter_ms`` (exponential)."""
    from telnyx_audio.forks.rtpcap import ForkCaptureWriter
    from telnyx_audio.simulators.fork import fork_packets

    packets, _ = fork_packets(audio, codec=codec, seed=seed)
    rng = np.random.default_rng(seed)
    rx = [i for i, p in enumerate(packets) if p.track == 0]
    lost: set[int] = set()
    if drop > 0:
        starts = rng.choice(len(rx), size=max(1, int(round(drop * len(rx) / burst))), replace=False)
        for s in starts:
            lost.update(rx[s : s + burst])
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = []
    for i, p in enumerate(packets):
        if i in lost:
            continue
        late = rng.exponential(jitter_ms / 3) if jitter_ms > 0 and p.track == 0 else 0.0
        rows.append((p.due_s + min(late, jitter_ms * 3) / 1000.0, p.track, p.data))
    rows.sort(key=lambda r: r[0])
    with ForkCaptureWriter(path, {"call_control_id": call_control_id}) as writer:
        for due, track, data in rows:
            writer.write(track, data, int(due * 1e6))
    return path


def write_examples(out: str | Path, names: tuple[str, ...] | None = None) -> dict[str, Path]:
    """Write the example calls into ``out``: ``<name>.jsonl`` (or ``lossy_fork.rtpcap``); returns their paths."""
    out = Path(out)
    paths = {}
    for name in names or tuple(EXAMPLES):
        audio, rate, codec = example_audio(name)
        cid = f"v3:diagnosis-{name}"
        if name == "lossy_fork":
            paths[name] = write_fork(out / f"{name}.rtpcap", audio, codec, call_control_id=cid, drop=0.06, burst=3,
                                     jitter_ms=40.0, seed=4)
        else:
            paths[name] = write_stream(out / f"{name}.jsonl", audio, codec, call_control_id=cid)
    return paths


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("out", help="output folder (created)")
    parser.add_argument("--only", nargs="+", choices=list(EXAMPLES), help="just these examples")
    args = parser.parse_args()
    for name, path in write_examples(args.out, tuple(args.only) if args.only else None).items():
        print(f"{path}: {EXAMPLES[name]}")
