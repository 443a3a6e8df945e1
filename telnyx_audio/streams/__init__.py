"""WebSocket media streams (``streaming_start``): the protocol, the capture server, and the
JSONL capture files it writes, read into the common model.

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

- :mod:`.protocol`: Telnyx's messages <-> typed events, sans I/O.
- :mod:`.lines`: one line the slow, sure way (the reference; range checks).
- :mod:`.scan` and :mod:`.reader`: pass 1, many lines per numpy call.
- :mod:`telnyx_audio.streams.read`: streams and pass 2 (:func:`read_stream_captures`).
- :mod:`.server`: the capture server (a thin WebSocket adapter over the protocol).

The simulator that plays a call into a server is :mod:`telnyx_audio.simulators.stream`; the
one reader for every kind of capture is :func:`telnyx_audio.read_captures`.
"""

from __future__ import annotations

from telnyx_audio.streams.lines import MAX_COUNTER, iter_lines, parse_line
from telnyx_audio.streams.read import read_stream_captures

__all__ = ["read_stream_captures", "parse_line", "iter_lines", "MAX_COUNTER"]
