"""Load Telnyx webhook deliveries (every shape, and the receiver's logs) into pandas.

See :func:`load_webhooks`; :func:`transcripts` and :func:`call_timeline` are views of its frame.
"""

from __future__ import annotations

import base64
import binascii
import copy
import glob
import os
import re
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from telnyx_audio.errors import MalformedPayloadError
from telnyx_audio.model.redact import mask_webhook
from telnyx_audio.webhooks.verify import parse_webhook_body

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

__all__ = ["REJECTED_SUFFIX", "decode_client_state", "load_webhooks", "transcripts", "call_timeline", "audio_times"]

_CORE = ["event_type", "id", "occurred_at", "call_control_id", "call_leg_id", "call_session_id",
         "connection_id", "client_state", "client_state_decoded"]


def decode_client_state(value: object) -> str | None:
    """The text of a ``client_state`` as webhooks echo it (base64), or None if it is not.

    The inverse of :func:`telnyx_audio.callcontrol.encode_client_state` (a dict comes back
    as its JSON text: ``json.loads`` it).

    Parameters
    ----------
    value : object
        The ``client_state`` field of a webhook's payload (a base64 string, or missing).

    Returns
    -------
    str or None
        The decoded UTF-8 text; None when ``value`` is not a non-empty string of valid
        base64 holding UTF-8 (a client state set by hand, not by the toolkit).

    Examples
    --------
    >>> decode_client_state("aGF2ZSBhIG5pY2UgZGF5ID1d")
    'have a nice day =]'
    """
    if not isinstance(value, str) or not value:
        return None
    try:
        return base64.b64decode(value, validate=True).decode("utf-8")
    except (binascii.Error, ValueError, UnicodeDecodeError):
        return None


def _flatten(obj: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in obj.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            flat.update(_flatten(value, name + "."))
        else:
            flat[name] = value
    return flat


def _numeric(value: Any) -> Any:
    """Telnyx sends call_quality_stats numbers as strings: make them numbers."""
    if isinstance(value, str):
        try:
            return int(value) if re.fullmatch(r"[+-]?\d+", value) else float(value)
        except ValueError:
            return value
    return value


# TeXML callbacks: PascalCase form fields, mapped to the usual columns where the meaning is the
# same (Telnyx's callback reference: "CallSid: the unique identifier of the call
# (call_control_id)"); every other field is kept under its own name.
_TEXML_COLUMNS = {"CallSid": "call_control_id", "CallSessionId": "call_session_id", "CallLegId": "call_leg_id",
                  "ConnectionId": "connection_id", "ClientState": "client_state", "Timestamp": "occurred_at"}
# What a TeXML callback reports, most specific first; its value names the row's event_type.
_TEXML_EVENTS = ("StreamEvent", "RecordingStatus", "TranscriptionStatus", "ConferenceStatus", "StatusCallbackEvent",
                 "CallStatus")
_ENVELOPE_KEYS = {"event_type", "id", "occurred_at", "payload", "record_type", "meta", "data"}


def _texml_row(fields: Mapping[str, Any]) -> dict[str, Any]:
    event = next((fields[k] for k in _TEXML_EVENTS if isinstance(fields.get(k), str) and fields[k]), None)
    row: dict[str, Any] = {"event_type": f"texml.{event}" if event else "texml.callback", "id": None}
    for field_name, column in _TEXML_COLUMNS.items():
        row[column] = fields.get(field_name)
    row["client_state_decoded"] = decode_client_state(row.get("client_state"))
    for key, value in fields.items():
        if key not in _TEXML_COLUMNS:
            row[key] = value
    row["record_type"] = "texml"
    return row


def _row(envelope: Mapping[str, Any], extra: Mapping[str, Any]) -> dict[str, Any] | None:
    data = envelope.get("data")
    data = data if isinstance(data, Mapping) else envelope  # the flat shape has no data wrapper
    if "event_type" not in data:
        if any(k in data for k in ("CallSid", "AccountSid")):
            return {**_texml_row(data), **extra}
        return None
    payload = data.get("payload") if isinstance(data.get("payload"), Mapping) else {}
    # The flat shape (Telnyx's voice API fundamentals page) names the delivery webhook_id and
    # puts the event's time in payload.occurred_at; the v1 shape has only created_at.
    occurred_at = data.get("occurred_at") or payload.get("occurred_at") or data.get("created_at")
    row: dict[str, Any] = {
        "event_type": data.get("event_type"),
        "id": data.get("id") if data.get("id") is not None else data.get("webhook_id"),
        "occurred_at": occurred_at,
    }
    for key in _CORE[3:8]:
        row[key] = payload.get(key)
    row["client_state_decoded"] = decode_client_state(row["client_state"])
    for key, value in data.items():  # created_at, webhook_id...: kept as they came
        if key not in _ENVELOPE_KEYS:
            row[key] = value
    for key, value in _flatten({k: v for k, v in payload.items() if k not in _CORE}).items():
        key = f"payload.{key}" if key in row else key  # never overwrite the row's own columns
        row[key] = _numeric(value) if key.startswith("call_quality_stats.") else value
    row["record_type"] = data.get("record_type")
    meta = envelope.get("meta")
    if isinstance(meta, Mapping):
        row["meta.attempt"] = meta.get("attempt")
        row["meta.delivered_to"] = meta.get("delivered_to")
    row.update(extra)
    return row


REJECTED_SUFFIX = ".rejected.jsonl"


def _is_path(item: Any) -> bool:
    """A path, folder or glob, as opposed to a body given as text (JSON, or a TeXML form)."""
    if isinstance(item, os.PathLike):
        return True
    if not isinstance(item, str) or item.lstrip().startswith("{"):
        return False
    # A form body (TeXML) has '=' and, URL-encoded, no raw '/'; a path may have '=' (key=value folders).
    return "=" not in item or "/" in item or os.sep in item or os.path.exists(item)


def _files(source: str | os.PathLike, include_rejected: bool) -> list[str]:
    """The log files a path, folder or glob names; a folder's or glob's rejected logs only when asked."""
    name = os.fspath(source)
    if os.path.isdir(name):
        paths = sorted(glob.glob(os.path.join(glob.escape(name), "*.jsonl")))
        if not paths:
            raise FileNotFoundError(f"no webhook logs (*.jsonl) in the folder {name!r}")
    elif any(c in name for c in "*?["):
        paths = sorted(glob.glob(name))
        if not paths:
            raise FileNotFoundError(f"no webhook files match {name!r}")
    else:
        return [name]
    return paths if include_rejected else [p for p in paths if not p.endswith(REJECTED_SUFFIX)]


def _records(source: Any, include_rejected: bool = False) -> Iterable[tuple[str, int, Any]]:
    """Yield (where, line, item) for every delivery in the source, bad ones included."""
    if _is_path(source):
        for path in _files(source, include_rejected):
            with open(path, "rb") as f:
                for number, line in enumerate(f, 1):
                    if line.strip():
                        yield path, number, line
        return
    if isinstance(source, (bytes, bytearray, str, Mapping)):
        yield "<input>", 1, source
        return
    for index, item in enumerate(source, 1):
        if _is_path(item):
            yield from _records(item, include_rejected)
        else:
            yield "<input>", index, item


def _parse_item(item: Any) -> tuple[dict[str, Any] | None, dict[str, Any], str | None]:
    """One delivery as (fields, extra columns, error)."""
    if isinstance(item, (bytes, bytearray, str)):  # a raw body: JSON, or a TeXML form
        try:
            item = parse_webhook_body(item)
        except MalformedPayloadError as exc:
            return None, {}, str(exc).removeprefix("body is ")
    if not isinstance(item, Mapping):
        return None, {}, f"a delivery is a JSON object, got {type(item).__name__}"
    extra: dict[str, Any] = {}
    if isinstance(item.get("body_redacted"), Mapping):  # a receiver run with redact_dtmf: masked, parsed
        extra = {"received_at": item.get("received_at"), "verified": item.get("verified")}
        if item.get("verified") is False:
            extra["rejected_because"] = item.get("error")
        return dict(item["body_redacted"]), extra, None
    if "body" in item or "body_b64" in item:  # a receiver log record: the body as received
        extra = {"received_at": item.get("received_at"), "verified": item.get("verified")}
        if item.get("verified") is False:
            extra["rejected_because"] = item.get("error")
        if item.get("body_truncated"):  # a refused unauthenticated body, kept only in part
            return None, extra, (f"the receiver kept only part of this refused body ({item.get('body_bytes')} bytes,"
                              f" sha256 {item.get('body_sha256')})")
        body = item.get("body")
        if body is None:
            try:
                body = base64.b64decode(item["body_b64"])
            except (binascii.Error, ValueError, TypeError) as exc:
                return None, {}, f"body_b64 is not base64: {exc}"
        headers = item.get("headers") if isinstance(item.get("headers"), Mapping) else {}
        try:
            item = parse_webhook_body(body, headers.get("content-type"))
        except MalformedPayloadError as exc:
            return None, {}, f"logged {exc}"
    return dict(item), extra, None


def load_webhooks(source: Any, *, include_rejected: bool = False, mask_dtmf: bool = False) -> "pd.DataFrame":
    """Load Telnyx webhook deliveries into a DataFrame, one row per event.

    Parameters
    ----------
    source : path, folder, glob, list of paths, or iterable of dicts / raw bodies
        JSONL files (the receiver's logs, or one Telnyx delivery per line), a folder of
        them (its ``*.jsonl`` files), a glob such as ``"hooks/*.jsonl"``, or deliveries
        already in memory: dicts (the envelope, the flat shape, TeXML fields, or a receiver
        log record) or raw bodies (``bytes``/``str``, JSON or TeXML's form encoding).
    include_rejected : bool
        The receiver logs what it refused (a bad signature, out of tolerance, a replay...)
        in ``<name>.rejected.jsonl``, beside the verified log. Those deliveries are not
        loaded unless this is True: a folder or glob skips the rejected logs, and any record
        the receiver marked ``verified: false`` is left out and counted in the report. When
        True they load too, with ``verified`` False and ``rejected_because`` saying why.
    mask_dtmf : bool
        Mask what callers typed: ``call.dtmf.received``'s ``digit``, ``call.gather.ended``'s
        ``digits`` and TeXML's ``Digits`` become ``"*"`` per key (the number of keys and their
        times stay). The files and dicts given are not changed; ``load_report`` counts the
        deliveries masked (``dtmf_masked``). See docs/privacy.md.

    Returns
    -------
    pandas.DataFrame
        Columns ``event_type``, ``id``, ``occurred_at`` (UTC datetime), ``call_control_id``,
        ``call_leg_id``, ``call_session_id``, ``connection_id``, ``client_state`` and
        ``client_state_decoded``, then the flattened payload (``a.b`` for nested fields;
        ``call_quality_stats`` numbers as numbers). Every shape fills the same columns: the
        flat shape's ``webhook_id`` is ``id`` and its ``payload.occurred_at`` (else
        ``created_at``) is ``occurred_at``; a TeXML callback's ``CallSid`` is
        ``call_control_id``, ``ConnectionId`` ``connection_id``, ``Timestamp``
        ``occurred_at``, its event_type is ``texml.`` and its status (``StreamEvent``,
        ``CallStatus``...), and its other fields keep their PascalCase names. Sorted by
        ``occurred_at``. A delivery retried by Telnyx (same ``id``) is one row.
        ``df.attrs["load_report"]`` holds the counts (``rows``, ``duplicates``,
        ``rejected`` left out) and the lines that could not be read, with their reasons
        (never fatal, unless no line at all is a webhook).

    Raises
    ------
    ValueError
        If nothing in ``source`` is a webhook: a media-stream capture (say so: read it with
        :func:`telnyx_audio.read_capture`), or any other file that holds none.
    FileNotFoundError
        If a folder holds no ``*.jsonl``, or a glob matches nothing.

    Examples
    --------
    >>> df = load_webhooks([{"data": {"event_type": "call.hangup", "id": "1",
    ...     "occurred_at": "2026-01-01T00:00:00Z", "payload": {"call_control_id": "v3:x"}}},
    ...     {"event_type": "call.answered", "webhook_id": "2", "created_at": "2026-01-01T00:00:01Z",
    ...      "payload": {"call_control_id": "v3:x", "occurred_at": "2026-01-01T00:00:00.5Z"}}])
    >>> df[["event_type", "id"]].values.tolist()
    [['call.hangup', '1'], ['call.answered', '2']]
    >>> str(df.loc[1, "occurred_at"])
    '2026-01-01 00:00:00.500000+00:00'
    """
    import pandas as pd

    rows: list[dict[str, Any]] = []
    masked = 0  # deliveries whose typed digits were masked (mask_dtmf)
    bad: list[dict[str, Any]] = []
    seen: set[Any] = set()
    duplicates = rejected = stream_messages = logged = 0
    for where, line, item in _records(source, include_rejected):
        if not include_rejected and isinstance(item, Mapping) and item.get("verified") is False:
            rejected += 1
            continue
        fields, extra, error = _parse_item(item)
        if mask_dtmf and fields is not None:
            fields = copy.deepcopy(fields)  # the caller's dicts stay as they were
            masked += mask_webhook(fields)
        if not include_rejected and extra.get("verified") is False:
            rejected += 1
            continue
        logged += bool(extra)  # a receiver's log record, even one whose body it kept only in part
        row = _row(fields, extra) if fields is not None else None
        if row is None:
            bad.append({"source": where, "line": line,
                        "reason": error or "no event_type (nor data.event_type): not a Telnyx webhook"})
            if fields is not None and fields.get("event") in _STREAM_EVENTS:
                stream_messages += 1
            continue
        if row["id"] is not None:
            if row["id"] in seen:
                duplicates += 1
                continue
            seen.add(row["id"])
        rows.append(row)
    if bad and not rows and not rejected and not logged:  # nothing in it is a webhook: a wrong file, not an empty table
        sources = sorted({b["source"] for b in bad})
        named = ", ".join(repr(s) for s in sources[:3]) + (" ..." if len(sources) > 3 else "")
        if stream_messages:
            raise ValueError(f"{named} holds media-stream messages (connected, start, media...), not webhooks:"
                             " read it with telnyx_audio.read_capture")
        raise ValueError(f"no Telnyx webhook in {named}: {len(bad)} lines, none a webhook (line {bad[0]['line']}:"
                         f" {bad[0]['reason']})")
    df = pd.DataFrame(rows)
    for column in _CORE:
        if column not in df.columns:
            df[column] = pd.Series(dtype="object")
    df["occurred_at"] = pd.to_datetime(df["occurred_at"], utc=True, errors="coerce", format="ISO8601")
    if "received_at" in df.columns:
        df["received_at"] = pd.to_datetime(df["received_at"], utc=True, errors="coerce", format="ISO8601")
    df = df[_CORE + [c for c in df.columns if c not in _CORE]]
    df = df.sort_values("occurred_at", kind="stable", na_position="last").reset_index(drop=True)
    df.attrs["load_report"] = {"rows": len(df), "duplicates": duplicates, "rejected": rejected, "bad": bad,
                               **({"dtmf_masked": masked} if mask_dtmf else {})}
    return df


_ZERO_T_S = "t_s: seconds since the call's first event in this table (usually call.initiated)"
_ZERO_AUDIO = ("audio_t_s: seconds since the call's first streaming.started, the stream's first audio: the zero of"
               " Recording, analyze_call and plot_call times (NaN for a call without one)")


_STREAM_EVENTS = frozenset({"connected", "start", "media", "stop", "dtmf", "mark", "error"})


def _seconds_since_first(df: "pd.DataFrame", key: str) -> "pd.Series":
    first = df.groupby(key, dropna=False)["occurred_at"].transform("min")
    return (df["occurred_at"] - first).dt.total_seconds()


def audio_times(df: "pd.DataFrame", *, t0: Any = None) -> "pd.Series":
    """Seconds of each event on the audio's clock: since its call's ``streaming.started``
    (the stream's first audio, where a Recording, :func:`analyze_call` and
    :func:`plot_call` count from), or since ``t0``.

    Parameters
    ----------
    df : DataFrame
        What :func:`load_webhooks` returns (``occurred_at``, ``event_type``,
        ``call_control_id``).
    t0 : datetime, str, or dict of call_control_id to datetime, optional
        The wall-clock time of the audio's first sample (UTC when no zone is given), for
        every call or per call. Default: each call's first ``streaming.started``; NaN for
        the events of a call without one.

    Returns
    -------
    pandas.Series of float
        Seconds, aligned on ``df``'s index; negative before the audio starts.

    Examples
    --------
    >>> df = load_webhooks([
    ...     {"data": {"event_type": "call.initiated", "id": "1", "occurred_at": "2026-01-01T00:00:00Z",
    ...               "payload": {"call_control_id": "v3:x"}}},
    ...     {"data": {"event_type": "streaming.started", "id": "2", "occurred_at": "2026-01-01T00:00:02Z",
    ...               "payload": {"call_control_id": "v3:x"}}}])
    >>> audio_times(df).tolist(), audio_times(df, t0="2026-01-01T00:00:01Z").tolist()
    ([-2.0, 0.0], [-1.0, 1.0])
    """
    import pandas as pd

    if not {"occurred_at", "event_type", "call_control_id"} <= set(df.columns):
        raise ValueError("audio_times takes the DataFrame load_webhooks returns (occurred_at, event_type and"
                         f" call_control_id columns); got columns {list(df.columns)[:8]}")
    if t0 is None:
        started = df.loc[df["event_type"] == "streaming.started"].groupby("call_control_id")["occurred_at"].min()
    elif isinstance(t0, Mapping):
        started = pd.Series({k: _utc(v) for k, v in t0.items()}, dtype="datetime64[ns, UTC]")
    else:
        return (df["occurred_at"] - _utc(t0)).dt.total_seconds()
    # By call, NaT for a call without a zero (reindex, not map: map casts an empty lookup to float)
    zero = pd.to_datetime(started, utc=True).reindex(df["call_control_id"])
    zero.index = df.index
    return (df["occurred_at"] - zero).dt.total_seconds()


def _utc(value: Any) -> Any:
    import pandas as pd

    try:
        stamp = pd.Timestamp(value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"t0 must be a date and time (datetime or ISO 8601 text), got {value!r}") from exc
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def transcripts(df: "pd.DataFrame", *, t0: Any = None) -> "pd.DataFrame":
    """The ``call.transcription`` events of :func:`load_webhooks`' frame, final and interim.

    Parameters
    ----------
    df : DataFrame
        What :func:`load_webhooks` returns.
    t0 : datetime, str, or dict of call_control_id to datetime, optional
        The audio's first sample, for ``audio_t_s`` (see :func:`audio_times`); default each
        call's ``streaming.started``.

    Returns
    -------
    pandas.DataFrame
        ``call_control_id``, ``occurred_at``, ``t_s`` (seconds since the call's first event in
        ``df``, usually ``call.initiated``), ``audio_t_s`` (seconds on the audio's clock, as
        :func:`analyze_call` counts: since ``streaming.started`` or ``t0``), ``track``,
        ``is_final``, ``confidence`` (NaN where Telnyx sent null) and ``transcript``, in time
        order. ``.attrs["time_zero"]`` says what each time column counts from.

    Examples
    --------
    >>> df = load_webhooks("data/example_webhooks.jsonl")
    >>> first = transcripts(df).iloc[0]
    >>> float(first["t_s"]), float(first["audio_t_s"]), first["track"]
    (3.7, 1.7, 'outbound')
    """
    import pandas as pd

    t_s = _seconds_since_first(df, "call_control_id") if len(df) else pd.Series(dtype=float)
    audio_t_s = audio_times(df, t0=t0) if len(df) else pd.Series(dtype=float)
    sel = df["event_type"] == "call.transcription"
    out = pd.DataFrame({
        "call_control_id": df.loc[sel, "call_control_id"],
        "occurred_at": df.loc[sel, "occurred_at"],
        "t_s": t_s[sel],
        "audio_t_s": audio_t_s[sel],
        "track": df.loc[sel].get("transcription_data.transcription_track", pd.Series("inbound", index=df.index[sel])),
        "is_final": df.loc[sel].get("transcription_data.is_final", pd.Series(dtype=object)),
        "confidence": pd.to_numeric(df.loc[sel].get("transcription_data.confidence", pd.Series(dtype=float)), errors="coerce"),
        "transcript": df.loc[sel].get("transcription_data.transcript", pd.Series(dtype=object)),
    })
    out["track"] = out["track"].fillna("inbound")
    out = out.sort_values("occurred_at", kind="stable").reset_index(drop=True)
    out.attrs["time_zero"] = _zeros(t0)
    return out


def _zeros(t0: Any) -> dict[str, str]:
    audio = _ZERO_AUDIO if t0 is None else f"audio_t_s: seconds since t0={t0!r}, the audio's first sample"
    return {"t_s": _ZERO_T_S, "audio_t_s": audio}


def call_timeline(df: "pd.DataFrame", *, t0: Any = None) -> "pd.DataFrame":
    """Per call, its events in order, timed from the call's first event and on the audio's clock.

    Parameters
    ----------
    df : DataFrame
        What :func:`load_webhooks` returns.
    t0 : datetime, str, or dict of call_control_id to datetime, optional
        The audio's first sample, for ``audio_t_s`` (see :func:`audio_times`); default each
        call's ``streaming.started``.

    Returns
    -------
    pandas.DataFrame
        ``call_control_id``, ``t_s`` (seconds since the call's first event, usually
        ``call.initiated``), ``occurred_at``, ``event_type``, ``id``, ``audio_t_s`` (seconds
        since ``streaming.started`` or ``t0``: the zero of :func:`analyze_call`'s times;
        negative before the audio), then the rest of ``df``'s columns; sorted by call, then
        time.
        ``.attrs["time_zero"]`` says what each time column counts from.

    Examples
    --------
    >>> timeline = call_timeline(load_webhooks("data/example_webhooks.jsonl"))
    >>> started = timeline.loc[timeline["event_type"] == "streaming.started"].iloc[0]
    >>> float(started["t_s"]), float(started["audio_t_s"])
    (2.0, 0.0)
    """
    out = df.copy()
    out.insert(1, "t_s", _seconds_since_first(out, "call_control_id") if len(out) else [])
    out.insert(2, "audio_t_s", audio_times(out, t0=t0) if len(out) else [])
    front = ["call_control_id", "t_s", "occurred_at", "event_type", "id", "audio_t_s"]
    out = out[front + [c for c in out.columns if c not in front]]
    out = out.sort_values(["call_control_id", "occurred_at"], kind="stable").reset_index(drop=True)
    out.attrs["time_zero"] = _zeros(t0)
    return out
