"""The capture server: record live Telnyx media streams of many calls to disk.

Point ``stream_url`` at it. Each WebSocket connection is one stream and gets its own folder
under the output root (named from its ``stream_id``, sanitised), holding:

- ``messages.jsonl``: every message as received, each line wrapped with its receive time
  (``{"received_us": ..., "message": {...}}``; a message that is not one line of valid JSON
  is kept as an escaped string, ``{"received_us": ..., "raw": "..."}``), appended and flushed
  as it arrives. :func:`telnyx_audio.read_capture` and ``telnyx-audio decode`` read it, even
  cut short by a crash (only a partial last line can be lost);
- on ``stop`` or disconnect: ``inbound.wav``, ``outbound.wav``, ``stereo.wav`` and
  ``summary.json``, made from the log by the core reader in a worker process. Every file is
  written under a temporary name and renamed when complete: a failure (a full disk, a call
  past the finaliser's time or memory limit) leaves no partial file, and the summary records
  the error.

The server is a thin adapter: protocol facts live in :mod:`telnyx_audio.streams.protocol`, audio in
:mod:`telnyx_audio.streams`. Three ways to run it: ``telnyx-audio capture`` on the command
line; ``await serve(...)`` inside a running event loop; ``CaptureServer(...).start()`` in the
background (a thread with its own loop: works inside Jupyter), with :attr:`CaptureServer.streams`
as a live view.

Authentication, when a token is set: the ``x-telnyx-streaming-auth-token`` upgrade header,
``Authorization: Bearer``, a path segment equal to the token, or the token in the
``connected`` message (where Telnyx puts ``stream_auth_token`` is not documented, so all of
these are accepted); compared in constant time. A wrong credential in the upgrade, or an auth
header given twice, is refused with HTTP 401; a connection without one must authenticate in
its first message or is closed with 1008. Nothing is written for a connection that has not
authenticated.

Limits, for a server facing the internet: connections at once, in total and per source
address (more are answered HTTP 503 at once); a deadline for the upgrade and the credential
(``auth_timeout_s``) and for ``start`` (``start_timeout_s``); 16 KiB messages before the
credential and ``max_prestart_bytes`` in all before ``start``; finished streams kept as a
bounded history; finalising in ``finalize_workers`` processes under a time and memory limit,
smallest call first, so one hostile stream cannot hold up the others.

Logging (:mod:`logging`, logger ``telnyx_audio.streams.server``): one line per stream start, end,
refusal (the reason and the peer address) and error, and every ``stats_interval_s`` a line
with the active streams and frame rate. The token is never logged nor shown in :attr:`CaptureServer.url`.
"""

from __future__ import annotations

from telnyx_audio.streams.server._admission import AUTH_HEADER
from telnyx_audio.streams.server._finalize import finalize_capture
from telnyx_audio.streams.server._server import DEFAULT_MAX_MESSAGE, CaptureServer, serve
from telnyx_audio.streams.server._stream import LOG_NAME, MediaStream, StreamInfo

__all__ = ["CaptureServer", "MediaStream", "StreamInfo", "serve", "finalize_capture", "AUTH_HEADER",
           "DEFAULT_MAX_MESSAGE", "LOG_NAME"]
