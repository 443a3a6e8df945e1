"""Two-track calls built from real human speech, with known impairments, for the diagnosis benchmark.

The speech is ``data/speech/`` (see its SOURCES.md): ``tune/`` for choosing thresholds,
``heldout/`` for scoring; never the other way round. In each set the far-end talker (the
outbound track: the bot or agent) and the near-end talker (the inbound track: the caller)
use disjoint recordings, so a call without echo holds no correlation between its tracks:

- tune: far end = the LibriVox reader, near end = the CMU speakers;
- heldout: far end = half of Allison Smith's prompts, near end = the other half and the
  CMU ARCTIC speaker awb.

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
SPEECH = ROOT / "data" / "speech"
RATE = 16000


@lru_cache(maxsize=4)
def pools(split: str) -> tuple[tuple[np.ndarray, ...], tuple[np.ndarray, ...]]:
    """(far-end utterances, near-end utterances) of ``split`` ("tune" or "heldout"), 16 kHz float32."""
    if split not in ("tune", "heldout"):
        raise ValueError(f"split must be 'tune' or 'heldout', got {split!r}")
    rows = [r for r in csv.DictReader(open(SPEECH / "index.csv")) if r["set"] == split]
    rows.sort(key=lambda r: r["path"])
    far, near = [], []
    allison = 0
    for r in rows:
        x, sr = soundfile.read(SPEECH / r["path"], dtype="float32")
        assert sr == RATE, (r["path"], sr)
        x = x / (np.abs(x).max() + 1e-9)
        if split == "tune":
            (far if r["voice"].startswith("librivox") or "librivox" in r["path"] else near).append(x)
        elif "allison" in r["path"]:
            (far if allison % 2 == 0 else near).append(x)
            allison += 1
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
              far_level_dbfs: float | None = None, near_level_dbfs: float | None = None) -> Call:
    """A two-party call from ``split``'s speech through ``codec``.

    ``delay_ms`` and ``erl_db`` set an echo of the outbound track in the inbound one (None: no
    echo). ``one_way``: None (both talk), ``"silent"`` (the inbound track is digital silence)
    or ``"noise"`` (the inbound track holds only line noise).
    """
    rng = np.random.default_rng(seed)
    far_pool, near_pool = pools(split)
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
