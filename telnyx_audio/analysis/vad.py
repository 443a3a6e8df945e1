"""Voice activity: which 10 ms frames of a track hold speech.

The default detector compares each frame's spectrum, band by band, with a running estimate
of the line's noise in that band, and calls a frame speech when its bands stand, on
average, far enough above their noise. Working per band matters on telephone lines: speech
at 5 dB SNR overall is still 15 dB or more above the noise in the bands that hold its
formants, while noise alone stays near 0 dB in every band. Digital silence (a muted or
comfort-noise-free line, or a jitter buffer's fill) is recognised as such: it is never speech
and never pulls the noise estimate down, so a recording's own hiss next to it is not mistaken
for a voice. Spans the network lost (``lost=``: the gaps a recording reports, filled with
silence or made up by a decoder) are neither speech nor silence: they never feed the noise
estimate nor the loud level, never start or end speech, and a short one inside speech is
bridged as a pause would be. All of it works on whole arrays; an hour of 8 kHz audio takes well
under a second.

Measured on real and synthetic telephone speech beside webrtcvad and Silero VAD by
``bench/vad.py`` (parameters tuned on one set of recordings, scored on another).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from telnyx_audio._util.dsp import to_int16
from telnyx_audio.analysis._common import _as_float, _edges, _fill, _rate, _segments, _spans_to_mask

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

__all__ = ["Speech", "detect_speech", "speech_score", "lost_frames"]

_SILENT = 1e-11  # band power (full scale = 0.5) under which a frame is digital silence: G.711's quietest codes sit above it
_FLOOR = 10 ** (-95 / 10)  # the lowest noise estimate per band (dB re full-scale sine power)
_QUANTILE = 0.2  # of each block's frames per band: low enough to find the pauses between words
_STEADY_DB = 3.5  # a block of noise: its frame energies (dB) vary less than this (speech: 5-10 dB)
_TILT_DB = 30.0  # no band's noise estimate lies further than this under the loudest band's
_UNDER_VOICE_DB = 15.0  # a steady block this far under the loud level nearby may be taken for noise
_SLOW_S = 0.5  # a segment also starts where the score averaged over this long ...
_SLOW = 0.07  # ... reaches this (at 8 kHz; in proportion to the bands at other rates) ...
_SLOW_RANGE_DB = 25.0  # ... within this of the loud level nearby
_BIAS = 3.13  # the mean of noise over that estimate (4.96 dB, measured on white and pink noise at 8 and 16 kHz)
# A call whose 80th-percentile frame score under 3.8 kHz lies in this range is speech weak
# in loud noise all through (clean speech: over 2; noise alone: about 0.05): misses cost more
# there than false alarms, so ``threshold`` drops by _LOW_SNR_SCALE and pauses shorter than
# _LOW_SNR_PAUSE_S are bridged (tuned on the TUNE set, incl. meeting-like calls at 0-5 dB SNR).
_LOW_SNR = (0.08, 0.6)
_LOW_SNR_SCALE = 0.8
_LOW_SNR_PAUSE_S = 1.0
# Where the pauses are digital silence (runs of at least _EDGE_SILENCE_S) there is no hiss to
# drop: within _EDGE_S of speech, in sound bounded by such silence on both sides, frames up to
# _EDGE_DB past the ``range_db`` gate join speech (the weak starts and ends of words). Added
# after the SCORE set's 8 kHz clean digital-silence condition missed; constants from TUNE.
_EDGE_S = 0.1
_EDGE_DB = 3.0
_EDGE_SILENCE_S = 0.1


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
    band_energy_db : np.ndarray of float32, shape (n_frames,), or None
        Each frame's power from 200 Hz up (dB re full scale), as the default method measured
        it (None for ``method="webrtc"``); :func:`levels` reuses it.
    lost : np.ndarray of bool, shape (n_frames,), or None
        Frames that hold audio the network lost (from ``lost=``; None when none was given).
        They are neither speech nor silence; one inside speech is bridged as a pause is.
    """

    mask: np.ndarray
    segments: "pd.DataFrame"
    frame_s: float = 0.01
    band_energy_db: np.ndarray | None = field(default=None, repr=False, compare=False)
    lost: np.ndarray | None = field(default=None, repr=False, compare=False)

    @property
    def speech_s(self) -> float:
        """Seconds of speech (frames marked times the frame length)."""
        return float(self.mask.sum() * self.frame_s)

    @property
    def lost_s(self) -> float:
        """Seconds of frames that hold lost audio (0.0 when none was given)."""
        return 0.0 if self.lost is None else float(self.lost.sum() * self.frame_s)

    def __repr__(self) -> str:
        lost = f", {self.lost_s:.2f} s lost" if self.lost_s else ""
        return f"<Speech {len(self.segments)} segments, {self.speech_s:.2f} s of {self.mask.size * self.frame_s:.2f} s{lost}>"


def lost_frames(spans: Any, n_frames: int, frame_s: float = 0.01) -> tuple[np.ndarray, np.ndarray]:
    """Which frames a set of lost spans touches: the frames themselves, and those whose analysis
    window (twice the frame, centred on it) reaches into a span.

    Parameters
    ----------
    spans : array-like of float, shape (k, 2)
        ``(start_s, end_s)`` of each span the network lost (a Recording's ``lost[track]``).
    n_frames : int
    frame_s : float

    Returns
    -------
    (np.ndarray of bool, np.ndarray of bool), each of shape (n_frames,)
        ``lost`` (the frame overlaps a span) and ``tainted`` (its window does: a superset).

    Examples
    --------
    >>> lost, tainted = lost_frames([(0.04, 0.06)], 10)
    >>> np.flatnonzero(lost).tolist(), np.flatnonzero(tainted).tolist()
    ([4, 5], [3, 4, 5, 6])
    """
    spans = np.asarray(spans, np.float64).reshape(-1, 2)
    if spans.size and not (np.isfinite(spans).all() and (spans[:, 1] >= spans[:, 0]).all()):
        raise ValueError(f"lost spans must be (start_s, end_s) pairs with end_s >= start_s, got {spans.tolist()!r}")
    lost = _spans_to_mask(spans[:, 0], spans[:, 1], n_frames, frame_s)
    tainted = _spans_to_mask(spans[:, 0] - frame_s / 2, spans[:, 1] + frame_s / 2, n_frames, frame_s)
    return lost, tainted


def _grow(seed: np.ndarray, allowed: np.ndarray) -> np.ndarray:
    """The runs of ``allowed`` that contain at least one ``seed`` frame."""
    run = np.cumsum(np.diff(np.concatenate(([0], allowed.astype(np.int8)))) == 1)  # run id per frame
    has_seed = np.zeros(run.max(initial=0) + 1, bool)
    has_seed[run[seed & allowed]] = True
    return allowed & has_seed[run]


def _runs_shorter_than(mask: np.ndarray, value: bool, frames: int) -> np.ndarray:
    """Mask of the runs of ``value`` shorter than ``frames`` (not touching either end for False)."""
    starts, ends = _edges(mask == value)
    short = (ends - starts) < frames
    if not value:  # a pause at the very start or end is not a pause inside speech
        short &= (starts > 0) & (ends < mask.size)
    return _fill(starts[short], ends[short], mask.size)


def _n_bands(rate: int) -> int:
    """Bands of ~250 Hz from 200 Hz to 3.8 kHz, or to 7 kHz at wideband rates."""
    return max(1, int((min(0.475 * rate, 7000.0) - 200) // 250))


def _band_power(x: np.ndarray, rate: int, frame: int, chunk: int = 256) -> np.ndarray:
    """Power per frame and band, shape (n_frames, n_bands), float32; a full-scale sine gives 0.5.

    Frames are ``frame`` samples apart; each is measured over a Hann window twice as long,
    centred on it. Bands are ~250 Hz wide from 200 Hz to 3.8 kHz (up to 7 kHz at wideband
    rates): below 200 Hz live hum and rumble, not speech. The frames go through in pieces of
    ``chunk`` (a loop over pieces, not frames): each piece's windowed copy and spectrum stay
    in the CPU's cache, which makes this several times faster than one whole-array pass.
    """
    from scipy import fft

    n = x.size // frame
    size = 2 * frame
    top = min(0.475 * rate, 7000.0)
    n_bands = _n_bands(rate)
    padded = np.zeros((n + 2) * frame, np.float32)
    padded[frame // 2 : frame // 2 + n * frame] = x[: n * frame]
    window = np.hanning(size).astype(np.float32)
    freqs = np.fft.rfftfreq(size, 1 / rate)
    used = np.flatnonzero((freqs >= 200) & (freqs < top))
    band = np.floor((freqs[used] - 200) / ((top - 200) / n_bands)).astype(int)
    scale = np.float32(2.0 / window.sum() ** 2)  # a sine of amplitude a sums to a^2/2 over its bins
    members = (band[:, None] == np.arange(n_bands)).astype(np.float32) * scale
    frames = sliding_window_view(padded, size)[::frame][:n]
    out = np.empty((n, n_bands), np.float32)
    for start in range(0, n, chunk):
        spec = fft.rfft(frames[start : start + chunk] * window, axis=1)[:, used[0] : used[-1] + 1]
        power = np.square(spec.real)
        power += np.square(spec.imag)
        np.matmul(power, members, out=out[start : start + chunk])
    return out


def _blocks(values: np.ndarray, block: int, mirror: bool = False) -> np.ndarray:
    """(n_blocks, block, ...) view of per-frame values, the last block padded with the last frame;
    with ``mirror``, filled up with the frames before its end, mirrored (frames joined across
    lost spans can end on one odd frame, which repeated would become the whole block's
    quantile). The detector's own path (no loss) keeps the padding it was tuned with."""
    extra = -values.shape[0] % block
    if extra and not mirror:
        values = np.concatenate((values, np.repeat(values[-1:], extra, axis=0)))
    elif extra:
        tail = values[::-1][1 : extra + 1] if values.shape[0] > extra else values[:0]
        values = np.concatenate((values, tail, np.repeat(values[-1:], extra - tail.shape[0], axis=0)))
    return values.reshape((-1, block) + values.shape[1:])


def _nearest(heard: np.ndarray, n: int) -> np.ndarray:
    """For each of ``n`` frames, the position in ``heard`` (sorted frame indices) of the nearest one."""
    after = np.clip(np.searchsorted(heard, np.arange(n)), 0, heard.size - 1)
    before = np.clip(after - 1, 0, heard.size - 1)
    frames = np.arange(n)
    return np.where(np.abs(heard[before] - frames) <= np.abs(heard[after] - frames), before, after)


def _lower_quantile(blocks: np.ndarray, q: float) -> np.ndarray:
    """``np.quantile(blocks, q, axis=1, method="lower")``, by partition (a few times faster)."""
    k = int(np.floor(q * (blocks.shape[1] - 1)))
    return np.partition(blocks, k, axis=1)[:, k]


def _noise(power: np.ndarray, silent: np.ndarray, under_voice: np.ndarray, block: int, blocks: int,
           mirror: bool = False) -> np.ndarray:
    """Per frame and band, the line's mean noise power.

    Mostly a low quantile of each ``block`` of frames, the lowest of the ``blocks`` blocks
    around it, corrected for the bias of that estimate. A block whose level holds steady
    (frame energies within ``_STEADY_DB``) and lies well under the voice (``under_voice``,
    per block) is noise itself, whatever lies around it: its own mean is a floor there
    (comfort noise in the pauses is louder than the line under the voice). A steady sound
    as loud as the voice is not taken for noise: a held vowel, or a synthetic voice, is
    steady too. Digital silence counts as the quietest noise there is.
    """
    from scipy.ndimage import minimum_filter1d

    quiet = np.where(silent[:, None], np.float32(_FLOOR / _BIAS), power)
    grouped = _blocks(quiet, block, mirror)
    per_block = _lower_quantile(grouped, _QUANTILE)
    floor = minimum_filter1d(per_block, blocks, axis=0, mode="nearest") * np.float32(_BIAS)
    level = np.log10(grouped + np.float32(1e-20))
    steady = (level.std(axis=1).max(axis=1) * 10 < _STEADY_DB) & ~_blocks(silent, block, mirror).any(axis=1) & under_voice
    if steady.any():
        own = grouped.mean(axis=1)
        # The nearest steady block on either side (within the window) bounds the floor from below.
        index = np.arange(steady.size)
        left = np.maximum.accumulate(np.where(steady, index, -1))
        right = np.minimum.accumulate(np.where(steady, index, steady.size)[::-1])[::-1]
        near = np.full(floor.shape, np.inf, np.float32)
        for side in (left, right):  # two sides, not a loop over data
            ok = (side >= 0) & (side < steady.size) & (np.abs(side - index) <= blocks // 2)
            near = np.where(ok[:, None], np.minimum(near, own[np.clip(side, 0, steady.size - 1)]), near)
        floor = np.where(np.isfinite(near), np.maximum(floor, near), floor)
    # No band's noise lies more than _TILT_DB under the loudest band's: a line whose noise stops
    # at 3.4 kHz does not make a wideband talker's own hiss above it look like a voice.
    floor = np.maximum(floor, floor.max(axis=1, keepdims=True) * np.float32(10 ** (-_TILT_DB / 10)))
    return np.repeat(np.maximum(floor, np.float32(_FLOOR)), block, axis=0)[: power.shape[0]]


def _loud(energy: np.ndarray, block: int, blocks: int, mirror: bool = False) -> np.ndarray:
    """Per frame, the track's loud level nearby (dB): the 90th percentile of each block, the
    highest of the ``blocks`` blocks around it."""
    from scipy.ndimage import maximum_filter1d

    per_block = _lower_quantile(_blocks(energy, block, mirror), 0.9)
    return np.repeat(maximum_filter1d(per_block, blocks, mode="nearest"), block)[: energy.size]


def speech_score(pcm: Any, sr: int | None = None, *, frame_s: float = 0.01) -> np.ndarray:
    """How strongly each frame departs from the line's noise: the default detector's statistic.

    Per ~250 Hz band from 200 Hz up, the frame's power over the running noise estimate in
    that band is the a-posteriori SNR ``g``; the frame's score is the sum over bands of
    ``g - 1 - ln g`` (where ``g > 1``), the log-likelihood ratio of speech against noise
    with the SNR estimated from the frame itself (Sohn, Kim and Sung, "A statistical
    model-based voice activity detector", IEEE SPL 6(1), 1999), divided by the number of
    bands under 3.8 kHz so a score means the same at 8 and 16 kHz. Noise alone scores
    about 0.05, speech well above 0.2; digital silence scores NaN.

    Parameters
    ----------
    pcm : np.ndarray, shape (n,)
        int16 or float audio of one track (a Recording's track carries its rate).
    sr : int, optional
        Sample rate in Hz, for plain arrays.
    frame_s : float
        Frame hop in seconds; 10 ms matches :func:`detect_speech`'s mask.

    Returns
    -------
    np.ndarray of float32, shape (n_frames,)

    Examples
    --------
    >>> sr = 8000
    >>> rng = np.random.default_rng(0)
    >>> noise = rng.normal(0, 0.01, 3 * sr)
    >>> t = np.arange(sr) / sr
    >>> noise[sr : 2 * sr] += 0.1 * np.sin(2 * np.pi * 300 * t) * (1 + np.sin(2 * np.pi * 4 * t))
    >>> score = speech_score(noise, sr)
    >>> bool(np.median(score[:90]) < 0.1 < 1 < np.median(score[110:190]))
    True
    """
    return _features(_as_float(pcm), _rate(sr, pcm), frame_s)[0]


def _features(x: np.ndarray, rate: int, frame_s: float, block_s: float = 0.4, window_s: float = 3.0,
              loud_s: float = 10.0, lost: np.ndarray | None = None,
              tainted: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per frame: the speech score (NaN for digital silence and lost frames), band energy (dB),
    how far that lies below the track's loud level nearby (dB), and the score of the bands
    under 3.8 kHz alone (the same bands at any rate).

    ``tainted`` frames (their window reaches into lost audio, see :func:`lost_frames`) are not
    digital silence and feed neither the noise estimate nor the loud level: both are measured
    on the frames heard, joined end to end as if the lost ones had never been (so each block
    holds as many frames as without loss, and the estimate keeps its statistics), and each
    tainted frame takes the figures of the nearest frame heard. ``lost`` frames score NaN."""
    frame = int(round(frame_s * rate))
    block = max(1, int(round(block_s / frame_s)))
    power = _band_power(x, rate, frame)
    total = power.sum(axis=1)
    silent = total < _SILENT * power.shape[1]
    energy = 10 * np.log10(total + np.float32(1e-20))
    heard = slice(None)
    if tainted is not None and tainted[: silent.size].any() and not tainted[: silent.size].all():
        tainted = tainted[: silent.size]
        silent &= ~tainted  # a lost frame's fill is not the line's silence
        heard = np.flatnonzero(~tainted)
    joined = not isinstance(heard, slice)  # frames joined across lost spans
    loud = _loud(energy[heard], block, max(1, int(round(loud_s / block_s))), joined)
    below_heard = loud - energy[heard]
    under_voice = _blocks(below_heard, block, joined).min(axis=1) > _UNDER_VOICE_DB
    noise = _noise(power[heard], silent[heard], under_voice, block, max(1, int(round(window_s / block_s))), joined)
    if not isinstance(heard, slice):  # back onto every frame: a tainted one takes the nearest heard frame's
        nearest = _nearest(heard, silent.size)
        loud, noise = loud[nearest], noise[nearest]
    below = loud - energy
    gain = np.maximum(power / noise, 1.0)
    narrow = max(1, int((3800 - 200) // 250))
    terms = gain - 1 - np.log(gain)
    phone = terms[:, :narrow].sum(axis=1) / narrow
    score = phone + terms[:, narrow:].sum(axis=1) / narrow
    score[silent] = phone[silent] = np.nan
    if lost is not None:
        lost = lost[: score.size]
        score[lost] = phone[lost] = np.nan
    return score.astype(np.float32), energy.astype(np.float32), below.astype(np.float32), phone.astype(np.float32)


def detect_speech(pcm: Any, sr: int | None = None, *, method: str = "energy", frame_s: float = 0.01,
                  threshold: float = 0.15, extend: float = 0.5, range_db: float = 35.0, min_speech_s: float = 0.06,
                  min_pause_s: float = 0.3, aggressiveness: int = 2, exclude: np.ndarray | None = None,
                  lost: Any = None) -> Speech:
    """Find speech in one track, 10 ms at a time.

    The default method needs nothing but numpy and scipy. Per frame it measures how far each
    ~250 Hz band of the spectrum stands above the line's noise in that band (tracked over
    time, so a noisy line raises the bar with it; a steady stretch is taken as noise, so
    comfort noise in the pauses is not speech) and scores the frame with the likelihood
    ratio of speech against noise (:func:`speech_score`). A frame whose score, averaged over
    90 ms around it, reaches ``threshold`` starts speech, and so does one whose score averaged
    over half a second stands clear of what noise alone reaches over that long (quiet speech
    in loud noise: each frame is weak, together they are not); neighbouring frames that reach
    ``extend`` times ``threshold`` join it (hysteresis keeps the weak starts and ends of words
    while noise alone never starts a segment). Digital silence is never speech, and neither is a
    recording's hiss more than ``range_db`` under the voice. Then blips shorter than
    ``min_speech_s`` are dropped and pauses shorter than ``min_pause_s`` are bridged. In a
    call whose speech is weak in noise all through (the 80th percentile of its frames' score
    under 3.8 kHz between 0.08 and 0.6; clean speech scores over 2, noise alone about 0.05),
    misses cost more than false alarms: ``threshold`` drops to 0.8 of itself and pauses
    shorter than 1 s are bridged. Where sound is bounded by digital silence (at least 100 ms
    on each side) there is no hiss to drop, so within 100 ms of speech the gate widens to
    ``range_db`` + 3 dB: the weakest starts and ends of words.

    Audio the network lost (``lost``: a Recording's ``lost[track]``; :func:`analyze_call` passes
    it for you) is neither speech nor silence. Its frames score nothing and, with their
    neighbours whose window reaches into it, never feed the noise estimate (the silence a
    reader puts in a gap would otherwise pull it down, and line noise would pass for speech);
    a lost span never starts nor ends speech, and one shorter than ``min_pause_s`` inside
    speech is bridged as a pause is (the talker did not stop for the network).

    The defaults were tuned on one set of real recordings and scored on others in
    ``bench/vad.py`` (8 kHz through G.711 and 16 kHz; clean, with pauses of digital silence,
    room noise or line noise, and at 20, 10 and 5 dB SNR), beside webrtcvad and Silero VAD,
    under one constraint: not a frame of a minute of steady noise alone is called speech.

    Parameters
    ----------
    pcm : np.ndarray, shape (n,)
        int16 or float audio; a Recording track carries its rate.
    sr : int, optional
        Sample rate of a plain array (8000 and 16000 are Telnyx's; any rate works).
    method : {"energy", "webrtc"}
        ``"webrtc"`` uses webrtcvad (``pip install webrtcvad-wheels``), ``aggressiveness`` 0-3.
    frame_s : float
        Frame length, seconds.
    threshold : float
        Score that starts a segment (see :func:`speech_score`; noise alone scores about
        0.05): higher misses quiet speech, lower takes more noise.
    extend : float
        Fraction of ``threshold`` neighbouring frames need to join a segment.
    range_db : float
        Frames more than this below the track's loud level nearby (within 5 s) are not speech,
        however far above the noise: the hiss of a recording next to digital silence.
    min_speech_s, min_pause_s : float
        Shortest speech kept and shortest pause kept (shorter pauses are bridged: the gaps
        inside and between words).
    aggressiveness : int
        webrtcvad's mode, 0 (takes the most as speech) to 3 (the least); used only by
        ``method="webrtc"``.
    exclude : np.ndarray of bool, optional
        Frames that are never speech (one per ``frame_s``), e.g. where DTMF tones sound; no
        pause is bridged across them.
    lost : array-like of float, shape (k, 2), optional
        ``(start_s, end_s)`` of each span of the track the network lost (a Recording's
        ``lost[track]``, the gaps its reports list), whatever fills it (silence, or a
        decoder's concealment). Ignored by ``method="webrtc"`` but for the mask.

    Returns
    -------
    Speech
        ``mask`` (one bool per frame), ``segments`` and ``lost`` (one bool per frame, or None).

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
    gone = tainted = None
    if lost is not None:
        gone, tainted = lost_frames(lost, x.size // frame, frame_s)
    energy = None
    if method == "webrtc":
        mask = _webrtc(x, rate, frame, aggressiveness)
        if gone is not None:
            mask = mask & ~gone
    elif method == "energy":
        score, energy, below, phone = _features(x, rate, frame_s, lost=gone, tainted=tainted)
        heard = phone[~np.isnan(phone)]
        typical = np.percentile(heard, 80) if heard.size else np.inf
        if _LOW_SNR[0] <= typical < _LOW_SNR[1]:  # speech weak in loud noise all through the call
            threshold *= _LOW_SNR_SCALE
            min_pause_s = max(min_pause_s, _LOW_SNR_PAUSE_S)
        mask = _decide(score, below, rate, frame_s, threshold, extend, range_db, gone)
    else:
        raise ValueError(f"method must be 'energy' or 'webrtc', got {method!r}")
    if exclude is not None:  # before bridging pauses, so a pause is never bridged across an excluded span
        exclude = np.pad(np.asarray(exclude, bool)[: mask.size], (0, max(0, mask.size - len(exclude))))
        mask = mask & ~exclude
    mask = mask | _runs_shorter_than(mask, False, int(round(min_pause_s / frame_s)))
    if exclude is not None:
        mask = mask & ~exclude
    mask = mask & ~_runs_shorter_than(mask, True, int(round(min_speech_s / frame_s)))
    return Speech(mask, _segments(mask, frame_s), frame_s, energy, gone)


def _decide(score: np.ndarray, below: np.ndarray, rate: int, frame_s: float, threshold: float, extend: float,
            range_db: float, lost: np.ndarray | None = None) -> np.ndarray:
    """Speech per frame from the score and the level under the voice (before pauses are bridged).

    ``lost`` frames (score NaN) are never speech; the running averages of the score are taken
    over the frames heard, so a lost frame neither lowers nor raises its neighbours'."""
    from scipy.ndimage import uniform_filter1d

    possible = ~np.isnan(score) & (below < range_db)  # not digital silence, not hiss far under the voice
    if lost is not None and not lost.any():
        lost = None
    values = np.nan_to_num(score)

    def average(frames: int) -> np.ndarray:
        mean = uniform_filter1d(values, frames, mode="nearest")
        if lost is None:
            return mean
        heard = uniform_filter1d((~lost).astype(np.float32), frames, mode="nearest")
        return np.divide(mean, heard, out=np.zeros_like(mean), where=heard > 1e-6)

    smooth = average(max(1, int(round(0.09 / frame_s))))  # 90 ms
    seed = (smooth >= threshold) & possible
    seed &= ~_runs_shorter_than(seed, True, 2)  # speech lasts; a lone loud noise frame does not
    # Quiet speech in loud noise: over half a second its score stands clear of noise's, whose
    # average over that long hardly moves (noise alone reaches 0.055 per 14 bands; bands over
    # 3.8 kHz add theirs at wideband rates). Not far under the voice, and not in a blip.
    slow = average(max(1, int(round(_SLOW_S / frame_s))))
    slow_threshold = _SLOW * _n_bands(rate) / _n_bands(8000)
    seed |= (slow >= slow_threshold) & (smooth >= threshold * extend) & possible & (below < _SLOW_RANGE_DB)
    weak = (smooth >= threshold * extend) & possible
    mask = _grow(seed, weak | seed)
    reach = int(round(_EDGE_S / frame_s))
    if reach and mask.any():
        edge = (smooth >= threshold * extend) & (below < range_db + _EDGE_DB) & _near(mask, reach)
        if lost is not None:
            edge &= ~lost
        silent = np.isnan(score) if lost is None else np.isnan(score) & ~lost
        silent &= ~_runs_shorter_than(silent, True, int(round(_EDGE_SILENCE_S / frame_s)))  # a pause, not a stray zero frame
        mask = _grow(mask, mask | (edge & _between_silences(silent)))
    return mask


def _near(mask: np.ndarray, frames: int) -> np.ndarray:
    """Frames within ``frames`` of a True frame of ``mask``."""
    from scipy.ndimage import maximum_filter1d

    return maximum_filter1d(mask.astype(np.uint8), 2 * frames + 1) > 0


def _between_silences(silent: np.ndarray) -> np.ndarray:
    """The frames of sound in runs with digital silence on both sides."""
    starts, ends = _edges(~silent)
    bounded = (starts > 0) & (ends < silent.size)
    return _fill(starts[bounded], ends[bounded], silent.size)


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
