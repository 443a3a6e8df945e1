"""The capture server: record live Telnyx media streams of many calls to disk.

Point ``stream_url`` at it. Each WebSocket connection is one stream and gets its own folder
under the output root (named from its ``stream_id``, sanitised), holding:

- ``messages.jsonl``: every message as received, each line wrapped with its receive time
  (``{"received_us": ..., "message": {...}}``; a message that is not one line of valid JSON
  is kept as an escaped string, ``{"received_us": ..., "raw": "..."}``), appended and flushed
  as it arrives. :func:`telnyx_audio.read_capture` and ``telnyx-audio decode`` read it, even
  cut short by a crash (only a partial last line can be lost);
- on ``stop`` or disconnect: ``inbound.wav``, ``outbound.wav``, ``stereo.wav`` and
  ``summary.json``, made from the log by the core reader.

The server is a thin adapter: protocol facts live in :mod:`telnyx_audio.protocol`, audio in
:mod:`telnyx_audio.capture`. Three ways to run it: ``telnyx-audio capture`` on the command
line; ``await serve(...)`` inside a running event loop; ``CaptureServer(...).start()`` in the
background (a thread with its own loop: works inside Jupyter), with :attr:`CaptureServer.streams`
as a live view.

Authentication, when a token is set: the ``x-telnyx-streaming-auth-token`` upgrade header,
``Authorization: Bearer``, a path segment equal to the token, or the token in the
``connected`` message (where Telnyx puts ``stream_auth_token`` is not documented, so all of
these are accepted); compared in constant time. A wrong credential in the upgrade is refused
with HTTP 401; a connection without one must authenticate in its first message or is closed
with 1008. Nothing is written for a connection that has not authenticated.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Awaitable, Callable

import numpy as np

from telnyx_audio import codecs
from telnyx_audio._dsp import resample, to_int16
from telnyx_audio._paths import unique_child
from telnyx_audio.protocol import (
    TRACKS,
    Malformed,
    Mark,
    Start,
    clear_message,
    mark_message,
    media_message,
    normalize_track,
    parse_object,
)

__all__ = ["CaptureServer", "MediaStream", "StreamInfo", "serve", "finalize_capture"]

log = logging.getLogger(__name__)

AUTH_HEADER = "x-telnyx-streaming-auth-token"
_AUTH_FIELDS = (AUTH_HEADER, "stream_auth_token", "auth_token", "token")
LOG_NAME = "messages.jsonl"
DEFAULT_MAX_MESSAGE = 1 << 20
_EARLY_LIMIT = 64  # messages kept in memory before a start message names the folder
_LATENCY_SAMPLES = 2_000_000


@dataclass(frozen=True)
class StreamInfo:
    """A snapshot of one stream, for the live view and for reports."""

    folder: Path | None
    stream_id: str | None
    call_control_id: str | None
    call_session_id: str | None
    encoding: str | None
    sample_rate: int | None
    custom_parameters: dict[str, Any]
    connected_at: float
    frames: dict[str, int]
    bad_messages: int
    seconds_captured: float
    last_frame_at: float | None
    state: str  # "open", "finalizing", "done", "error"
    ended_by: str | None = None
    error: str | None = None
    files: dict[str, str] = field(default_factory=dict)


def finalize_capture(folder: Path) -> dict[str, Any]:
    """Write the WAVs and ``summary.json`` of a stream folder from its message log."""
    from telnyx_audio.capture import read_capture
    from telnyx_audio.wav import write_wavs

    capture = read_capture(folder / LOG_NAME)
    files = write_wavs(capture.recording, folder)
    summary = capture.summary()
    summary["files"] = {name: path.name for name, path in files.items()}
    return summary


class MediaStream:
    """One live stream, handed to ``on_stream``: talk back into the call.

    The methods work from the server's event loop (they return awaitables) and from any other
    thread, a notebook's included (they wait until the message is sent).
    """

    def __init__(self, server: "CaptureServer", connection: Any, start: Start) -> None:
        self._server = server
        self._connection = connection
        self.start = start
        self.marks: dict[str, float | None] = {}
        self._mark_events: dict[str, asyncio.Event] = {}

    @property
    def stream_id(self) -> str | None:
        return self.start.stream_id

    def _target(self, codec: str | None, sample_rate: int | None) -> tuple[str, int]:
        fmt = self.start.media_format  # None when start had no media_format: PCMU 8 kHz, Telnyx's default
        enc = codec or self._server.bidirectional_codec or (fmt.encoding if fmt else "PCMU")
        if enc not in codecs.SUPPORTED_ENCODINGS:
            enc = "PCMU"
        rate = sample_rate or (fmt.sample_rate if fmt and enc == "L16" else 8000)
        return enc, rate

    def _run(self, coro: Awaitable[Any]) -> Any:
        loop = self._server._loop
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            return asyncio.ensure_future(coro)
        return asyncio.run_coroutine_threadsafe(coro, loop).result(timeout=60)

    def send_audio(self, pcm: np.ndarray, sample_rate: int, *, codec: str | None = None,
                   target_rate: int | None = None, chunk_s: float = 1.0) -> Any:
        """Play audio into the call (``rtp`` bidirectional mode).

        Parameters
        ----------
        pcm : np.ndarray, shape (n,)
            int16, or float in [-1, 1].
        sample_rate : int
            Its rate; resampled to the stream's bidirectional rate when they differ.
        codec, target_rate : optional
            The stream's ``stream_bidirectional_codec`` / ``_sampling_rate``; by default the
            server's ``bidirectional_codec``, else the stream's own encoding, at 8 kHz (L16:
            the stream's rate).
        chunk_s : float
            Audio per message, clamped to Telnyx's 20 ms to 30 s.
        """
        enc, rate = self._target(codec, target_rate)
        audio = np.asarray(pcm)
        if audio.ndim != 1:
            raise ValueError(f"pcm must be mono, shape (n,), got {audio.shape}")
        audio = resample(to_int16(audio), sample_rate, rate)
        step = int(rate * min(max(chunk_s, 0.02), 30.0))
        minimum = int(rate * 0.02)
        if audio.size % step and audio.size % step < minimum:  # no message under 20 ms
            audio = np.concatenate([audio, np.zeros(minimum - audio.size % step, np.int16)])
        messages = [media_message(codecs.encode(audio[i : i + step], enc)) for i in range(0, audio.size, step)]
        return self._run(self._send_all(messages))

    async def _send_all(self, messages: list[str]) -> int:
        for message in messages:
            await self._connection.send(message)
        return len(messages)

    def mark(self, name: str) -> Any:
        """Queue a mark; Telnyx echoes it when the audio before it has played (see ``marks``)."""
        self.marks[name] = None
        self._mark_events[name] = asyncio.Event()
        return self._run(self._connection.send(mark_message(name)))

    def clear(self) -> Any:
        """Stop playback and drop queued audio."""
        return self._run(self._connection.send(clear_message()))

    async def wait_mark(self, name: str, timeout: float | None = None) -> float:
        """Wait (in the server's loop) until Telnyx echoes the mark; returns when it did."""
        await asyncio.wait_for(self._mark_events[name].wait(), timeout)
        return self.marks[name]  # type: ignore[return-value]

    def _echo(self, name: str, when: float) -> None:
        self.marks[name] = when
        event = self._mark_events.get(name)
        if event is not None:
            event.set()


class _Stream:
    """One connection: its log, counters and end."""

    def __init__(self, server: "CaptureServer", connection: Any, authenticated: bool) -> None:
        self.server = server
        self.connection = connection
        self.authenticated = authenticated
        self.connected_at = time.time()
        self.early: list[bytes] = []
        self.folder: Path | None = None
        self.file = None
        self.start: Start | None = None
        self.handle: MediaStream | None = None
        self.frames = {name: 0 for name in TRACKS}
        self.samples = {name: 0 for name in TRACKS}
        self.bad = 0
        self.last_frame_at: float | None = None
        self.state = "open"
        self.ended_by: str | None = None
        self.error: str | None = None
        self.files: dict[str, str] = {}

    def info(self) -> StreamInfo:
        fmt = self.start.media_format if self.start else None
        rate = fmt.sample_rate if fmt else 8000
        bps = 2 if fmt and fmt.encoding == "L16" else 1
        return StreamInfo(
            folder=self.folder,
            stream_id=self.start.stream_id if self.start else None,
            call_control_id=self.start.call_control_id if self.start else None,
            call_session_id=self.start.call_session_id if self.start else None,
            encoding=fmt.encoding if fmt else None,
            sample_rate=fmt.sample_rate if fmt else None,
            custom_parameters=dict(self.start.custom_parameters) if self.start else {},
            connected_at=self.connected_at,
            frames=dict(self.frames),
            bad_messages=self.bad,
            seconds_captured=max(self.samples.values()) / bps / rate,
            last_frame_at=self.last_frame_at,
            state=self.state,
            ended_by=self.ended_by,
            error=self.error,
            files=dict(self.files),
        )

    def _open(self, name: str | None) -> None:
        self.folder = unique_child(self.server.out, name or f"stream-{int(self.connected_at * 1000)}")
        self.file = open(self.folder / LOG_NAME, "ab")
        for line in self.early:
            self.file.write(line)
        self.file.flush()
        self.early = []

    def _write(self, line: bytes) -> None:
        if self.file is None:
            self.early.append(line)
            if len(self.early) > _EARLY_LIMIT:  # a peer that never says start: keep it anyway
                self._open(None)
            return
        self.file.write(line)
        self.file.flush()

    def receive(self, message: str | bytes, now: float) -> str | None:
        """Log one message and update the counters; returns its event name.

        Raises OSError when the disk fails.
        """
        received = int(now * 1_000_000)
        text = message if isinstance(message, str) else message.decode("utf-8", "replace")
        try:
            msg = json.loads(text)
        except (json.JSONDecodeError, RecursionError):
            msg = None
        if isinstance(msg, dict) and "\n" not in text and "\r" not in text:
            line = f'{{"received_us":{received},"message":{text}}}\n'.encode()
        else:
            line = (json.dumps({"received_us": received, "raw": text}) + "\n").encode()
        kind = msg.get("event") if isinstance(msg, dict) else None
        media = msg.get("media") if kind == "media" else None
        if isinstance(media, dict) and isinstance(media.get("payload"), str):
            track = normalize_track(media.get("track", "inbound"))
            if track is not None:
                self.frames[track] += 1
                payload = media["payload"]
                self.samples[track] += len(payload) // 4 * 3 - payload[-2:].count("=")
                self.last_frame_at = now
            else:
                self.bad += 1
            self._write(line)
            return "media"
        event = parse_object(msg, text) if isinstance(msg, dict) else None
        if event is None or isinstance(event, Malformed):
            self.bad += 1
        elif isinstance(event, Start) and self.start is None:
            self.start = event
            if self.file is None:
                self._open(event.stream_id or event.call_control_id)
            self.handle = MediaStream(self.server, self.connection, event)
            self.server._stream_started(self.handle)
        elif isinstance(event, Mark) and self.handle is not None:
            self.handle._echo(event.name, now)
        self._write(line)
        return None if event is None or isinstance(event, Malformed) else kind

    def close_log(self) -> None:
        if self.file is None and self.early:
            self._open(None)
        if self.file is not None:
            try:
                self.file.close()
            except OSError:  # the write that failed is still buffered: what is on disk stays
                pass


class CaptureServer:
    """A WebSocket server that records Telnyx media streams, one folder per stream.

    Parameters
    ----------
    out : str or Path
        Output root; created.
    host, port : str, int
        Where to listen; port 0 picks a free one (see :attr:`url`).
    auth_token : str, optional
        Required credential (see the module docstring for where it may come from).
    max_message_bytes : int
        Larger messages are refused (the connection is closed with 1009).
    on_stream : callable, optional
        Called with a :class:`MediaStream` when a stream starts (a coroutine function runs as
        a task in the server's loop).
    bidirectional_codec : str, optional
        The stream's ``stream_bidirectional_codec``, for :meth:`MediaStream.send_audio`.
    public_url : str, optional
        How Telnyx reaches this server (a tunnel's ``wss://`` URL); used by
        :meth:`telnyx_audio.TelnyxClient.stream_call`.
    reuse_port : bool
        Share the port with other processes (``SO_REUSEPORT``), for ``--workers``.
    """

    def __init__(
        self,
        out: str | os.PathLike[str],
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        auth_token: str | None = None,
        max_message_bytes: int = DEFAULT_MAX_MESSAGE,
        on_stream: Callable[[MediaStream], Any] | None = None,
        bidirectional_codec: str | None = None,
        public_url: str | None = None,
        reuse_port: bool = False,
    ) -> None:
        if auth_token is not None and (not isinstance(auth_token, str) or not auth_token):
            raise ValueError("auth_token must be a non-empty string")
        if bidirectional_codec is not None and bidirectional_codec not in codecs.SUPPORTED_ENCODINGS:
            raise ValueError(f"bidirectional_codec must be one of {', '.join(codecs.SUPPORTED_ENCODINGS)}")
        self.out = Path(out)
        self.out.mkdir(parents=True, exist_ok=True)
        self.host, self.port = host, port
        self.auth_token = auth_token
        self.max_message_bytes = max_message_bytes
        self.on_stream = on_stream
        self.bidirectional_codec = bidirectional_codec
        self.reuse_port = reuse_port
        self._public_url = public_url
        self._streams: list[_Stream] = []
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._stopping: asyncio.Event | None = None
        self._finishing: set[asyncio.Task] = set()
        self._latency_us: list[float] = []  # receipt to flushed, per message (bounded)
        self._finisher: Any = None  # one thread turns logs into WAVs: bounded memory, no GIL fights
        self.messages_received = 0

    # --- the live view --------------------------------------------------------------------

    @property
    def url(self) -> str:
        """``ws://host:port/`` (with the token as a path segment when one is set)."""
        path = f"/{self.auth_token}" if self.auth_token else "/"
        return f"ws://{self.host}:{self.port}{path}"

    @property
    def public_url(self) -> str:
        """How Telnyx reaches this server: ``public_url`` as given, else :attr:`url`."""
        return self._public_url or self.url

    @property
    def listening(self) -> bool:
        """Whether the server has bound its port and accepts connections."""
        return self._ready.is_set()

    @property
    def streams(self) -> list[StreamInfo]:
        """Every stream so far, open ones first."""
        with self._lock:
            infos = [s.info() for s in self._streams]
        return sorted(infos, key=lambda i: (i.state != "open", i.connected_at))

    @property
    def active(self) -> list[StreamInfo]:
        """The streams still receiving."""
        return [i for i in self.streams if i.state == "open"]

    def __repr__(self) -> str:
        return f"<CaptureServer {self.url} open={len(self.active)} streams={len(self._streams)} out={self.out}>"

    def stats(self) -> dict[str, Any]:
        """Messages received and the time each took from receipt until flushed to the log."""
        lat = np.asarray(self._latency_us, dtype=np.float64)
        pct = (lambda q: float(np.percentile(lat, q))) if lat.size else (lambda q: None)
        return {"messages": self.messages_received, "streams": len(self._streams),
                "receipt_to_disk_us": {"measured": int(lat.size), "p50": pct(50), "p99": pct(99),
                                       "max": float(lat.max()) if lat.size else None}}

    def _repr_html_(self) -> str:
        rows = "".join(
            f"<tr><td>{i.call_control_id or ''}</td><td>{i.stream_id or ''}</td><td>{i.state}</td>"
            f"<td>{i.seconds_captured:.1f}</td><td>{sum(i.frames.values())}</td><td>{i.bad_messages}</td></tr>"
            for i in self.streams
        )
        return (f"<b>CaptureServer</b> {self.url} &rarr; {self.out}<table><tr><th>call_control_id</th><th>stream_id</th>"
                f"<th>state</th><th>seconds</th><th>frames</th><th>bad</th></tr>{rows}</table>")

    # --- running -------------------------------------------------------------------------

    async def serve_async(self) -> None:
        """Serve in the running event loop until cancelled; open streams are then finalised."""
        from websockets.asyncio.server import serve as ws_serve

        from concurrent.futures import ThreadPoolExecutor

        import telnyx_audio.capture  # noqa: F401 - load what finalising needs before calls arrive
        import telnyx_audio.wav  # noqa: F401
        import soundfile  # noqa: F401

        self._loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        self._finisher = ThreadPoolExecutor(max_workers=1, thread_name_prefix="capture-finalize")
        self._server = await ws_serve(
            self._handler, self.host, self.port, process_request=self._check_upgrade,
            max_size=self.max_message_bytes, compression=None, reuse_port=self.reuse_port or None,
            ping_interval=20, ping_timeout=60,
        )
        self.port = self._server.sockets[0].getsockname()[1]
        self._ready.set()
        try:
            await self._stopping.wait()
        finally:
            await self._shutdown()

    async def _shutdown(self) -> None:
        self._server.close(close_connections=True)
        await self._server.wait_closed()
        while self._finishing:
            await asyncio.gather(*list(self._finishing), return_exceptions=True)
        self._finisher.shutdown(wait=True)

    def start(self, timeout: float = 10.0) -> "CaptureServer":
        """Serve in a background thread with its own event loop; returns once listening."""
        if self._thread is not None:
            return self
        self._thread = threading.Thread(target=lambda: asyncio.run(self.serve_async()), name="capture-server", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            raise RuntimeError(f"capture server did not start listening on {self.host}:{self.port}")
        return self

    def stop(self, timeout: float = 60.0) -> None:
        """Close every connection, finalise every stream (WAVs, summaries), stop listening."""
        if self._loop is not None and self._stopping is not None:
            self._loop.call_soon_threadsafe(self._stopping.set)
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def request_stop(self) -> None:
        """From inside the loop (a signal handler): stop as :meth:`stop` does."""
        if self._stopping is not None:
            self._stopping.set()

    def __enter__(self) -> "CaptureServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- connections -----------------------------------------------------------------------

    def _token_ok(self, candidate: str | None) -> bool:
        if not candidate or self.auth_token is None:
            return False
        return hmac.compare_digest(candidate.strip().encode(), self.auth_token.encode())

    def _check_upgrade(self, connection: Any, request: Any) -> Any:
        connection.telnyx_authenticated = self.auth_token is None
        if self.auth_token is None:
            return None
        offered = []
        header = request.headers.get(AUTH_HEADER)
        if header is not None:
            offered.append(header)
        bearer = request.headers.get("Authorization")
        if bearer is not None:
            offered.append(bearer[7:] if bearer.lower().startswith("bearer ") else "")
        path = request.path.split("?", 1)[0]
        segments = [s for s in path.split("/") if s]
        if any(self._token_ok(s) for s in segments) or any(self._token_ok(o) for o in offered):
            connection.telnyx_authenticated = True
            return None
        if offered:
            from http import HTTPStatus

            return connection.respond(HTTPStatus.UNAUTHORIZED, "invalid stream auth token\n")
        return None  # may still authenticate in its connected message

    def _connected_token(self, message: str | bytes) -> str | None:
        try:
            msg = json.loads(message)
        except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):
            return None
        if not isinstance(msg, dict) or msg.get("event") != "connected":
            return None
        for holder in (msg, msg.get("connected") if isinstance(msg.get("connected"), dict) else {}):
            for key in _AUTH_FIELDS:
                if isinstance(holder.get(key), str):
                    return holder[key]
        return None

    async def _handler(self, connection: Any) -> None:
        from websockets.exceptions import ConnectionClosed

        stream = _Stream(self, connection, getattr(connection, "telnyx_authenticated", self.auth_token is None))
        with self._lock:
            self._streams.append(stream)
        end = "disconnect"
        try:
            async for message in connection:
                arrived = time.perf_counter()
                now = time.time()
                if not stream.authenticated:
                    if not self._token_ok(self._connected_token(message)):
                        stream.state, stream.error = "refused", "not authenticated"
                        await connection.close(1008, "authentication required")
                        return
                    stream.authenticated = True
                kind = stream.receive(message, now)
                self.messages_received += 1
                if len(self._latency_us) < _LATENCY_SAMPLES:
                    self._latency_us.append((time.perf_counter() - arrived) * 1e6)
                if kind == "stop":
                    end = "stop"
                    await connection.close(1000, "stream stopped")
                    break
        except ConnectionClosed as exc:
            if exc.rcvd is not None and exc.rcvd.code == 1009 or (exc.sent is not None and exc.sent.code == 1009):
                stream.error = f"message over {self.max_message_bytes} bytes refused"
        except OSError as exc:  # the disk: report it for this stream, keep serving the others
            stream.error = f"cannot write the capture: {exc.strerror or exc}"
            log.error("stream %s: %s", stream.folder, stream.error)
            await connection.close(1011, "capture storage failed")
        finally:
            if stream.state == "refused":
                with self._lock:
                    self._streams.remove(stream)
            else:
                if self._stopping is not None and self._stopping.is_set() and end != "stop":
                    end = "shutdown"
                task = asyncio.ensure_future(self._finish(stream, end))
                self._finishing.add(task)
                task.add_done_callback(self._finishing.discard)

    async def _finish(self, stream: _Stream, ended_by: str) -> None:
        stream.ended_by = ended_by
        stream.state = "finalizing"
        try:
            stream.close_log()
            if stream.folder is None:
                stream.state = "done"
                return
            summary = await asyncio.get_running_loop().run_in_executor(self._finisher, finalize_capture, stream.folder)
            summary["capture_server"] = {
                "ended_by": ended_by, "connected_at": stream.connected_at, "error": stream.error,
                "frames_received": stream.frames, "bad_messages": stream.bad,
            }
            (stream.folder / "summary.json").write_text(json.dumps(summary, indent=2, default=str) + "\n")
            stream.files = {**summary.get("files", {}), "summary": "summary.json", "log": LOG_NAME}
            stream.state = "error" if stream.error else "done"
        except Exception as exc:  # noqa: BLE001 - one stream's failure must not end the server
            failure = f"finalising failed: {type(exc).__name__}: {exc}"
            stream.state = "error"
            stream.error = f"{stream.error}; {failure}" if stream.error else failure
            log.error("stream %s: %s", stream.folder, failure)

    def _stream_started(self, handle: MediaStream) -> None:
        if self.on_stream is None:
            return
        result = self.on_stream(handle)
        if asyncio.iscoroutine(result):
            asyncio.ensure_future(result)

    def info_for(self, folder: Path) -> StreamInfo | None:
        """The snapshot of the stream written to ``folder``."""
        for info in self.streams:
            if info.folder == folder:
                return info
        return None


async def serve(out: str | os.PathLike[str], **kwargs: Any) -> None:
    """Run a :class:`CaptureServer` in the current event loop until cancelled.

    For example ``task = asyncio.create_task(serve("captures", port=8765))``; cancelling the
    task closes every connection and finalises every open stream.
    """
    server = CaptureServer(out, **kwargs)
    await server.serve_async()
