"""Capture files: one Telnyx media-stream message per line (JSONL), read into recordings.

The capture file is the interchange format of this project. Each line is one message as
Telnyx sent it, exactly as received::

    {"event": "start", "sequence_number": "1", "stream_id": "...", "start": {...}}
    {"event": "media", "sequence_number": "2", "stream_id": "...", "media": {...}}

The capture server may instead wrap a message with its receive time (microseconds since the
Unix epoch), keeping the message bytes as they came::

    {"received_us": 1732419600123456, "message": {"event": "media", ...}}
    {"received_us": 1732419600123999, "raw": "<a message that was not one line of JSON>"}

Both forms, mixed freely, plain or gzip-compressed, are read by :func:`read_captures` (one
:class:`Capture` per ``stream_id``) and :func:`read_capture` (a file of one stream). A line
that is not a valid Telnyx message is counted and reported (line number and reason), never
fatal; every guess (a format inferred, a law that looks wrong, silence capped) is a warning
in the report.

- :mod:`._lines`: one line the slow, sure way (the reference; range checks).
- :mod:`._reader`: pass 1, many lines per numpy call through :mod:`telnyx_audio._scan`.
- :mod:`._read`: streams and pass 2.
- :mod:`._format`: the media format (given, from ``start``, inferred) and the G.711 law check.
- :mod:`._model`: :class:`Capture`, :class:`CaptureReport`, :class:`BadLine`.
"""

from __future__ import annotations

from telnyx_audio.capture._lines import MAX_COUNTER, iter_lines, parse_line
from telnyx_audio.capture._model import DEFAULT_MEDIA_FORMAT, BadLine, Capture, CaptureReport
from telnyx_audio.capture._format import as_media_format
from telnyx_audio.capture._read import read_capture, read_captures

__all__ = [
    "BadLine",
    "CaptureReport",
    "Capture",
    "read_capture",
    "read_captures",
    "parse_line",
    "iter_lines",
    "as_media_format",
    "DEFAULT_MEDIA_FORMAT",
    "MAX_COUNTER",
]
