"""The capture server: its settings, the serve loop and one connection's handler.

Admission and authentication live in :mod:`telnyx_audio.streams.server._admission`, the streams and
the live view in :mod:`telnyx_audio.streams.server._registry`.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from collections import deque
from pathlib import Path
from typing import Any, Callable

from telnyx_audio.service.drain import loop_answers
from telnyx_audio.service.metrics import StreamMetrics
from telnyx_audio.service.runtime import DEFAULT_MIN_FREE_BYTES, Service
from telnyx_audio.streams.server._admission import (
    _FD_RESERVE,
    _FDS_PER_STREAM,
    _PREAUTH_MESSAGE,
    _Admission,
    _connection_class,
    _raise_fd_limit,
)
from telnyx_audio.streams.server._finalize import FinalizerPool
from telnyx_audio.streams.server._registry import _Latency, _Registry
from telnyx_audio.streams.server._stream import MediaStream, PrestartOverflow, StreamInfo, _Stream

__all__ = ["CaptureServer", "serve", "DEFAULT_MAX_MESSAGE"]

log = logging.getLogger("telnyx_audio.server")
# websockets' own per-connection lines ("connection open"...) repeat ours: warnings only, by default.
logging.getLogger("telnyx_audio.server.websockets").setLevel(logging.WARNING)

DEFAULT_MAX_MESSAGE = 1 << 20


class CaptureServer(_Admission, _Registry):
    """A WebSocket server that records Telnyx media streams, one folder per stream.

    It is built to face the internet: every connection is held to deadlines and limits
    (below), finishing calls are finalised in worker processes, and what happens is logged
    through :mod:`logging` (logger ``telnyx_audio.streams.server``): one line per stream start, end,
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
    redact_dtmf : bool
        What callers type does not stay on disk: ``dtmf`` messages are logged with the digit
        masked (``"*"``), and each log is redacted in place when its stream is finalised (tones
        muted on both tracks) before its WAVs, summary and ``redaction.json`` are written; a
        log that cannot be redacted is deleted. Logs a crash left unredacted are redacted when
        the server starts. See docs/privacy.md for how long a tone sits on disk and why.
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
    certfile, keyfile : str, optional
        Serve ``wss://`` (and the metrics endpoint over HTTPS) with this certificate chain
        and key (PEM; ``keyfile`` may be omitted when ``certfile`` holds the key).
    allow : iterable of str, optional
        CIDRs or addresses allowed to connect, and ``"telnyx"`` for Telnyx's published
        ranges (:func:`telnyx_audio.service.addresses.telnyx_ranges`); others are answered
        403 at once, counted and logged. Default: every address.
    trusted_proxies : iterable of str, optional
        Reverse proxies (CIDRs) whose ``X-Forwarded-For`` names the client: its address is
        then the one checked against ``allow``, logged and recorded as the stream's peer.
    metrics_host, metrics_port : str, int, optional
        Serve ``/metrics`` (Prometheus), ``/healthz`` and ``/readyz`` there (port 0: a free
        one, see :attr:`metrics_url`). Default: no endpoint (:attr:`metrics` still counts).
    drain_timeout_s : float
        After :meth:`drain` (SIGTERM on the command line): stop accepting, let open calls run
        this long, then finalise them. 0 (the default): finalise at once.
    min_free_bytes : int
        ``/readyz`` answers 503 when the output folder's disk has less free (1 GiB).
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
        redact_dtmf: bool = False,
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
        certfile: str | os.PathLike[str] | None = None,
        keyfile: str | os.PathLike[str] | None = None,
        allow: Any = None,
        trusted_proxies: Any = None,
        metrics_host: str = "127.0.0.1",
        metrics_port: int | None = None,
        drain_timeout_s: float = 0.0,
        min_free_bytes: int = DEFAULT_MIN_FREE_BYTES,
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
        self._service = Service(self.out, certfile=certfile, keyfile=keyfile, allow=allow,
                                trusted_proxies=trusted_proxies, metrics_host=metrics_host, metrics_port=metrics_port,
                                drain_timeout_s=drain_timeout_s, min_free_bytes=min_free_bytes)
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
        self.redact_dtmf = bool(redact_dtmf)
        self._pool = FinalizerPool(finalize_workers, float(finalize_timeout_s), finalize_memory_bytes,
                                   redact_dtmf=self.redact_dtmf)
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
        self._drainer: asyncio.Future[None] | None = None
        #: The server's Prometheus metrics (:class:`telnyx_audio.service.metrics.StreamMetrics`).
        self.metrics = self._metrics = StreamMetrics(active=self._n_active, queue=lambda: self._pool.queued)

    def _n_active(self) -> int:
        with self._lock:
            return sum(1 for s in self._open if s.state == "open" and s.start is not None)

    @property
    def metrics_url(self) -> str | None:
        """``http(s)://host:port/`` of the metrics endpoint (None without ``metrics_port``)."""
        endpoint = self._service.endpoint
        return endpoint.url if endpoint is not None else None

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
        if self.redact_dtmf:  # logs a crash left unredacted, before any new call
            await self._pool.recover(self.out)
        connection_class = _connection_class()
        tls = {"ssl": self._service.tls, "ssl_handshake_timeout": self.auth_timeout_s} if self._service.tls else {}
        self._server = await ws_serve(
            self._handler, self.host, self.port, process_request=self._process_request, **tls,
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
        self._service.start_endpoint(self._metrics.render, lambda: loop_answers(self._loop))
        self._ready.set()
        log.info("listening on %s -> %s (max %d connections, %d per address; allowed: %s)", self.url, self.out,
                 self.max_connections, self.max_connections_per_address, self._service.policy.describe(),
                 extra={"event": "listening", "figures": {"port": self.port}})
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
        self._service.stop_endpoint()
        log.info("stopped: %d streams finished, %d connections refused", self._n_finished, self.refused,
                 extra={"event": "stopped", "figures": {"streams": self._n_finished, "refused": self.refused}})

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
                         len(self._finishing), self._pool.queued, self.refused,
                         extra={"event": "stats", "figures": {
                             "streams_active": started, "awaiting_start": len(open_) - started,
                             "frames_per_s": round(rate, 1), "finalizing": len(self._finishing),
                             "finalize_queue": self._pool.queued, "refused": self.refused}})

    def start(self, timeout: float = 10.0) -> "CaptureServer":
        """Serve in a background thread with its own event loop; returns once listening.

        Parameters
        ----------
        timeout : float
            Seconds to wait for the server to listen; raise it on a slow machine.

        Returns
        -------
        CaptureServer
            This server, listening (so ``server = CaptureServer(...).start()`` works); a
            second call does nothing.

        Raises
        ------
        RuntimeError
            If the server is not listening within ``timeout`` seconds.
        """
        if self._thread is not None:
            return self
        self._thread = threading.Thread(target=lambda: asyncio.run(self.serve_async()), name="capture-server", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            raise RuntimeError(f"capture server did not start listening on {self.host}:{self.port}")
        return self

    def stop(self, timeout: float = 60.0) -> None:
        """Close every connection, finalise every stream (WAVs, summaries), stop listening.

        Parameters
        ----------
        timeout : float
            Seconds to wait for the server's thread to finish (finalising long calls takes
            a while); past it, this returns and the thread finishes on its own.
        """
        if self._loop is not None and self._stopping is not None:
            self._loop.call_soon_threadsafe(self._stopping.set)
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def request_stop(self) -> None:
        """From inside the loop (a signal handler): stop as :meth:`stop` does."""
        if self._stopping is not None:
            self._stopping.set()

    def request_drain(self) -> None:
        """From inside the loop (SIGTERM's handler): the first call drains, a second stops now.

        Draining stops accepting connections (``/readyz`` answers 503), lets the open calls
        run for at most ``drain_timeout_s``, then finalises every stream as :meth:`stop` does.
        """
        state = self._service.drain.signal()
        self._metrics.set_draining(True)
        if self._drainer is None:
            self._drainer = asyncio.ensure_future(self._drain())
        if state == "stopping":
            log.info("stopping now: open streams are ended and finalised", extra={"event": "drain_now"})

    def drain(self, timeout: float | None = None) -> None:
        """From any thread: :meth:`request_drain`, then wait (``timeout`` s) until the server stopped.

        Parameters
        ----------
        timeout : float, optional
            Seconds to wait at most; ``None`` waits as long as it takes.
        """
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self.request_drain)
        if self._thread is not None and timeout != 0:
            self._thread.join(timeout)
            if not self._thread.is_alive():
                self._thread = None

    @property
    def draining(self) -> bool:
        """Whether :meth:`drain` was called: no new connection is accepted."""
        return self._service.drain.draining

    async def _drain(self) -> None:
        drain = self._service.drain
        self._server.server.close()  # no new connections; the open ones run on
        with self._lock:
            n = sum(1 for s in self._open if s.state == "open")
        log.info("draining: not accepting; %d streams open, finalised when they end or in %g s", n,
                 drain.timeout_s, extra={"event": "drain_started",
                                         "figures": {"streams_open": n, "drain_timeout_s": drain.timeout_s}})
        while not drain.expired() and self._connections > 0:
            await asyncio.sleep(0.05)
        if self._connections > 0:
            log.info("drain over: %d connections still open are ended", self._connections,
                     extra={"event": "drain_expired", "figures": {"connections": self._connections}})
        if self._stopping is not None:
            self._stopping.set()

    def __enter__(self) -> "CaptureServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- a connection ----------------------------------------------------------------------

    async def _handler(self, connection: Any) -> None:
        from websockets.exceptions import ConnectionClosed

        stream = _Stream(self, connection, connection.telnyx_client or connection.telnyx_peer,
                         connection.telnyx_authenticated)
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
            self._metrics.write_error()
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

    def _stream_started(self, stream: _Stream) -> None:
        start = stream.start
        assert start is not None and stream.handle is not None
        fmt = start.media_format
        self._metrics.stream_started()
        log.info("stream %s started: call_control_id=%s, %s, from %s -> %s", stream.label, start.call_control_id,
                 f"{fmt.encoding} {fmt.sample_rate} Hz" if fmt else "no media_format", stream.peer, stream.folder,
                 extra={"event": "stream_started", "stream_id": start.stream_id,
                        "call_control_id": start.call_control_id, "peer": stream.peer, "folder": str(stream.folder),
                        "figures": {"encoding": fmt.encoding if fmt else None,
                                    "sample_rate": fmt.sample_rate if fmt else None}})

        if self.on_stream is None:
            return
        result = self.on_stream(stream.handle)
        if asyncio.iscoroutine(result):
            asyncio.ensure_future(result)


    def _process_request(self, connection: Any, request: Any) -> Any:
        """The upgrade: the client behind a trusted proxy, the allow list, drain, then the token."""
        from http import HTTPStatus

        policy = self._service.policy
        peer = connection.telnyx_peer
        if policy.is_proxy(peer):
            client = policy.client(peer, request.headers.get_all("X-Forwarded-For"))
            connection.telnyx_client = client
            if not policy.allowed(client):
                self._refusal(client, f"address not allowed: {client} (via proxy {peer})")
                return connection.respond(HTTPStatus.FORBIDDEN, "address not allowed\n")
        if self._service.drain.draining:
            self._refusal(connection.telnyx_client or peer, "draining: not accepting new streams")
            return connection.respond(HTTPStatus.SERVICE_UNAVAILABLE, "draining\n")
        return self._check_upgrade(connection, request)

    def _not_allowed(self, peer: str) -> str | None:
        """At TCP accept: why ``peer`` is refused by the allow list (a trusted proxy is checked at the upgrade)."""
        policy = self._service.policy
        if policy.allowed(peer) or policy.is_proxy(peer):
            return None
        return f"address not allowed: {peer}"


async def serve(out: str | os.PathLike[str], **kwargs: Any) -> None:
    """Run a :class:`CaptureServer` in the current event loop until cancelled.

    For example ``task = asyncio.create_task(serve("captures", port=8765))``; cancelling the
    task closes every connection and finalises every open stream.

    Parameters
    ----------
    out : str or Path
        Output root, one folder per stream; created.
    **kwargs
        The other parameters of :class:`CaptureServer` (``host``, ``port``,
        ``auth_token``, ``on_stream``...).
    """
    server = CaptureServer(out, **kwargs)
    await server.serve_async()
