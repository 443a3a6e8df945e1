"""The capture server's streams: the live view, the finishing of a stream and the history.

Open streams (connected, or finalising) are listed in ``_open``; a finished one leaves only
its :class:`StreamInfo` in a bounded history. The receipt-to-disk times are kept in a fixed
ring, so memory stays bounded however long the server runs.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import deque
from pathlib import Path
from typing import Any
from urllib.parse import quote

import numpy as np

from telnyx_audio.service.metrics import StreamMetrics
from telnyx_audio.service.runtime import Service
from telnyx_audio.streams.server._finalize import FinalizeFailed, FinalizerPool, remove_partials, write_json_atomic
from telnyx_audio.streams.server._stream import LOG_NAME, StreamInfo, _Stream

log = logging.getLogger("telnyx_audio.server")

_LATENCY_SAMPLES = 1 << 16  # a ring of the latest receipt-to-disk times


class _Latency:
    """The latest receipt-to-disk times, in a fixed ring (bounded memory)."""

    def __init__(self, size: int = _LATENCY_SAMPLES) -> None:
        self.ring = np.zeros(size, np.float32)
        self.n = 0

    def add(self, us: float) -> None:
        self.ring[self.n % self.ring.size] = us
        self.n += 1

    def values(self) -> np.ndarray:
        return self.ring[: min(self.n, self.ring.size)]


class _Registry:
    """CaptureServer's streams and its live view (a mixin: the state is set in
    :meth:`CaptureServer.__init__`)."""

    host: str
    port: int
    out: Path
    auth_token: str | None
    refused: int
    messages_received: int
    _public_url: str | None
    _pool: FinalizerPool
    _open: list[_Stream]
    _history: deque[StreamInfo]
    _n_finished: int
    _frames_finished: int
    _lock: threading.Lock
    _ready: threading.Event
    _latency: _Latency
    _service: Service
    _metrics: StreamMetrics

    def _base_url(self) -> str:
        return f"ws{self._service.scheme}://{self.host}:{self.port}/"

    @property
    def url(self) -> str:
        """``ws://host:port/``; with a token set, its path segment is shown masked (``/***``).

        Use :meth:`url_with_token` for a URL that carries the token.
        """
        return self._base_url() + ("***" if self.auth_token else "")

    def url_with_token(self) -> str:
        """``ws://host:port/<token>``: the URL with the token as its path segment (a secret)."""
        return self._base_url() + (quote(self.auth_token, safe="") if self.auth_token else "")

    @property
    def public_url(self) -> str:
        """How Telnyx reaches this server: ``public_url`` as given, else ``ws://host:port/``.

        Never carries the token: :meth:`telnyx_audio.TelnyxClient.stream_call` sends it as
        ``stream_auth_token``.
        """
        return self._public_url or self._base_url()

    @property
    def listening(self) -> bool:
        """Whether the server has bound its port and accepts connections."""
        return self._ready.is_set()

    @property
    def streams(self) -> list[StreamInfo]:
        """Streams so far (the open ones, then the last ``history`` finished), oldest first."""
        with self._lock:
            infos = [s.info() for s in self._open] + list(self._history)
        return sorted(infos, key=lambda i: (i.state != "open", i.connected_at))

    @property
    def active(self) -> list[StreamInfo]:
        """The streams still receiving."""
        with self._lock:
            return [s.info() for s in self._open if s.state == "open" and s.start is not None]

    def __repr__(self) -> str:
        return (f"<CaptureServer {self.url} open={len(self.active)} streams={len(self._open) + self._n_finished}"
                f" out={self.out}>")

    def stats(self) -> dict[str, Any]:
        """Messages received and the time each took from receipt until flushed to the log."""
        lat = self._latency.values().astype(np.float64)
        pct = (lambda q: float(np.percentile(lat, q))) if lat.size else (lambda q: None)
        return {"messages": self.messages_received, "streams": len(self._open) + self._n_finished,
                "refused": self.refused,
                "receipt_to_disk_us": {"measured": int(lat.size), "p50": pct(50), "p99": pct(99),
                                       "max": float(lat.max()) if lat.size else None}}

    def _repr_html_(self) -> str:
        from html import escape

        rows = "".join(
            f"<tr><td>{escape(i.call_control_id or '')}</td><td>{escape(i.stream_id or '')}</td><td>{i.state}</td>"
            f"<td>{i.seconds_captured:.1f}</td><td>{sum(i.frames.values())}</td><td>{i.bad_messages}</td></tr>"
            for i in self.streams
        )
        return (f"<b>CaptureServer</b> {escape(self.url)} &rarr; {escape(str(self.out))}<table><tr>"
                f"<th>call_control_id</th><th>stream_id</th><th>state</th><th>seconds</th><th>frames</th><th>bad</th>"
                f"</tr>{rows}</table>")

    def info_for(self, folder: Path) -> StreamInfo | None:
        """The snapshot of the stream written to ``folder``."""
        for info in self.streams:
            if info.folder == folder:
                return info
        return None

    # --- a stream ends ---------------------------------------------------------------------

    async def _finish(self, stream: _Stream, ended_by: str) -> None:
        stream.ended_by = ended_by
        stream.state = "finalizing"
        failure = None
        try:
            stream.close_log()
        except OSError as exc:
            self._metrics.write_error()
            failure = f"cannot write the capture: {exc.strerror or exc}"
        if stream.folder is not None and failure is None:
            extra = {"ended_by": ended_by, "connected_at": stream.connected_at, "peer": stream.peer,
                     "error": stream.error, "frames_received": stream.frames, "bad_messages": stream.bad}
            began = time.perf_counter()
            try:
                reply = await self._pool.run(stream.folder, extra, cost=stream.span_s())
                self._metrics.finalized(time.perf_counter() - began)
            except FinalizeFailed as exc:
                failure = str(exc)
                await asyncio.get_running_loop().run_in_executor(None, self._failed_summary, stream, extra, failure)
            else:
                for warning in reply.get("warnings", []):
                    log.warning("stream %s: %s", stream.label, warning)
                if reply["ok"]:
                    stream.files = {**reply["summary"].get("files", {}), "summary": "summary.json"}
                else:
                    failure = f"finalising failed: {reply['error']}"
        if failure:
            stream.error = f"{stream.error}; {failure}" if stream.error else failure
        stream.state = "error" if stream.error else "done"
        seconds, frames = stream.seconds(), sum(stream.frames.values())
        fields = {"event": "stream_ended", "stream_id": stream.stream_id, "peer": stream.peer,
                  "call_control_id": stream.start.call_control_id if stream.start else None,
                  "folder": str(stream.folder) if stream.folder else None,
                  "figures": {"ended_by": ended_by, "frames": dict(stream.frames), "seconds": round(seconds, 3),
                              "bad_messages": stream.bad}}
        if stream.error:
            log.error("stream %s ended (%s) with an error: %s; %d frames, %.1f s -> %s", stream.label, ended_by,
                      stream.error, frames, seconds, stream.folder, extra={**fields, "reason": stream.error})
        else:
            log.info("stream %s ended (%s): %d frames, %.1f s -> %s", stream.label, ended_by, frames, seconds,
                     stream.folder, extra=fields)
        info = stream.info(full=False)
        with self._lock:
            self._open.remove(stream)
            self._history.append(info)
            self._n_finished += 1
            self._frames_finished += frames

    def _failed_summary(self, stream: _Stream, extra: dict[str, Any], failure: str) -> None:
        """A summary for a stream whose finalising did not finish (killed, or its worker died)."""
        assert stream.folder is not None
        remove_partials(stream.folder)
        fmt = stream.start.media_format if stream.start else None
        files = {p.stem: p.name for p in sorted(stream.folder.glob("*.wav"))}
        summary = {"stream_id": stream.stream_id,
                   "call_control_id": stream.start.call_control_id if stream.start else None,
                   "call_session_id": stream.start.call_session_id if stream.start else None,
                   "media_format": {"encoding": fmt.encoding, "sample_rate": fmt.sample_rate} if fmt else None,
                   "error": failure, "capture_server": extra}
        if (stream.folder / LOG_NAME).exists():  # (redact_dtmf deletes a log it could not redact)
            files["log"] = LOG_NAME
        summary["files"] = files
        try:
            write_json_atomic(stream.folder / "summary.json", summary)
            stream.files = {**files, "summary": "summary.json"}
        except OSError as exc:
            log.error("stream %s: cannot write its summary: %s", stream.label, exc.strerror or exc)
