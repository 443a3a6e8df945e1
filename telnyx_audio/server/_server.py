"""The capture server: connections, limits, authentication, the live view and finalising."""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import os
import threading
import time
from collections import deque
from pathlib import Path
from typing import Any, Callable
from urllib.parse import quote

import numpy as np

from telnyx_audio import codecs
from telnyx_audio.server._finalize import FinalizeFailed, FinalizerPool, remove_partials, write_json_atomic
from telnyx_audio.server._stream import LOG_NAME, MediaStream, PrestartOverflow, StreamInfo, _Stream

log = logging.getLogger("telnyx_audio.server")
# websockets' own per-connection lines ("connection open"...) repeat ours: warnings only, by default.
logging.getLogger("telnyx_audio.server.websockets").setLevel(logging.WARNING)

AUTH_HEADER = "x-telnyx-streaming-auth-token"
_AUTH_FIELDS = (AUTH_HEADER, "stream_auth_token", "auth_token", "token")
DEFAULT_MAX_MESSAGE = 1 << 20
_PREAUTH_MESSAGE = 16 << 10  # largest message from a peer that has not authenticated yet
_LATENCY_SAMPLES = 1 << 16  # a ring of the latest receipt-to-disk times
_FDS_PER_STREAM = 2  # its socket and its log
_FD_RESERVE = 64


def _raise_fd_limit() -> int:
    """Raise the soft open-file limit to the hard one; returns the soft limit now in force."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY:
        hard = 1 << 20
    if soft != resource.RLIM_INFINITY and soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (ValueError, OSError):
            pass
    return soft if soft != resource.RLIM_INFINITY else 1 << 20


def _busy_response(reason: str) -> bytes:
    body = f"{reason}\n".encode()
    return (b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\nRetry-After: 5\r\n"
            b"Connection: close\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)


def _connection_class() -> type:
    """websockets' ServerConnection, counted and capped at TCP accept (before any byte is read)."""
    from websockets.asyncio.server import ServerConnection

    class _Connection(ServerConnection):
        def __init__(self, owner: "CaptureServer", *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.telnyx_owner = owner
            self.telnyx_peer = "?"
            self.telnyx_admitted = False
            self.telnyx_authenticated = owner.auth_token is None
            self.telnyx_connected = time.monotonic()

        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            super().connection_made(transport)
            peer = transport.get_extra_info("peername")
            self.telnyx_peer = str(peer[0]) if peer else "?"
            refusal = self.telnyx_owner._admit(self.telnyx_peer)
            if refusal is None:
                self.telnyx_admitted = True
            else:  # answered at once and closed: no file descriptor is held for it
                transport.write(_busy_response(refusal))  # type: ignore[attr-defined]
                transport.close()

        def connection_lost(self, exc: Exception | None) -> None:
            if self.telnyx_admitted:
                self.telnyx_admitted = False
                owner = self.telnyx_owner
                owner._release(self.telnyx_peer)
                if self.request is None and time.monotonic() - self.telnyx_connected >= owner.auth_timeout_s * 0.99:
                    owner._refusal(self.telnyx_peer, f"no upgrade request within {owner.auth_timeout_s:g} s")
            super().connection_lost(exc)

    return _Connection


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


class CaptureServer:
    """A WebSocket server that records Telnyx media streams, one folder per stream.

    It is built to face the internet: every connection is held to deadlines and limits
    (below), finishing calls are finalised in worker processes, and what happens is logged
    through :mod:`logging` (logger ``telnyx_audio.server``): one line per stream start, end,
    refusal and error, and a periodic line with the active streams and frame rate. The auth
    token never appears in a log line, :attr:`url`, ``repr`` or the notebook view.

    Parameters
    ----------
    out : str or Path
        Output root; created.
    host, port : str, int
        Where to listen; port 0 picks a free one (see :attr:`url`).
    auth_token : str, optional
        Required credential (see the module docstring for where it may come from).
    max_message_bytes : int
        Larger messages are refused (the connection is closed with 1009). Before the peer
        authenticates the limit is 16 KiB, and before ``start`` ``max_prestart_bytes``.
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
    max_connections : int
        Connections held at once; more are answered ``503`` and closed at once. Lowered
        (with a warning) when the open-file limit cannot hold two files per connection.
    max_connections_per_address : int
        Connections held at once from one source address (Telnyx's media servers are few
        addresses: raise it for very many concurrent calls).
    auth_timeout_s : float
        Time after connecting to complete the upgrade, and again to present a credential.
    start_timeout_s : float
        Time after connecting until ``start``; a stream without one is closed with 1008.
    max_prestart_bytes : int
        Messages held before ``start`` names the folder; more closes the stream with 1008
        (what came is written to a folder, as any stream's log).
    history : int
        Finished streams kept in :attr:`streams` (their :class:`StreamInfo` only, without
        ``custom_parameters``; each has its ``summary.json``).
    finalize_workers : int
        Worker processes turning logs into WAVs and summaries.
    finalize_timeout_s : float
        Time limit of one stream's finalising; past it, its summary records the error.
    finalize_memory_bytes : int or None
        Address-space limit of a finalising worker (a call that needs more fails alone).
    stats_interval_s : float or None
        Seconds between the periodic log lines (``None``: none).
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
        max_connections: int = 1000,
        max_connections_per_address: int = 200,
        auth_timeout_s: float = 10.0,
        start_timeout_s: float = 30.0,
        max_prestart_bytes: int = 64 << 10,
        history: int = 1000,
        finalize_workers: int = 2,
        finalize_timeout_s: float = 300.0,
        finalize_memory_bytes: int | None = 3 << 30,
        stats_interval_s: float | None = 60.0,
    ) -> None:
        if auth_token is not None and (not isinstance(auth_token, str) or not auth_token):
            raise ValueError("auth_token must be a non-empty string")
        if bidirectional_codec is not None:  # any spelling; one this FFmpeg cannot encode (AMR-WB) fails now
            from telnyx_audio.codecs.outbound import check_encoder

            bidirectional_codec = check_encoder(bidirectional_codec)
        for name, value in (("max_message_bytes", max_message_bytes), ("max_connections", max_connections),
                            ("max_connections_per_address", max_connections_per_address),
                            ("max_prestart_bytes", max_prestart_bytes), ("finalize_workers", finalize_workers),
                            ("history", history)):
            if not isinstance(value, int) or isinstance(value, bool) or value < (0 if name == "history" else 1):
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        for name, value in (("auth_timeout_s", auth_timeout_s), ("start_timeout_s", start_timeout_s),
                            ("finalize_timeout_s", finalize_timeout_s)):
            if not isinstance(value, (int, float)) or not value > 0:
                raise ValueError(f"{name} must be a positive number of seconds, got {value!r}")
        self.out = Path(out)
        self.out.mkdir(parents=True, exist_ok=True)
        self.host, self.port = host, port
        self.auth_token = auth_token
        self.max_message_bytes = max_message_bytes
        self.on_stream = on_stream
        self.bidirectional_codec = bidirectional_codec
        self.reuse_port = reuse_port
        self.max_connections = max_connections
        self.max_connections_per_address = max_connections_per_address
        self.auth_timeout_s = float(auth_timeout_s)
        self.start_timeout_s = float(start_timeout_s)
        self.max_prestart_bytes = max_prestart_bytes
        self.stats_interval_s = stats_interval_s
        self._public_url = public_url
        self._pool = FinalizerPool(finalize_workers, float(finalize_timeout_s), finalize_memory_bytes)
        self._open: list[_Stream] = []  # connected (past the handshake) or finalising
        self._history: deque[StreamInfo] = deque(maxlen=history)
        self._n_finished = 0
        self._frames_finished = 0
        self._connections = 0
        self._per_address: dict[str, int] = {}
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._stopping: asyncio.Event | None = None
        self._finishing: set[asyncio.Task[None]] = set()
        self._latency = _Latency()
        self._warming: asyncio.Future[None] | None = None
        self._refusal_budget = (0.0, 0)  # (second, lines logged in it): a flood cannot flood the log
        self.refused = 0
        self.messages_received = 0

    # --- the live view --------------------------------------------------------------------

    def _base_url(self) -> str:
        return f"ws://{self.host}:{self.port}/"

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

    # --- running -------------------------------------------------------------------------

    async def serve_async(self) -> None:
        """Serve in the running event loop until cancelled; open streams are then finalised."""
        from websockets.asyncio.server import serve as ws_serve

        fds = _raise_fd_limit()
        fit = max((fds - _FD_RESERVE) // _FDS_PER_STREAM, 1)
        if fit < self.max_connections:
            log.warning("the open-file limit (%d) holds %d connections, not max_connections=%d: capped",
                        fds, fit, self.max_connections)
            self.max_connections = fit
        self._loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        connection_class = _connection_class()
        self._server = await ws_serve(
            self._handler, self.host, self.port, process_request=self._check_upgrade,
            create_connection=lambda *a, **k: connection_class(self, *a, **k),
            max_size=self.max_message_bytes, max_queue=8, compression=None, reuse_port=self.reuse_port or None,
            open_timeout=self.auth_timeout_s, ping_interval=20, ping_timeout=60,
            # A refused flooder's unread frames keep its close frame from being read: hold it
            # (and its file descriptor) 2 s at most, not websockets' 10.
            close_timeout=2,
            logger=logging.getLogger("telnyx_audio.server.websockets"),
        )
        self.port = self._server.sockets[0].getsockname()[1]
        self._warming = asyncio.ensure_future(self._pool.warm(1))  # one worker now; more when calls need them
        ticker = asyncio.ensure_future(self._tick()) if self.stats_interval_s else None
        self._ready.set()
        log.info("listening on %s -> %s (max %d connections, %d per address)", self.url, self.out,
                 self.max_connections, self.max_connections_per_address)
        try:
            await self._stopping.wait()
        finally:
            if ticker is not None:
                ticker.cancel()
            if self._warming is not None:
                await asyncio.gather(self._warming, return_exceptions=True)
            await self._shutdown()

    async def _shutdown(self) -> None:
        self._server.close(close_connections=True)
        await self._server.wait_closed()
        while self._finishing:
            await asyncio.gather(*list(self._finishing), return_exceptions=True)
        await self._pool.close()
        log.info("stopped: %d streams finished, %d connections refused", self._n_finished, self.refused)

    async def _tick(self) -> None:
        assert self.stats_interval_s is not None
        last_frames, last = 0, time.monotonic()
        while True:
            await asyncio.sleep(self.stats_interval_s)
            now = time.monotonic()
            with self._lock:
                open_ = [s for s in self._open if s.state == "open"]
                frames = sum(sum(s.frames.values()) for s in self._open)
            started = sum(1 for s in open_ if s.start is not None)
            rate = (frames + self._frames_finished - last_frames) / (now - last)
            last_frames, last = frames + self._frames_finished, now
            if open_ or rate or self._pool.queued:
                log.info("%d streams active, %d connections awaiting start, %.0f frames/s, %d finalising (%d queued),"
                         " %d connections refused so far", started, len(open_) - started, rate,
                         len(self._finishing), self._pool.queued, self.refused)

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

    def _refusal(self, peer: str, reason: str) -> None:
        """Count a refusal and log it (at most 20 lines a second; the periodic line has the count)."""
        self.refused += 1
        second, n = self._refusal_budget
        now = int(time.monotonic())
        if now != second:
            second, n = now, 0
        if n < 20:
            log.warning("refused %s: %s", peer, reason)
        elif n == 20:
            log.warning("refusing more connections this second; further refusals are counted, not logged")
        self._refusal_budget = (second, n + 1)

    def _admit(self, peer: str) -> str | None:
        """Take a connection slot for ``peer``, or say why not."""
        if self._connections >= self.max_connections:
            reason = f"server busy: {self.max_connections} connections open"
        elif self._per_address.get(peer, 0) >= self.max_connections_per_address:
            reason = f"too many connections from {peer} ({self.max_connections_per_address} open)"
        else:
            self._connections += 1
            self._per_address[peer] = self._per_address.get(peer, 0) + 1
            return None
        self._refusal(peer, reason)
        return reason

    def _release(self, peer: str) -> None:
        self._connections -= 1
        left = self._per_address.get(peer, 1) - 1
        if left:
            self._per_address[peer] = left
        else:
            self._per_address.pop(peer, None)

    def _token_ok(self, candidate: str | None) -> bool:
        if not candidate or self.auth_token is None:
            return False
        return hmac.compare_digest(candidate.strip().encode(), self.auth_token.encode())

    def _check_upgrade(self, connection: Any, request: Any) -> Any:
        from http import HTTPStatus

        if self.auth_token is None:
            return None
        tokens = request.headers.get_all(AUTH_HEADER)
        bearers = request.headers.get_all("Authorization")
        if len(tokens) > 1 or len(bearers) > 1:
            self._refusal(connection.telnyx_peer, "the auth header is repeated in the upgrade")
            return connection.respond(HTTPStatus.UNAUTHORIZED, "one stream auth header, please\n")
        offered = list(tokens) + [b[7:] if b.lower().startswith("bearer ") else "" for b in bearers]
        segments = [s for s in request.path.split("?", 1)[0].split("/") if s]
        if any(self._token_ok(s) for s in segments) or any(self._token_ok(o) for o in offered):
            connection.telnyx_authenticated = True
            return None
        if offered:
            self._refusal(connection.telnyx_peer, "wrong stream auth token in the upgrade headers")
            return connection.respond(HTTPStatus.UNAUTHORIZED, "invalid stream auth token\n")
        return None  # may still authenticate in its connected message

    def _connected_token(self, message: str | bytes) -> tuple[str | None, str]:
        """The token a ``connected`` message carries, and the message with it masked (to log)."""
        try:
            msg = json.loads(message)
        except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):
            return None, ""
        if not isinstance(msg, dict) or msg.get("event") != "connected":
            return None, ""
        for holder in (msg, msg.get("connected") if isinstance(msg.get("connected"), dict) else {}):
            for key in _AUTH_FIELDS:
                if isinstance(holder.get(key), str):
                    token, holder[key] = holder[key], "***"
                    return token, json.dumps(msg)
        return None, ""

    async def _handler(self, connection: Any) -> None:
        from websockets.exceptions import ConnectionClosed

        stream = _Stream(self, connection, connection.telnyx_peer, connection.telnyx_authenticated)
        protocol = connection.protocol
        protocol.max_message_size = min(self.max_message_bytes,
                                        self.max_prestart_bytes if stream.authenticated else _PREAUTH_MESSAGE)
        with self._lock:
            self._open.append(stream)
        end, refusal = "disconnect", None
        try:
            while True:
                if stream.start is None:  # held to a deadline until the credential, then start
                    waited = "credential" if not stream.authenticated else "start message"
                    limit = self.auth_timeout_s if not stream.authenticated else self.start_timeout_s
                    left = connection.telnyx_connected + limit - time.monotonic()
                    try:
                        message = await asyncio.wait_for(connection.recv(), max(left, 0.0))
                    except asyncio.TimeoutError:
                        refusal = f"no {waited} within {limit:g} s of connecting"
                        break
                else:
                    message = await connection.recv()
                arrived = time.perf_counter()
                if not stream.authenticated:
                    token, message = self._connected_token(message)  # the log keeps it masked
                    if not self._token_ok(token):
                        refusal = "no valid stream auth token in the upgrade or the first message"
                        break
                    stream.authenticated = True
                    protocol.max_message_size = min(self.max_message_bytes, self.max_prestart_bytes)
                kind = stream.receive(message, time.time())
                self.messages_received += 1
                self._latency.add((time.perf_counter() - arrived) * 1e6)
                if stream.start is not None and protocol.max_message_size != self.max_message_bytes:
                    protocol.max_message_size = self.max_message_bytes
                if kind == "stop":
                    end = "stop"
                    await connection.close(1000, "stream stopped")
                    break
        except ConnectionClosed as exc:
            if (exc.rcvd is not None and exc.rcvd.code == 1009) or (exc.sent is not None and exc.sent.code == 1009):
                limit = self.max_message_bytes if stream.start else protocol.max_message_size
                stream.error = f"message over {limit} bytes refused"
                if stream.start is None:
                    refusal = stream.error + " before start"
        except PrestartOverflow as exc:
            refusal = stream.error = str(exc)
        except OSError as exc:  # the disk: report it for this stream, keep serving the others
            stream.error = f"cannot write the capture: {exc.strerror or exc}"
            log.error("stream %s: %s", stream.label, stream.error)
            await connection.close(1011, "capture storage failed")
        finally:
            if refusal is not None:
                self._refusal(stream.peer, refusal)
                if stream.start is None and stream.error is None and stream.authenticated and stream.early:
                    stream.error = f"refused: {refusal}"
                await connection.close(1008, refusal[:120])
            if not stream.authenticated or (stream.folder is None and not stream.early):
                with self._lock:  # nothing was written for it: only the log line
                    self._open.remove(stream)
            else:
                if self._stopping is not None and self._stopping.is_set() and end != "stop":
                    end = "shutdown"
                task = asyncio.ensure_future(self._finish(stream, end))
                self._finishing.add(task)
                task.add_done_callback(self._finishing.discard)

    async def _finish(self, stream: _Stream, ended_by: str) -> None:
        stream.ended_by = ended_by
        stream.state = "finalizing"
        failure = None
        try:
            stream.close_log()
        except OSError as exc:
            failure = f"cannot write the capture: {exc.strerror or exc}"
        if stream.folder is not None and failure is None:
            extra = {"ended_by": ended_by, "connected_at": stream.connected_at, "peer": stream.peer,
                     "error": stream.error, "frames_received": stream.frames, "bad_messages": stream.bad}
            try:
                reply = await self._pool.run(stream.folder, extra, cost=stream.span_s())
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
        if stream.error:
            log.error("stream %s ended (%s) with an error: %s; %d frames, %.1f s -> %s", stream.label, ended_by,
                      stream.error, frames, seconds, stream.folder)
        else:
            log.info("stream %s ended (%s): %d frames, %.1f s -> %s", stream.label, ended_by, frames, seconds,
                     stream.folder)
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
                   "error": failure, "files": {**files, "log": LOG_NAME}, "capture_server": extra}
        try:
            write_json_atomic(stream.folder / "summary.json", summary)
            stream.files = {**files, "log": LOG_NAME, "summary": "summary.json"}
        except OSError as exc:
            log.error("stream %s: cannot write its summary: %s", stream.label, exc.strerror or exc)

    def _stream_started(self, stream: _Stream) -> None:
        start = stream.start
        assert start is not None and stream.handle is not None
        fmt = start.media_format
        log.info("stream %s started: call_control_id=%s, %s, from %s -> %s", stream.label, start.call_control_id,
                 f"{fmt.encoding} {fmt.sample_rate} Hz" if fmt else "no media_format", stream.peer, stream.folder)

        if self.on_stream is None:
            return
        result = self.on_stream(stream.handle)
        if asyncio.iscoroutine(result):
            asyncio.ensure_future(result)


async def serve(out: str | os.PathLike[str], **kwargs: Any) -> None:
    """Run a :class:`CaptureServer` in the current event loop until cancelled.

    For example ``task = asyncio.create_task(serve("captures", port=8765))``; cancelling the
    task closes every connection and finalises every open stream.
    """
    server = CaptureServer(out, **kwargs)
    await server.serve_async()
