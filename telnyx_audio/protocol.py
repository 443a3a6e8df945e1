"""The Telnyx media-stream WebSocket protocol, sans I/O.

:func:`parse_message` turns one message Telnyx sends to ``stream_url`` (``str`` or
``bytes``) into a frozen, typed event that keeps Telnyx's field names, with the string
counters (``sequence_number``, ``chunk``, ``timestamp``) as ``int``. It never raises on peer
data: anything malformed becomes a :class:`Malformed` event that carries the reason and the
raw text. The builders (:func:`media_message`, :func:`mark_message`, :func:`clear_message`)
make what a server sends back on a bidirectional stream.

Nothing here touches a socket, a clock or an event loop.

Examples
--------
>>> ev = parse_message('{"event": "media", "sequence_number": "4", "stream_id": "s1",'
...                    ' "media": {"track": "inbound", "chunk": "2", "timestamp": "5",'
...                    ' "payload": "/w=="}}')
>>> ev.track, ev.chunk, ev.payload
('inbound', 2, b'\\xff')
>>> parse_message("{oops").reason
'invalid JSON: Expecting property name enclosed in double quotes at char 1'
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field
from typing import Any, Mapping, Union

__all__ = [
    "Connected",
    "Start",
    "Media",
    "Dtmf",
    "Mark",
    "StreamError",
    "Stop",
    "Malformed",
    "Event",
    "MediaFormat",
    "TRACKS",
    "parse_message",
    "parse_object",
    "normalize_track",
    "media_message",
    "mark_message",
    "clear_message",
]

#: Track names as Telnyx uses them in ``media.track``, in the order of two-track arrays.
TRACKS: tuple[str, str] = ("inbound", "outbound")


@dataclass(frozen=True)
class MediaFormat:
    """``start.media_format``: what the payloads really are (trust it over the request)."""

    encoding: str
    sample_rate: int
    channels: int = 1


@dataclass(frozen=True)
class Connected:
    """``{"event": "connected"}``, the first message. ``raw`` is the whole message."""

    version: str | None = None
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True)
class Start:
    """``{"event": "start"}``: the call's ids, ``media_format`` and ``custom_parameters``."""

    sequence_number: int | None
    stream_id: str | None
    call_control_id: str | None
    call_session_id: str | None
    media_format: MediaFormat
    custom_parameters: Mapping[str, Any]
    client_state: str | None = None
    start: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True)
class Media:
    """``{"event": "media"}``: one RTP payload (raw codec bytes, no RTP header).

    ``chunk``, ``timestamp`` and ``sequence_number`` are ``None`` when Telnyx left them out.
    ``timestamp`` units are unconfirmed by Telnyx (see :mod:`telnyx_audio.recording`).
    """

    track: str
    payload: bytes
    chunk: int | None = None
    timestamp: int | None = None
    sequence_number: int | None = None
    stream_id: str | None = None


@dataclass(frozen=True)
class Dtmf:
    """``{"event": "dtmf"}``: a digit the caller pressed (RFC 2833 / in-band, as Telnyx saw it)."""

    digit: str
    sequence_number: int | None = None
    stream_id: str | None = None
    occurred_at: str | None = None


@dataclass(frozen=True)
class Mark:
    """``{"event": "mark"}``: the echo of a mark the server sent, when its audio finished."""

    name: str
    sequence_number: int | None = None
    stream_id: str | None = None


@dataclass(frozen=True)
class StreamError:
    """``{"event": "error"}``: Telnyx reporting a problem (100002-100005)."""

    code: int | None
    title: str | None
    detail: str | None
    stream_id: str | None = None


@dataclass(frozen=True)
class Stop:
    """``{"event": "stop"}``: the last message of a stream."""

    sequence_number: int | None = None
    stream_id: str | None = None
    call_control_id: str | None = None
    stop: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True)
class Malformed:
    """A message that could not be understood. ``raw`` is the text as received."""

    reason: str
    raw: str


Event = Union[Connected, Start, Media, Dtmf, Mark, StreamError, Stop, Malformed]


class _Bad(Exception):
    """Internal: a field failed validation; becomes a Malformed event."""


def _text(data: str | bytes | bytearray | memoryview) -> str:
    if isinstance(data, str):
        return data
    return bytes(data).decode("utf-8", "replace")


def _counter(obj: Mapping[str, Any], key: str, where: str) -> int | None:
    """Telnyx sends counters as strings of digits; accept ints too, reject anything else."""
    value = obj.get(key)
    if value is None:
        return None
    if isinstance(value, bool):
        raise _Bad(f"{where}{key} must be a string of digits, got {value!r}")
    if isinstance(value, int):
        if value < 0:
            raise _Bad(f"{where}{key} must not be negative, got {value}")
        return value
    if isinstance(value, str) and value.isascii() and value.isdigit():
        return int(value)
    raise _Bad(f"{where}{key} must be a string of digits, got {value!r}")


def _opt_str(obj: Mapping[str, Any], key: str, where: str = "") -> str | None:
    value = obj.get(key)
    if value is None or isinstance(value, str):
        return value
    raise _Bad(f"{where}{key} must be a string, got {type(value).__name__}")


def _object(obj: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = obj.get(key)
    if not isinstance(value, dict):
        got = "nothing" if value is None else type(value).__name__
        raise _Bad(f"{key} must be an object, got {got}")
    return value


def normalize_track(value: object) -> str | None:
    """Return ``"inbound"``/``"outbound"`` for Telnyx's track names (``_track`` suffix allowed).

    Examples
    --------
    >>> normalize_track("outbound_track")
    'outbound'
    >>> normalize_track("both") is None
    True
    """
    if not isinstance(value, str):
        return None
    name = value[:-6] if value.endswith("_track") else value
    return name if name in TRACKS else None


def _media(msg: Mapping[str, Any]) -> Media:
    media = _object(msg, "media")
    payload = media.get("payload")
    if not isinstance(payload, str):
        got = "nothing" if payload is None else type(payload).__name__
        raise _Bad(f"media.payload must be a base64 string, got {got}")
    if len(payload) % 4:
        raise _Bad(f"media.payload is not valid base64: length {len(payload)} is not a multiple of 4")
    try:  # strict (RFC 4648): no stray characters, no excess or misplaced padding
        data = binascii.a2b_base64(payload.encode("ascii"), strict_mode=True)
    except (binascii.Error, ValueError, UnicodeEncodeError) as exc:
        raise _Bad(f"media.payload is not valid base64: {exc}") from None
    # Telnyx always names the track; a message without one is taken as inbound, the
    # default of stream_track, so one-track logs from other tools still load.
    track_raw = media.get("track", "inbound")
    track = normalize_track(track_raw)
    if track is None:
        raise _Bad(f"media.track must be 'inbound' or 'outbound', got {track_raw!r}")
    return Media(
        track=track,
        payload=data,
        chunk=_counter(media, "chunk", "media."),
        timestamp=_counter(media, "timestamp", "media."),
        sequence_number=_counter(msg, "sequence_number", ""),
        stream_id=_opt_str(msg, "stream_id"),
    )


def _start(msg: Mapping[str, Any]) -> Start:
    start = _object(msg, "start")
    fmt = start.get("media_format")
    if not isinstance(fmt, dict):
        raise _Bad("start.media_format must be an object")
    encoding = fmt.get("encoding")
    if not isinstance(encoding, str) or not encoding:
        raise _Bad(f"start.media_format.encoding must be a codec name, got {encoding!r}")
    rate = fmt.get("sample_rate")
    if isinstance(rate, str) and rate.isdigit():  # be liberal: some logs stringify it
        rate = int(rate)
    if isinstance(rate, bool) or not isinstance(rate, int) or rate <= 0:
        raise _Bad(f"start.media_format.sample_rate must be a positive integer, got {rate!r}")
    channels = fmt.get("channels", 1)
    if isinstance(channels, bool) or not isinstance(channels, int) or channels <= 0:
        raise _Bad(f"start.media_format.channels must be a positive integer, got {channels!r}")
    params = start.get("custom_parameters")
    params = {} if params is None else params
    if isinstance(params, list):  # the REST form [{name, value}], should a log carry it
        params = {p.get("name"): p.get("value") for p in params if isinstance(p, dict)}
    if not isinstance(params, dict):
        raise _Bad("start.custom_parameters must be an object")
    return Start(
        sequence_number=_counter(msg, "sequence_number", ""),
        stream_id=_opt_str(msg, "stream_id") or _opt_str(start, "stream_id", "start."),
        call_control_id=_opt_str(start, "call_control_id", "start."),
        call_session_id=_opt_str(start, "call_session_id", "start."),
        media_format=MediaFormat(encoding.upper(), rate, channels),
        custom_parameters=params,
        client_state=_opt_str(start, "client_state", "start."),
        start=start,
    )


def _dtmf(msg: Mapping[str, Any]) -> Dtmf:
    dtmf = _object(msg, "dtmf")
    digit = dtmf.get("digit")
    if not isinstance(digit, str) or not digit:
        raise _Bad(f"dtmf.digit must be a string, got {digit!r}")
    return Dtmf(
        digit=digit,
        sequence_number=_counter(msg, "sequence_number", ""),
        stream_id=_opt_str(msg, "stream_id"),
        occurred_at=_opt_str(msg, "occurred_at"),
    )


def _mark(msg: Mapping[str, Any]) -> Mark:
    mark = _object(msg, "mark")
    name = mark.get("name")
    if not isinstance(name, str):
        raise _Bad(f"mark.name must be a string, got {name!r}")
    return Mark(name, _counter(msg, "sequence_number", ""), _opt_str(msg, "stream_id"))


def _error(msg: Mapping[str, Any]) -> StreamError:
    payload = msg.get("payload", msg.get("error"))
    payload = {} if payload is None else payload
    if not isinstance(payload, dict):
        raise _Bad("error.payload must be an object")
    code = payload.get("code")
    if isinstance(code, str) and code.isdigit():
        code = int(code)
    if code is not None and (isinstance(code, bool) or not isinstance(code, int)):
        raise _Bad(f"error.payload.code must be an integer, got {code!r}")
    return StreamError(
        code=code,
        title=_opt_str(payload, "title", "error.payload."),
        detail=_opt_str(payload, "detail", "error.payload."),
        stream_id=_opt_str(msg, "stream_id"),
    )


def _stop(msg: Mapping[str, Any]) -> Stop:
    stop = msg.get("stop")
    stop = {} if stop is None else stop
    if not isinstance(stop, dict):
        raise _Bad("stop must be an object")
    return Stop(
        sequence_number=_counter(msg, "sequence_number", ""),
        stream_id=_opt_str(msg, "stream_id"),
        call_control_id=_opt_str(stop, "call_control_id", "stop."),
        stop=stop,
    )


def _connected(msg: Mapping[str, Any]) -> Connected:
    version = msg.get("version")
    return Connected(version if isinstance(version, str) else None, msg)


_PARSERS = {
    "connected": _connected,
    "start": _start,
    "media": _media,
    "dtmf": _dtmf,
    "mark": _mark,
    "error": _error,
    "stop": _stop,
}


def parse_object(msg: object, raw: str = "") -> Event:
    """Parse an already-decoded JSON value as a Telnyx message (see :func:`parse_message`)."""
    if not isinstance(msg, dict):
        return Malformed(f"message must be a JSON object, got {type(msg).__name__}", raw)
    kind = msg.get("event")
    parser = _PARSERS.get(kind) if isinstance(kind, str) else None
    if parser is None:
        return Malformed(f"unknown event {kind!r}: expected one of {', '.join(_PARSERS)}", raw)
    try:
        return parser(msg)
    except _Bad as exc:
        return Malformed(f"{kind}: {exc}", raw)


def parse_message(data: str | bytes | bytearray | memoryview) -> Event:
    """Parse one message Telnyx sent to the stream URL.

    Parameters
    ----------
    data : str or bytes
        The WebSocket message as received (Telnyx sends JSON text frames).

    Returns
    -------
    Event
        One of :class:`Connected`, :class:`Start`, :class:`Media`, :class:`Dtmf`,
        :class:`Mark`, :class:`StreamError`, :class:`Stop`; or :class:`Malformed` with the
        reason and the raw text. Never raises on peer data.

    Examples
    --------
    >>> parse_message('{"event": "dtmf", "dtmf": {"digit": "5"}}').digit
    '5'
    >>> parse_message('{"event": "hello"}').reason
    "unknown event 'hello': expected one of connected, start, media, dtmf, mark, error, stop"
    """
    if not isinstance(data, (str, bytes, bytearray, memoryview)):
        raise TypeError(f"a message is str or bytes, got {type(data).__name__}")
    text = _text(data)
    try:
        msg = json.loads(text)
    except json.JSONDecodeError as exc:
        return Malformed(f"invalid JSON: {exc.msg} at char {exc.pos}", text)
    except RecursionError:
        return Malformed("invalid JSON: nested too deeply", text)
    return parse_object(msg, text)


def _dumps(obj: Mapping[str, Any]) -> str:
    return json.dumps(obj, separators=(",", ":"))


def media_message(payload: bytes, stream_id: str | None = None) -> str:
    """Build the ``media`` message that plays raw codec bytes into the call (``rtp`` mode).

    Parameters
    ----------
    payload : bytes
        Raw audio in the stream's bidirectional codec and rate, 20 ms to 30 s of it (or a
        whole MP3 file in ``mp3`` mode).
    stream_id : str, optional
        Included when given; Telnyx routes by connection, so it is optional.

    Examples
    --------
    >>> media_message(b"\\xff\\xff")
    '{"event":"media","media":{"payload":"//8="}}'
    """
    if not isinstance(payload, (bytes, bytearray, memoryview)):
        raise TypeError(f"payload must be bytes, got {type(payload).__name__}")
    msg: dict[str, Any] = {"event": "media"}
    if stream_id is not None:
        msg["stream_id"] = stream_id
    msg["media"] = {"payload": base64.b64encode(bytes(payload)).decode("ascii")}
    return _dumps(msg)


def mark_message(name: str, stream_id: str | None = None) -> str:
    """Build a ``mark`` message; Telnyx echoes it when the audio queued before it has played.

    Examples
    --------
    >>> mark_message("greeting-done")
    '{"event":"mark","mark":{"name":"greeting-done"}}'
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"mark name must be a non-empty string, got {name!r}")
    msg: dict[str, Any] = {"event": "mark"}
    if stream_id is not None:
        msg["stream_id"] = stream_id
    msg["mark"] = {"name": name}
    return _dumps(msg)


def clear_message(stream_id: str | None = None) -> str:
    """Build a ``clear`` message: stop playback and drop queued audio.

    Examples
    --------
    >>> clear_message()
    '{"event":"clear"}'
    """
    msg: dict[str, Any] = {"event": "clear"}
    if stream_id is not None:
        msg["stream_id"] = stream_id
    return _dumps(msg)
