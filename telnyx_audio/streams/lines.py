"""One capture line at a time: the reference reading every fast path must agree with.

:func:`parse_line` is ``json.loads`` plus :func:`telnyx_audio.streams.protocol.parse_object`, with
what a capture file adds: the receive-time wrapper, a UTF-8 byte order mark, and range checks
on every counter and rate (a line out of range is a bad line with its reason, so no later
step can overflow or allocate without bound).
"""

from __future__ import annotations

import json
import os
from typing import Any, Iterator

from telnyx_audio._util.files import open_capture
from telnyx_audio.streams.protocol import MAX_SAMPLE_RATE, MIN_SAMPLE_RATE, Event, Malformed, Media, parse_object

__all__ = ["parse_line", "iter_lines", "MAX_COUNTER", "MIN_RATE", "MAX_RATE"]

#: Largest ``chunk``, ``timestamp`` or ``sequence_number`` accepted: 2**53 - 1, the largest
#: integer a float64 holds exactly (timestamps are scaled in float64 when tracks are aligned).
#: Real counters stay far below it; a larger one is a corrupt line, not a long call.
MAX_COUNTER = 2**53 - 1
#: Sample rates accepted in ``start.media_format`` (Telnyx uses 8000 to 48000 Hz): the
#: protocol's rule; a start outside it keeps its ids, without the format (``media_format_error``).
MIN_RATE, MAX_RATE = MIN_SAMPLE_RATE, MAX_SAMPLE_RATE

#: Key under which a capture-log line wraps the message as received (the capture server's form).
WRAP_KEY = "message"
WRAP_TIME_KEY = "received_us"
BOM = b"\xef\xbb\xbf"
JSON_SPACE = b" \t\r\n"


def _out_of_range(event: Event) -> str | None:
    """Why a parsed event's counters or rate cannot be used, or None."""
    if isinstance(event, Media):
        for name in ("chunk", "timestamp", "sequence_number"):
            value = getattr(event, name)
            if value is not None and value > MAX_COUNTER:
                where = "" if name == "sequence_number" else "media."
                return f"media: {where}{name} {value} is out of range (0 to {MAX_COUNTER})"
        return None
    seq = getattr(event, "sequence_number", None)
    if seq is not None and seq > MAX_COUNTER:
        return f"sequence_number {seq} is out of range (0 to {MAX_COUNTER})"
    return None


def _checked(event: Event, text: str) -> Event:
    reason = _out_of_range(event)
    return event if reason is None else Malformed(reason, text)


def _unwrap(obj: Any, text: str) -> tuple[Any, int | None, str | None]:
    """The message object inside a capture line, its receive time, or why there is none."""
    if isinstance(obj, dict) and WRAP_TIME_KEY in obj and "event" not in obj:
        received = obj.get(WRAP_TIME_KEY)
        received = received if isinstance(received, int) and not isinstance(received, bool) else None
        if WRAP_KEY in obj:
            return obj[WRAP_KEY], received, None
        if isinstance(obj.get("raw"), str):
            try:
                return json.loads(obj["raw"]), received, None
            except json.JSONDecodeError as exc:
                return None, received, f"invalid JSON: {exc.msg} at char {exc.pos}"
            except ValueError as exc:  # an integer literal past Python's 4,300-digit limit
                return None, received, f"invalid JSON: {exc}"[:200]
            except RecursionError:
                return None, received, "invalid JSON: nested too deeply"
        return None, received, "capture line has received_us but neither message nor raw"
    return obj, None, None


def parse_line_full(line: str | bytes) -> tuple[Event, int | None, Media | None]:
    """:func:`parse_line`, plus the frame of a media message whose payload is unusable.

    A ``media`` message whose payload is not base64 (or not a string) is still a frame: its
    counters say where it belonged, so it is counted as a bad frame, not as a network gap.
    The third value is that frame, with an empty payload (None for any other line).
    """
    if isinstance(line, (bytes, bytearray, memoryview)):
        raw = bytes(line)
        if raw.startswith(BOM):
            raw = raw[3:]
        text = raw.decode("utf-8", "replace")
    else:
        text = line[1:] if line.startswith("\ufeff") else line
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        return Malformed(f"invalid JSON: {exc.msg} at char {exc.pos}", text), None, None
    except ValueError as exc:  # an integer literal past Python's 4,300-digit limit
        return Malformed(f"invalid JSON: {exc}"[:200], text), None, None
    except RecursionError:
        return Malformed("invalid JSON: nested too deeply", text), None, None
    msg, received, why = _unwrap(obj, text)
    if why is not None:
        return Malformed(why, text), received, None
    event = _checked(parse_object(msg, text), text)
    frame = None
    if isinstance(event, Malformed) and isinstance(msg, dict) and msg.get("event") == "media":
        media = msg.get("media")
        if isinstance(media, dict) and "payload" in media:
            bare = parse_object({**msg, "media": {**media, "payload": ""}}, text)
            if isinstance(bare, Media) and _out_of_range(bare) is None:
                frame = bare
    return event, received, frame


def parse_line(line: str | bytes) -> tuple[Event, int | None]:
    """Parse one capture line: a Telnyx message, or one wrapped with its receive time.

    Never raises on the line's content: anything unusable is a
    :class:`~telnyx_audio.streams.protocol.Malformed` event with the reason. Counters above
    :data:`MAX_COUNTER` and sample rates outside ``MIN_RATE..MAX_RATE`` are malformed too.

    Parameters
    ----------
    line : str or bytes
        One line of a capture file.

    Returns
    -------
    (Event, received_us or None)

    Examples
    --------
    >>> ev, t = parse_line('{"received_us": 5, "message": {"event": "connected"}}')
    >>> type(ev).__name__, t
    ('Connected', 5)
    >>> parse_line('{"event": "media", "media": {"chunk": "10000000000000000", "payload": ""}}')[0].reason
    'media: media.chunk 10000000000000000 is out of range (0 to 9007199254740991)'
    """
    event, received, _ = parse_line_full(line)
    return event, received


def iter_lines(path: str | os.PathLike[str]) -> Iterator[tuple[int, Event, int | None]]:
    """Yield ``(line_number, event, received_us)`` for every non-blank line, slowly but simply.

    The reference :func:`telnyx_audio.read_captures` agrees with; handy for looking
    at a few messages in a notebook. Reads gzip files too.

    Parameters
    ----------
    path : str or PathLike
        A capture file (JSON lines, capture-log wrapped or not; gzip too).

    Yields
    ------
    tuple of (int, Event, int or None)
        The line's number (from 1), its event (as :func:`parse_line` reads it) and the
        time it was received in microseconds, when the line records one.
    """
    with open_capture(path) as f:
        for number, line in enumerate(f, 1):
            line = line.removeprefix(BOM).rstrip(b"\r\n")
            if line.strip(JSON_SPACE):
                event, received = parse_line(line)
                yield number, event, received
