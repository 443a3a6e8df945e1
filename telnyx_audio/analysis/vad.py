"""Voice activity: which 10 ms frames of a track hold speech."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from telnyx_audio._dsp import to_int16
from telnyx_audio.analysis._common import _as_float, _rate, _segments

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

__all__ = ["Speech", "detect_speech"]


@dataclass(frozen=True)
class Speech:
    """Voice activity of one track.

    Attributes
    ----------
    mask : np.ndarray of bool, shape (n_frames,)
        One value per ``frame_s`` (10 ms) frame.
    segments : pandas.DataFrame
        ``start_s``, ``end_s``, ``duration_s`` of each speech segment.
    frame_s : float
    """

    mask: np.ndarray
    segments: "pd.DataFrame"
    frame_s: float = 0.01

    @property
    def speech_s(self) -> float:
        """Seconds of speech (frames marked times the frame length)."""
        return float(self.mask.sum() * self.frame_s)

    def __repr__(self) -> str:
        return f"<Speech {len(self.segments)} segments, {self.speech_s:.2f} s of {self.mask.size * self.frame_s:.2f} s>"


def _grow(seed: np.ndarray, allowed: np.ndarray) -> np.ndarray:
    """The runs of ``allowed`` that contain at least one ``seed`` frame."""
    run = np.cumsum(np.diff(np.concatenate(([0], allowed.astype(np.int8)))) == 1)  # run id per frame
    has_seed = np.zeros(run.max(initial=0) + 1, bool)
    has_seed[run[seed & allowed]] = True
    return allowed & has_seed[run]


def _runs_shorter_than(mask: np.ndarray, value: bool, frames: int) -> np.ndarray:
    """Mask of the runs of ``value`` shorter than ``frames`` (not touching either end for False)."""
    x = mask == value
    edges = np.diff(np.concatenate(([0], x.astype(np.int8), [0])))
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    short = (ends - starts) < frames
    if not value:  # a pause at the very start or end is not a pause inside speech
        short &= (starts > 0) & (ends < mask.size)
    out = np.zeros(mask.size + 1, np.int32)
    np.add.at(out, starts[short], 1)
    np.add.at(out, ends[short], -1)
    return np.cumsum(out[:-1]) > 0


def _speech_features(x: np.ndarray, rate: int, frame: int) -> tuple[np.ndarray, np.ndarray]:
    """Per 10 ms frame: band energy in dB (300-3400 Hz) of the frame itself, and the spectral
    flatness of that band over a 20 ms window centred on it (enough resolution for harmonics)."""
    from scipy import fft

    n = x.size // frame
    if n == 0:
        return np.zeros(0, np.float32), np.zeros(0, np.float32)
    own = fft.rfft(x[: n * frame].reshape(n, frame) * np.hanning(frame).astype(np.float32), axis=1)
    own_power = own.real**2 + own.imag**2
    own_freqs = np.fft.rfftfreq(frame, 1 / rate)
    energy = 10 * np.log10(own_power[:, (own_freqs >= 300) & (own_freqs <= 3400)].mean(axis=1) + np.float32(1e-10))
    size = 2 * frame
    padded = np.concatenate((np.zeros(frame // 2, np.float32), x[: n * frame], np.zeros(frame + frame // 2, np.float32)))
    wide = fft.rfft(sliding_window_view(padded, size)[::frame][:n] * np.hanning(size).astype(np.float32), axis=1)
    power = wide.real**2 + wide.imag**2 + np.float32(1e-10)
    freqs = np.fft.rfftfreq(size, 1 / rate)
    band = power[:, (freqs >= 300) & (freqs <= 3400)]
    flatness = np.exp(np.log(band).mean(axis=1)) / band.mean(axis=1)
    return energy.astype(np.float32), flatness.astype(np.float32)


def detect_speech(pcm: np.ndarray, sr: int | None = None, *, method: str = "energy", frame_s: float = 0.01,
                  threshold_db: float = 4.5, extend: float = 0.35, min_speech_s: float = 0.06, min_pause_s: float = 0.3,
                  aggressiveness: int = 2, exclude: np.ndarray | None = None) -> Speech:
    """Find speech in one track, 10 ms at a time.

    The default method needs nothing but numpy and scipy. Per frame it measures the energy
    in the telephone band (300-3400 Hz, so hum, DC and G.711 quantisation hiss above and
    below it do not count) and how tonal that band is (spectral flatness: voiced speech is
    harmonic, line noise is flat). The noise floor is tracked over time (the 10th percentile
    of the band energy in a 2 s window), so a noisy line raises the bar with it. A frame is
    speech when it stands ``threshold_db`` above that floor, or somewhat less when it is
    clearly tonal; then blips shorter than ``min_speech_s`` are dropped and pauses shorter
    than ``min_pause_s`` are bridged.

    Parameters
    ----------
    pcm : np.ndarray, shape (n,)
        int16 or float audio.
    sr : int
        Sample rate (8000 and 16000 are Telnyx's; any rate works).
    method : {"energy", "webrtc"}
        ``"webrtc"`` uses webrtcvad (``pip install webrtcvad-wheels``), ``aggressiveness`` 0-3.
    threshold_db : float
        How far above the noise floor speech must rise to start a segment.
    extend : float
        Fraction of ``threshold_db`` neighbouring frames need to join a segment (hysteresis:
        lower keeps more of the weak edges of words, and more noise).
    min_speech_s, min_pause_s : float
        Shortest speech kept and shortest pause kept.
    exclude : np.ndarray of bool, optional
        Frames that are never speech (one per ``frame_s``), e.g. where DTMF tones sound; no
        pause is bridged across them.

    Returns
    -------
    Speech
        ``mask`` (one bool per 10 ms) and ``segments``.

    Examples
    --------
    >>> sr = 8000
    >>> t = np.arange(3 * sr) / sr
    >>> tone = np.where((t >= 1) & (t < 2), 0.3 * np.sin(2 * np.pi * 440 * t), 0.001 * np.sin(2 * np.pi * 50 * t))
    >>> detect_speech(tone, sr).segments.round(1).values.tolist()   # within one 10 ms frame
    [[1.0, 2.0, 1.0]]
    """
    rate = _rate(sr, pcm)
    x = _as_float(pcm)
    if x.ndim != 1:
        raise ValueError(f"detect_speech takes one track, shape (n,); got {x.shape}")
    frame = int(round(frame_s * rate))
    if frame < 8:
        raise ValueError(f"frame_s={frame_s} is too short at {rate} Hz")
    if method == "webrtc":
        mask = _webrtc(x, rate, frame, aggressiveness)
    elif method == "energy":
        from scipy.ndimage import percentile_filter

        energy, flatness = _speech_features(x, rate, frame)
        if energy.size == 0:
            mask = np.zeros(0, bool)
        else:
            window = max(3, int(2.0 / frame_s) | 1)
            floor = percentile_filter(energy, 10, size=window, mode="nearest")
            # A floor no lower than the whole track's quiet level, so long speech cannot
            # drag it up to itself, and no lower than near digital silence.
            floor = np.minimum(floor, np.percentile(energy, 10) + 3.0)
            floor = np.maximum(floor, -110.0)
            above = energy - floor
            tonal = flatness < 0.25
            # Hysteresis: frames well above the floor (or tonal and above it) seed speech;
            # neighbouring frames a little above the floor extend it, so the weak starts and
            # ends of words are kept while noise alone never starts a segment.
            seed = ((above > threshold_db) | (tonal & (above > threshold_db / 2))) & (energy > -95.0)
            seed &= ~_runs_shorter_than(seed, True, 2)  # speech lasts; a lone loud noise frame does not
            # Never below 2.5 dB: noise alone wanders about that much from frame to frame.
            low = max(threshold_db * extend, 2.5)
            weak = (above > low) | (tonal & (above > low / 2))
            mask = _grow(seed, weak | seed)
    else:
        raise ValueError(f"method must be 'energy' or 'webrtc', got {method!r}")
    if exclude is not None:  # before bridging pauses, so a pause is never bridged across an excluded span
        exclude = np.pad(np.asarray(exclude, bool)[: mask.size], (0, max(0, mask.size - len(exclude))))
        mask = mask & ~exclude
    mask = mask | _runs_shorter_than(mask, False, int(round(min_pause_s / frame_s)))
    if exclude is not None:
        mask = mask & ~exclude
    mask = mask & ~_runs_shorter_than(mask, True, int(round(min_speech_s / frame_s)))
    return Speech(mask, _segments(mask, frame_s), frame_s)


def _webrtc(x: np.ndarray, rate: int, frame: int, aggressiveness: int) -> np.ndarray:
    try:
        import webrtcvad
    except ImportError as exc:  # pragma: no cover - exercised where the extra is absent
        raise ImportError("method='webrtc' needs webrtcvad: pip install 'telnyx-audio[vad]' (webrtcvad-wheels)") from exc
    if rate not in (8000, 16000, 32000, 48000):
        raise ValueError(f"webrtcvad takes 8, 16, 32 or 48 kHz audio, got {rate} Hz")
    vad = webrtcvad.Vad(aggressiveness)
    pcm = to_int16(x).astype("<i2")
    n = pcm.size // frame
    raw = pcm[: n * frame].tobytes()
    step = frame * 2
    return np.fromiter((vad.is_speech(raw[i : i + step], rate) for i in range(0, n * step, step)), bool, n)
