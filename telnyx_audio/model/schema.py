"""The call table's schema, and the flattening of a capture into one row of it.

One row per stream (a capture file usually holds one). Every column is always present, in
this order; a value that was not computed (no analysis, no webhooks, a failed call) is null.
Units are in the names; shares are fractions 0..1; per-track and per-party columns start with
``inbound_`` / ``outbound_``.

==============================  ========  ==========================================================
column                          type      meaning
==============================  ========  ==========================================================
path                            string    the capture file, as given
stream_id                       string    ``start.stream_id``
call_control_id                 string    ``start.call_control_id``
call_session_id                 string    ``start.call_session_id``
error                           string    why this call failed; empty when it worked
folder                          string    where its WAVs and summary.json are; empty when not written
source_kind                     string    ``websocket`` (a media-stream capture), ``fork`` (RTP from a fork) or ``pcap`` (a packet capture)
encoding                        string    ``start.media_format.encoding`` (Telnyx name)
sample_rate_hz                  int       ``start.media_format.sample_rate``
duration_s                      float     length of the call's shared timeline
tracks                          string    tracks that carried media, comma-separated
lines                           int       lines in the capture file
bad_lines                       int       lines that were not valid Telnyx messages
n_warnings                      int       reader warnings (no start message, second start...)
stop_received                   bool      the stream ended with a ``stop`` message
n_stream_errors                 int       ``error`` messages Telnyx sent in the stream
dtmf_events                     string    digits of the stream's ``dtmf`` messages, in order
inbound_frames_received         int       media messages of the track, duplicates included
inbound_frames_expected         int       distinct frames the counters say were sent
inbound_frames_missing          int       expected frames that never arrived
inbound_frames_duplicated       int       frames received more than once
inbound_frames_reordered        int       frames that arrived out of order
inbound_frames_bad              int       frames whose payload could not be used
inbound_frames_concealed        int       frames made up by the decoder's loss concealment (G722, OPUS, AMR-WB)
inbound_frames_corrupt          int       of those, frames in place of payloads the decoder rejected
inbound_n_gaps                  int       gaps filled (silence, or concealment)
inbound_gap_ms                  float     total length of those gaps
inbound_rtp_packets_lost        int       fork and packet captures: RTP packets lost as Wireshark counts them
inbound_rtp_jitter_ms           float     fork and packet captures: interarrival jitter at the end (RFC 3550 6.4.1)
inbound_rtp_max_jitter_ms       float     fork and packet captures: its largest value (Wireshark's)
outbound_frames_received        int       as inbound_frames_received, for the outbound track
outbound_frames_expected        int
outbound_frames_missing         int
outbound_frames_duplicated      int
outbound_frames_reordered       int
outbound_frames_bad             int
outbound_frames_concealed       int
outbound_frames_corrupt         int
outbound_n_gaps                 int
outbound_gap_ms                 float
outbound_rtp_packets_lost       int
outbound_rtp_jitter_ms          float
outbound_rtp_max_jitter_ms      float
codec_check                     string    ``ok``, or ``suspect`` when a G.711 track looks decoded with the wrong law; empty: not G.711
codec_check_likely_encoding     string    the law the audio looks like
codec_check_score               float     highest per-track score of :func:`~telnyx_audio.check_codec`
inbound_talk_s                  float     speech time of the inbound party
outbound_talk_s                 float
inbound_talk_share              float     fraction of all speech time
outbound_talk_share             float
n_turns                         int       speech turns, both parties
n_turn_changes                  int       turns that answer the other party (where latency is measured)
response_latency_median_s       float     median gap between one party's end and the other's start
response_latency_p90_s          float     90th percentile of it
n_overlaps                      int       stretches where both parties talk
overlap_s                       float     their total length
inbound_interruptions           int       overlaps the inbound party started
outbound_interruptions          int
dead_air_s                      float     total silence of both parties longer than the threshold
longest_silence_s               float     the longest such silence
silence_threshold_s             float     the threshold used
n_silences_over_threshold       int       how many such silences
inbound_level_dbfs              float     RMS level of the party's speech
outbound_level_dbfs             float
inbound_peak_dbfs               float     peak level
outbound_peak_dbfs              float
inbound_clipping_pct            float     percentage of samples clipped (at the codec's full scale)
outbound_clipping_pct           float
inbound_snr_db                  float     speech level over the noise floor
outbound_snr_db                 float
dtmf_inband                     string    digits heard in the audio, both tracks, in time order
inbound_dtmf_inband             string    digits heard on the inbound track
outbound_dtmf_inband            string
emodel_inbound_r                float     E-model R of the inbound audio (ITU-T G.107 / G.107.1; docs/diagnosis.md)
emodel_inbound_mos              float     its MOS (G.107 Annex B)
emodel_outbound_r               float
emodel_outbound_mos             float
emodel_scale                    string    ``narrowband`` (R up to 100) or ``wideband`` (R up to 129)
findings                        string    the diagnosis's finding codes, comma-separated (:func:`~telnyx_audio.diagnose`)
severity                        string    the worst finding: ``info``, ``warning`` or ``problem``
n_problem_findings              int       findings of severity ``problem``
n_warning_findings              int       findings of severity ``warning``
process_s                       float     seconds the worker spent on this file (read, WAVs, analysis)
hangup_cause                    string    ``call.hangup`` webhook (with ``webhooks=``)
hangup_source                   string
sip_hangup_cause                string
inbound_mos                     float     ``call_quality_stats.inbound.mos``
outbound_mos                    float
inbound_jitter_max_variance     float     ``call_quality_stats.<track>.jitter_max_variance`` as Telnyx sends it
outbound_jitter_max_variance    float
inbound_packet_count            int       ``call_quality_stats.<track>.packet_count``
outbound_packet_count           int
inbound_packet_loss_pct         float     ``skip_packet_count`` over ``packet_count``, in percent
outbound_packet_loss_pct        float
n_stream_failures               int       ``streaming.failed`` webhooks of the call
stream_failure_reasons          string    their ``failure_reason``, separated by ``"; "``
inbound_transcript              string    final ``call.transcription`` texts of the track, in order
outbound_transcript             string
n_webhooks                      int       webhook events of the call (0: none; null: no ``webhooks=``)
==============================  ========  ==========================================================

The segments table has one row per speech segment, turn, overlap, interruption, silence and
DTMF digit: ``path``, ``stream_id``, then :meth:`CallAnalysis.segments`' columns ``kind``,
``track``, ``start_s``, ``end_s``, ``duration_s``, ``label``; and one row per diagnosis
finding, of kind ``finding``, labelled ``code (severity)``.
"""

from __future__ import annotations

import math
import re
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

__all__ = ["CALL_COLUMNS", "SEGMENT_COLUMNS", "capture_row", "calls_frame", "segments_frame"]

_TRACKS = ("inbound", "outbound")
_TYPES = {"string": "string", "int": "Int64", "float": "Float64", "bool": "boolean"}


def _columns_from_doc(doc: str) -> dict[str, str]:
    """The schema, read from the table above: one place says what the columns are."""
    rows = re.findall(r"^([a-z0-9_]+) +(string|int|float|bool)\b", doc, re.M)
    return {name: _TYPES[kind] for name, kind in rows}


#: Column name -> pandas dtype of the call table, in table order.
CALL_COLUMNS: dict[str, str] = _columns_from_doc(__doc__ or "")
#: Column name -> pandas dtype of the segments table.
SEGMENT_COLUMNS: dict[str, str] = {
    "path": "string", "stream_id": "string", "kind": "string", "track": "string",
    "start_s": "Float64", "end_s": "Float64", "duration_s": "Float64", "label": "string",
}

# TrackReport.as_dict() key -> our column suffix (the report's names are the summary.json ones).
_TRACK_FIELDS = {
    "frames_received": "frames_received",
    "frames_expected": "frames_expected",
    "frames_missing": "frames_missing",
    "duplicates": "frames_duplicated",
    "reordered": "frames_reordered",
    "bad_frames": "frames_bad",
    "concealed_frames": "frames_concealed",
    "corrupt_frames": "frames_corrupt",
    "n_gaps": "n_gaps",
    "gap_ms": "gap_ms",
}
# RtpStats.as_dict() key (fork captures) -> our column suffix.
_RTP_FIELDS = {"lost": "rtp_packets_lost", "jitter_ms": "rtp_jitter_ms", "max_jitter_ms": "rtp_max_jitter_ms"}


def capture_row(capture: Any) -> dict[str, Any]:
    """The capture's columns of the call table: ids, format, per-track counts, DTMF events.

    Flat and JSON-safe (str, int, float, bool or None); a track without media has null counts.
    This is :meth:`Capture.to_dict`.

    Parameters
    ----------
    capture : Capture
        A capture read with :func:`~telnyx_audio.read_capture`. (Typed ``Any`` here: the
        schema sits below :class:`~telnyx_audio.model.Capture`, which calls it.)

    Returns
    -------
    dict
        Column name -> value.

    Examples
    --------
    >>> from telnyx_audio.read import read_capture
    >>> row = capture_row(read_capture("data/example_call.jsonl"))
    >>> row["encoding"], row["inbound_frames_missing"], row["inbound_n_gaps"], row["dtmf_events"]
    ('PCMU', 3, 1, '15')
    """
    from telnyx_audio.model.events import Dtmf

    report = capture.report
    fmt = capture.media_format  # None: the format was not known (the row's error says why)
    row: dict[str, Any] = {
        "path": capture.path,
        "stream_id": capture.stream_id,
        "call_control_id": capture.call_control_id,
        "call_session_id": capture.call_session_id,
        "encoding": fmt.encoding if fmt else None,
        "sample_rate_hz": int(fmt.sample_rate) if fmt else None,
        "duration_s": float(capture.recording.duration_s),
        "tracks": ",".join(capture.recording.tracks),
        "lines": report.lines,
        "bad_lines": report.bad_lines,
        "n_warnings": len(report.warnings),
        "stop_received": report.events.get("stop", 0) > 0,
        "n_stream_errors": report.events.get("error", 0),
        "dtmf_events": "".join(e.digit or "" for e in capture.events if isinstance(e, Dtmf)),
    }
    rtp = getattr(report, "rtp", None)  # only a fork capture's report has RTP statistics
    row["source_kind"] = "websocket" if rtp is None else getattr(report, "source_kind", "fork")
    for track in _TRACKS:
        tr = report.tracks.get(track)
        got = tr.as_dict() if tr is not None else {}
        for key, suffix in _TRACK_FIELDS.items():
            row[f"{track}_{suffix}"] = got.get(key)
        stats = rtp[track].as_dict() if rtp and track in rtp else {}
        for key, suffix in _RTP_FIELDS.items():
            row[f"{track}_{suffix}"] = stats.get(key)
    return {k: json_safe(v) for k, v in row.items()}


def json_safe(value: Any) -> Any:
    """A value for a JSON-safe row: numpy scalars to Python ones, NaN and infinities to None.

    Examples
    --------
    >>> import numpy as np
    >>> json_safe(np.int64(3)), json_safe(float("nan")), json_safe("x")
    (3, None, 'x')
    """
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def calls_frame(rows: list[dict[str, Any]]) -> "pd.DataFrame":
    """The call table from rows: every column of :data:`CALL_COLUMNS`, in order, typed.

    Parameters
    ----------
    rows : list of dict
        One per call (missing columns become null).

    Returns
    -------
    pandas.DataFrame

    Examples
    --------
    >>> df = calls_frame([{"path": "a.jsonl", "error": "empty file"}])
    >>> df.shape[1] == len(CALL_COLUMNS), df.loc[0, "error"], bool(df["duration_s"].isna().all())
    (True, 'empty file', True)
    """
    return _frame(rows, CALL_COLUMNS)


def segments_frame(rows: "list[dict[str, Any]] | list[pd.DataFrame]") -> "pd.DataFrame":
    """The segments table from rows, or from untyped per-call frames of them: the columns of
    :data:`SEGMENT_COLUMNS`, typed.

    Parameters
    ----------
    rows : list of dict or list of pandas.DataFrame
        One per segment, or one frame per call.

    Returns
    -------
    pandas.DataFrame

    Examples
    --------
    >>> segments_frame([{"path": "a", "kind": "dtmf", "start_s": 1.0, "label": "5"}]).dtypes["start_s"]
    Float64Dtype()
    """
    import pandas as pd

    if rows and isinstance(rows[0], pd.DataFrame):
        return _typed(pd.concat(rows, ignore_index=True), SEGMENT_COLUMNS)
    return _frame(rows, SEGMENT_COLUMNS)


def _frame(rows: list[dict[str, Any]], columns: dict[str, str]) -> "pd.DataFrame":
    import pandas as pd

    df = pd.DataFrame.from_records(rows, columns=list(columns)) if rows else pd.DataFrame(columns=list(columns))
    return _typed(df, columns)


def _typed(df: "pd.DataFrame", columns: dict[str, str]) -> "pd.DataFrame":
    import pandas as pd

    df = df.reindex(columns=list(columns))
    for name, dtype in columns.items():
        col = df[name]
        if dtype == "Int64":  # floats that are whole (NaN made them floats) back to ints
            col = pd.to_numeric(col, errors="raise")
        df[name] = col.astype(dtype)
    return df.reset_index(drop=True)
