"""Levels and call metrics: talk time, turns, response latency, interruptions, overlaps, dead air, DTMF.

Definitions, so every figure means one thing:

- **Speech** is what :func:`~telnyx_audio.analysis.detect_speech` finds on a track, minus the
  frames that hold in-band DTMF tones (a key press is not talk).
- A **turn** is one party holding the floor: it starts when that party starts speaking while
  the other is silent (a *turn change*) or talks on after the other stops (an *interruption*),
  and lasts until the other party takes the floor. Speech of the other party that starts and
  ends inside a turn ("mm-hm") is an overlap, not a turn.
- **Response latency** is measured at true turn changes only: from the end of the previous
  party's speech to the start of the next party's, always >= 0. Interruptions have no latency;
  they are counted per interrupter.
- An **overlap** is any span where both parties speak.
- A **silence** is a span inside the call (after the first sound, before the last) where
  neither party speaks nor sends DTMF; those longer than ``silence_s`` are dead air.
- **Lost** audio (the gaps a Recording's reports list: frames that never arrived, filled with
  silence or made up by a decoder) is neither speech nor silence: it never feeds the noise
  estimate, never starts or ends speech (a short loss inside speech is bridged as a pause is),
  and a loss of ``min_pause_s`` (0.3 s) or more is no part of a silence. It is reported on
  its own (``lost``, segments of kind ``"lost"``; the call table's ``<track>_gap_ms``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from telnyx_audio.analysis._common import (_EPS, _as_array, _as_float, _edges, _lost_spans, _rate, _segments, _source,
                                           _spans_to_mask)
from telnyx_audio.analysis.dtmf import detect_dtmf
from telnyx_audio.analysis.vad import Speech, _band_power, _runs_shorter_than, detect_speech, lost_frames

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

#: What every time of an analysis counts from (each table's ``.attrs["time_zero"]`` says it):
#: webhook tables give the same clock as ``audio_t_s``.
TIME_ZERO = ("start_s/end_s: seconds since the recording's first sample, the stream's first audio"
             " (streaming.started; a webhook table's audio_t_s)")

__all__ = ["levels", "CallAnalysis", "analyze_call"]

_DTMF_MARGIN_S = 0.03  # a tone's onset and decay spill about one frame either side of its detected span
_BLOCK = 1 << 16  # samples per pass of the level sums
# The largest magnitude each codec decodes to (int16 units): G.711 never reaches 32767.
_FULL_SCALE = {"PCMU": 32124, "PCMA": 32256}


def levels(pcm: Any, sr: int | None = None, speech: Speech | None = None, *, exclude: np.ndarray | None = None,
           encoding: str | None = None) -> dict[str, float]:
    """RMS and peak in dBFS, clipping ratio, DC offset and an SNR estimate of one track.

    Parameters
    ----------
    pcm : np.ndarray, shape (n,)
        int16 or float audio (a Recording track carries its rate).
    sr : int, optional
        Sample rate, for plain arrays.
    speech : Speech, optional
        From :func:`detect_speech` (computed when not given).
    exclude : np.ndarray of bool, optional
        10 ms frames to leave out of the SNR estimate (DTMF tones are neither speech nor noise).
    encoding : str, optional
        The codec the audio came through (a Recording's ``encoding``): it sets the level at
        which samples count as clipped, the codec's full scale. G.711 never decodes to int16
        full scale: mu-law's largest value is 32124, A-law's 32256.

    Returns
    -------
    dict
        ``rms_dbfs``, ``peak_dbfs`` (dB re int16 full scale), ``clipping_ratio`` (fraction of
        samples clipped, 0..1), ``clipping_pct`` (the same in percent, as the call table's
        ``<party>_clipping_pct``), ``dc_offset`` (fraction of full scale), ``snr_db`` (band energy
        of speech frames over that of the other frames, dB; NaN without both).

    Notes
    -----
    A sample is clipped when its magnitude reaches the codec's full scale (32767 for linear
    audio or an unknown codec). In linear audio, samples in runs of three or more at exactly
    the track's peak magnitude count too, when that peak is above -12 dBFS: audio clipped
    before a gain stage or a limiter flattens there (natural audio seldom repeats its peak).
    G.711's coarse top steps repeat values near any loud peak, so that rule is not used there,
    nor, for an unknown ``encoding``, when the peak is a level G.711 decodes to (other than
    its full scale).

    Examples
    --------
    >>> lv = levels(np.full(8000, 16384, np.int16), 8000)
    >>> round(lv["rms_dbfs"], 1), round(lv["dc_offset"], 2)
    (-6.0, 0.5)
    >>> levels(np.array([0, 32124, 32124, -32124, 0, 9000] * 100, np.int16), 8000, encoding="PCMU")["clipping_ratio"]
    0.5
    """
    rate = _rate(sr, pcm)
    x = _as_array(pcm)
    encoding = encoding if encoding is not None else getattr(_source(pcm), "encoding", None)
    encoding = None if encoding is None else str(encoding).upper()
    full_scale = _FULL_SCALE.get(encoding, 32767)
    if x.size == 0:
        return {"rms_dbfs": -np.inf, "peak_dbfs": -np.inf, "clipping_ratio": 0.0, "clipping_pct": 0.0, "dc_offset": 0.0,
                "snr_db": np.nan}
    # Sums block by block, in float64: no whole-track float copy.
    total = square = peak = 0.0
    clipped = 0
    unit = 1 / 32768 if x.dtype == np.int16 else 1.0
    at_full_scale = full_scale / 32768 * (1 - 1e-9)
    for lo in range(0, x.size, _BLOCK):
        b = x[lo : lo + _BLOCK].astype(np.float64)
        b *= unit
        total += float(b.sum())
        square += float(np.dot(b, b))
        np.abs(b, out=b)
        peak = max(peak, float(b.max()))
        clipped += int(np.count_nonzero(b >= at_full_scale))
    rms = np.sqrt(square / x.size)
    flat_top = None
    if encoding not in _FULL_SCALE and peak >= 0.25:
        top = int(round(peak * 32768))
        # An unknown codec whose peak is a level G.711 decodes to (under its full scale) most
        # likely was G.711, whose coarse top steps repeat values: no run rule then.
        if encoding is not None or top in _FULL_SCALE.values() or top not in _g711_levels():
            flat_top = peak
    if flat_top is not None and flat_top < at_full_scale:
        clipped += _flat_runs(x, flat_top)
    speech = speech if speech is not None else detect_speech(x, rate)
    if speech.band_energy_db is not None:
        energy = 10 ** (speech.band_energy_db.astype(np.float64) / 10)
    else:
        energy = _band_power(_as_float(x), rate, int(round(speech.frame_s * rate))).sum(axis=1).astype(np.float64)
    mask = np.zeros(energy.size, bool)
    mask[: min(energy.size, speech.mask.size)] = speech.mask[: energy.size]
    keep = np.ones(energy.size, bool)
    if exclude is not None:
        keep[: min(energy.size, exclude.size)] = ~exclude[: energy.size]
    snr = np.nan
    if (mask & keep).any() and (~mask & keep).any():
        snr = float(10 * np.log10(energy[mask & keep].mean() / max(energy[~mask & keep].mean(), _EPS)))
    return {"rms_dbfs": float(20 * np.log10(max(rms, _EPS))), "peak_dbfs": float(20 * np.log10(max(peak, _EPS))),
            "clipping_ratio": clipped / x.size, "clipping_pct": 100.0 * clipped / x.size, "dc_offset": total / x.size,
            "snr_db": snr}


@lru_cache(maxsize=1)
def _g711_levels() -> frozenset[int]:
    """Every magnitude mu-law or A-law decodes to."""
    from telnyx_audio import codecs

    codes = np.arange(256, dtype=np.uint8)
    return frozenset(int(v) for law in ("PCMU", "PCMA") for v in np.abs(codecs.decode(codes, law).astype(int)))


def _flat_runs(x: np.ndarray, top: float) -> int:
    """Samples in runs of three or more at magnitude ``top`` (full scale 1.0), block by block;
    blocks overlap by two samples so a run across their edge counts once."""
    count = 0
    for lo in range(0, x.size, _BLOCK):
        hi = min(lo + _BLOCK, x.size)
        first = max(lo - 2, 0)
        b = x[first : hi + 2].astype(np.float64)
        b *= 1 / 32768 if x.dtype == np.int16 else 1.0  # as levels scaled the peak
        flat = np.abs(b) == top
        run = flat[:-2] & flat[1:-1] & flat[2:]  # three in a row start here
        flat[:] = False
        flat[:-2] |= run
        flat[1:-1] |= run
        flat[2:] |= run
        count += int(np.count_nonzero(flat[lo - first : hi - first]))
    return count


def _num(value: Any) -> float | None:
    """A JSON-safe float: None for NaN or infinity."""
    value = float(value)
    return value if np.isfinite(value) else None


@dataclass(frozen=True)
class CallAnalysis:
    """What :func:`analyze_call` found; every table is a tidy DataFrame, every time in seconds.

    Attributes
    ----------
    talk : DataFrame
        Per party (index): ``talk_s``, ``share`` (fraction 0..1 of all talk), ``segments``.
    turns : DataFrame
        ``party``, ``start_s``, ``end_s``, ``duration_s``, ``change`` (``"first"``,
        ``"response"`` or ``"interruption"``), ``response_latency_s`` (seconds from the other
        party's last words; only for ``"response"``, NaN otherwise).
    interruptions : DataFrame
        ``interrupter``, ``interrupted``, ``start_s`` (the interrupter starts), ``end_s`` (the
        interrupted party stops), ``duration_s``.
    overlaps : DataFrame
        Both parties speaking: ``start_s``, ``end_s``, ``duration_s``.
    silences : DataFrame
        Dead air, silences longer than ``silence_threshold_s``: ``start_s``, ``end_s``, ``duration_s``.
    levels : DataFrame
        Per party: ``rms_dbfs``, ``peak_dbfs``, ``clipping_ratio`` (0..1), ``clipping_pct``
        (0..100, as ``to_dict``'s ``<party>_clipping_pct``), ``dc_offset``, ``snr_db``.
    dtmf : DataFrame
        In-band digits on either track: ``track``, ``digit``, ``start_s``, ``end_s``,
        ``duration_s``, ``level_dbfs``.
    lost : DataFrame
        Audio the network lost (the recording's gaps), neither speech nor silence: ``track``
        (the party), ``start_s``, ``end_s``, ``duration_s``. Empty for a plain array.
    dtmf_events : str
        Digits of the stream's ``dtmf`` events, in order (``""`` when none or not given).
    speech : dict of str to Speech
        Per party, DTMF frames removed.
    duration_s, silence_threshold_s, longest_silence_s : float
    parties : tuple of str
    """

    talk: "pd.DataFrame"
    turns: "pd.DataFrame"
    interruptions: "pd.DataFrame"
    overlaps: "pd.DataFrame"
    silences: "pd.DataFrame"
    levels: "pd.DataFrame"
    dtmf: "pd.DataFrame"
    dtmf_events: str
    speech: dict[str, Speech] = field(repr=False)
    duration_s: float = 0.0
    silence_threshold_s: float = 2.0
    longest_silence_s: float = 0.0
    parties: tuple[str, str] = ("inbound", "outbound")
    lost: "pd.DataFrame | None" = field(default=None, repr=False)

    @property
    def response_latencies_s(self) -> np.ndarray:
        """Latency of every true turn change, seconds (interruptions excluded)."""
        lat = self.turns["response_latency_s"].to_numpy(dtype=float)
        return lat[~np.isnan(lat)]

    def to_dict(self) -> dict[str, Any]:
        """One flat, JSON-safe row (None where a figure is undefined); units in the names.

        Shares are fractions 0..1, per-party keys start with the party's name.

        Returns
        -------
        dict of str to object
            The call's figures (durations, talk and overlap shares, latencies, DTMF), each a
            number, a string or ``None``: a row of :func:`telnyx_audio.batch`'s call table.

        Examples
        --------
        >>> sorted(analyze_call(np.zeros((2, 8000), np.int16), 8000).to_dict())[:4]
        ['dead_air_s', 'dtmf_events', 'dtmf_inband', 'duration_s']
        """
        lat = self.response_latencies_s
        row: dict[str, Any] = {"duration_s": float(self.duration_s)}
        for p in self.parties:
            row[f"{p}_talk_s"] = float(self.talk.loc[p, "talk_s"])
            row[f"{p}_talk_share"] = float(self.talk.loc[p, "share"])
        row["n_turns"] = int(len(self.turns))
        row["n_turn_changes"] = int(lat.size)
        row["response_latency_median_s"] = _num(np.median(lat)) if lat.size else None
        row["response_latency_p90_s"] = _num(np.percentile(lat, 90)) if lat.size else None
        row["n_overlaps"] = int(len(self.overlaps))
        row["overlap_s"] = float(self.overlaps["duration_s"].sum())
        counts = self.interruptions["interrupter"].value_counts()
        for p in self.parties:
            row[f"{p}_interruptions"] = int(counts.get(p, 0))
        row["dead_air_s"] = float(self.silences["duration_s"].sum())
        row["longest_silence_s"] = float(self.longest_silence_s)
        row["silence_threshold_s"] = float(self.silence_threshold_s)
        row["n_silences_over_threshold"] = int(len(self.silences))
        for p in self.parties:
            lv = self.levels.loc[p]
            row[f"{p}_level_dbfs"] = _num(lv["rms_dbfs"])
            row[f"{p}_peak_dbfs"] = _num(lv["peak_dbfs"])
            row[f"{p}_clipping_pct"] = float(lv["clipping_ratio"]) * 100.0
            row[f"{p}_snr_db"] = _num(lv["snr_db"])
        row["dtmf_inband"] = "".join(self.dtmf["digit"])
        for p in self.parties:
            row[f"{p}_dtmf_inband"] = "".join(self.dtmf.loc[self.dtmf["track"] == p, "digit"])
        row["dtmf_events"] = self.dtmf_events
        return row

    def _lost_table(self) -> "pd.DataFrame":
        import pandas as pd

        if self.lost is not None:
            return self.lost
        return pd.DataFrame({"track": pd.Series(dtype=str), "start_s": pd.Series(dtype=float),
                             "end_s": pd.Series(dtype=float), "duration_s": pd.Series(dtype=float)})

    def segments(self) -> "pd.DataFrame":
        """Every span found, one per row: speech, turns, overlaps, interruptions, dead air, DTMF.

        Returns
        -------
        pandas.DataFrame
            ``kind`` (``"speech"``, ``"turn"``, ``"overlap"``, ``"interruption"``,
            ``"silence"`` (dead air over the threshold), ``"dtmf"`` or ``"lost"`` (audio the
            network lost: neither speech nor silence)), ``track`` (the party;
            the interrupter for an interruption; ``""`` for both), ``start_s``, ``end_s``,
            ``duration_s``, ``label`` (the digit for DTMF, ``""`` otherwise); sorted by start.
        """
        import pandas as pd

        cols = ["start_s", "end_s", "duration_s"]
        parts = [self.speech[p].segments[cols].assign(kind="speech", track=p, label="") for p in self.parties]
        parts.append(self.turns[cols].assign(kind="turn", track=self.turns["party"], label=""))
        parts.append(self.overlaps[cols].assign(kind="overlap", track="", label=""))
        parts.append(self.interruptions[cols].assign(kind="interruption", track=self.interruptions["interrupter"], label=""))
        parts.append(self.silences[cols].assign(kind="silence", track="", label=""))
        parts.append(self.dtmf[cols].assign(kind="dtmf", track=self.dtmf["track"], label=self.dtmf["digit"]))
        lost = self._lost_table()
        if len(lost):
            parts.append(lost[cols].assign(kind="lost", track=lost["track"], label=""))
        order = ["kind", "track", "start_s", "end_s", "duration_s", "label"]
        table = pd.concat([p[order].astype({"kind": str, "track": str, "label": str}) for p in parts], ignore_index=True)
        table = table.sort_values(["start_s", "kind"], kind="stable").reset_index(drop=True)
        table.attrs["time_zero"] = TIME_ZERO
        return table

    @property
    def summary(self) -> str:
        """One line, every figure with its unit."""
        d = self.to_dict()
        a, b = self.parties
        parts = [f"{self.duration_s:.1f} s call",
                 f"talk {a} {d[f'{a}_talk_s']:.1f} s ({d[f'{a}_talk_share']:.0%}), {b} {d[f'{b}_talk_s']:.1f} s ({d[f'{b}_talk_share']:.0%})",
                 f"{d['n_turns']} turns"]
        if d["n_turn_changes"]:
            parts.append(f"response latency median {d['response_latency_median_s']:.2f} s, p90 {d['response_latency_p90_s']:.2f} s"
                         f" (over {d['n_turn_changes']} turn change{'s' if d['n_turn_changes'] > 1 else ''})")
        else:
            parts.append("no turn changes to measure response latency")
        parts.append(f"interruptions {a} {d[f'{a}_interruptions']}, {b} {d[f'{b}_interruptions']}")
        parts.append(f"{d['n_overlaps']} overlaps ({d['overlap_s']:.1f} s)")
        n_quiet = d["n_silences_over_threshold"]
        parts.append(f"{n_quiet} silence{'' if n_quiet == 1 else 's'} > {self.silence_threshold_s:g} s"
                     f" ({d['dead_air_s']:.1f} s dead air; longest silence {d['longest_silence_s']:.1f} s)")
        if d["dtmf_inband"] or d["dtmf_events"]:
            parts.append(f"DTMF in band {d['dtmf_inband'] or 'none'!r}, events {d['dtmf_events'] or 'none'!r}")
        lost = self._lost_table()
        if len(lost):
            a_lost, b_lost = (float(lost.loc[lost["track"] == p, "duration_s"].sum()) for p in (a, b))
            parts.append(f"lost audio {a} {a_lost:.2f} s, {b} {b_lost:.2f} s (neither speech nor silence)")
        return "; ".join(parts)

    def __repr__(self) -> str:
        return f"<CallAnalysis {self.summary}>"


def _turns(segs: "pd.DataFrame", parties: Sequence[str]) -> tuple["pd.DataFrame", "pd.DataFrame"]:
    """Turns and interruptions from both parties' speech segments (``party``, ``start_s``, ``end_s``).

    A plain loop over segments (not samples or frames): the floor passes from one party to the
    other in order, each step depending on the last, and a call has at most a few thousand.
    """
    import pandas as pd

    turns: list[list[Any]] = []
    cuts: list[tuple[str, str, float, float]] = []
    spoken_until = {p: -np.inf for p in parties}
    for party, start, end in segs[["party", "start_s", "end_s"]].itertuples(index=False):
        if not turns:
            turns.append([party, start, end, "first", np.nan])
        elif turns[-1][0] == party:
            turns[-1][2] = max(turns[-1][2], end)
        else:
            holder = turns[-1][0]
            holder_end = spoken_until[holder]
            if start >= holder_end:  # a true turn change: the holder had stopped
                turns.append([party, start, end, "response", start - holder_end])
            elif end > holder_end:  # started while the holder spoke and talked on: took the floor
                turns.append([party, start, end, "interruption", np.nan])
                cuts.append((party, holder, start, holder_end))
            # else: speech inside the holder's (a backchannel): an overlap, not a turn
        spoken_until[party] = max(spoken_until[party], end)
    table = pd.DataFrame(turns, columns=["party", "start_s", "end_s", "change", "response_latency_s"])
    table.insert(3, "duration_s", table["end_s"] - table["start_s"])
    table["response_latency_s"] = table["response_latency_s"].astype(float)
    interruptions = pd.DataFrame(cuts, columns=["interrupter", "interrupted", "start_s", "end_s"])
    interruptions["duration_s"] = interruptions["end_s"] - interruptions["start_s"]
    return table, interruptions.astype({"start_s": float, "end_s": float, "duration_s": float})


def _dtmf_digits(events: Any) -> str:
    return "".join(d for d in (getattr(e, "digit", e) for e in events) if isinstance(d, str))


def analyze_call(audio: Any, sr: int | None = None, *, silence_s: float = 2.0, dtmf_events: Any = None,
                 parties: Sequence[str] = ("inbound", "outbound"), encoding: str | None = None, lost: Any = None,
                 **vad: Any) -> CallAnalysis:
    """Measure a two-party call: talk time, turns, latency, interruptions, overlaps, dead air, levels, DTMF.

    In-band DTMF is found on both tracks (:func:`~telnyx_audio.analysis.detect_dtmf`) and
    removed from speech, so key presses count toward neither talk time nor turns; digits are
    reported on their own, beside the stream's ``dtmf`` events. Audio the network lost (the
    gaps a Recording reports) is neither speech nor silence (see :func:`detect_speech`) and is
    reported on its own. See this module's docstring for the definitions of turn, response
    latency, interruption, overlap, silence and lost audio.

    Parameters
    ----------
    audio : Capture, Recording or np.ndarray, shape (2, n)
        ``[inbound, outbound]``, int16 or float.
    sr : int, optional
        Sample rate of a plain array (a Recording or Capture carries its own).
    silence_s : float
        Dead air threshold: silences longer than this (seconds) are counted and listed.
    dtmf_events : iterable of Dtmf events or digit strings, optional
        The stream's ``dtmf`` events (taken from a Capture's events when not given).
    parties : pair of str
        Names for the two tracks (and the prefixes of :meth:`CallAnalysis.to_dict` keys).
    encoding : str, optional
        The codec of a plain array (a Recording or Capture carries its own): clipping is
        judged against its full scale (see :func:`levels`).
    lost : pair of array-like of (start_s, end_s), or dict, optional
        Spans of each track the network lost, ``[inbound, outbound]`` (or by name). A
        Recording or Capture carries its own (:attr:`Recording.lost <telnyx_audio.Recording>`);
        give it for a plain array cut from one.
    **vad
        Passed to :func:`detect_speech` for both tracks.

    Returns
    -------
    CallAnalysis

    Examples
    --------
    >>> sr = 8000
    >>> t = np.arange(sr) / sr
    >>> word = 0.3 * np.sin(2 * np.pi * 200 * t) * np.sin(2 * np.pi * 3 * t) ** 2
    >>> quiet = np.zeros(sr)
    >>> call = np.stack([np.concatenate([word, quiet, quiet]), np.concatenate([quiet, quiet, word])])
    >>> analyze_call(call, sr).to_dict()["n_turns"]
    2
    """
    import pandas as pd

    _refuse_path(audio, "analyze_call")
    rate = _rate(sr, audio)
    x = _as_array(audio)  # as it is: each step below takes one track at a time, in blocks
    if x.ndim != 2 or x.shape[0] != 2:
        raise ValueError(f"analyze_call takes two tracks, shape (2, n); got {x.shape}")
    if len(parties) != 2 or parties[0] == parties[1]:
        raise ValueError(f"parties must be two different names, got {parties!r}")
    if not silence_s > 0:
        raise ValueError(f"silence_s must be a positive number of seconds, got {silence_s!r}")
    parties = tuple(parties)
    if dtmf_events is None:
        dtmf_events = getattr(audio, "events", ()) if _source(audio) is not audio else ()
    events = _dtmf_digits(dtmf_events)
    encoding = encoding if encoding is not None else getattr(_source(audio), "encoding", None)

    frame_s = float(vad.get("frame_s", 0.01))
    tables = [detect_dtmf(x[i], rate).assign(track=name) for i, name in enumerate(parties)]
    dtmf = pd.concat(tables, ignore_index=True).sort_values("start_s", kind="stable").reset_index(drop=True)
    dtmf = dtmf[["track", "digit", "start_s", "end_s", "duration_s", "level_dbfs"]]
    # A tone on either track is excluded from both: a caller's key press leaks into the other
    # track as echo, and neither is talk.
    n = x.shape[1] // int(round(frame_s * rate))
    tone = _spans_to_mask(dtmf["start_s"].to_numpy() - _DTMF_MARGIN_S, dtmf["end_s"].to_numpy() + _DTMF_MARGIN_S, n, frame_s)
    spans = _lost_spans(audio, parties, lost)
    gone = [lost_frames(s, n, frame_s) for s in spans]  # (lost, tainted) per track
    speech = {name: detect_speech(x[i], rate, exclude=tone, lost=spans[i] if spans[i].size else None, **vad)
              for i, name in enumerate(parties)}
    a, b = speech[parties[0]].mask, speech[parties[1]].mask

    talk_frames = np.array([a.sum(), b.sum()])
    total = talk_frames.sum()
    talk = pd.DataFrame({"talk_s": talk_frames * frame_s, "share": talk_frames / total if total else np.zeros(2),
                         "segments": [len(speech[p].segments) for p in parties]}, index=list(parties))
    talk.index.name = "party"

    overlaps = _segments(a & b, frame_s)
    segs = pd.concat([speech[p].segments.assign(party=p) for p in parties]).sort_values(["start_s", "end_s"], kind="stable")
    turns, interruptions = _turns(segs, parties)

    # Silences: neither speaking nor keying, between the first and the last sound of the call;
    # a loss shorter than a pause inside a silence does not end it, a longer one is not silence.
    either_lost = gone[0][0] | gone[1][0]
    min_pause = int(round(float(vad.get("min_pause_s", 0.3)) / frame_s))
    long_lost = either_lost & ~_runs_shorter_than(either_lost, True, min_pause)
    quiet_starts, quiet_ends = _edges(~(a | b | tone | long_lost))
    inside = (quiet_starts > 0) & (quiet_ends < n)
    quiet_s = (quiet_ends - quiet_starts)[inside] * frame_s
    longest = float(quiet_s.max()) if quiet_s.size else 0.0
    over = quiet_s > silence_s
    silences = pd.DataFrame({"start_s": quiet_starts[inside][over] * frame_s, "end_s": quiet_ends[inside][over] * frame_s,
                             "duration_s": quiet_s[over]})

    # Lost frames (and those whose window reaches into them) are neither the speech nor the
    # noise of the SNR.
    lv = pd.DataFrame([levels(x[i], rate, speech[p], exclude=tone | gone[i][1], encoding=encoding)
                       for i, p in enumerate(parties)], index=list(parties))
    lv.index.name = "party"
    lost_table = pd.DataFrame(
        {"track": np.repeat(np.array(parties, dtype=object), [s.shape[0] for s in spans]),
         "start_s": np.concatenate([s[:, 0] for s in spans]), "end_s": np.concatenate([s[:, 1] for s in spans])})
    lost_table["duration_s"] = lost_table["end_s"] - lost_table["start_s"]
    lost_table = lost_table.sort_values("start_s", kind="stable").reset_index(drop=True)
    for table in (turns, interruptions, overlaps, silences, dtmf, lost_table):
        table.attrs["time_zero"] = TIME_ZERO
    return CallAnalysis(talk, turns, interruptions, overlaps, silences, lv, dtmf, events, speech, x.shape[1] / rate,
                        float(silence_s), longest, parties, lost=lost_table)


def _refuse_path(audio: Any, name: str) -> None:
    """A file name is not audio: say how to read it (analysis stands below the readers)."""
    import os

    if isinstance(audio, (str, bytes, os.PathLike)):
        raise TypeError(f"{name} takes audio (a Capture, Recording or array), not the path {audio!r}:"
                        f" read it first, capture = telnyx_audio.read_capture({str(audio)!r}); {name}(capture)")
