"""Analysis of call audio: spectrograms, voice activity, call metrics, DTMF, codec checks.

Everything takes the arrays the core produces, int16 or float32, at the stream's real sample
rate, with time on the last axis (two tracks as ``(2, n)``: ``[inbound, outbound]``). All of it
is whole-array numpy: no Python loop per frame or per sample, so hour-long calls are quick.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Iterable, Sequence

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from telnyx_audio._dsp import to_int16

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

__all__ = [
    "Spectrogram",
    "spectrogram",
    "Speech",
    "detect_speech",
    "CallAnalysis",
    "analyze_call",
    "levels",
    "detect_dtmf",
    "cross_check_dtmf",
    "CodecCheck",
    "check_codec",
]

_EPS = 1e-12
DTMF_LOW = np.array([697.0, 770.0, 852.0, 941.0])
DTMF_HIGH = np.array([1209.0, 1336.0, 1477.0, 1633.0])
DTMF_KEYS = np.array([list("123A"), list("456B"), list("789C"), list("*0#D")])


def _as_float(pcm: Any) -> np.ndarray:
    """float32 in [-1, 1) from int16 or float input; 1-D or (tracks, n)."""
    arr = np.asarray(getattr(pcm, "audio", pcm))
    if arr.dtype == np.int16:
        return arr.astype(np.float32) / 32768.0
    if arr.dtype.kind == "f":
        return arr.astype(np.float32, copy=False)
    raise TypeError(f"pcm must be int16 or float, got {arr.dtype}")


def _rate(sr: Any, pcm: Any = None) -> int:
    rate = sr if sr is not None else getattr(pcm, "sample_rate", None)
    if rate is None or isinstance(rate, bool) or not float(rate).is_integer() or rate <= 0:
        raise ValueError(f"sr must be a positive sample rate in Hz, got {rate!r}")
    return int(rate)


def _frames(x: np.ndarray, size: int, hop: int) -> np.ndarray:
    """(n_frames, size) view of a 1-D signal (no copy), the tail that does not fill a frame dropped."""
    if x.size < size:
        return np.zeros((0, size), x.dtype)
    return sliding_window_view(x, size)[::hop]


# --- spectrograms -------------------------------------------------------------------------

@dataclass(frozen=True)
class Spectrogram:
    """Power in dB over time and frequency.

    Attributes
    ----------
    db : np.ndarray of float32, shape (n_freqs, n_times)
        Power spectral density in dB (re. full scale squared per Hz).
    freqs : np.ndarray, shape (n_freqs,)
        Hz.
    times : np.ndarray, shape (n_times,)
        Seconds, the centre of each frame.
    sample_rate : int
    """

    db: np.ndarray
    freqs: np.ndarray
    times: np.ndarray
    sample_rate: int

    def __repr__(self) -> str:
        return f"<Spectrogram {self.db.shape[0]} freqs x {self.db.shape[1]} frames, {self.sample_rate} Hz>"


def spectrogram(pcm: np.ndarray, sr: int | None = None, *, frame_s: float = 0.032, overlap: float = 0.5,
                floor_db: float = -140.0) -> Spectrogram:
    """Spectrogram of one track.

    Parameters
    ----------
    pcm : np.ndarray, shape (n,)
        int16 or float audio.
    sr : int
        Its real sample rate (a :class:`~telnyx_audio.Recording` track carries it).
    frame_s : float
        Frame length (32 ms by default: 256 samples at 8 kHz; a power of two is used).
        Longer frames resolve pitch harmonics, shorter ones follow fast changes.
    overlap : float
        Fraction of each frame shared with the next (0 to 0.9).
    floor_db : float
        Lowest value returned (digital silence would be minus infinity).

    Returns
    -------
    Spectrogram

    Examples
    --------
    >>> t = np.arange(8000) / 8000
    >>> spec = spectrogram(np.sin(2 * np.pi * 1000 * t), 8000)
    >>> float(spec.freqs[spec.db.mean(axis=1).argmax()])
    1000.0
    """
    from scipy import fft

    rate = _rate(sr, pcm)
    x = _as_float(pcm)
    if x.ndim != 1:
        raise ValueError(f"spectrogram takes one track, shape (n,); got {x.shape} (pass audio[0] or audio[1])")
    if not 0 <= overlap <= 0.9:
        raise ValueError(f"overlap must be between 0 and 0.9, got {overlap}")
    size = 1 << max(4, int(np.ceil(np.log2(max(frame_s, 1e-3) * rate))))
    hop = max(1, int(round(size * (1 - overlap))))
    window = np.hanning(size + 1)[:-1].astype(np.float32)
    frames = _frames(x, size, hop)
    scale = np.float32(2.0 / (rate * (window**2).sum()))
    floor = np.float32(10 ** (floor_db / 10))
    out = np.empty((frames.shape[0], size // 2 + 1), np.float32)
    step = 1 << 13  # frames per pass: temporaries stay in cache, memory stays near the output
    for lo in range(0, frames.shape[0], step):
        spec = fft.rfft(frames[lo : lo + step] * window, axis=1)
        power = np.square(spec.real) + np.square(spec.imag)
        power *= scale
        np.maximum(power, floor, out=power)
        np.log10(power, out=power)
        np.multiply(power, np.float32(10), out=out[lo : lo + step])
    db = out.T  # (n_freqs, n_times), time on the last axis
    times = (np.arange(frames.shape[0]) * hop + size / 2) / rate
    return Spectrogram(db.astype(np.float32, copy=False), np.fft.rfftfreq(size, 1 / rate), times, rate)


# --- voice activity -------------------------------------------------------------------------

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


def _segments(mask: np.ndarray, frame_s: float) -> "pd.DataFrame":
    import pandas as pd

    edges = np.diff(np.concatenate(([0], mask.astype(np.int8), [0])))
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    return pd.DataFrame({"start_s": starts * frame_s, "end_s": ends * frame_s, "duration_s": (ends - starts) * frame_s})


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
                  aggressiveness: int = 2) -> Speech:
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
    mask = mask | _runs_shorter_than(mask, False, int(round(min_pause_s / frame_s)))
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


# --- levels and call metrics --------------------------------------------------------------------

def levels(pcm: np.ndarray, sr: int | None = None, speech: Speech | None = None) -> dict[str, float]:
    """RMS and peak in dBFS, clipping ratio, DC offset and an SNR estimate of one track.

    The SNR estimate compares the band energy of speech frames with that of the others
    (``speech`` from :func:`detect_speech`, computed when not given).

    Examples
    --------
    >>> lv = levels(np.full(8000, 16384, np.int16), 8000)
    >>> round(lv["rms_dbfs"], 1), round(lv["dc_offset"], 2)
    (-6.0, 0.5)
    """
    rate = _rate(sr, pcm)
    x = _as_float(pcm)
    if x.size == 0:
        return {"rms_dbfs": -np.inf, "peak_dbfs": -np.inf, "clipping_ratio": 0.0, "dc_offset": 0.0, "snr_db": np.nan}
    rms = float(np.sqrt(np.mean(np.square(x, dtype=np.float64))))
    peak = float(np.abs(x).max())
    clipped = float(np.mean(np.abs(x) >= 32767 / 32768))
    frame = int(0.01 * rate)
    energy, _ = _speech_features(x, rate, frame)
    speech = speech if speech is not None else detect_speech(x, rate)
    mask = speech.mask[: energy.size]
    snr = np.nan
    if mask.any() and (~mask).any():
        snr = float(10 * np.log10(np.mean(10 ** (energy[mask] / 10))) - 10 * np.log10(np.mean(10 ** (energy[~mask] / 10))))
    return {"rms_dbfs": float(20 * np.log10(max(rms, _EPS))), "peak_dbfs": float(20 * np.log10(max(peak, _EPS))),
            "clipping_ratio": clipped, "dc_offset": float(np.mean(x, dtype=np.float64)), "snr_db": snr}


@dataclass(frozen=True)
class CallAnalysis:
    """What :func:`analyze_call` found; every table is a tidy DataFrame.

    Attributes
    ----------
    talk : DataFrame
        Per party: ``talk_s``, ``share`` (of all talk), ``segments``.
    turns : DataFrame
        ``party``, ``start_s``, ``end_s``, ``duration_s``, ``response_latency_s`` (from the
        other party's last words; NaN for the first turn or after one's own).
    overlaps : DataFrame
        ``start_s``, ``end_s``, ``duration_s``, ``interrupter``, ``interrupted``.
    silences : DataFrame
        Dead air longer than the threshold: ``start_s``, ``end_s``, ``duration_s``.
    levels : DataFrame
        Per party: ``rms_dbfs``, ``peak_dbfs``, ``clipping_ratio``, ``dc_offset``, ``snr_db``.
    speech : dict of str to Speech
    """

    talk: "pd.DataFrame"
    turns: "pd.DataFrame"
    overlaps: "pd.DataFrame"
    silences: "pd.DataFrame"
    levels: "pd.DataFrame"
    speech: dict[str, Speech] = field(repr=False)
    duration_s: float = 0.0

    @property
    def summary(self) -> str:
        """One line: duration, talk shares, turns, interruptions, dead air, response latency."""
        share = ", ".join(f"{p} {r.share:.0%}" for p, r in self.talk.iterrows())
        cuts = ", ".join(f"{k} cut in {v}x" for k, v in self.overlaps["interrupter"].value_counts().items())
        parts = [f"{self.duration_s:.1f} s call", f"talk {share}", f"{len(self.turns)} turns",
                 f"{len(self.overlaps)} overlaps ({cuts or 'none'})",
                 f"{len(self.silences)} silences > threshold ({self.silences['duration_s'].sum():.1f} s)"]
        latency = self.turns["response_latency_s"].median()
        if latency == latency:  # not NaN: some turn answered the other party
            parts.append(f"median response latency {latency:.2f} s")
        return "; ".join(parts)

    def __repr__(self) -> str:
        return f"<CallAnalysis {self.summary}>"


def analyze_call(audio: Any, sr: int | None = None, *, silence_s: float = 2.0, parties: Sequence[str] = ("inbound", "outbound"),
                 **vad: Any) -> CallAnalysis:
    """Measure a two-party call: talk time, turns, overlaps, dead air, latency, levels.

    Parameters
    ----------
    audio : Recording or np.ndarray, shape (2, n)
        ``[inbound, outbound]``, int16 or float.
    sr : int
        Sample rate (taken from a Recording).
    silence_s : float
        Dead air: both parties silent for longer than this.
    parties : pair of str
        Names for the two tracks.
    **vad
        Passed to :func:`detect_speech` for both tracks.

    Returns
    -------
    CallAnalysis
    """
    import pandas as pd

    rate = _rate(sr, audio)
    x = _as_float(audio)
    if x.ndim != 2 or x.shape[0] != 2:
        raise ValueError(f"analyze_call takes two tracks, shape (2, n); got {x.shape}")
    speech = {name: detect_speech(x[i], rate, **vad) for i, name in enumerate(parties)}
    frame_s = speech[parties[0]].frame_s
    n = max(s.mask.size for s in speech.values())
    a, b = (np.pad(speech[p].mask, (0, n - speech[p].mask.size)) for p in parties)

    total = a.sum() + b.sum()
    talk = pd.DataFrame({"talk_s": [a.sum() * frame_s, b.sum() * frame_s],
                         "share": [a.sum() / total if total else 0.0, b.sum() / total if total else 0.0],
                         "segments": [len(speech[p].segments) for p in parties]}, index=list(parties))
    talk.index.name = "party"

    # Overlaps: both talking. The interrupter is the one whose speech began later.
    both = _segments(a & b, frame_s)
    seg_a, seg_b = speech[parties[0]].segments, speech[parties[1]].segments
    start_a = _segment_start_at(seg_a, both["start_s"].to_numpy())
    start_b = _segment_start_at(seg_b, both["start_s"].to_numpy())
    both["interrupter"] = np.where(start_b >= start_a, parties[1], parties[0])
    both["interrupted"] = np.where(start_b >= start_a, parties[0], parties[1])

    # Dead air: nobody talking for longer than the threshold (not counting the call's ends).
    quiet = _segments(~(a | b), frame_s)
    quiet = quiet[(quiet["duration_s"] > silence_s) & (quiet["start_s"] > 0) & (quiet["end_s"] < n * frame_s)]

    # Turns: each party's segments, in order; a turn answers the other party's last words.
    segs = pd.concat([seg_a.assign(party=parties[0]), seg_b.assign(party=parties[1])]).sort_values("start_s", kind="stable")
    segs = segs.reset_index(drop=True)
    other_end = np.full(len(segs), np.nan)
    prev_party = segs["party"].shift()
    for name in parties:  # two vectorized passes, one per party
        mine = (segs["party"] == name).to_numpy()
        ends = np.where(~mine, segs["end_s"], np.nan)
        last_other = pd.Series(ends).ffill().shift().to_numpy()
        other_end = np.where(mine, last_other, other_end)
    latency = np.where(prev_party.to_numpy() != segs["party"].to_numpy(), segs["start_s"] - other_end, np.nan)
    turns = segs[["party", "start_s", "end_s", "duration_s"]].assign(response_latency_s=latency)

    lv = pd.DataFrame([levels(x[i], rate, speech[p]) for i, p in enumerate(parties)], index=list(parties))
    lv.index.name = "party"
    return CallAnalysis(talk, turns, both.reset_index(drop=True), quiet.reset_index(drop=True), lv, speech, x.shape[1] / rate)


def _segment_start_at(segments: "pd.DataFrame", times: np.ndarray) -> np.ndarray:
    """Start of the segment containing each time."""
    if len(segments) == 0 or times.size == 0:
        return np.zeros(times.size)
    idx = np.searchsorted(segments["start_s"].to_numpy(), times + 1e-9, side="right") - 1
    return segments["start_s"].to_numpy()[np.clip(idx, 0, None)]


# --- DTMF ---------------------------------------------------------------------------------

def detect_dtmf(pcm: np.ndarray, sr: int | None = None, *, min_s: float = 0.04, min_level_dbfs: float = -45.0,
                max_twist_db: float = 8.0) -> "pd.DataFrame":
    """Find in-band DTMF digits (ITU-T Q.23/Q.24 tones) with their times.

    Each 25.6 ms window (hop 10 ms) is measured at the eight DTMF frequencies with the
    Goertzel algorithm's bins (the DFT at just those frequencies, computed for all windows at
    once as one matrix product). A window holds a digit when its strongest low and high
    tones together carry most of its energy, both are loud enough, their levels differ by
    less than ``max_twist_db``, and no other DTMF tone comes close; a digit is reported when
    it lasts at least ``min_s``.

    Returns
    -------
    pandas.DataFrame
        ``digit``, ``start_s``, ``end_s``, ``duration_s``, ``level_dbfs``.

    Examples
    --------
    >>> sr = 8000
    >>> t = np.arange(int(0.1 * sr)) / sr
    >>> five = 0.3 * (np.sin(2 * np.pi * 770 * t) + np.sin(2 * np.pi * 1336 * t))
    >>> detect_dtmf(np.concatenate([np.zeros(800), five, np.zeros(800)]), sr)["digit"].tolist()
    ['5']
    """
    import pandas as pd

    rate = _rate(sr, pcm)
    x = _as_float(pcm)
    if x.ndim != 1:
        raise ValueError(f"detect_dtmf takes one track, shape (n,); got {x.shape}")
    size = int(round(0.0256 * rate))  # 205 samples at 8 kHz: the classic Goertzel block
    hop = int(round(0.01 * rate))
    frames = _frames(x, size, hop)
    empty = pd.DataFrame({"digit": pd.Series(dtype=str), "start_s": pd.Series(dtype=float), "end_s": pd.Series(dtype=float),
                          "duration_s": pd.Series(dtype=float), "level_dbfs": pd.Series(dtype=float)})
    if frames.shape[0] == 0:
        return empty
    freqs = np.concatenate([DTMF_LOW, DTMF_HIGH, 2 * DTMF_LOW, 2 * DTMF_HIGH])
    n = np.arange(size)
    basis = np.exp(-2j * np.pi * np.outer(n, freqs) / rate).astype(np.complex64)
    window = np.hamming(size).astype(np.float32)
    bins = (frames * window) @ basis
    power = (bins.real**2 + bins.imag**2) * (2.0 / (window.sum() ** 2))
    low, high, harm = power[:, :4], power[:, 4:8], power[:, 8:]
    li, hi = low.argmax(axis=1), high.argmax(axis=1)
    rows = np.arange(len(li))
    lp, hp = low[rows, li], high[rows, hi]
    frame_power = np.mean(np.square(frames), axis=1) + _EPS  # mean square; a tone of amplitude a has a^2/2
    # Energy check: the two tones hold most of the window's power (speech and noise do not).
    tonal = lp + hp > 0.6 * frame_power
    loud = 10 * np.log10(np.minimum(lp, hp) + _EPS) > min_level_dbfs
    twist = np.abs(10 * np.log10((lp + _EPS) / (hp + _EPS))) < max_twist_db
    low_sorted, high_sorted = np.sort(low, axis=1), np.sort(high, axis=1)
    clean = (low_sorted[:, -2] < 0.1 * lp) & (high_sorted[:, -2] < 0.1 * hp)
    no_harmonics = harm.max(axis=1) < 0.1 * np.maximum(lp, hp)  # speech has them, DTMF does not
    ok = tonal & loud & twist & clean & no_harmonics
    code = np.where(ok, li * 4 + hi, -1)
    edges = np.flatnonzero(np.diff(np.concatenate(([-1], code, [-1]))) != 0)
    starts, ends = edges[:-1], edges[1:]
    values = code[starts]
    keep = values >= 0
    starts, ends, values = starts[keep], ends[keep], values[keep]
    duration = (ends - starts - 1) * hop / rate + size / rate
    long_enough = duration >= min_s
    starts, ends, values, duration = starts[long_enough], ends[long_enough], values[long_enough], duration[long_enough]
    if values.size == 0:
        return empty
    energy = np.concatenate(([0.0], np.cumsum(lp + hp)))
    level = 10 * np.log10((energy[ends] - energy[starts]) / (ends - starts) + _EPS)
    return pd.DataFrame({"digit": DTMF_KEYS.ravel()[values], "start_s": starts * hop / rate,
                         "end_s": starts * hop / rate + duration, "duration_s": duration, "level_dbfs": level})


def cross_check_dtmf(in_band: "pd.DataFrame", events: Iterable[Any]) -> "pd.DataFrame":
    """Line up in-band digits with the stream's ``dtmf`` events (in order).

    Parameters
    ----------
    in_band : DataFrame
        From :func:`detect_dtmf`.
    events : iterable of Dtmf events or digit strings

    Returns
    -------
    pandas.DataFrame
        One row per position: ``in_band`` digit (and ``start_s``), ``event`` digit, and
        ``status``: ``"match"``, ``"mismatch"``, ``"only in band"`` or ``"only event"``.
    """
    import pandas as pd

    digits = [getattr(e, "digit", e) for e in events if isinstance(getattr(e, "digit", e), str)]
    found = in_band["digit"].tolist()
    n = max(len(found), len(digits))
    rows = []
    for i in range(n):  # a handful of digits: a plain loop is the clear way
        a = found[i] if i < len(found) else None
        b = digits[i] if i < len(digits) else None
        status = "match" if a == b else "only event" if a is None else "only in band" if b is None else "mismatch"
        rows.append({"in_band": a, "start_s": float(in_band["start_s"].iloc[i]) if a is not None else np.nan,
                     "event": b, "status": status})
    return pd.DataFrame(rows, columns=["in_band", "start_s", "event", "status"])


# --- codec mismatch -----------------------------------------------------------------------

@dataclass(frozen=True)
class CodecCheck:
    """Whether audio looks decoded with the wrong G.711 law.

    ``score`` compares how natural the audio looks as decoded (``encoding``) and as the other
    law would decode the same bytes: positive means the other law fits better.
    """

    encoding: str
    suspect: bool
    likely_encoding: str
    score: float

    def __repr__(self) -> str:
        verdict = f"looks like {self.likely_encoding} decoded as {self.encoding}" if self.suspect else "looks right"
        return f"<CodecCheck {self.encoding}: {verdict} (score {self.score:+.2f})>"


def _naturalness(x: np.ndarray) -> float:
    """High for speech and quiet lines (smooth, low level); low for static (rough, loud)."""
    x = x.astype(np.float64) / 32768
    if x.size < 2:
        return 0.0
    centred = x - x.mean()
    energy = np.mean(centred**2) + 1e-12
    rough = np.mean(np.diff(centred) ** 2) / energy  # 0 for smooth, 2 for white, up to 4
    return float(-rough - 0.5 * np.log10(energy))


def check_codec(pcm: np.ndarray, encoding: str) -> CodecCheck:
    """Flag audio that looks like A-law decoded as mu-law, or the reverse (loud static).

    The decoded samples are re-encoded with ``encoding`` (G.711 is lossless on its own
    output), giving back the bytes on the wire; those bytes are decoded with the other law
    too, and the two results compared: the right law gives smooth, speech-like audio, the
    wrong one loud, rough static.

    Examples
    --------
    >>> from telnyx_audio import codecs
    >>> t = np.arange(8000) / 8000
    >>> voice = (3000 * np.sin(2 * np.pi * 220 * t)).astype(np.int16)
    >>> wrong = codecs.decode(codecs.encode(voice, "PCMA"), "PCMU")   # A-law bytes read as mu-law
    >>> check_codec(wrong, "PCMU").suspect, check_codec(voice, "PCMU").suspect
    (True, False)
    """
    from telnyx_audio import codecs

    if encoding not in ("PCMU", "PCMA"):
        raise ValueError(f"check_codec applies to PCMU or PCMA audio, got {encoding!r}")
    arr = to_int16(pcm)
    other = "PCMA" if encoding == "PCMU" else "PCMU"
    raw = np.frombuffer(codecs.encode(arr.reshape(-1), encoding), np.uint8)
    as_other = codecs.decode(raw, other)
    score = _naturalness(as_other) - _naturalness(arr.reshape(-1))
    suspect = score > 0.5
    return CodecCheck(encoding, suspect, other if suspect else encoding, score)
