"""Echo of one track in the other: the outbound audio coming back in the inbound track.

When what a call sends (the outbound track: a bot, an agent) leaks back into what it
receives (the inbound track), through a far-end handset, speakerphone or a 2-wire hybrid,
the sender hears, or an AI agent's speech detector takes, its own voice a little later.
:func:`detect_echo` finds it by cross-correlating the two tracks, and measures:

- ``delay_ms``: how much later the echo comes back (the lag of the echo path's main tap);
- ``erl_db``: the echo return loss, how far the echo lies below the outbound audio
  (10 log10 of outbound power over echo power; ITU-T G.168's ERL);
- ``share``: the fraction of the inbound track's speech that is echo alone.

Method. The cross-spectrum of the tracks is summed over blocks (each inbound block against
the outbound audio that could have produced it, up to ``max_delay_ms`` earlier), which
gives the exact cross-correlation over the whole call at every lag. Weighted by the
smoothed coherence (SCOT: the cross-spectrum over the square root of both power spectra),
its inverse transform peaks sharply at the echo's delay whatever the colour of the speech;
the near-end talker (double talk), line noise and the codecs' quantization noise are
uncorrelated with the outbound audio and average out. The peak counts as echo when it
stands far enough above the correlation at every other lag (a robust z-score) and clearly
above the next-highest peak away from it (a periodic sound correlates at many lags, an echo
at one). The echo path is then fitted by least squares over a few milliseconds around the
peak, from the same sums (no second pass over the audio), debiased for the noise left in
the fit: its energy over that of the outbound audio gives the ERL. Subtracting the fitted
echo from the inbound track leaves the near-end audio, from which the frames of echo alone
are told apart from those where the near end speaks.

Thresholds were tuned on the ``data/speech/tune/`` recordings only (``bench/diagnose.py``
scores on ``data/speech/heldout/``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from telnyx_audio.analysis._common import _EPS, _as_float, _rate, _segments

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from telnyx_audio.analysis.vad import Speech

__all__ = ["Echo", "detect_echo"]

# Tuned on data/speech/tune/ (bench/diagnose.py --tune): an echo's peak in a no-echo call
# never reaches these, and echoes down to 35 dB below the far-end talker in 10 dB SNR do.
_Z_MIN = 9.0  # robust z-score of the correlation peak over every other lag
_PEAK_RATIO_MIN = 1.3  # the peak over the highest correlation further than _AWAY_MS from it
_AWAY_MS = 25.0
_GROUPS = 3  # the call's blocks in thirds: an echo must show in at least two of them ...
_GROUP_Z = 5.0  # ... at this robust z-score (calls of 12 s or more; shorter ones are judged whole)
_EDGE_MS = 2.0  # a peak this close to either end of the lags searched is not an echo
_TAPS_BEFORE_MS = 1.0  # the fitted echo path spans this before the peak ...
_TAPS_AFTER_MS = 5.0  # ... and this after it
_TAP_FRACTION = 0.15  # taps of the fitted path: their correlation at least this fraction of the peak's ...
_TAP_Z = 6.0  # ... and this many robust deviations over the median
_BAND_HZ = (150.0, 7000.0)  # correlation weighted over this band (capped at 0.47 of the rate)
_ECHO_FRAME_DB = 0.0
_FLOOR_POWER = 10 ** (-70 / 10)  # per-sample power of the quietest line the weighting believes in
_MAX_BLOCKS = 240  # half-second blocks: two minutes of a longer call, spread over it


@dataclass(frozen=True)
class Echo:
    """Echo of the outbound track in the inbound track, as :func:`detect_echo` measured it.

    Attributes
    ----------
    found : bool
        Whether the inbound track holds an echo of the outbound one.
    delay_ms : float
        Echo delay (NaN when not found): the lag of the echo path's largest tap.
    erl_db : float
        Echo return loss, dB (NaN when not found): outbound power over echo power.
    share : float
        Fraction 0..1 of the inbound track's speech frames that are echo alone (0 when not found).
    score : float
        The correlation peak's robust z-score (noise alone: under about 6).
    peak_ratio : float
        The peak over the highest correlation away from it.
    echo_only : np.ndarray of bool, shape (n_frames,)
        Per ``frame_s`` frame: inbound speech that is echo alone.
    segments : pandas.DataFrame
        ``start_s``, ``end_s``, ``duration_s`` of the runs of ``echo_only`` frames.
    path : np.ndarray of float, shape (n_taps,)
        The fitted echo path, its first tap at ``path_start_ms`` of lag.
    path_start_ms : float
    sample_rate : int
    frame_s : float
    """

    found: bool
    delay_ms: float
    erl_db: float
    share: float
    score: float
    peak_ratio: float
    echo_only: np.ndarray = field(repr=False)
    segments: "pd.DataFrame" = field(repr=False)
    path: np.ndarray = field(repr=False)
    path_start_ms: float = 0.0
    sample_rate: int = 8000
    frame_s: float = 0.01

    def echo_estimate(self, outbound: Any) -> np.ndarray:
        """The echo the fitted path makes of ``outbound`` (float32, the inbound track's length).

        Subtract it from the inbound track to leave the near-end audio.

        Parameters
        ----------
        outbound : array_like
            The outbound track.

        Returns
        -------
        ndarray
            The estimated echo, float32, the inbound track's length.
        """
        x = _as_float(outbound)
        if not self.found or not self.path.size:
            return np.zeros(x.size, np.float32)
        start = int(round(self.path_start_ms * self.sample_rate / 1000))
        out = np.zeros(x.size, np.float32)
        taps = np.flatnonzero(self.path)
        if taps.size <= 24:  # the usual fitted path: a few strong taps, each one shifted copy
            for k in taps.tolist():
                at = start + k
                if at < x.size:
                    out[at:] += np.float32(self.path[k]) * x[: x.size - at]
            return out
        from scipy.signal import oaconvolve

        full = oaconvolve(x, self.path.astype(np.float32))[: x.size]
        if start < x.size:
            out[start:] = full[: x.size - start]
        return out

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe figures: ``found``, ``delay_ms``, ``erl_db``, ``share``, ``score``, ``peak_ratio``.

        Returns
        -------
        dict
            Figure name to value.
        """
        def num(v: float) -> float | None:
            return round(float(v), 3) if np.isfinite(v) else None

        return {"found": bool(self.found), "delay_ms": num(self.delay_ms), "erl_db": num(self.erl_db),
                "share": num(self.share), "score": num(self.score), "peak_ratio": num(self.peak_ratio)}

    def __repr__(self) -> str:
        if not self.found:
            return f"<Echo none (score {self.score:.1f})>"
        return (f"<Echo {self.delay_ms:.1f} ms, ERL {self.erl_db:.1f} dB, {self.share:.0%} of inbound speech "
                f"(score {self.score:.1f})>")


def _blocks_spectra(y: np.ndarray, x: np.ndarray, max_lag: int, rate: int,
                    max_blocks: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int, np.ndarray,
                                              np.ndarray]:
    """Sums over blocks: the cross-spectrum of each inbound block with the outbound stretch
    that can echo into it (``max_lag`` earlier through the block's end), the same weighted by
    the block's own inbound power spectrum (smoothed over ~60 Hz), that weight's sum over the
    outbound power, and the outbound block's cross-spectrum with its stretch (for the
    autocorrelation). Lag k of the inverse transforms is ``max_lag - k``.

    Weighting block by block is what makes the detection robust to double talk: a block where
    the near end speaks loudly, or the line is noisy, counts for less at the frequencies its
    noise fills. At most ``max_blocks`` blocks are used, spread evenly over the call (an hour
    needs no more than minutes of it to find a steady echo). The weighted sums are also kept
    per third of the blocks used (the last two arrays, shape (3, bins)): an echo is there all
    along, a chance likeness of two stretches of speech is not."""
    from scipy import fft
    from scipy.ndimage import uniform_filter1d

    block = 1 << int(np.ceil(np.log2(max(rate // 2, 256))))  # ~0.5 s
    n_fft = 1 << int(np.ceil(np.log2(block + max_lag + 1)))
    n = min(y.size, x.size)
    n_blocks = max(1, -(-n // block))
    xp = np.zeros(max_lag + n_blocks * block, np.float32)
    xp[max_lag : max_lag + n] = x[:n]
    yp = np.zeros(n_blocks * block, np.float32)
    yp[:n] = y[:n]
    chosen = np.arange(n_blocks)
    if n_blocks > max_blocks:
        chosen = np.unique(np.linspace(0, n_blocks - 1, max_blocks).round().astype(int))
    bins = n_fft // 2 + 1
    smooth = max(3, int(round(60.0 * n_fft / rate)) | 1)
    s_yx = np.zeros(bins, np.complex128)
    s_xx = np.zeros(bins, np.complex128)
    s_w = np.zeros(bins, np.complex128)
    d_w = np.zeros(bins, np.float64)
    s_wg = np.zeros((_GROUPS, bins), np.complex128)
    d_wg = np.zeros((_GROUPS, bins), np.float64)
    group_of = np.arange(chosen.size) * _GROUPS // max(chosen.size, 1)
    windows = np.lib.stride_tricks.sliding_window_view(xp, block + max_lag)
    step = max(1, (1 << 21) // n_fft)  # blocks per pass: a few MB of spectra
    for lo in range(0, chosen.size, step):
        idx = chosen[lo : lo + step]
        yb = yp.reshape(n_blocks, block)[idx]
        xe = windows[idx * block]
        Y = fft.rfft(yb, n_fft, axis=1)
        X = fft.rfft(xe, n_fft, axis=1)
        XB = fft.rfft(xe[:, max_lag:], n_fft, axis=1)
        cross = np.conj(Y) * X
        s_yx += cross.sum(axis=0)
        s_xx += (np.conj(XB) * X).sum(axis=0)
        p_y = uniform_filter1d(Y.real**2 + Y.imag**2, smooth, axis=1, mode="nearest")
        live = p_y.max(axis=1) > 0  # a block of digital silence tells nothing
        # No bin counts as quieter than a -70 dBFS line (a block of near-silence, or a band the
        # audio leaves empty, would otherwise outweigh everything else).
        inv = np.zeros_like(p_y)
        inv[live] = 1.0 / np.maximum(p_y[live], block * _FLOOR_POWER)
        wc = cross * inv
        wd = (X.real**2 + X.imag**2) * inv
        s_w += wc.sum(axis=0)
        d_w += wd.sum(axis=0)
        g = group_of[lo : lo + step]
        for k in np.unique(g):  # three groups at most
            s_wg[k] += wc[g == k].sum(axis=0)
            d_wg[k] += wd[g == k].sum(axis=0)
    return s_yx, s_xx, s_w, d_w, n_fft, s_wg, d_wg


def detect_echo(inbound: Any, outbound: Any = None, sr: int | None = None, *, max_delay_ms: float = 1000.0,
                speech: "Speech | None" = None, frame_s: float = 0.01) -> Echo:
    """Find the outbound track's echo in the inbound track: delay, return loss, share of speech.

    See this module's docstring for the method. Robust to double talk (the near end speaking
    over the echo), line noise and codecs (G.711, G.722): they are uncorrelated with the
    outbound audio.

    Parameters
    ----------
    inbound : Capture, Recording or np.ndarray, shape (n,) or (2, n)
        The inbound track (what came back), or a two-track call ``[inbound, outbound]``.
    outbound : np.ndarray, shape (n,), optional
        The outbound track (what was sent), when ``inbound`` is one track.
    sr : int, optional
        Sample rate of plain arrays.
    max_delay_ms : float
        The longest echo delay looked for. Longer costs time and a little sensitivity.
    speech : Speech, optional
        The inbound track's voice activity (:func:`detect_speech`), reused when given.
    frame_s : float
        Frame length of ``echo_only``.

    Returns
    -------
    Echo

    Raises
    ------
    ValueError
        If the tracks are not two, or ``max_delay_ms`` is not positive.

    Examples
    --------
    Speech-like noise sent, and its echo 120 ms later and 20 dB down in what came back,
    under the other party's louder voice:

    >>> rng = np.random.default_rng(0)
    >>> sr = 8000
    >>> sent = rng.normal(0, 0.1, 10 * sr) * (np.sin(np.arange(10 * sr) / sr * 2 * np.pi * 2) > 0)
    >>> came_back = 0.1 * np.roll(sent, 960) + rng.normal(0, 0.05, 10 * sr)
    >>> echo = detect_echo(np.stack([came_back, sent]), sr=sr)
    >>> echo.found, round(echo.delay_ms), round(echo.erl_db)
    (True, 120, 20)
    """
    from telnyx_audio.analysis.vad import detect_speech

    rate = _rate(sr, inbound)
    if outbound is None:
        both = _as_float(inbound)
        if both.ndim != 2 or both.shape[0] != 2:
            raise ValueError(f"detect_echo takes a two-track call, shape (2, n), or two tracks; got {both.shape}")
        y, x = both[0], both[1]
    else:
        y, x = _as_float(inbound), _as_float(outbound)
        if y.ndim != 1 or x.ndim != 1:
            raise ValueError(f"inbound and outbound must be one track each, got {y.shape} and {x.shape}")
    if not max_delay_ms > 0:
        raise ValueError(f"max_delay_ms must be a positive number of ms, got {max_delay_ms!r}")
    n = min(y.size, x.size)
    y, x = y[:n], x[:n]
    max_lag = max(1, min(int(round(max_delay_ms * rate / 1000)), max(n - 1, 1)))
    frame = int(round(frame_s * rate))
    n_frames = n // frame if frame else 0
    empty = np.zeros(n_frames, bool)
    import pandas as pd

    none_segments = pd.DataFrame({"start_s": [], "end_s": [], "duration_s": []})
    if n < 4 * max(frame, 1) or not np.any(x) or not np.any(y):
        return Echo(False, np.nan, np.nan, 0.0, 0.0, 0.0, empty, none_segments, np.zeros(0), 0.0, rate, frame_s)

    from scipy import fft

    s_yx, s_xx, s_w, d_w, n_fft, s_wg, d_wg = _blocks_spectra(y, x, max_lag, rate, _MAX_BLOCKS)
    freqs = np.fft.rfftfreq(n_fft, 1 / rate)
    band = (freqs >= _BAND_HZ[0]) & (freqs <= min(_BAND_HZ[1], 0.47 * rate)) & (d_w > 0)
    # Each bin's weighted cross-spectrum over its standard deviation under no echo: white noise
    # across lags when there is no echo, the echo path's response (matched to the outbound
    # spectrum) when there is.
    spectrum = np.where(band, s_w / np.sqrt(np.where(band, d_w, 1.0)), 0.0)
    gcc = fft.irfft(spectrum, n_fft)[: max_lag + 1][::-1]  # index = lag in samples, 0..max_lag
    mag = np.abs(gcc)
    peak_lag = int(mag.argmax())
    center = np.median(mag)
    spread = 1.4826 * np.median(np.abs(mag - center)) + _EPS
    score = float((mag[peak_lag] - center) / spread)
    away = int(round(_AWAY_MS * rate / 1000))
    others = mag.copy()
    others[max(0, peak_lag - away) : peak_lag + away + 1] = 0.0
    ratio = float(mag[peak_lag] / max(others.max(), _EPS))
    # A peak at either end of the lags searched is no echo: what correlates lies beyond them
    # (an echo needs the audio to leave and come back: more than a couple of ms).
    edge = int(round(_EDGE_MS * rate / 1000))
    inside = edge <= peak_lag <= max_lag - edge
    found = score >= _Z_MIN and ratio >= _PEAK_RATIO_MIN and inside
    if found and s_wg.shape[0] > 1 and n >= _GROUPS * 4 * rate:
        # Steady over the call: the same lag stands out in at least two of its thirds.
        steady = 0
        for g in range(s_wg.shape[0]):
            spec_g = np.where(band, s_wg[g] / np.sqrt(np.where(band & (d_wg[g] > 0), d_wg[g], 1.0)), 0.0)
            mag_g = np.abs(fft.irfft(spec_g, n_fft)[: max_lag + 1][::-1])
            center_g = np.median(mag_g)
            spread_g = 1.4826 * np.median(np.abs(mag_g - center_g)) + _EPS
            near_peak = mag_g[max(0, peak_lag - 1) : peak_lag + 2].max()
            steady += (near_peak - center_g) / spread_g >= _GROUP_Z
        found = steady >= 2
    if not found:
        return Echo(False, np.nan, np.nan, 0.0, score, ratio, empty, none_segments, np.zeros(0), 0.0, rate, frame_s)

    # The echo path: least squares on the taps the correlation shows to carry echo (within a
    # few ms of the peak, a fair fraction of it). Fitting only those keeps small the noise a fit
    # picks up (near-end speech, line noise: about one tap's worth of the residual each), which
    # would otherwise count as echo energy.
    before = int(round(_TAPS_BEFORE_MS * rate / 1000))
    after = int(round(_TAPS_AFTER_MS * rate / 1000))
    first = max(0, peak_lag - before)
    last = min(max_lag, peak_lag + after)
    span = np.arange(first, last + 1)
    strong = mag[span] >= max(_TAP_FRACTION * mag[peak_lag], center + _TAP_Z * spread)
    strong |= np.abs(span - peak_lag) <= 1
    lags = span[strong]
    raw_yx = fft.irfft(s_yx, n_fft)[: max_lag + 1][::-1][lags]  # sum_t y(t) x(t - lag)
    r_xx = fft.irfft(s_xx, n_fft)[max_lag - np.arange(span.size)]  # autocorrelation of x at lags 0, 1, ...
    offsets = lags - first
    grid = r_xx[np.abs(offsets[:, None] - offsets[None, :])]  # its matrix over the chosen taps
    grid += np.eye(lags.size) * (1e-4 * r_xx[0] + _EPS)  # a little loading: band-limited audio is ill-conditioned
    taps = np.linalg.solve(grid, raw_yx)
    energy_x = float(r_xx[0])
    echo_energy = float(taps @ raw_yx)  # h' R h = h' r for the least-squares h: the fitted echo's energy
    erl_db = float(10 * np.log10(energy_x / max(echo_energy, _EPS)))
    path = np.zeros(span.size)
    path[offsets] = taps
    delay_ms = float(peak_lag * 1000 / rate)

    echo = Echo(True, delay_ms, erl_db, 0.0, score, ratio, empty, none_segments, path, first * 1000 / rate, rate,
                frame_s)
    est = echo.echo_estimate(x)
    e_pow = np.empty(n_frames, np.float64)
    r_pow = np.empty(n_frames, np.float64)
    step = max(1, (1 << 18) // max(frame, 1))  # frames per block: the powers without a call-long temporary
    for lo in range(0, n_frames, step):
        hi = min(n_frames, lo + step)
        e = est[lo * frame : hi * frame].reshape(hi - lo, frame)
        r = y[lo * frame : hi * frame].reshape(hi - lo, frame) - e
        e_pow[lo:hi] = np.einsum("ij,ij->i", e, e, dtype=np.float64) / frame
        r_pow[lo:hi] = np.einsum("ij,ij->i", r, r, dtype=np.float64) / frame
    if speech is None:
        speech = detect_speech(y, rate, frame_s=frame_s)
    mask = np.zeros(n_frames, bool)
    mask[: min(n_frames, speech.mask.size)] = speech.mask[:n_frames]
    echo_only = mask & (10 * np.log10((e_pow + _EPS) / (r_pow + _EPS)) >= _ECHO_FRAME_DB)
    share = float(echo_only.sum() / mask.sum()) if mask.any() else 0.0
    return Echo(True, delay_ms, erl_db, share, score, ratio, echo_only, _segments(echo_only, frame_s), path,
                first * 1000 / rate, rate, frame_s)
