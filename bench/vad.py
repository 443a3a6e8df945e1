"""Benchmark: voice activity detection, ours against webrtcvad, on labelled telephone speech.

A labelled set: sentences spoken by espeak-ng (synthetic voiced speech when espeak-ng is
absent) with known pauses of 0.3 to 2.5 s between them. The label of each 10 ms frame comes
from the clean speech (active where its energy is within 35 dB of the loudest frame; gaps
under 60 ms inside words bridged). The audio then goes through G.711 mu-law and is mixed with
telephone-band noise at 20, 10 and 5 dB SNR, at 8 and 16 kHz.

For each condition it prints 10 ms frame precision, recall and F1, and the realtime factor
(audio seconds per second of processing), for telnyx_audio.analysis.detect_speech and for
webrtcvad modes 0 to 3, side by side, in one run.

Targets: our F1 at least webrtcvad's best mode in every condition, at 5x or more of
webrtcvad's speed.

Usage: python bench/vad.py [--seconds 120]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import tempfile
import time
from math import gcd

import numpy as np
from scipy.signal import butter, resample_poly, sosfilt

from telnyx_audio import codecs
from telnyx_audio.analysis import detect_speech

FRAME_S = 0.01
SENTENCES = [
    "Thank you for calling, how can I help you today?",
    "I would like to check the status of my order, please.",
    "Sure, can you read me the number on your confirmation email?",
    "It starts with four seven nine, and then two eight one.",
    "One moment while I look that up for you.",
    "Your package left the warehouse yesterday afternoon.",
    "Great, when should I expect it to arrive?",
    "It should be there by Thursday, before five in the evening.",
    "Is there anything else I can help you with?",
    "No, that is everything. Thanks a lot for your help.",
]


def espeak(text: str, voice: str, speed: int, rate: int) -> np.ndarray | None:
    exe = shutil.which("espeak-ng")
    if exe is None:
        return None
    import soundfile

    with tempfile.NamedTemporaryFile(suffix=".wav") as f:
        subprocess.run([exe, "-v", voice, "-s", str(speed), "-w", f.name, text], check=True, capture_output=True)
        data, sr = soundfile.read(f.name, dtype="float32")
    g = gcd(sr, rate)
    return resample_poly(data, rate // g, sr // g).astype(np.float32)


def synthetic(seconds: float, rate: int, rng: np.random.Generator) -> np.ndarray:
    """Speech-like sound: syllables of a gliding harmonic source through two formants, with
    unvoiced bursts between some of them."""
    n = int(seconds * rate)
    t = np.arange(n) / rate
    f0 = rng.uniform(100, 220) * (1 + 0.15 * np.sin(2 * np.pi * rng.uniform(0.3, 1.2) * t))
    source = np.sign(np.sin(2 * np.pi * np.cumsum(f0) / rate)) * 0.5
    out = np.zeros(n)
    for lo, hi in ((rng.uniform(300, 800), 300), (rng.uniform(1000, 2500), 400)):
        sos = butter(2, [lo - hi / 2, lo + hi / 2], btype="bandpass", fs=rate, output="sos")
        out += sosfilt(sos, source)
    syllables = np.clip(np.sin(2 * np.pi * rng.uniform(3, 5) * t), 0, None) ** 0.7
    bursts = (np.sin(2 * np.pi * 1.3 * t) > 0.97) * rng.normal(0, 0.3, n)
    return (out * syllables + bursts * 0.3).astype(np.float32)


def labelled_call(seconds: float, rate: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, str]:
    """Clean speech with pauses, and its 10 ms labels."""
    rng = np.random.default_rng(seed)
    pieces, source = [np.zeros(int(rate * 0.5), np.float32)], "synthetic"
    voices = [("en-us", 160), ("en", 175), ("en-us+f3", 150), ("en+m3", 170)]
    i = 0
    while sum(p.size for p in pieces) < seconds * rate:
        voice, speed = voices[i % len(voices)]
        utterance = espeak(SENTENCES[i % len(SENTENCES)], voice, speed, rate)
        if utterance is None:
            utterance = synthetic(rng.uniform(1.0, 3.5), rate, rng)
        else:
            source = "espeak-ng"
        utterance = utterance / (np.abs(utterance).max() + 1e-9) * rng.uniform(0.2, 0.6)
        pieces += [utterance, np.zeros(int(rate * rng.uniform(0.3, 2.5)), np.float32)]
        i += 1
    clean = np.concatenate(pieces)[: int(seconds * rate)]
    frame = int(FRAME_S * rate)
    n = clean.size // frame
    energy = 10 * np.log10(np.mean(clean[: n * frame].reshape(n, frame) ** 2, axis=1) + 1e-12)
    label = energy > energy.max() - 35
    # Bridge gaps under 60 ms inside words (stops), as a listener would.
    gaps = np.diff(np.concatenate(([0], (~label).astype(np.int8), [0])))
    for s, e in zip(np.flatnonzero(gaps == 1), np.flatnonzero(gaps == -1)):
        if e - s < 6 and s > 0 and e < n:
            label[s:e] = True
    return clean, label, source


def telephone_noise(n: int, rate: int, rng: np.random.Generator) -> np.ndarray:
    white = rng.normal(0, 1, n)
    pink = np.cumsum(white) - np.convolve(np.cumsum(white), np.ones(64) / 64, mode="same")
    sos = butter(4, [300, min(3400, rate / 2 - 100)], btype="bandpass", fs=rate, output="sos")
    band = sosfilt(sos, 0.5 * pink / pink.std() + 0.5 * white)
    return (band / band.std()).astype(np.float32)


def degrade(clean: np.ndarray, label: np.ndarray, rate: int, snr_db: float, seed: int) -> np.ndarray:
    frame = int(FRAME_S * rate)
    speech = clean[: label.size * frame].reshape(label.size, frame)[label]
    speech_power = np.mean(speech**2)
    noise = telephone_noise(clean.size, rate, np.random.default_rng(seed))
    mixed = clean + noise * np.sqrt(speech_power / 10 ** (snr_db / 10))
    pcm = np.clip(mixed * 32767, -32768, 32767).astype(np.int16)
    return codecs.decode(codecs.encode(pcm, "PCMU"), "PCMU")  # through G.711


def score(pred: np.ndarray, label: np.ndarray) -> tuple[float, float, float]:
    n = min(pred.size, label.size)
    p, t = pred[:n], label[:n]
    tp = np.sum(p & t)
    precision = tp / max(p.sum(), 1)
    recall = tp / max(t.sum(), 1)
    return precision, recall, 2 * precision * recall / max(precision + recall, 1e-12)


def timed(fn, repeat: int = 3):
    best, result = np.inf, None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - t0)
    return result, best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=120.0)
    args = ap.parse_args()
    try:
        import webrtcvad  # noqa: F401
    except ImportError:
        raise SystemExit("this benchmark compares against webrtcvad: pip install webrtcvad-wheels")
    print(f"labelled telephone speech, {args.seconds:.0f} s per condition, 10 ms frames\n")
    header = f"{'condition':16s} {'detector':14s} {'precision':>9s} {'recall':>7s} {'F1':>6s} {'realtime':>10s}"
    verdicts, speed_ratios = [], []
    for rate in (8000, 16000):
        clean, label, source = labelled_call(args.seconds, rate)
        print(f"-- {rate} Hz, speech from {source}, {label.mean():.0%} of frames speech --")
        print(header)
        for snr in (20, 10, 5):
            audio = degrade(clean, label, rate, snr, seed=snr)
            seconds = audio.size / rate
            rows = []
            ours, t_ours = timed(lambda: detect_speech(audio, rate).mask)
            rows.append(("telnyx_audio", *score(ours, label), seconds / t_ours))
            web_times = []
            for mode in range(4):
                pred, t_web = timed(lambda: detect_speech(audio, rate, method="webrtc", aggressiveness=mode,
                                                          min_speech_s=0, min_pause_s=0).mask, repeat=1)
                web_times.append(t_web)
                rows.append((f"webrtcvad {mode}", *score(pred, label), seconds / t_web))
            for name, p, r, f1, rtf in rows:
                print(f"{f'{snr} dB SNR':16s} {name:14s} {p:9.3f} {r:7.3f} {f1:6.3f} {rtf:9.0f}x")
            best_web = max(f1 for name, _, _, f1, _ in rows[1:])
            verdicts.append(rows[0][3] >= best_web)
            speed_ratios.append(min(web_times) / t_ours)
        print()
    print(f"targets: F1 >= webrtcvad's best mode in every condition: {'met' if all(verdicts) else 'NOT met'}"
          f" ({sum(verdicts)}/{len(verdicts)}); speed >= 5x webrtcvad: "
          f"{'met' if min(speed_ratios) >= 5 else 'NOT met'} (at least {min(speed_ratios):.1f}x)")


if __name__ == "__main__":
    main()
