"""``diagnose``: what went wrong on a call, and how good it was (see :mod:`telnyx_audio.diagnosis`)."""

from __future__ import annotations

import html
import os
import warnings
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Mapping

import numpy as np

from telnyx_audio.analysis.emodel import EModel, emodel
from telnyx_audio.analysis.evidence import CODES, SEVERITIES, Evidence, _finding, collect_evidence
from telnyx_audio.diagnosis.network import NETWORK_THRESHOLDS, TrackNetwork, network_of, telnyx_quality
from telnyx_audio.model.capture import Capture
from telnyx_audio.model.recording import Recording

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

__all__ = ["Diagnosis", "diagnose", "diagnose_captures", "FINDING_COLUMNS"]

TRACKS = ("inbound", "outbound")
#: The columns of :attr:`Diagnosis.findings`, in order.
FINDING_COLUMNS = ("code", "severity", "track", "start_s", "end_s", "summary", "evidence")
_RANK = {s: i for i, s in enumerate(SEVERITIES)}
_COLORS = {"info": "0.6", "warning": "orange", "problem": "red"}


@dataclass(frozen=True)
class Diagnosis:
    """What :func:`diagnose` found on one call.

    Attributes
    ----------
    source : str or None
        The capture file (None for a Capture or Recording made in memory).
    findings : pandas.DataFrame
        One row per finding: ``code``, ``severity`` (``info``, ``warning``, ``problem``),
        ``track`` (``""`` for the whole call), ``start_s``, ``end_s``, ``summary`` (plain
        words), ``evidence`` (a dict of the figures behind it). Codes are listed in
        :data:`telnyx_audio.diagnosis.CODES`.
    quality : dict
        Per track with audio: ``{"emodel": EModel, "network": TrackNetwork or None,
        "telnyx": dict or None}`` (Telnyx's ``call_quality_stats`` for that track, when
        webhooks were given and name this call).
    evidence : Evidence or None
        Every audio measurement behind the findings (None when there was no audio).
    recording : Recording
    capture : Capture or None
    notes : tuple of str
        What the diagnosis could not do or had to assume.
    """

    source: str | None
    findings: "pd.DataFrame"
    quality: dict[str, dict[str, Any]] = field(repr=False)
    evidence: Evidence | None = field(repr=False)
    recording: Recording = field(repr=False)
    capture: Capture | None = field(default=None, repr=False)
    notes: tuple[str, ...] = ()

    @property
    def severity(self) -> str:
        """The worst severity found: ``"problem"``, ``"warning"``, ``"info"`` (also when nothing was found)."""
        if self.findings.empty:
            return "info"
        return max(self.findings["severity"], key=_RANK.__getitem__)

    @property
    def codes(self) -> list[str]:
        """The codes found, each once, in :data:`CODES` order."""
        found = set(self.findings["code"])
        return [c for c in CODES if c in found]

    def quality_dict(self) -> dict[str, dict[str, Any]]:
        """Per track: ``{"r", "mos", "scale", "codec", "inputs", "network", "telnyx"}``, JSON-safe.

        Returns
        -------
        dict
            Track name to its quality figures.
        """
        out = {}
        for track, q in self.quality.items():
            d = q["emodel"].to_dict()
            d["network"] = q["network"].to_dict() if q.get("network") is not None else None
            d["telnyx"] = q.get("telnyx")
            out[track] = d
        return out

    def to_dict(self) -> dict[str, Any]:
        """``{"source", "severity", "findings": [...], "quality": {track: {"r", "mos", "scale", "inputs", ...}},
        "notes"}``: JSON-safe, as ``telnyx-audio diagnose --json`` prints it.

        Returns
        -------
        dict
            The diagnosis, JSON-safe.
        """
        findings = [{k: (float(v) if k in ("start_s", "end_s") else v) for k, v in row.items()}
                    for row in self.findings.to_dict("records")]
        return {"source": self.source, "severity": self.severity, "findings": findings,
                "quality": self.quality_dict(), "notes": list(self.notes)}

    def to_row(self) -> dict[str, Any]:
        """The batch columns: E-model R and MOS per track, the codes found, the worst severity.

        Keys: ``emodel_inbound_r``, ``emodel_inbound_mos``, ``emodel_outbound_r``,
        ``emodel_outbound_mos``, ``emodel_scale``, ``findings`` (codes, comma-separated),
        ``severity``, ``n_problem_findings``, ``n_warning_findings``.

        Returns
        -------
        dict
            Column name to value.

        Examples
        --------
        >>> import numpy as np
        >>> from telnyx_audio.model.recording import Recording
        >>> row = diagnose(Recording(np.zeros((2, 8000), np.int16), 8000, "PCMU", ("inbound", "outbound"))).to_row()
        >>> row["findings"], row["severity"], row["emodel_scale"]
        ('no_audio', 'problem', 'narrowband')
        """
        row: dict[str, Any] = {}
        scale = None
        for track in TRACKS:
            q = self.quality.get(track)
            row[f"emodel_{track}_r"] = round(q["emodel"].r, 3) if q else None
            row[f"emodel_{track}_mos"] = round(q["emodel"].mos, 3) if q else None
            scale = scale or (q["emodel"].scale if q else None)
        row["emodel_scale"] = scale
        row["findings"] = ",".join(self.codes)
        row["severity"] = self.severity
        row["n_problem_findings"] = int((self.findings["severity"] == "problem").sum())
        row["n_warning_findings"] = int((self.findings["severity"] == "warning").sum())
        return row

    def report(self) -> str:
        """A readable report: the verdict, quality per track, then each finding with its span.

        Returns
        -------
        str
            Several lines of text.

        Examples
        --------
        >>> print(diagnose("data/example_call.jsonl").report().splitlines()[1])
          quality inbound: MOS 4.35, R 90.4 (narrowband, PCMU; loss 0.75 % measured, delay 0 ms assumed)
        """
        lines = [f"{self.source or '<call>'}: {self.severity.upper()}"
                 + (f" ({', '.join(self.codes)})" if self.codes else " (nothing found)")]
        for track, q in self.quality.items():
            m: EModel = q["emodel"]
            loss = m.inputs["packet_loss_pct"]
            delay = m.inputs["one_way_delay_ms"]
            text = (f"  quality {track}: MOS {m.mos:.2f}, R {m.r:.1f} ({m.scale}, {m.codec}; loss {loss.value:.2f} % "
                    f"{loss.provenance}, delay {delay.value:.0f} ms {delay.provenance})")
            telnyx = q.get("telnyx")
            if telnyx and telnyx.get("mos") is not None:
                text += f"; Telnyx reported MOS {telnyx['mos']:.2f}"
            lines.append(text)
        for row in self.findings.itertuples(index=False):
            where = f"{row.track} " if row.track else ""
            lines.append(f"  [{row.severity}] {row.code} {where}{row.start_s:.1f}-{row.end_s:.1f} s: {row.summary}")
        lines.extend(f"  note: {n}" for n in self.notes)
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"<Diagnosis {self.source or ''} {self.severity}: {', '.join(self.codes) or 'nothing found'}>"

    def _repr_html_(self) -> str:
        """A report card: the verdict, quality per track, and the findings table."""
        esc = html.escape
        color = {"info": "#2e7d32", "warning": "#ef6c00", "problem": "#c62828"}[self.severity]
        parts = [f"<div><b>{esc(self.source or 'call')}</b> &mdash; "
                 f"<span style='color:{color};font-weight:bold'>{self.severity.upper()}</span> "
                 f"({esc(', '.join(self.codes) or 'nothing found')})</div>",
                 "<table><tr><th>track</th><th>MOS</th><th>R</th><th>scale</th><th>codec</th><th>loss %</th>"
                 "<th>delay ms</th><th>Telnyx MOS</th></tr>"]
        for track, q in self.quality.items():
            m = q["emodel"]
            loss, delay = m.inputs["packet_loss_pct"], m.inputs["one_way_delay_ms"]
            telnyx = (q.get("telnyx") or {}).get("mos")
            parts.append(f"<tr><td>{track}</td><td><b>{m.mos:.2f}</b></td><td>{m.r:.1f}</td><td>{m.scale}</td>"
                         f"<td>{esc(m.codec)}</td><td>{loss.value:.2f} <i>({loss.provenance})</i></td>"
                         f"<td>{delay.value:.0f} <i>({delay.provenance})</i></td>"
                         f"<td>{'' if telnyx is None else f'{telnyx:.2f}'}</td></tr>")
        parts.append("</table><table><tr><th>severity</th><th>code</th><th>track</th><th>from s</th><th>to s</th>"
                     "<th>what</th></tr>")
        for row in self.findings.itertuples(index=False):
            c = {"info": "#2e7d32", "warning": "#ef6c00", "problem": "#c62828"}[row.severity]
            parts.append(f"<tr><td style='color:{c}'>{row.severity}</td><td><code>{row.code}</code></td>"
                         f"<td>{row.track}</td><td>{row.start_s:.1f}</td><td>{row.end_s:.1f}</td>"
                         f"<td>{esc(row.summary)}</td></tr>")
        parts.append("</table>")
        parts.extend(f"<div><i>note: {esc(n)}</i></div>" for n in self.notes)
        return "".join(parts)

    def plot(self, **kwargs: Any) -> dict[str, Any]:
        """:func:`~telnyx_audio.plot_call` with the findings drawn on it: a band per finding on
        its track (both for the whole call's), coloured by severity and labelled with its code.

        Parameters
        ----------
        **kwargs
            Passed to :func:`~telnyx_audio.plot_call` (``ax``, ``spectrograms``...).

        Returns
        -------
        dict
            What ``plot_call`` returns, plus ``findings`` (the bands and labels drawn).
        """
        from telnyx_audio.plots import plot_call

        kwargs.setdefault("analysis", self.evidence.analysis if self.evidence is not None else None)
        out = plot_call(self.recording, **kwargs)
        axes = out["axes"][:2]
        drawn = []
        for row in self.findings.itertuples(index=False):
            targets = [axes[TRACKS.index(row.track)]] if row.track in TRACKS else axes
            end = max(row.end_s, row.start_s + 0.05)
            for axis in targets:
                drawn.append(axis.axvspan(row.start_s, end, ymin=0.0, ymax=0.08, color=_COLORS[row.severity],
                                          alpha=0.9, linewidth=0))
                drawn.append(axis.annotate(row.code, (row.start_s, 0.09), xycoords=("data", "axes fraction"),
                                           fontsize=7, color=_COLORS[row.severity], va="bottom", ha="left",
                                           clip_on=True))
        out["findings"] = drawn
        return out


def _table(findings: list[dict[str, Any]]) -> "pd.DataFrame":
    import pandas as pd

    table = pd.DataFrame(findings, columns=list(FINDING_COLUMNS))
    return table.astype({"start_s": float, "end_s": float}) if len(table) else table


def _network_findings(networks: Mapping[str, TrackNetwork], recording: Recording,
                      evidence: Evidence | None) -> list[dict[str, Any]]:
    """packet_loss and jitter per track; choppy_audio from concealed frames the audio cannot show."""
    t = NETWORK_THRESHOLDS
    duration = recording.duration_s
    out = []
    for track, net in networks.items():
        loss = net.effective_loss_pct
        if net.source and loss >= t["loss_warning_pct"]:
            spans = net.gaps
            start, end = (spans[0][0], spans[-1][1]) if spans else (0.0, duration)
            how = ("RTP sequence numbers" if net.source == "rtp" else "the stream's frame counters")
            late = net.effective_loss_pct - net.loss_pct
            out.append(_finding(
                "packet_loss", "problem" if loss >= t["loss_problem_pct"] else "warning", track, start, end,
                f"{loss:.1f} % of the {track} packets lost ({net.n_lost} of {net.n_expected} never arrived"
                + (f", {late:.1f} % more too late for a jitter buffer" if late > 0.05 else "")
                + f"; burst ratio {net.effective_burst_ratio:.1f}, from {how})",
                loss_pct=loss, network_loss_pct=net.loss_pct, burst_ratio=net.effective_burst_ratio,
                n_lost=net.n_lost, n_expected=net.n_expected, n_gaps=len(spans), source=net.source))
        if net.source == "rtp":
            late50 = net.buffers.get("fixed_50ms", {})
            late_pct = 100.0 * late50.get("late", 0) / max(net.n_expected, 1)
            jit = net.max_jitter_ms
            bad = (np.isfinite(jit) and jit >= t["jitter_warning_ms"]) or late_pct >= t["late_warning_pct"]
            if bad:
                severe = (np.isfinite(jit) and jit >= t["jitter_problem_ms"]) or late_pct >= t["late_problem_pct"]
                out.append(_finding(
                    "jitter", "problem" if severe else "warning", track, 0.0, duration,
                    f"the {track} packets arrive unevenly: jitter up to {jit:.0f} ms (RFC 3550); a 50 ms buffer "
                    f"would discard {late_pct:.1f} % as late, an adaptive one "
                    f"{net.buffers['adaptive_500ms']['loss_pct'] - net.loss_pct:.1f} %",
                    jitter_ms=net.jitter_ms, max_jitter_ms=jit, late_pct_fixed_50ms=late_pct,
                    buffers=net.buffers))
        report = recording.reports.get(track)
        concealed = int(getattr(report, "concealed_frames", 0) or 0)
        has_choppy = evidence is not None and any(f["code"] == "choppy_audio" and f["track"] == track
                                                  for f in evidence.findings)
        if concealed >= 3 and not has_choppy:
            expected = max(int(getattr(report, "frames_expected", 1)), 1)
            spans = net.gaps
            out.append(_finding(
                "choppy_audio", "problem" if concealed / expected >= 0.05 else "warning", track,
                spans[0][0] if spans else 0.0, spans[-1][1] if spans else duration,
                f"{concealed} {track} frames were made up by the decoder's concealment ({report.concealment})",
                concealed_frames=concealed, frames_expected=expected))
    return out


def _rtcp_rtts(capture: Capture | None) -> list[float]:
    """The round-trip times (ms) RTCP receiver reports gave in a packet capture (an SR matched
    by a later report's LSR, as Wireshark computes them); none for the other sources."""
    report = getattr(capture, "report", None)
    rtts = [b.get("rtt_ms") for r in (getattr(report, "rtcp", None) or ()) for b in r.get("blocks", ())]
    return [float(v) for v in rtts if v is not None and np.isfinite(v) and 0 <= v < 10_000]


def _quality(recording: Recording, networks: Mapping[str, TrackNetwork], telnyx: Mapping[str, Any] | None,
             evidence: Evidence | None, one_way_delay_ms: float | None, notes: list[str],
             rtts: list[float] | None = None) -> dict[str, dict[str, Any]]:
    """The E-model per track with audio, every input with its provenance."""
    out: dict[str, dict[str, Any]] = {}
    echo_rt = [e for e in (evidence.echo.values() if evidence is not None else ()) if e.found]
    for track in recording.tracks:
        net = networks.get(track)
        reported = (telnyx or {}).get(track) or {}
        prov: dict[str, str] = {"codec": "measured", "sample_rate": "measured"}
        src: dict[str, str] = {"codec": "the capture's media format", "sample_rate": "the decoded audio's rate"}
        kwargs: dict[str, Any] = {}
        if net is not None and net.source:
            kwargs["packet_loss_pct"] = net.effective_loss_pct
            kwargs["burst_ratio"] = max(1.0, net.effective_burst_ratio)
            prov["packet_loss_pct"] = prov["burst_ratio"] = "measured"
            if net.source == "rtp":
                src["packet_loss_pct"] = (f"RTP sequence numbers: {net.n_lost} of {net.n_expected} lost, plus the packets "
                                          "an adaptive jitter buffer (up to 500 ms) discards as late")
            else:
                src["packet_loss_pct"] = f"frame counters: {net.n_lost} of {net.n_expected} frames missing"
            src["burst_ratio"] = "G.107 burst ratio of the same loss sequence"
        elif reported.get("loss_pct") is not None:
            kwargs["packet_loss_pct"] = float(reported["loss_pct"])
            prov["packet_loss_pct"] = "reported"
            src["packet_loss_pct"] = "Telnyx call.hangup call_quality_stats (skip_packet_count / packet_count)"
        if one_way_delay_ms is not None:
            kwargs["one_way_delay_ms"] = float(one_way_delay_ms)
            prov["one_way_delay_ms"] = "declared"
            src["one_way_delay_ms"] = "given by the user"
        elif rtts:  # RTCP's round trip (network only): half of it, plus what the jitter buffer holds
            delay = float(np.median(rtts)) / 2
            text = f"half the median RTCP round trip ({float(np.median(rtts)):.1f} ms over {len(rtts)} reports)"
            if net is not None and np.isfinite(net.buffer_delay_ms):
                delay += net.buffer_delay_ms
                text += " plus the adaptive jitter buffer's mean delay"
            kwargs["one_way_delay_ms"] = delay
            prov["one_way_delay_ms"] = "reported"
            src["one_way_delay_ms"] = text
        else:
            delay, parts = 0.0, []
            if echo_rt:
                delay += max(e.delay_ms for e in echo_rt) / 2
                parts.append("half the echo's round trip seen at the capture point")
            if net is not None and np.isfinite(net.buffer_delay_ms):
                delay += net.buffer_delay_ms
                parts.append("the adaptive jitter buffer's mean delay")
            if parts:
                kwargs["one_way_delay_ms"] = delay
                prov["one_way_delay_ms"] = "measured"
                src["one_way_delay_ms"] = " plus ".join(parts) + " (a lower bound: no RTCP round trip in the capture)"
            else:
                src["one_way_delay_ms"] = "not measured (no RTCP round trip, no echo): 0 ms assumed"
        echo = evidence.echo.get(track) if evidence is not None else None
        if echo is not None and echo.found and np.isfinite(echo.erl_db):
            kwargs["telr_db"] = float(echo.erl_db) + 10.0
            prov["telr_db"] = "measured"
            src["telr_db"] = (f"echo return loss {echo.erl_db:.1f} dB measured in the {track} track plus G.107's "
                              "default send and receive loudness ratings (8 + 2 dB)")
        model = emodel(recording.encoding, sample_rate=recording.sample_rate, provenance=prov, sources=src, **kwargs)
        out[track] = {"emodel": model, "network": net, "telnyx": reported or None}
    if telnyx is None:
        notes.append("no Telnyx call_quality_stats for this call (no webhooks given, or none matched its ids)")
    return out


def _as_capture(source: Any) -> tuple[Capture | None, Recording, str | None]:
    if isinstance(source, Capture):
        return source, source.recording, source.path
    if isinstance(source, Recording):
        return None, source, None
    if isinstance(source, (str, os.PathLike)):
        from telnyx_audio.read import read_capture

        capture = read_capture(source)
        return capture, capture.recording, os.fspath(source)
    raise TypeError(f"diagnose takes a capture path, a Capture or a Recording, got {type(source).__name__}")


def diagnose(source: Any, *, webhooks: Any = None, one_way_delay_ms: float | None = None) -> Diagnosis:
    """Find what went wrong on a call, and rate its quality (E-model), from its capture.

    Parameters
    ----------
    source : str, PathLike, Capture or Recording
        A capture file holding one call (WebSocket JSONL or fork ``.rtpcap``), or one read.
        For a file holding several streams use :func:`diagnose_captures`.
    webhooks : path, glob, list or DataFrame, optional
        Webhook logs (anything :func:`~telnyx_audio.load_webhooks` takes, or its result):
        Telnyx's ``call_quality_stats`` for this call are set beside the E-model, and feed it
        (provenance ``reported``) when the capture measured no loss.
    one_way_delay_ms : float, optional
        The mouth-to-ear delay when known (provenance ``declared``); otherwise what the
        capture shows (half the echo's round trip, the jitter buffer's delay) or 0 assumed.

    Returns
    -------
    Diagnosis
        ``.findings`` (a DataFrame), ``.quality`` (E-model per track), ``.report()``,
        ``.to_dict()``, ``.plot()``, and a report card in notebooks.

    Raises
    ------
    TypeError
        For a source that is none of these.
    MultipleStreamsError, CaptureError
        From reading a path (see :func:`~telnyx_audio.read_capture`).

    Examples
    --------
    >>> d = diagnose("data/example_call.jsonl")
    >>> d.severity, d.codes
    ('info', [])
    >>> q = d.quality["inbound"]["emodel"]
    >>> round(q.mos, 2), q.scale, q.inputs["packet_loss_pct"].provenance
    (4.35, 'narrowband', 'measured')
    """
    capture, recording, path = _as_capture(source)
    return _diagnose(capture, recording, path, webhooks=webhooks, one_way_delay_ms=one_way_delay_ms)


def diagnose_captures(path: str | os.PathLike[str], *, webhooks: Any = None,
                      one_way_delay_ms: float | None = None) -> list[Diagnosis]:
    """:func:`diagnose` each stream of a capture file (a capture server log may hold several).

    Parameters
    ----------
    path : str or PathLike
        The capture file.
    webhooks : optional
        As for :func:`diagnose`.
    one_way_delay_ms : float, optional
        As for :func:`diagnose`.

    Returns
    -------
    list of Diagnosis
        One per stream.

    Examples
    --------
    >>> [d.severity for d in diagnose_captures("data/example_call.jsonl")]
    ['info']
    """
    from telnyx_audio.read import read_captures

    if webhooks is not None:
        import pandas as pd

        if not isinstance(webhooks, pd.DataFrame):
            from telnyx_audio.webhooks import load_webhooks

            webhooks = load_webhooks(webhooks)
    return [_diagnose(c, c.recording, os.fspath(path), webhooks=webhooks, one_way_delay_ms=one_way_delay_ms)
            for c in read_captures(path)]


def _diagnose(capture: Capture | None, recording: Recording, path: str | None, *, webhooks: Any,
              one_way_delay_ms: float | None) -> Diagnosis:
    if one_way_delay_ms is not None and not float(one_way_delay_ms) >= 0:
        raise ValueError(f"one_way_delay_ms must be a delay in ms, 0 or more, got {one_way_delay_ms!r}")
    notes: list[str] = []
    findings: list[dict[str, Any]] = []
    telnyx = None
    if webhooks is not None:
        telnyx = telnyx_quality(webhooks, call_control_id=getattr(capture, "call_control_id", None),
                                call_session_id=getattr(capture, "call_session_id", None))
    error = getattr(capture, "error", None)
    evidence = None
    if error or recording.audio.size == 0 or not recording.tracks:
        findings.append(_finding("no_audio", "problem", "", 0.0, recording.duration_s,
                                 f"no audio could be read: {error}" if error else "the capture holds no audio",
                                 error=error or ""))
        return Diagnosis(path, _table(findings), {}, None, recording, capture, tuple(notes))
    events = None
    if capture is not None:
        from telnyx_audio.model.events import Dtmf

        events = [e for e in capture.events if isinstance(e, Dtmf)]  # the stream's (or RFC 4733's) digits
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # log10 of silent tracks: their -inf is handled
        evidence = collect_evidence(recording.audio, recording.sample_rate, encoding=recording.encoding,
                                    dtmf_events=events if capture is not None else None, lost=recording.lost)
    networks = network_of(capture, recording)
    findings = list(evidence.findings)
    # One track absent from the stream (only one track was streamed) is no one-way audio.
    missing = [t for t in TRACKS if t not in recording.tracks]
    if missing:
        findings = [f for f in findings if not (f["code"] in ("one_way_audio", "level_imbalance")
                                                and f["track"] in missing)]
        notes.append(f"the capture holds no {' nor '.join(missing)} track: it is not judged")
    findings += _network_findings(networks, recording, evidence)
    order = {c: i for i, c in enumerate(CODES)}
    findings.sort(key=lambda f: (order.get(f["code"], len(order)), f["start_s"], f["track"]))
    quality = _quality(recording, networks, telnyx, evidence, one_way_delay_ms, notes, _rtcp_rtts(capture))
    return Diagnosis(path, _table(findings), quality, evidence, recording, capture, tuple(notes))
