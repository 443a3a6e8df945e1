"""Webhooks beside the audio: per call, what Telnyx's webhooks said, joined on the call ids."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

__all__ = ["webhook_columns", "join_webhooks"]

_TRACKS = ("inbound", "outbound")
_HANGUP = ("hangup_cause", "hangup_source", "sip_hangup_cause")


def _last(df: "pd.DataFrame", column: str) -> Any:
    if column not in df.columns:
        return None
    values = df[column].dropna()
    return values.iloc[-1] if len(values) else None


def _number(value: Any) -> float | None:
    try:
        return None if value is None else float(value)
    except (TypeError, ValueError):
        return None


def _call_columns(events: "pd.DataFrame", texts: "pd.DataFrame") -> dict[str, Any]:
    """The webhook columns of one call from its events (sorted by time) and final transcripts."""
    out: dict[str, Any] = {"n_webhooks": len(events)}
    hangup = events[events["event_type"] == "call.hangup"]
    for key in _HANGUP:
        value = _last(hangup, key)
        out[key] = None if value is None else str(value)
    for track in _TRACKS:
        stats = f"call_quality_stats.{track}."
        out[f"{track}_mos"] = _number(_last(hangup, stats + "mos"))
        out[f"{track}_jitter_max_variance"] = _number(_last(hangup, stats + "jitter_max_variance"))
        packets = _number(_last(hangup, stats + "packet_count"))
        skipped = _number(_last(hangup, stats + "skip_packet_count"))
        out[f"{track}_packet_count"] = None if packets is None else int(packets)
        out[f"{track}_packet_loss_pct"] = (100.0 * skipped / packets) if packets and skipped is not None else None
    failed = events[events["event_type"] == "streaming.failed"]
    out["n_stream_failures"] = len(failed)
    reasons = failed["failure_reason"].dropna().astype(str).tolist() if "failure_reason" in failed.columns else []
    out["stream_failure_reasons"] = "; ".join(reasons)
    for track in _TRACKS:
        mine = texts[texts["track"] == track]["transcript"].dropna().astype(str)
        out[f"{track}_transcript"] = " ".join(t.strip() for t in mine if t.strip())
    return out


def webhook_columns(webhooks: "pd.DataFrame") -> dict[str, dict[str, Any]]:
    """Per call id (``call_control_id`` and ``call_session_id``), its webhook columns.

    Parameters
    ----------
    webhooks : DataFrame
        From :func:`telnyx_audio.load_webhooks`.

    Returns
    -------
    dict
        ``{("call_control_id" | "call_session_id", id): {column: value}}`` flattened to keys
        ``"ctl:<id>"`` and ``"session:<id>"``.
    """
    from telnyx_audio.webhooks import transcripts

    texts = transcripts(webhooks)
    final = texts[texts["is_final"].fillna(False).astype(bool)] if len(texts) else texts
    out: dict[str, dict[str, Any]] = {}
    for key, prefix in (("call_session_id", "session:"), ("call_control_id", "ctl:")):
        if key not in webhooks.columns:
            continue
        for call_id, events in webhooks.dropna(subset=[key]).groupby(key, sort=False):
            ids = events["call_control_id"].dropna().unique() if key == "call_session_id" else [call_id]
            out[prefix + str(call_id)] = _call_columns(events, final[final["call_control_id"].isin(ids)])
    return out


def join_webhooks(rows: list[dict[str, Any]], webhooks: Any) -> list[dict[str, Any]]:
    """Add the webhook columns to call rows, matched on ``call_control_id`` (else the session).

    A row whose call has no webhook keeps its row, with ``n_webhooks`` 0 and the rest null.

    Parameters
    ----------
    rows : list of dict
        Call rows (from the batch).
    webhooks : path, glob, list of paths, or DataFrame
        Anything :func:`telnyx_audio.load_webhooks` takes, or its result.

    Examples
    --------
    >>> rows = [{"call_control_id": "v3:u5OAKGEPT3Dx8SZSSDRWEMdNH2OripQhO"}, {"call_control_id": "v3:other"}]
    >>> joined = join_webhooks(rows, "data/example_webhooks.jsonl")
    >>> joined[0]["hangup_cause"], joined[0]["inbound_mos"], joined[1]["n_webhooks"]
    ('normal_clearing', 4.41, 0)
    """
    import pandas as pd

    from telnyx_audio.webhooks import load_webhooks

    frame = webhooks if isinstance(webhooks, pd.DataFrame) else load_webhooks(webhooks)
    per_call = webhook_columns(frame)
    joined = []
    for row in rows:
        found = per_call.get(f"ctl:{row.get('call_control_id')}") or per_call.get(f"session:{row.get('call_session_id')}")
        joined.append({**row, **(found or {"n_webhooks": 0})})
    return joined
