"""Calls of real, noisy, held-out speech with frames lost on the way, and their speech labels.

The speech is data/speech/heldout/ (never used to tune anything): each call is a run of its
recordings with pauses between them, under telephone-band noise, streamed through the
simulator with a fraction of its 20 ms frames lost, and read back as a user would
(:func:`telnyx_audio.read_capture`). The labels come from the clean recordings by an energy
reference that shares nothing with the detector (the one of ``bench/vad_corpus.py``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile

from telnyx_audio.simulators.stream import call_messages

HELDOUT = Path(__file__).resolve().parent.parent / "data" / "speech" / "heldout"
FRAME_S = 0.01
RATE = 16000


def reference_labels(x: np.ndarray, rate: int = RATE) -> np.ndarray:
    """Speech per 10 ms frame of a clean recording: 15 dB over its floor, within 45 dB of its
    loud speech, gaps under 150 ms bridged, islands under 40 ms dropped."""
    from scipy.signal import butter, sosfilt

    frame = int(FRAME_S * rate)
    hp = sosfilt(butter(4, 80, btype="highpass", fs=rate, output="sos"), x)
    n = hp.size // frame
    energy = 10 * np.log10(np.mean(hp[: n * frame].reshape(n, frame) ** 2, axis=1) + 1e-12)
    label = (energy > np.percentile(energy, 5) + 15) & (energy > np.percentile(energy, 99) - 45)
    for value, limit in ((False, 15), (True, 4)):
        edges = np.diff(np.concatenate(([0], (label == value).astype(np.int8), [0])))
        for s, e in zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)):
            if e - s < limit and (value or (s > 0 and e < label.size)):
                label[s:e] = not value
    return label


def telephone_noise(n: int, rate: int, rng: np.random.Generator) -> np.ndarray:
    """Unit-power noise in the telephone band (300-3400 Hz), half pink, half white."""
    from scipy.signal import butter, sosfilt

    white = rng.normal(0, 1, n)
    pink = np.cumsum(white) - np.convolve(np.cumsum(white), np.ones(64) / 64, mode="same")
    band = sosfilt(butter(4, [300, min(3400, rate / 2 - 100)], btype="bandpass", fs=rate, output="sos"),
                   0.5 * pink / pink.std() + 0.5 * white)
    return band / band.std()


def clean_speech(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Every held-out recording once, in a shuffled order, 0.4-1.5 s of digital silence between
    them (16 kHz float, speech peak at -10 dBFS) and its labels per 10 ms frame."""
    rng = np.random.default_rng(seed)
    files = sorted(HELDOUT.glob("*/*.flac"))
    frame = int(FRAME_S * RATE)
    pieces, labels = [np.zeros(frame * 50)], [np.zeros(50, bool)]
    for i in rng.permutation(len(files)):
        x, rate = soundfile.read(files[i], dtype="float64")
        assert rate == RATE
        x = x[: x.size // frame * frame] / (np.abs(x).max() + 1e-9) * 10 ** (-10 / 20)
        pause = int(rng.uniform(0.4, 1.5) / FRAME_S)
        pieces += [x, np.zeros(pause * frame)]
        labels += [reference_labels(x), np.zeros(pause, bool)]
    return np.concatenate(pieces), np.concatenate(labels)


def noisy_call(snr_db: float, rate: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(2, n) int16 at ``rate``: inbound the held-out speech under noise at ``snr_db`` (speech
    power over noise power), outbound that noise alone; and the inbound labels."""
    from scipy.signal import resample_poly

    x, label = clean_speech(seed)
    if rate != RATE:
        x = resample_poly(x, rate, RATE)
    frame = int(FRAME_S * rate)
    n = min(label.size, x.size // frame)
    speech_power = np.mean(x[: n * frame].reshape(n, frame)[label[:n]] ** 2)
    rng = np.random.default_rng(seed + 1)
    noise_rms = np.sqrt(speech_power / 10 ** (snr_db / 10))
    tracks = np.stack([x + telephone_noise(x.size, rate, rng) * noise_rms, telephone_noise(x.size, rate, rng) * noise_rms])
    tracks = tracks[:, : tracks.shape[1] // (2 * frame) * 2 * frame]  # whole 20 ms frames: no padding at the end
    return np.clip(np.round(tracks * 32768), -32768, 32767).astype(np.int16), label[:n]


def stream_capture(audio: np.ndarray, path: Path, *, codec: str, rate: int, drop: float, seed: int = 0) -> Path:
    """Write the capture of ``audio`` streamed as ``codec`` with a fraction ``drop`` of frames lost."""
    timed, _ = call_messages(audio, codec=codec, sample_rate=rate, drop=drop, seed=seed, stream_id="lossy-call")
    path.write_text("\n".join(text for _, text in timed) + "\n")
    return path


def f1(found: np.ndarray, truth: np.ndarray) -> float:
    """F1 of a speech mask against the labels, over the frames both cover."""
    n = min(found.size, truth.size)
    found, truth = found[:n], truth[:n]
    tp = np.count_nonzero(found & truth)
    return 2 * tp / max(np.count_nonzero(found) + np.count_nonzero(truth), 1)
