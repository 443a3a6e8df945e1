"""What a call's audio shows went wrong: findings with time spans and the figures behind them.

:func:`audio_findings` looks at the two tracks of a call, ``[inbound, outbound]``, and
returns one finding per problem seen in the audio itself, each a plain dict:

``code``
    One of the stable codes below.
``severity``
    ``"info"``, ``"warning"`` or ``"problem"``.
``track``
    ``"inbound"``, ``"outbound"``, or ``""`` for the call as a whole.
``start_s``, ``end_s``
    The span it covers, seconds from the start of the audio.
``summary``
    What it means, in plain words.
``evidence``
    The figures behind it (JSON-safe).

Codes found here, from the audio alone (the network's codes, ``packet_loss``, ``jitter``
and the frame-counter side of ``choppy_audio``, come from the capture's reports in
:mod:`telnyx_audio.diagnosis`):

=================  ====================================================================
``no_audio``       neither track holds speech (or a track is digital silence all through,
                   with the other silent too)
``one_way_audio``  one track is digital silence or only noise while the other speaks,
                   the whole call or a stretch of it ("since when")
``echo``           one track holds the other's audio coming back (delay, return loss, share)
``echo_barge_in``  an "interruption" that is the other side's echo, not its words; a
                   problem when the talker stopped right after it (a bot barging in on
                   its own voice)
``choppy_audio``   dropouts: runs of digital silence inside speech (lost packets filled
                   with silence)
``clipping``       samples at the codec's full scale (or flat tops) in speech
``low_level``      speech too quiet (active level, dB re full scale)
``high_level``     speech too loud
``level_imbalance`` the two sides' speech levels far apart
``noise``          a noisy line: speech too close to the noise floor
``codec_mismatch`` G.711 audio that looks decoded with the wrong law
``dead_air``       long silences on both tracks inside the call
``slow_response``  the answering side (the bot, outbound by default) slow to reply
``dtmf_mismatch``  DTMF events without tones in the audio, or tones without events
=================  ====================================================================

Echo frames are left out of the call's talk time, turns and interruptions: the call is
re-measured with the echo-only frames of the echoing track removed (:attr:`Evidence.analysis`;
the measurement as heard is :attr:`Evidence.analysis_raw`).

Thresholds are policy (ITU-T G.100.1's nominal active speech level of -26 dBov; G.114 and
common contact-centre practice for response times), stated in :data:`THRESHOLDS`; the echo
detector's were tuned on ``data/speech/tune/`` only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np

from telnyx_audio.analysis._common import _EPS, _as_array, _edges, _rate, _segments, _source
from telnyx_audio.analysis.codec import check_codec
from telnyx_audio.analysis.dtmf import cross_check_dtmf
from telnyx_audio.analysis.echo import Echo, detect_echo
from telnyx_audio.analysis.metrics import _FULL_SCALE, CallAnalysis, _dtmf_digits, _turns, analyze_call
from telnyx_audio.analysis.vad import Speech

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

__all__ = ["CODES", "SEVERITIES", "THRESHOLDS", "Evidence", "audio_findings", "collect_evidence"]

#: Every finding code, audio and network, in the order reports list them.
CODES = ("no_audio", "one_way_audio", "echo", "echo_barge_in", "packet_loss", "jitter", "choppy_audio", "clipping",
         "low_level", "high_level", "level_imbalance", "noise", "codec_mismatch", "dead_air", "slow_response",
         "dtmf_mismatch")
SEVERITIES = ("info", "warning", "problem")

#: The thresholds findings are judged by (levels in dB re full scale, rms; times in seconds).
THRESHOLDS: dict[str, float] = {
    "silent_peak": 8.0,  # int16: a frame no louder than this is digital silence (A-law's silence decodes to 8)
    "one_way_min_speech_s": 0.5,  # a track with less speech than this "holds no speech" ...
    "one_way_other_speech_s": 3.0,  # ... while the other has at least this much
    "one_way_stretch_s": 10.0,  # a stretch of digital silence at least this long, while the other speaks ...
    "one_way_stretch_other_s": 3.0,  # ... at least this much, is one-way audio for that stretch
    "echo_problem_erl_db": 30.0,  # echo louder than this under the talker (and delayed over echo_audible_ms) ...
    "echo_audible_ms": 30.0,  # ... is a problem; quieter, a warning
    "barge_in_stop_s": 1.0,  # the talker stopping this soon after its echo "interrupted" it: it barged in on itself
    "dropout_min_s": 0.015,  # a run of digital silence this long inside speech is a dropout ...
    "dropout_edge_db": 12.0,  # ... when the audio right before and after it is this close to the speech level
    "choppy_per_min": 2.0,  # dropouts per minute of speech for choppy audio (a warning) ...
    "choppy_problem_per_min": 10.0,  # ... and for a problem
    "clipping_warning": 0.0005,  # clipped fraction of the speech's samples: a warning ...
    "clipping_problem": 0.005,  # ... a problem
    "low_level_dbfs": -36.0,  # active speech level under this: too quiet (ITU-T G.100.1 nominal: -26 dBov) ...
    "low_level_problem_dbfs": -46.0,  # ... a problem under this
    "high_level_dbfs": -12.0,  # over this: too loud
    "imbalance_db": 12.0,  # the two sides' speech levels further apart than this
    "noise_snr_db": 15.0,  # speech over noise under this: a noisy line (a warning) ...
    "noise_problem_snr_db": 8.0,  # ... a problem
    "dead_air_s": 5.0,  # a silence of both sides longer than this inside the call (a warning) ...
    "dead_air_problem_s": 15.0,  # ... a problem
    "slow_response_s": 2.0,  # a reply later than this (a warning) ...
    "slow_response_problem_s": 4.0,  # ... a problem
}


@dataclass(frozen=True)
class Evidence:
    """Everything :func:`collect_evidence` measured, and the findings drawn from it.

    Attributes
    ----------
    findings : list of dict
        One per finding (see this module's docstring for the keys).
    analysis : CallAnalysis
        The call measured with echo-only frames left out of the echoing track's speech (talk,
        turns, interruptions, overlaps, dead air; DTMF and levels as heard).
    analysis_raw : CallAnalysis
        The call measured as heard (echo counted as speech); the same object when there is no echo.
    echo : dict of str to Echo
        Per track: the echo of the other track found in it.
    tracks : pandas.DataFrame
        Per track (index ``inbound``, ``outbound``): ``speech_s``, ``silent_fraction``,
        ``speech_level_dbfs``, ``noise_floor_dbfs``, ``snr_db``, ``clipped_fraction``,
        ``n_dropouts``, ``dropouts_per_min``.
    duration_s : float
    sample_rate : int
    """

    findings: list[dict[str, Any]]
    analysis: CallAnalysis = field(repr=False)
    analysis_raw: CallAnalysis = field(repr=False)
    echo: dict[str, Echo] = field(repr=False)
    tracks: "pd.DataFrame" = field(repr=False)
    duration_s: float = 0.0
    sample_rate: int = 8000

    def __repr__(self) -> str:
        codes = ", ".join(f"{f['code']} ({f['severity']})" for f in self.findings) or "nothing found"
        return f"<Evidence {self.duration_s:.1f} s: {codes}>"


def _num(value: Any, digits: int = 3) -> Any:
    """JSON-safe rounding: None for NaN or infinity."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    value = float(value)
    return round(value, digits) if np.isfinite(value) else None


def _finding(code: str, severity: str, track: str, start_s: float, end_s: float, summary: str,
             **evidence: Any) -> dict[str, Any]:
    return {"code": code, "severity": severity, "track": track, "start_s": float(start_s), "end_s": float(end_s),
            "summary": summary, "evidence": {k: _num(v) if not isinstance(v, (str, list, dict)) else v
                                             for k, v in evidence.items()}}


_LAW_CHECK_S = 120.0  # the G.711 law check looks at this much of a longer call, spread over it


def _spread(x: np.ndarray, rate: int, seconds: float, pieces: int = 12) -> np.ndarray:
    """``seconds`` of ``x`` in ``pieces`` stretches spread evenly over it (all of it when shorter)."""
    n = int(seconds * rate)
    if x.size <= n:
        return x
    size = n // pieces
    starts = np.linspace(0, x.size - size, pieces).astype(np.int64)
    return np.concatenate([x[s : s + size] for s in starts])


def _frame_figures(x: np.ndarray, frame: int, encoding: str | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per frame, in one pass of blocks: the largest magnitude (int16 units), the mean square
    (full scale 1.0), and the samples at the codec's full scale (or, for linear audio clipped
    before a gain stage, in flat runs of three or more at exactly its peak)."""
    full = _FULL_SCALE.get(encoding or "", 32767)
    n = x.size // frame
    peaks = np.empty(n, np.float32)
    power = np.empty(n, np.float64)
    clipped = np.zeros(n, np.int64)
    step = max(1, (1 << 20) // frame)
    unit = np.float32(1 if x.dtype == np.int16 else 32768)
    for lo in range(0, n, step):
        hi = min(n, lo + step)
        block = x[lo * frame : hi * frame].reshape(hi - lo, frame).astype(np.float32) * unit
        power[lo:hi] = np.einsum("ij,ij->i", block, block, dtype=np.float64) / (frame * 32768.0**2)
        np.abs(block, out=block)
        peaks[lo:hi] = block.max(axis=1)
        clipped[lo:hi] = (block >= full - 0.5).sum(axis=1)
    peak = float(peaks.max(initial=0.0))
    if encoding not in _FULL_SCALE and 0.25 * 32768 <= peak < full - 0.5:
        for lo in range(0, n, step):
            hi = min(n, lo + step)
            if peaks[lo:hi].max(initial=0.0) < peak:
                continue
            flat = np.abs(x[lo * frame : hi * frame].astype(np.float32)) * unit == peak
            run = np.zeros_like(flat)
            three = flat[:-2] & flat[1:-1] & flat[2:]
            run[:-2] |= three
            run[1:-1] |= three
            run[2:] |= three
            clipped[lo:hi] += run.reshape(-1, frame).sum(axis=1)
    return peaks, power, clipped


def _spans(mask: np.ndarray, frame_s: float, bridge_s: float = 0.0) -> list[tuple[float, float]]:
    """Runs of True frames, runs closer than ``bridge_s`` joined, as (start_s, end_s)."""
    starts, ends = _edges(mask)
    if starts.size and bridge_s > 0:
        keep = np.concatenate(([True], (starts[1:] - ends[:-1]) * frame_s > bridge_s))
        group = np.cumsum(keep) - 1
        starts = starts[keep]
        ends = np.maximum.reduceat(ends, np.flatnonzero(keep))
        del group
    return [(float(a * frame_s), float(b * frame_s)) for a, b in zip(starts, ends)]


def _abrupt(x: np.ndarray, runs: np.ndarray, frame: int, speech_power: float) -> np.ndarray:
    """Which runs of silent frames are cut into speech: the audio right before the silence
    starts and right after it ends (2.5 ms each side of the silent samples) is within
    ``dropout_edge_db`` of the speech's level. A pause fades out and in; a lost packet
    filled with silence stops and starts at full loudness. One look per run (a few dozen)."""
    if not runs.size or speech_power <= 0:
        return np.zeros(len(runs), bool)
    scale = 1.0 if x.dtype == np.int16 else 32768.0
    silent_at = THRESHOLDS["silent_peak"] / scale
    edge = max(4, frame // 4)
    floor = speech_power * 10 ** (-THRESHOLDS["dropout_edge_db"] / 10)
    unit = 1 / 32768 if x.dtype == np.int16 else 1.0
    keep = np.zeros(len(runs), bool)
    for k, (a, b) in enumerate(runs):
        before = x[max(0, (a - 1) * frame) : a * frame + frame // 2].astype(np.float64)
        after = x[b * frame - frame // 2 : (b + 1) * frame].astype(np.float64)
        loud_b = np.flatnonzero(np.abs(before) > silent_at)
        loud_a = np.flatnonzero(np.abs(after) > silent_at)
        if not loud_b.size or not loud_a.size:
            continue
        tail = before[max(0, loud_b[-1] - edge + 1) : loud_b[-1] + 1] * unit
        head = after[loud_a[0] : loud_a[0] + edge] * unit
        keep[k] = np.mean(tail**2) >= floor and np.mean(head**2) >= floor
    return keep


def _dropouts(silent: np.ndarray, speech: np.ndarray, min_frames: int, near: int) -> np.ndarray:
    """Starts and ends (frames) of the runs of digital silence inside speech: at least
    ``min_frames`` long, with speech within ``near`` frames on both sides."""
    starts, ends = _edges(silent)
    if not starts.size:
        return np.zeros((0, 2), int)
    ok = (ends - starts) >= min_frames
    ok &= (ends - starts) <= 50  # half a second at most: longer is a pause, not a lost packet
    before = np.cumsum(np.concatenate(([0], speech.astype(np.int32))))
    left = before[starts] - before[np.maximum(starts - near, 0)] > 0
    right = before[np.minimum(ends + near, speech.size)] - before[ends] > 0
    ok &= left & right & (starts > 0) & (ends < silent.size)
    return np.stack([starts[ok], ends[ok]], axis=1)


def _track_stats(x: np.ndarray, rate: int, frame: int, speech_mask: np.ndarray, level: Mapping[str, float],
                 encoding: str | None) -> dict[str, Any]:
    """Per-track figures for the findings, in one pass over the track's frames."""
    frame_s = frame / rate
    peaks, power, clipped = _frame_figures(x, frame, encoding)
    n = min(peaks.size, speech_mask.size)
    peaks, speech = peaks[:n], speech_mask[:n]
    silent = peaks <= THRESHOLDS["silent_peak"]
    power = power[:n]
    speech_level = 10 * np.log10(power[speech].mean() + _EPS) if speech.any() else -np.inf
    noisy = ~speech & ~silent
    noise_floor = 10 * np.log10(np.median(power[noisy]) + _EPS) if noisy.any() else -np.inf
    clipped = clipped[:n]
    speech_samples = max(int(speech.sum()) * frame, 1)
    drops = _dropouts(silent, speech, max(1, int(round(THRESHOLDS["dropout_min_s"] / frame_s))),
                      int(round(0.05 / frame_s)))
    drops = drops[_abrupt(x, drops, frame, float(power[speech].mean()) if speech.any() else 0.0)]
    speech_min = speech.sum() * frame_s / 60
    return {"speech_s": float(speech.sum() * frame_s), "silent_fraction": float(silent.mean()) if n else 1.0,
            "speech_level_dbfs": float(speech_level), "noise_floor_dbfs": float(noise_floor),
            "snr_db": float(level.get("snr_db", np.nan)), "clipped_fraction": float(clipped[speech].sum() / speech_samples),
            "n_dropouts": int(len(drops)), "dropouts_per_min": float(len(drops) / speech_min) if speech_min > 0 else 0.0,
            "_silent": silent, "_speech": speech, "_clipped": clipped, "_drops": drops}


def collect_evidence(audio: Any, sr: int | None = None, *, encoding: str | None = None, dtmf_events: Any = None,
                     parties: Sequence[str] = ("inbound", "outbound"), bot: str | None = "outbound",
                     max_echo_delay_ms: float = 1000.0, lost: Any = None) -> Evidence:
    """Measure a two-track call and draw findings from its audio (see this module's docstring).

    Parameters
    ----------
    audio : Capture, Recording or np.ndarray, shape (2, n)
        ``[inbound, outbound]``, int16 or float.
    sr : int, optional
        Sample rate of a plain array.
    encoding : str, optional
        The codec (a Recording or Capture carries it): sets the clipping level and the law check.
    dtmf_events : iterable, optional
        The stream's ``dtmf`` events (a Capture's are used when not given); compared with the
        tones in the audio only when given or carried.
    parties : pair of str
        The tracks' names.
    bot : str or None
        The track whose replies are timed for ``slow_response`` and whose barge-ins on its own
        echo are looked for (the outbound track: what Telnyx plays to the caller); None for neither.
    max_echo_delay_ms : float
        The longest echo delay looked for.
    lost : pair of array-like of (start_s, end_s), or dict, optional
        Spans of each track the network lost (as :func:`~telnyx_audio.analysis.analyze_call`
        takes them); a Recording or Capture carries its own.

    Returns
    -------
    Evidence

    Examples
    --------
    >>> sr = 8000
    >>> t = np.arange(20 * sr) / sr
    >>> syllables = np.sin(2 * np.pi * 4 * t) ** 2 * (np.sin(2 * np.pi * 0.3 * t) > 0)   # 4 a second, in phrases
    >>> talk = 0.2 * np.sin(2 * np.pi * 180 * t + 3 * np.sin(2 * np.pi * 0.7 * t)) * syllables
    >>> call = np.stack([np.zeros_like(t), talk])       # the caller's side is digital silence
    >>> [f["code"] for f in collect_evidence(call, sr).findings]
    ['one_way_audio']
    """
    rate = _rate(sr, audio)
    x = _as_array(audio)
    if x.ndim != 2 or x.shape[0] != 2:
        raise ValueError(f"collect_evidence takes two tracks, shape (2, n); got {x.shape}")
    parties = tuple(parties)
    if bot is not None and bot not in parties:
        raise ValueError(f"bot must be one of {parties} or None, got {bot!r}")
    encoding = encoding if encoding is not None else getattr(_source(audio), "encoding", None)
    encoding = None if encoding is None else str(encoding).upper()
    carried = dtmf_events is not None or (_source(audio) is not audio and getattr(audio, "events", None) is not None)
    if dtmf_events is None:
        dtmf_events = getattr(audio, "events", ()) if _source(audio) is not audio else ()
    dtmf_events = list(dtmf_events)

    if lost is None and not isinstance(audio, np.ndarray):
        lost = getattr(_source(audio), "lost", None)  # a Recording's (a Capture's recording's) own
    raw = analyze_call(x, rate, parties=parties, encoding=encoding, dtmf_events=dtmf_events, lost=lost)
    frame_s = raw.speech[parties[0]].frame_s
    frame = int(round(frame_s * rate))
    duration = x.shape[1] / rate
    stats = {p: _track_stats(x[i], rate, frame, raw.speech[p].mask, raw.levels.loc[p].to_dict(), encoding)
             for i, p in enumerate(parties)}

    echoes: dict[str, Echo] = {}
    for i, p in enumerate(parties):
        other = 1 - i
        if stats[p]["speech_s"] > 0 and stats[parties[other]]["speech_s"] > 0:
            echoes[p] = detect_echo(x[i], x[other], rate, max_delay_ms=max_echo_delay_ms, speech=raw.speech[p],
                                    frame_s=frame_s)
    analysis = raw
    if any(e.found and e.echo_only.any() for e in echoes.values()):
        speech = {}
        for p in parties:
            mask = raw.speech[p].mask.copy()
            e = echoes.get(p)
            if e is not None and e.found:
                m = min(mask.size, e.echo_only.size)
                mask[:m] &= ~e.echo_only[:m]
            speech[p] = mask
        analysis = _reanalyze(raw, speech)

    findings: list[dict[str, Any]] = []
    findings += _presence_findings(stats, parties, duration, frame_s)
    findings += _echo_findings(echoes, raw, parties, bot, duration)
    findings += _track_findings(stats, parties, frame_s, duration)
    findings += _level_findings(stats, parties, duration)
    if encoding in ("PCMU", "PCMA"):
        for i, p in enumerate(parties):
            if stats[p]["speech_s"] > 0:
                check = check_codec(_spread(x[i], rate, _LAW_CHECK_S), encoding)
                if check.suspect:
                    findings.append(_finding(
                        "codec_mismatch", "problem", p, 0.0, duration,
                        f"the {p} audio sounds like {check.likely_encoding} decoded as {encoding} (loud static)",
                        encoding=encoding, likely_encoding=check.likely_encoding, score=check.score))
    findings += _call_findings(analysis, parties, bot)
    if carried or dtmf_events:
        findings += _dtmf_findings(raw, dtmf_events, duration)
    order = {c: i for i, c in enumerate(CODES)}
    findings.sort(key=lambda f: (order.get(f["code"], len(order)), f["start_s"], f["track"]))
    table = _tracks_table(stats, parties)
    return Evidence(findings, analysis, raw, echoes, table, duration, rate)


def _reanalyze(raw: CallAnalysis, masks: Mapping[str, np.ndarray]) -> CallAnalysis:
    """``raw`` measured again with these speech masks: talk, turns, interruptions, overlaps and
    dead air change; DTMF and levels (as heard) are kept, so nothing is computed twice."""
    import dataclasses

    import pandas as pd

    parties = raw.parties
    frame_s = raw.speech[parties[0]].frame_s
    speech = {p: Speech(masks[p], _segments(masks[p], frame_s), frame_s, raw.speech[p].band_energy_db)
              for p in parties}
    a, b = masks[parties[0]], masks[parties[1]]
    m = min(a.size, b.size)
    a, b = a[:m], b[:m]
    frames = np.array([a.sum(), b.sum()])
    total = frames.sum()
    talk = pd.DataFrame({"talk_s": frames * frame_s, "share": frames / total if total else np.zeros(2),
                         "segments": [len(speech[p].segments) for p in parties]}, index=list(parties))
    talk.index.name = "party"
    segs = pd.concat([speech[p].segments.assign(party=p) for p in parties]).sort_values(["start_s", "end_s"],
                                                                                        kind="stable")
    turns, interruptions = _turns(segs, parties)
    # Dead air: the raw silences, plus the stretches where only echo was heard, joined.
    was_heard = a | b
    for start, end in raw.silences[["start_s", "end_s"]].itertuples(index=False):
        was_heard[int(round(start / frame_s)) : int(round(end / frame_s))] = False
    starts, ends = _edges(~was_heard)
    inside = (starts > 0) & (ends < m)
    quiet = (ends - starts)[inside] * frame_s
    over = quiet > raw.silence_threshold_s
    silences = pd.DataFrame({"start_s": starts[inside][over] * frame_s, "end_s": ends[inside][over] * frame_s,
                             "duration_s": quiet[over]})
    return dataclasses.replace(raw, talk=talk, turns=turns, interruptions=interruptions,
                               overlaps=_segments(a & b, frame_s), silences=silences, speech=speech,
                               longest_silence_s=max(raw.longest_silence_s, float(quiet.max()) if quiet.size else 0.0))


def audio_findings(audio: Any, sr: int | None = None, **kwargs: Any) -> list[dict[str, Any]]:
    """The findings of :func:`collect_evidence`, alone (same parameters).

    Examples
    --------
    >>> audio_findings(np.zeros((2, 8000), np.int16), 8000)[0]["code"]
    'no_audio'
    """
    return collect_evidence(audio, sr, **kwargs).findings


def _tracks_table(stats: Mapping[str, Mapping[str, Any]], parties: Sequence[str]) -> "pd.DataFrame":
    import pandas as pd

    cols = ["speech_s", "silent_fraction", "speech_level_dbfs", "noise_floor_dbfs", "snr_db", "clipped_fraction",
            "n_dropouts", "dropouts_per_min"]
    table = pd.DataFrame([{c: stats[p][c] for c in cols} for p in parties], index=list(parties))
    table.index.name = "track"
    return table


def _presence_findings(stats: Mapping[str, Mapping[str, Any]], parties: Sequence[str], duration: float,
                       frame_s: float) -> list[dict[str, Any]]:
    """no_audio and one_way_audio: a track silent or only noise while the other speaks."""
    t = THRESHOLDS
    out = []
    has = {p: stats[p]["speech_s"] >= t["one_way_min_speech_s"] for p in parties}
    if not any(has.values()):
        silent = [p for p in parties if stats[p]["silent_fraction"] >= 0.999]
        what = ("both tracks are digital silence" if len(silent) == 2 else
                f"no speech on either track ({', '.join(silent)} digital silence)" if silent else
                "no speech on either track (only noise)")
        return [_finding("no_audio", "problem", "", 0.0, duration, what,
                         **{f"{p}_speech_s": stats[p]["speech_s"] for p in parties},
                         **{f"{p}_silent_fraction": stats[p]["silent_fraction"] for p in parties})]
    for p in parties:
        other = parties[1] if p == parties[0] else parties[0]
        if not has[p] and stats[other]["speech_s"] >= t["one_way_other_speech_s"]:
            digital = stats[p]["silent_fraction"] >= 0.99
            out.append(_finding(
                "one_way_audio", "problem", p, 0.0, duration,
                f"no audio from the {p} side while the {other} side speaks: "
                + ("the track is digital silence" if digital else "the track holds only noise"),
                speech_s=stats[p]["speech_s"], other_speech_s=stats[other]["speech_s"],
                silent_fraction=stats[p]["silent_fraction"], noise_floor_dbfs=stats[p]["noise_floor_dbfs"],
                digital_silence=digital))
            continue
        # A stretch of digital silence mid-call while the other side speaks: one-way from then on.
        silent = stats[p]["_silent"]
        starts, ends = _edges(silent)
        long = (ends - starts) * frame_s >= t["one_way_stretch_s"]
        other_speech = stats[other]["_speech"]
        cum = np.cumsum(np.concatenate(([0], other_speech.astype(np.int32))))
        for a, b in zip(starts[long], ends[long]):
            talk = (cum[min(b, other_speech.size)] - cum[min(a, other_speech.size)]) * frame_s
            if talk >= t["one_way_stretch_other_s"]:
                out.append(_finding(
                    "one_way_audio", "problem", p, a * frame_s, b * frame_s,
                    f"the {p} side went silent (digital silence) for {(b - a) * frame_s:.0f} s "
                    f"while the {other} side spoke {talk:.0f} s",
                    silent_s=(b - a) * frame_s, other_speech_s=talk, digital_silence=True))
    return out


def _echo_findings(echoes: Mapping[str, Echo], raw: CallAnalysis, parties: Sequence[str], bot: str | None,
                   duration: float) -> list[dict[str, Any]]:
    t = THRESHOLDS
    out = []
    for p, e in echoes.items():
        if not e.found:
            continue
        other = parties[1] if p == parties[0] else parties[0]
        loud = e.erl_db < t["echo_problem_erl_db"] and e.delay_ms >= t["echo_audible_ms"]
        segs = e.segments
        start = float(segs["start_s"].min()) if len(segs) else 0.0
        end = float(segs["end_s"].max()) if len(segs) else duration
        out.append(_finding(
            "echo", "problem" if loud else "warning", p, start, end,
            f"the {other} audio comes back in the {p} track {e.delay_ms:.0f} ms later, {e.erl_db:.0f} dB down "
            f"({e.share:.0%} of the {p} speech is echo alone)",
            delay_ms=e.delay_ms, erl_db=e.erl_db, share=e.share, score=e.score, echo_of=other))
        # Interruptions of the other side that are this echo: they start in echo-only frames.
        if raw.interruptions.empty or not e.echo_only.any():
            continue
        frame_s = e.frame_s
        cuts = raw.interruptions[raw.interruptions["interrupter"] == p]
        if cuts.empty:
            continue
        at = np.clip((cuts["start_s"].to_numpy() / frame_s).astype(int), 0, e.echo_only.size - 1)
        # The interruption's first 100 ms are mostly echo.
        reach = max(1, int(round(0.1 / frame_s)))
        cum = np.cumsum(np.concatenate(([0], e.echo_only.astype(np.int32))))
        frac = (cum[np.minimum(at + reach, e.echo_only.size)] - cum[at]) / reach
        for (_, cut), f in zip(cuts.iterrows(), frac):
            if f < 0.5:
                continue
            stopped = cut["end_s"] - cut["start_s"] <= t["barge_in_stop_s"]
            self_barge = stopped and other == bot
            out.append(_finding(
                "echo_barge_in", "problem" if self_barge else "warning", p, cut["start_s"], cut["end_s"],
                (f"the {other} side stopped talking {cut['end_s'] - cut['start_s']:.1f} s after its own echo "
                 f"'interrupted' it: it barged in on its own voice") if self_barge else
                f"an interruption of the {other} side by the {p} track is the {other} side's own echo",
                echo_fraction=f, stopped_after_s=cut["end_s"] - cut["start_s"], delay_ms=e.delay_ms))
    return out


def _track_findings(stats: Mapping[str, Mapping[str, Any]], parties: Sequence[str], frame_s: float,
                    duration: float) -> list[dict[str, Any]]:
    """choppy_audio (dropouts) and clipping, per track, with their spans."""
    t = THRESHOLDS
    out = []
    for p in parties:
        s = stats[p]
        if s["n_dropouts"] >= 3 and s["dropouts_per_min"] >= t["choppy_per_min"]:
            drops = s["_drops"]
            mask = np.zeros(s["_silent"].size, bool)
            for a, b in drops:  # a few hundred at most: one slice each
                mask[a:b] = True
            spans = _spans(mask, frame_s, bridge_s=3.0)
            severe = s["dropouts_per_min"] >= t["choppy_problem_per_min"]
            out.append(_finding(
                "choppy_audio", "problem" if severe else "warning", p, spans[0][0], spans[-1][1],
                f"{s['n_dropouts']} dropouts (gaps of digital silence inside speech) in the {p} audio, "
                f"{s['dropouts_per_min']:.1f} per minute of speech",
                n_dropouts=s["n_dropouts"], dropouts_per_min=s["dropouts_per_min"],
                dropout_s=float((drops[:, 1] - drops[:, 0]).sum() * frame_s), n_spans=len(spans)))
        if s["speech_s"] > 0 and s["clipped_fraction"] >= t["clipping_warning"]:
            spans = _spans(s["_clipped"] > 0, frame_s, bridge_s=1.0)
            severe = s["clipped_fraction"] >= t["clipping_problem"]
            out.append(_finding(
                "clipping", "problem" if severe else "warning", p, spans[0][0] if spans else 0.0,
                spans[-1][1] if spans else duration,
                f"the {p} audio is clipped: {s['clipped_fraction']:.2%} of its speech samples at full scale",
                clipped_fraction=s["clipped_fraction"], n_spans=len(spans)))
    return out


def _level_findings(stats: Mapping[str, Mapping[str, Any]], parties: Sequence[str],
                    duration: float) -> list[dict[str, Any]]:
    """low_level, high_level, level_imbalance, noise."""
    t = THRESHOLDS
    out = []
    talking = [p for p in parties if stats[p]["speech_s"] >= t["one_way_min_speech_s"]]
    for p in talking:
        s = stats[p]
        level = s["speech_level_dbfs"]
        if level < t["low_level_dbfs"]:
            out.append(_finding("low_level", "problem" if level < t["low_level_problem_dbfs"] else "warning", p, 0.0,
                                duration, f"the {p} speech is quiet: {level:.0f} dBFS active level "
                                          f"(nominal -26; under {t['low_level_dbfs']:.0f} is too low)",
                                speech_level_dbfs=level))
        elif level > t["high_level_dbfs"]:
            out.append(_finding("high_level", "warning", p, 0.0, duration,
                                f"the {p} speech is loud: {level:.0f} dBFS active level "
                                f"(nominal -26; over {t['high_level_dbfs']:.0f} is too high)",
                                speech_level_dbfs=level))
        snr = s["snr_db"]
        if np.isfinite(snr) and snr < t["noise_snr_db"]:
            out.append(_finding("noise", "problem" if snr < t["noise_problem_snr_db"] else "warning", p, 0.0,
                                duration, f"the {p} line is noisy: speech only {snr:.0f} dB over the noise "
                                          f"(noise floor {s['noise_floor_dbfs']:.0f} dBFS)",
                                snr_db=snr, noise_floor_dbfs=s["noise_floor_dbfs"]))
    if len(talking) == 2:
        a, b = (stats[p]["speech_level_dbfs"] for p in talking)
        if abs(a - b) > t["imbalance_db"]:
            quiet = talking[0] if a < b else talking[1]
            out.append(_finding("level_imbalance", "warning", quiet, 0.0, duration,
                                f"the {quiet} side is {abs(a - b):.0f} dB quieter than the other",
                                difference_db=abs(a - b), **{f"{p}_level_dbfs": stats[p]["speech_level_dbfs"]
                                                             for p in talking}))
    return out


def _call_findings(analysis: CallAnalysis, parties: Sequence[str], bot: str | None) -> list[dict[str, Any]]:
    """dead_air and slow_response, from the (echo-free) call analysis."""
    t = THRESHOLDS
    out = []
    s = analysis.silences
    for start, end, dur in s[s["duration_s"] > t["dead_air_s"]][["start_s", "end_s", "duration_s"]].itertuples(index=False):
        out.append(_finding("dead_air", "problem" if dur > t["dead_air_problem_s"] else "warning", "", start, end,
                            f"{dur:.1f} s of silence on both sides", silence_s=dur))
    if bot is not None:
        turns = analysis.turns
        replies = turns[(turns["party"] == bot) & (turns["change"] == "response")
                        & (turns["response_latency_s"] > t["slow_response_s"])]
        for start, lat in replies[["start_s", "response_latency_s"]].itertuples(index=False):
            out.append(_finding("slow_response", "problem" if lat > t["slow_response_problem_s"] else "warning", bot,
                                start - lat, start, f"the {bot} side took {lat:.1f} s to reply",
                                response_latency_s=lat))
    return out


def _dtmf_findings(raw: CallAnalysis, events: Sequence[Any], duration: float) -> list[dict[str, Any]]:
    """dtmf_mismatch: the stream's DTMF events against the tones heard (either track)."""
    if not _dtmf_digits(events) and raw.dtmf.empty:
        return []
    check = cross_check_dtmf(raw.dtmf, events)
    bad = check[check["status"] != "match"]
    if bad.empty:
        return []
    starts = bad["start_s"].dropna()
    return [_finding("dtmf_mismatch", "warning", "", float(starts.min()) if len(starts) else 0.0,
                     float(starts.max()) if len(starts) else duration,
                     f"DTMF events {raw.dtmf_events or 'none'!r} but tones {''.join(raw.dtmf['digit']) or 'none'!r} "
                     f"in the audio ({len(bad)} not matching)",
                     events=raw.dtmf_events, in_band="".join(raw.dtmf["digit"]),
                     statuses=bad["status"].tolist())]
