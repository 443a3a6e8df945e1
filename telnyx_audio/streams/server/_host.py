"""What the capture server's parts need of the server, as small protocols handed down.

:class:`~telnyx_audio.streams.server.CaptureServer` (in :mod:`._server`) owns the streams
(:mod:`._stream`) and the connection checks (:mod:`._admission`); they call back into it
through these protocols, so no part imports the server module that imports it.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, Protocol

from telnyx_audio.service.metrics import StreamMetrics

#: The raw message log's name in a stream's folder.
LOG_NAME = "messages.jsonl"


class StreamHost(Protocol):
    """What a stream reads of its server, and the one callback it makes."""

    out: Path
    max_prestart_bytes: int
    bidirectional_codec: str | None
    redact_dtmf: bool
    _loop: asyncio.AbstractEventLoop | None
    _metrics: StreamMetrics

    def _stream_started(self, stream: Any) -> None:
        """Called once a stream's ``start`` is in and its folder made."""


class AdmissionHost(Protocol):
    """What a connection reads of its server while it is admitted and authenticated."""

    auth_token: str | None
    auth_timeout_s: float

    def _not_allowed(self, peer: str) -> str | None:
        """None when ``peer`` passes the allow list, else the reason it is refused."""

    def _admit(self, peer: str) -> str | None:
        """None to admit ``peer``, else the reason it is refused."""

    def _refusal(self, peer: str, reason: str) -> None:
        """Count and log a refusal."""

    def _release(self, peer: str) -> None:
        """Give back the slot of a connection that ended."""
