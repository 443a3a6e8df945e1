"""The Telnyx media-stream WebSocket protocol, sans I/O.

:func:`parse_message` turns one message Telnyx sends to ``stream_url`` (``str`` or
``bytes``) into a frozen, typed event that keeps Telnyx's field names, with the string
counters (``sequence_number``, ``chunk``, ``timestamp``) as ``int``. It never raises on peer
data: anything malformed becomes a :class:`Malformed` event that carries the reason and the
raw text. The builders (:func:`media_message`, :func:`mark_message`, :func:`clear_message`)
make what a server sends back on a bidirectional stream.

Every form Telnyx's own documents and integrations show is read (see the protocol notes,
section 6): MIME encoding names (``audio/x-mulaw``) as the codec they name; a ``start``
without ``media_format`` (its ids kept, its format ``None`` so the reader says what it
assumed); camelCase spellings (``streamId``, ``mediaFormat``, ``customParameters``...)
beside Telnyx's snake_case; a numeric ``mark.name``; a leading UTF-8 BOM; error frames keyed
``payload`` (integer code) or ``error`` (code as a string). Counters are range-checked:
non-negative and below 2**63, else the message is :class:`Malformed` with the reason.

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
from functools import lru_cache
from typing import Any, Mapping

from telnyx_audio.model.events import (
    TRACKS,
    Connected,
    Dtmf,
    Event,
    Malformed,
    Mark,
    Media,
    MAX_SAMPLE_RATE,
    MIN_SAMPLE_RATE,
    MediaFormat,
    Start,
    Stop,
    StreamError,
)

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

class _Bad(Exception):
    """Internal: a field failed validation; becomes a Malformed event."""


#: Counters (``sequence_number``, ``chunk``, ``timestamp``) must fit a signed 64-bit integer:
#: beyond it no real stream goes, and numpy arithmetic on the values would overflow.
MAX_COUNTER = 2**63 - 1
_MAX_CHANNELS = 8
_BOM = "\ufeff"


@lru_cache(maxsize=None)
def _camel(key: str) -> str:
    head, *rest = key.split("_")
    return head + "".join(word.title() for word in rest)


def _get(obj: Mapping[str, Any], key: str) -> Any:
    """``obj[key]`` in Telnyx's snake_case, else its camelCase spelling (TeXML, some demos)."""
    value = obj.get(key)
    if value is None and "_" in key:
        value = obj.get(_camel(key))
    return value


def _text(data: str | bytes | bytearray | memoryview) -> str:
    if isinstance(data, str):
        return data
    return bytes(data).decode("utf-8", "replace")


def _counter(obj: Mapping[str, Any], key: str, where: str) -> int | None:
    """Telnyx sends counters as strings of digits; accept ints too, within int64."""
    value = obj.get(key)  # inlined _get: this runs for every media message
    if value is None:
        value = obj.get(_camel(key))
    if value is None:
        return None
    if isinstance(value, bool):
        raise _Bad(f"{where}{key} must be a string of digits, got {value!r}")
    if isinstance(value, str) and value.isascii() and value.isdigit():
        # Length first: int() of a 5,000-digit string raises (Python's digit limit).
        number = int(value) if len(value) <= 19 else MAX_COUNTER + 1
    elif isinstance(value, int):
        number = value
        if number < 0:
            raise _Bad(f"{where}{key} must not be negative, got {value}")
    else:
        raise _Bad(f"{where}{key} must be a string of digits, got {value!r:.60}")
    if number > MAX_COUNTER:
        raise _Bad(f"{where}{key} is out of range: {_shown(value)} is not below 2**63")
    return number


def _shown(value: str | int) -> str:
    """A number for a message, cut short (str() of a 5,000-digit int raises)."""
    if isinstance(value, int) and value.bit_length() > 100:
        return f"a {value.bit_length()}-bit integer"
    text = str(value)
    return text if len(text) <= 30 else text[:30] + "..."


def _opt_str(obj: Mapping[str, Any], key: str, where: str = "") -> str | None:
    value = obj.get(key)
    if value is None:
        value = obj.get(_camel(key))
    if value is None or isinstance(value, str):
        return value
    raise _Bad(f"{where}{key} must be a string, got {type(value).__name__}")


def _object(obj: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = obj.get(key)  # event names have one spelling
    if not isinstance(value, dict):
        got = "nothing" if value is None else type(value).__name__
        raise _Bad(f"{key} must be an object, got {got}")
    return value


def normalize_track(value: object) -> str | None:
    """Return ``"inbound"``/``"outbound"`` for Telnyx's track names (``_track`` suffix allowed).

    Parameters
    ----------
    value : object
        A track name as sent (``"inbound"``, ``"outbound_track"``...).

    Returns
    -------
    str or None
        ``"inbound"`` or ``"outbound"``; ``None`` for anything else (``"both"``, a number).

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


def _encoding(value: object) -> str:
    """Telnyx's codec name for ``media_format.encoding`` in any case or MIME spelling.

    A name no codec answers to is kept as sent, so the report says what arrived and the
    decode step fails with the reason (nothing else of the call is lost).
    """
    if not isinstance(value, str) or not value.strip():
        raise _Bad(f"start.media_format.encoding must be a codec name, got {value!r}")
    from telnyx_audio.codecs import normalize_encoding  # the one alias table (codecs registry)
    from telnyx_audio.errors import UnsupportedEncodingError

    try:
        return normalize_encoding(value)
    except UnsupportedEncodingError:
        return value.strip()


def _positive(fmt: Mapping[str, Any], key: str, low: int, high: int, default: int | None = None) -> int:
    value = _get(fmt, key)
    if value is None and default is not None:
        return default
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 9:
        value = int(value)  # be liberal: some logs stringify it
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise _Bad(f"start.media_format.{key} must be an integer from {low} to {high}, got {value!r:.40}")
    return value


def _media_format(start: Mapping[str, Any]) -> MediaFormat | None:
    fmt = _get(start, "media_format")
    if fmt is None:
        return None
    if not isinstance(fmt, dict):
        raise _Bad(f"start.media_format must be an object, got {type(fmt).__name__}")
    return MediaFormat(
        _encoding(fmt.get("encoding")),
        _positive(fmt, "sample_rate", MIN_SAMPLE_RATE, MAX_SAMPLE_RATE),
        _positive(fmt, "channels", 1, _MAX_CHANNELS, default=1),
    )


def _start(msg: Mapping[str, Any]) -> Start:
    start = _object(msg, "start")
    params = _get(start, "custom_parameters")
    params = {} if params is None else params
    if isinstance(params, list):  # the REST form [{name, value}], should a log carry it
        params = {p.get("name"): p.get("value") for p in params if isinstance(p, dict)}
    if not isinstance(params, dict):
        raise _Bad("start.custom_parameters must be an object")
    try:  # a bad format loses the format only, never the call's ids
        media_format, format_error = _media_format(start), None
    except _Bad as exc:
        media_format, format_error = None, str(exc)
    return Start(
        sequence_number=_counter(msg, "sequence_number", ""),
        stream_id=_opt_str(msg, "stream_id") or _opt_str(start, "stream_id", "start."),
        call_control_id=_opt_str(start, "call_control_id", "start."),
        call_session_id=_opt_str(start, "call_session_id", "start."),
        media_format=media_format,
        custom_parameters=params,
        client_state=_opt_str(start, "client_state", "start."),
        start=start,
        media_format_error=format_error,
    )


def _dtmf(msg: Mapping[str, Any]) -> Dtmf:
    dtmf = _object(msg, "dtmf")
    digit = dtmf.get("digit")
    if isinstance(digit, int) and not isinstance(digit, bool) and 0 <= digit <= 9:
        digit = str(digit)  # as for mark names: a number stands for its text
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
    # Integrations have sent the name as a JSON number: it stands for its text.
    if isinstance(name, int) and not isinstance(name, bool) and name.bit_length() > 256:
        raise _Bad(f"mark.name is a number too long to be a name ({_shown(name)})")
    if isinstance(name, (int, float)) and not isinstance(name, bool):
        name = json.dumps(name)
    if not isinstance(name, str):
        raise _Bad(f"mark.name must be a string or a number, got {name!r:.60}")
    return Mark(name, _counter(msg, "sequence_number", ""), _opt_str(msg, "stream_id"))


def _error(msg: Mapping[str, Any]) -> StreamError:
    # The guide's shape keys the details "payload"; older spec text keys them "error".
    payload = msg.get("payload")
    key = "payload"
    if payload is None:
        payload, key = msg.get("error"), "error"
    payload = {} if payload is None else payload
    if not isinstance(payload, dict):
        raise _Bad(f"error.{key} must be an object, got {type(payload).__name__}")
    code = payload.get("code")
    if isinstance(code, str):
        code = code.strip()
        code = int(code) if code.isascii() and code.isdigit() and len(code) <= 18 else code or None
    elif code is not None and (isinstance(code, bool) or not isinstance(code, int)):
        raise _Bad(f"error.{key}.code must be an integer or a string, got {code!r:.60}")
    elif code is not None and not 0 <= code <= MAX_COUNTER:
        raise _Bad(f"error.{key}.code is out of range: {_shown(code)} is not from 0 to 2**63 - 1")

    def text(name: str) -> str | None:  # keep what Telnyx said, whatever its JSON type
        value = payload.get(name)
        return value if value is None or isinstance(value, str) else json.dumps(value)

    return StreamError(code=code, title=text("title"), detail=text("detail"),
                       stream_id=_opt_str(msg, "stream_id"))


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
    """Parse an already-decoded JSON value as a Telnyx message (see :func:`parse_message`).

    Parameters
    ----------
    msg : object
        The value ``json.loads`` gave.
    raw : str
        The text it came from, kept in a :class:`Malformed` result.

    Returns
    -------
    Event
        The typed event, or :class:`Malformed` with the reason. Never raises on peer data.
    """
    if not isinstance(msg, dict):
        return Malformed(f"message must be a JSON object, got {type(msg).__name__}", raw)
    kind = msg.get("event")
    parser = _PARSERS.get(kind) if isinstance(kind, str) else None
    if parser is None:
        return Malformed(f"unknown event {kind!r:.60}: expected one of {', '.join(_PARSERS)}", raw)
    try:
        return parser(msg)
    except _Bad as exc:
        return Malformed(f"{kind}: {exc}", raw)


def parse_message(data: str | bytes | bytearray | memoryview) -> Event:
    """Parse one message Telnyx sent to the stream URL.

    Parameters
    ----------
    data : str or bytes
        The WebSocket message as received (Telnyx sends JSON text frames). A leading UTF-8
        byte order mark is ignored (editors and some loggers add one).

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
    >>> parse_message('{"event": "start", "streamId": "s1", "start": {"mediaFormat":'
    ...               ' {"encoding": "audio/x-mulaw", "sampleRate": 8000}}}').media_format
    MediaFormat(encoding='PCMU', sample_rate=8000, channels=1)
    >>> parse_message('{"event": "hello"}').reason
    "unknown event 'hello': expected one of connected, start, media, dtmf, mark, error, stop"
    """
    if not isinstance(data, (str, bytes, bytearray, memoryview)):
        raise TypeError(f"a message is str or bytes, got {type(data).__name__}")
    text = _text(data)
    body = text[1:] if text.startswith(_BOM) else text
    try:
        msg = json.loads(body)
    except json.JSONDecodeError as exc:
        return Malformed(f"invalid JSON: {exc.msg} at char {exc.pos}", text)
    except ValueError as exc:  # an integer literal past Python's 4,300-digit limit
        return Malformed(f"invalid JSON: {exc}"[:200], text)
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

    Returns
    -------
    str
        The message, compact JSON text with the payload in base64.

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

    Parameters
    ----------
    name : str
        The mark's name: the echo carries it back.
    stream_id : str, optional
        Included when given.

    Returns
    -------
    str
        The message, compact JSON text to send as one WebSocket frame.

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

    Parameters
    ----------
    stream_id : str, optional
        Included when given.

    Returns
    -------
    str
        The message, compact JSON text to send as one WebSocket frame.

    Examples
    --------
    >>> clear_message()
    '{"event":"clear"}'
    """
    msg: dict[str, Any] = {"event": "clear"}
    if stream_id is not None:
        msg["stream_id"] = stream_id
    return _dumps(msg)
