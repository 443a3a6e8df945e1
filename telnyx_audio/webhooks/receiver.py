"""A webhook receiver: a real HTTP server that verifies Telnyx deliveries and logs them.

Each POST is verified (:func:`telnyx_audio.webhooks.verify_webhook`). A valid delivery is
appended to the verified log, flushed and fsynced, and only then answered 200, so nothing
acknowledged is lost to a crash. Everything else is answered 4xx and goes to the rejected
log, never the verified one (bounded: a body not verified is kept to its first
``REJECTED_BODY_PREFIX`` bytes, and the log takes limited records a second and bytes in all):

======  =====================================================================
400     malformed: missing or bad headers, a body that is not a JSON object, a security
        header (signature, timestamp, Content-Length, Transfer-Encoding) given twice
401     the signature does not match, or it was made outside the tolerance
408     the request was not complete within ``read_timeout_s`` of the connection's start
        (or of the previous request's end)
409     a replay: the same signature (its decoded bytes, so no base64 spelling of it slips
        through) was already accepted while its timestamp is acceptable
411     no Content-Length (chunked bodies are not accepted)
413     a body over the size limit (not read)
503     ``max_connections`` connections are already open (answered and closed at once)
======  =====================================================================

Replays are refused across restarts: at start, the deliveries of the verified log whose
timestamps are still acceptable are remembered again (the log is read backwards, only as far
as they go). Each signature is kept until its timestamp leaves the tolerance window, on
either side.

Every request is read under one deadline (``read_timeout_s`` for its request line, headers
and body, counted from the connection's start or the previous answer), so a slow sender
holds a thread for at most that long, and at most ``max_connections`` threads (each holding
at most ``max_body`` bytes) exist at once. Refusals and deliveries are logged with
:mod:`logging` (logger ``telnyx_audio.webhooks.receiver``).

Why not an ASGI application under uvicorn: uvicorn caps concurrency and closes idle
keep-alive connections, but it has no deadline for a request's headers or body, so a slow
drip would still need one by hand; with that, the standard library server bounded here is
smaller than a new dependency, and the HTTP it parses is the same (one request per
connection at a time, Content-Length bodies only).

Each log line is one JSON object: ``received_at`` (UTC ISO-8601), ``remote``, ``path``,
``headers`` (lower-case names), the body exactly as received (``body``, or ``body_b64`` when
it is not UTF-8), ``verified``, ``error`` and, when known, ``event_type`` and ``id``.
:func:`telnyx_audio.webhooks.load_webhooks` reads these logs.

Start it from the command line (``telnyx-audio webhooks serve``), or in a notebook::

    rx = WebhookReceiver("hooks.jsonl", public_key).start()
    rx.url   # give this to Telnyx (through a tunnel)
    rx.stop()
"""

from __future__ import annotations

import base64
import binascii
import errno
import hashlib
import heapq
import io
import json
import logging
import os
import socket
import ssl
import threading
import time
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Iterator

from telnyx_audio.service.metrics import WebhookMetrics
from telnyx_audio.service.runtime import DEFAULT_MIN_FREE_BYTES, Service
from telnyx_audio.errors import (
    InvalidSignatureError,
    TimestampToleranceError,
    WebhookVerificationError,
)
from telnyx_audio.model.redact import mask_webhook_record
from telnyx_audio.webhooks import (
    DEFAULT_TOLERANCE_S,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    load_public_key,
    verify_webhook,
)

__all__ = ["WebhookReceiver"]

log = logging.getLogger("telnyx_audio.receiver")

DEFAULT_MAX_BODY = 1 << 20
DEFAULT_MAX_CONNECTIONS = 64
DEFAULT_READ_TIMEOUT_S = 10.0
_MAX_DRAIN = 1 << 20
# What an unauthenticated sender can make us store: a refused body before its signature is
# verified is kept only to this prefix (with its full length and sha256), each header value
# too, and the rejected log takes at most so many records a second and so many bytes in all.
REJECTED_BODY_PREFIX = 4096
_REJECTED_HEADER_PREFIX = 1024
# Header names and the request path are the sender's too (http.server takes up to 64 KiB a
# line, 100 headers): a refused request's are kept to these prefixes.
_REJECTED_NAME_PREFIX = 128
_REJECTED_PATH_PREFIX = 1024
# A Content-Length is ASCII digits, at most this many (a 1 EB body is 19 digits): anything
# else (``²``, which str.isdigit() accepts; thousands of digits, which int() refuses) is 400.
_MAX_LENGTH_DIGITS = 18
DEFAULT_MAX_REJECTED_BYTES = 64 << 20
DEFAULT_MAX_REJECTED_PER_S = 50
# Headers whose second copy could make what is verified differ from what is logged or framed.
_SINGLE = (SIGNATURE_HEADER, TIMESTAMP_HEADER, "content-length", "transfer-encoding")


def _signature_key(text: str) -> bytes | None:
    """The signature's bytes: the replay key (base64 ignores spare bits, so texts can differ)."""
    try:
        return base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        return None


def _tail_lines(path: Path, block: int = 1 << 20) -> Iterator[bytes]:
    """The lines of a file, last first, read in blocks from its end."""
    with open(path, "rb") as f:
        pos = f.seek(0, os.SEEK_END)
        rest = b""
        while pos > 0:
            step = min(block, pos)
            pos -= step
            f.seek(pos)
            lines = (f.read(step) + rest).split(b"\n")
            rest = lines[0]
            yield from reversed(lines[1:])
        if rest:
            yield rest


class _Throttle:
    """At most ``per_second`` log lines a second for one kind of event (a flood cannot flood the log)."""

    def __init__(self, per_second: int = 20) -> None:
        self.per_second, self.second, self.n = per_second, 0, 0
        self.lock = threading.Lock()

    def allow(self) -> bool:
        with self.lock:
            now = int(time.monotonic())
            if now != self.second:
                self.second, self.n = now, 0
            self.n += 1
            return self.n <= self.per_second


class _DeadlineReader(io.RawIOBase):
    """A socket read under one deadline: each recv waits only for the time left."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.deadline = time.monotonic()

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("request not complete before its deadline")
        self.sock.settimeout(left)
        return self.sock.recv_into(buffer)


class _Log:
    """An append-only JSONL file; every record is on disk before append() returns.

    With ``max_bytes`` or ``per_second`` a record that would pass the file's size limit, or
    come past the rate, is not written: append() returns False and ``skipped`` counts it.
    """

    def __init__(self, path: Path, max_bytes: int | None = None, per_second: int | None = None) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._file = open(path, "ab")
        self._size = self._file.tell()
        self.max_bytes = max_bytes
        self._rate = _Throttle(per_second) if per_second else None
        self.skipped = 0
        self._lock = threading.Lock()

    def append(self, record: dict[str, Any]) -> bool:
        line = json.dumps(record, ensure_ascii=False).encode() + b"\n"
        with self._lock:
            if self._file.closed:  # the receiver stopped under a late request: it is answered 500
                raise OSError(errno.EBADF, f"the log {self.path} is closed")
            full = self.max_bytes is not None and self._size + len(line) > self.max_bytes
            if full or (self._rate is not None and not self._rate.allow()):
                self.skipped += 1
                if self.skipped == 1:
                    why = f"its limit of {self.max_bytes} bytes" if full else f"{self._rate.per_second} records a second"
                    log.warning("the log %s is at %s: further records are counted, not written", self.path, why)
                return False
            self._file.write(line)
            self._file.flush()
            os.fsync(self._file.fileno())
            self._size += len(line)
            return True

    def close(self) -> None:
        with self._lock:
            self._file.close()


class _Handler(BaseHTTPRequestHandler):
    server: "_Server"
    protocol_version = "HTTP/1.1"

    def setup(self) -> None:
        super().setup()
        self._reader = _DeadlineReader(self.connection)
        self.rfile = io.BufferedReader(self._reader)

    def handle_one_request(self) -> None:
        # One deadline for the whole request (line, headers, body), from the connection's
        # start or the previous answer: a slow drip cannot hold the thread longer.
        self._reader.deadline = time.monotonic() + self.server.receiver.read_timeout_s
        super().handle_one_request()

    def log_message(self, format: str, *args: Any) -> None:  # quiet: the logs are the JSONL files
        pass

    def log_error(self, format: str, *args: Any) -> None:
        if self.server.receiver._throttle.allow():
            log.warning("%s: %s", self.client_address[0], format % args)

    def _answer(self, status: int, message: str) -> None:
        body = json.dumps({"ok": status == 200, "message": message}).encode()
        self.connection.settimeout(self.server.receiver.read_timeout_s)  # a reader that never reads
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        if self.path.rstrip("/") in ("/healthz", ""):
            self._answer(200, "webhook receiver: POST Telnyx deliveries here")
        else:
            self._answer(404, "not found")

    def do_POST(self) -> None:  # noqa: N802
        self.server.receiver._handle(self)


class _Server(ThreadingHTTPServer):
    """One thread per connection, at most ``receiver.max_connections`` of them."""

    daemon_threads = True
    allow_reuse_address = True
    receiver: "WebhookReceiver"
    _active = 0
    _active_lock = threading.Lock()

    def process_request(self, request: Any, client_address: Any) -> None:
        policy = self.receiver._service.policy
        peer = client_address[0]
        if not policy.allowed(peer) and not policy.is_proxy(peer):  # 403 at once: no thread, nothing read
            self.receiver._refused(peer, 403, f"address not allowed: {peer}", kind="not_allowed")
            self._refuse(request, b"403 Forbidden", b'{"ok": false, "message": "address not allowed"}')
            return
        with self._active_lock:
            admitted = self._active < self.receiver.max_connections
            if admitted:
                self._active += 1
        if not admitted:  # answered and closed here: no thread, no buffer
            self.receiver._refused(client_address[0], 503, f"{self.receiver.max_connections} connections open",
                                   kind="busy")
            self._refuse(request, b"503 Service Unavailable", b'{"ok": false, "message": "too many connections"}')
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            with self._active_lock:
                self._active -= 1
            raise

    def _refuse(self, request: Any, status: bytes, body: bytes) -> None:
        if self.receiver._service.tls is None:  # over TLS there is no handshake yet: closed without a word
            try:
                request.settimeout(1.0)
                request.sendall(b"HTTP/1.1 " + status + b"\r\nContent-Type: application/json\r\n"
                                b"Retry-After: 5\r\nConnection: close\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
            except OSError:
                pass
        self.shutdown_request(request)

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            with self._active_lock:
                self._active -= 1

    def finish_request(self, request: Any, client_address: Any) -> None:
        context = self.receiver._service.tls
        if context is None:
            super().finish_request(request, client_address)
            return
        request.settimeout(self.receiver.read_timeout_s)  # the handshake's deadline
        try:
            wrapped = context.wrap_socket(request, server_side=True)
        except (OSError, ssl.SSLError) as exc:  # plain HTTP to the TLS port, a bad client, a timeout
            self.receiver._refused(client_address[0], 0, f"TLS handshake failed: {exc}", kind="tls")
            return
        try:
            super().finish_request(wrapped, client_address)
        finally:
            wrapped.close()


class WebhookReceiver:
    """Receive, verify and log Telnyx webhook deliveries over HTTP.

    Parameters
    ----------
    out : str or Path
        The verified log (JSONL, appended).
    public_key : str or bytes
        The Telnyx public key (base64 as in the portal, raw, SPKI DER or PEM).
    host, port : str, int
        Where to listen; port 0 picks a free one (see :attr:`url`).
    rejected : str or Path, optional
        The rejected log; default ``<out stem>.rejected.jsonl`` next to ``out``.
    max_body : int
        Largest body accepted, in bytes (1 MiB by default; Telnyx deliveries are small).
    tolerance_s : float
        Allowed signing-time skew, both ways.
    read_timeout_s : float
        Time for a whole request (line, headers and body) to arrive; slower ones get 408.
    max_connections : int
        Connections served at once; more are answered 503 and closed.
    redact_dtmf : bool
        Keep no typed digits: each record holds, instead of the body, the delivery as parsed
        with its digits masked (``body_redacted``; ``redacted: true``) and the result of the
        signature check (``verified``). The trade-off: the signature can no longer be checked
        again from the log (the raw body is gone), only trusted as recorded. See
        docs/privacy.md.
    max_rejected_bytes, max_rejected_per_s : int
        The rejected log's size limit (the file as a whole, 64 MiB by default) and rate
        (records a second, 50 by default): unauthenticated senders cannot fill the disk.
        Refusals past either are still answered and counted (:attr:`rejected_unlogged`),
        not written; the first one is logged as a warning.
    certfile, keyfile : str, optional
        Serve ``https://`` (the metrics endpoint too) with this certificate chain and key.
    allow : iterable of str, optional
        CIDRs or addresses allowed to post, and ``"telnyx"`` (Telnyx's published webhook
        ranges); others are answered 403 at once, counted and logged. Default: everyone.
    trusted_proxies : iterable of str, optional
        Reverse proxies whose ``X-Forwarded-For`` names the sender (then checked, logged as
        ``remote``, with the proxy as ``proxy``).
    metrics_host, metrics_port : str, int, optional
        Serve ``/metrics``, ``/healthz`` and ``/readyz`` there (see :attr:`metrics_url`).
    drain_timeout_s : float
        After :meth:`request_drain` (SIGTERM): stop accepting, let requests in flight finish
        for at most this long, then close the logs.
    min_free_bytes : int
        ``/readyz`` answers 503 when the logs' disk has less free.

    Attributes
    ----------
    counts : dict
        ``{"verified": n, "rejected": n}`` since start.
    rejected_unlogged : int
        Refusals not written to the rejected log (past its size or rate limit).
    remembered : int
        Signatures read back from the verified log at start (still within the tolerance).

    Examples
    --------
    >>> import tempfile, requests
    >>> rx = WebhookReceiver(tempfile.mkdtemp() + "/hooks.jsonl", "11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=")
    >>> with rx:
    ...     requests.post(rx.url, data=b"{}", timeout=10).status_code
    400
    """

    def __init__(
        self,
        out: str | os.PathLike[str],
        public_key: str | bytes,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        rejected: str | os.PathLike[str] | None = None,
        max_body: int = DEFAULT_MAX_BODY,
        tolerance_s: float = DEFAULT_TOLERANCE_S,
        read_timeout_s: float = DEFAULT_READ_TIMEOUT_S,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
        redact_dtmf: bool = False,
        max_rejected_bytes: int = DEFAULT_MAX_REJECTED_BYTES,
        max_rejected_per_s: int = DEFAULT_MAX_REJECTED_PER_S,
        certfile: str | os.PathLike[str] | None = None,
        keyfile: str | os.PathLike[str] | None = None,
        allow: Any = None,
        trusted_proxies: Any = None,
        metrics_host: str = "127.0.0.1",
        metrics_port: int | None = None,
        drain_timeout_s: float = 0.0,
        min_free_bytes: int = DEFAULT_MIN_FREE_BYTES,
    ) -> None:
        self.public_key = load_public_key(public_key)
        if not isinstance(max_body, int) or max_body <= 0:
            raise ValueError(f"max_body must be a positive number of bytes, got {max_body!r}")
        if not isinstance(read_timeout_s, (int, float)) or not read_timeout_s > 0:
            raise ValueError(f"read_timeout_s must be a positive number of seconds, got {read_timeout_s!r}")
        if not isinstance(max_connections, int) or isinstance(max_connections, bool) or max_connections < 1:
            raise ValueError(f"max_connections must be a positive integer, got {max_connections!r}")
        for name, value in (("max_rejected_bytes", max_rejected_bytes), ("max_rejected_per_s", max_rejected_per_s)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        out = Path(out)
        self._service = Service(out.parent, certfile=certfile, keyfile=keyfile, allow=allow,
                                trusted_proxies=trusted_proxies, metrics_host=metrics_host, metrics_port=metrics_port,
                                drain_timeout_s=drain_timeout_s, min_free_bytes=min_free_bytes)
        #: Prometheus metrics (:class:`telnyx_audio.service.metrics.WebhookMetrics`).
        self.metrics = WebhookMetrics()
        self.verified_log = _Log(out)
        self.rejected_log = _Log(Path(rejected) if rejected else out.with_name(out.stem + ".rejected.jsonl"),
                                 max_rejected_bytes, max_rejected_per_s)
        self.max_body = max_body
        self.tolerance_s = tolerance_s
        self.read_timeout_s = float(read_timeout_s)
        self.max_connections = max_connections
        self.counts = {"verified": 0, "rejected": 0}
        self.redact_dtmf = bool(redact_dtmf)
        self._throttle = _Throttle()
        # Signatures (decoded bytes) accepted while their timestamps are acceptable, with a
        # heap of when each stops being so.
        self._seen: set[bytes] = set()
        self._expiry: list[tuple[float, bytes]] = []
        self._seen_lock = threading.Lock()
        self.remembered = self._remember(out, time.time())
        self._server = _Server((host, port), _Handler)
        self._server.receiver = self
        self._thread: threading.Thread | None = None
        self._serving = threading.Event()
        self._stopped = threading.Event()
        self._drainer: threading.Thread | None = None

    def _expires(self, timestamp: int) -> float:
        # verify_webhook accepts while abs(int(now - timestamp)) <= tolerance_s
        return timestamp + self.tolerance_s + 1

    def _remember(self, path: Path, now: float) -> int:
        """Load the still-acceptable signatures of the verified log; returns how many."""
        if not path.exists():
            return 0
        # A delivery received more than 2 tolerances ago (+ slack) has a timestamp long expired.
        oldest = now - 2 * self.tolerance_s - 60
        n = 0
        for line in _tail_lines(path):
            try:
                record = json.loads(line)
                headers = record["headers"]
                timestamp = int(headers[TIMESTAMP_HEADER])
                key = _signature_key(headers[SIGNATURE_HEADER])
                received = datetime.fromisoformat(record["received_at"]).timestamp()
            except (ValueError, KeyError, TypeError):
                continue  # a partial or foreign line
            if received < oldest:
                break
            if key is not None and self._expires(timestamp) > now and key not in self._seen:
                self._seen.add(key)
                heapq.heappush(self._expiry, (self._expires(timestamp), key))
                n += 1
        return n

    @property
    def url(self) -> str:
        """The URL to POST deliveries to."""
        host, port = self._server.server_address[:2]
        return f"http{self._service.scheme}://{host}:{port}/"

    @property
    def metrics_url(self) -> str | None:
        """``http(s)://host:port/`` of the metrics endpoint (None without ``metrics_port``)."""
        endpoint = self._service.endpoint
        return endpoint.url if endpoint is not None else None

    @property
    def draining(self) -> bool:
        """Whether :meth:`request_drain` was called: no new connection is accepted."""
        return self._service.drain.draining

    def _serve(self) -> None:
        self._serving.set()
        try:
            self._server.serve_forever()
        finally:
            self._serving.clear()

    def _live(self) -> bool:
        return self._serving.is_set() or self._drainer is not None and self._drainer.is_alive()

    def start(self) -> "WebhookReceiver":
        """Serve in a background thread (works inside Jupyter's running event loop).

        Returns
        -------
        WebhookReceiver
            This receiver, serving (so ``receiver = WebhookReceiver(...).start()`` works);
            a second call does nothing.
        """
        if self._thread is None:
            self._service.start_endpoint(self.metrics.render, self._live)
            self._thread = threading.Thread(target=self._serve, name="webhook-receiver", daemon=True)
            self._thread.start()
        return self

    def serve_forever(self) -> None:
        """Serve in this thread until :meth:`stop` (or KeyboardInterrupt)."""
        self._service.start_endpoint(self.metrics.render, self._live)
        try:
            self._serve()
        finally:
            self._close()

    def stop(self) -> None:
        """Stop serving and close the logs."""
        self._server.shutdown()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        self._close()

    def request_drain(self) -> None:
        """SIGTERM: the first call stops accepting and lets requests in flight finish (for at
        most ``drain_timeout_s``), then closes the logs; a second call closes them at once.
        Returns at once (safe in a signal handler); :meth:`wait_stopped` waits for the end.
        """
        state = self._service.drain.signal()
        self.metrics.set_draining(True)
        if self._drainer is None:
            self._drainer = threading.Thread(target=self._drain, name="webhook-drain", daemon=True)
            self._drainer.start()
        if state == "stopping":
            log.info("stopping now", extra={"event": "drain_now"})

    def _drain(self) -> None:
        drain = self._service.drain
        log.info("draining: not accepting; %d requests in flight", self._server._active,
                 extra={"event": "drain_started", "figures": {"in_flight": self._server._active,
                                                              "drain_timeout_s": drain.timeout_s}})
        self._server.shutdown()  # serve_forever returns: no new connection is accepted
        self._server.socket.close()
        while self._server._active > 0 and not drain.expired():
            drain.stop_now.wait(0.05)
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        self._close()

    def wait_stopped(self, timeout: float | None = None) -> bool:
        """Wait until the receiver stopped (after :meth:`request_drain` or :meth:`stop`).

        Parameters
        ----------
        timeout : float, optional
            Seconds to wait at most; ``None`` waits as long as it takes.

        Returns
        -------
        bool
            Whether it has stopped.
        """
        return self._stopped.wait(timeout)

    def _close(self) -> None:
        if self._stopped.is_set():
            return
        self._stopped.set()
        self._service.stop_endpoint()
        self._server.server_close()
        self.verified_log.close()
        self.rejected_log.close()
        if self.rejected_unlogged:
            log.warning("%d refusals were not written to %s (past its size or rate limit)", self.rejected_unlogged,
                        self.rejected_log.path)

    def __enter__(self) -> "WebhookReceiver":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"<WebhookReceiver {self.url} verified={self.counts['verified']} rejected={self.counts['rejected']}>"

    # One request, on the server's thread for it.
    def _handle(self, req: _Handler) -> None:
        now = time.time()
        peer = req.client_address[0]
        policy = self._service.policy
        remote = policy.client(peer, req.headers.get_all("X-Forwarded-For"))
        record: dict[str, Any] = {
            "received_at": datetime.fromtimestamp(now, timezone.utc).isoformat(),
            "remote": remote,
            "path": req.path,
            "headers": {k.lower(): v for k, v in req.headers.items()},
        }
        if remote != peer:
            record["proxy"] = peer
        if policy.is_proxy(peer) and not policy.allowed(remote):
            req.close_connection = True
            self.metrics.refused("not_allowed")
            return self._reject(req, record, 403, f"address not allowed: {remote} (via proxy {peer})")
        for name in _SINGLE:
            values = req.headers.get_all(name) or []
            if len(values) > 1:
                req.close_connection = True
                return self._reject(req, record, 400, f"the {name} header is given {len(values)} times; one is expected")
        if req.headers.get("Transfer-Encoding") is not None:
            req.close_connection = True
            return self._reject(req, record, 411, "chunked bodies are not accepted: send a Content-Length")
        length_text = req.headers.get("Content-Length")
        digits = length_text.strip(" \t") if length_text is not None else ""
        if length_text is None or not (0 < len(digits) <= _MAX_LENGTH_DIGITS and digits.isascii() and digits.isdigit()):
            req.close_connection = True
            status = 411 if length_text is None else 400
            shown = length_text[:32] if length_text is not None else None
            return self._reject(req, record, status, "a Content-Length header with the body size (ASCII digits,"
                                f" at most {_MAX_LENGTH_DIGITS}) is required, got {shown!r}")
        length = int(digits)
        if length > self.max_body:
            # Read and drop a modest excess so the client sees the 413; cut off the rest.
            left = length if length <= _MAX_DRAIN else 0
            try:
                while left > 0:
                    chunk = req.rfile.read(min(left, 1 << 16))
                    if not chunk:
                        break
                    left -= len(chunk)
            except OSError:  # its deadline: the answer is the same
                pass
            req.close_connection = True
            return self._reject(req, record, 413, f"body of {length} bytes exceeds the limit of {self.max_body}")
        try:
            body = req.rfile.read(length)
        except OSError:  # TimeoutError included: the deadline passed
            req.close_connection = True
            return self._reject(req, record, 408, f"the body was not received within {self.read_timeout_s:g} s")
        if len(body) < length:
            req.close_connection = True
            return self._reject(req, record, 400, f"body ended after {len(body)} of {length} bytes")
        try:
            event = verify_webhook(body, req.headers.items(), self.public_key, tolerance_s=self.tolerance_s, now=now)
        except (InvalidSignatureError, TimestampToleranceError) as exc:
            return self._reject(req, _with_body(record, body, REJECTED_BODY_PREFIX), 401, str(exc))
        except WebhookVerificationError as exc:
            return self._reject(req, _with_body(record, body, REJECTED_BODY_PREFIX), 400, str(exc))
        _with_body(record, body)  # verified: kept whole (a replay's too)
        data = event.get("data") if isinstance(event.get("data"), dict) else event  # the flat shape has no data
        record["event_type"], record["id"] = data.get("event_type"), data.get("id", data.get("webhook_id"))
        key = _signature_key(req.headers[SIGNATURE_HEADER])
        assert key is not None  # verify_webhook decoded it
        expires = self._expires(int(req.headers[TIMESTAMP_HEADER].strip()))
        with self._seen_lock:
            while self._expiry and self._expiry[0][0] <= now:
                self._seen.discard(heapq.heappop(self._expiry)[1])
            replay = key in self._seen
            if not replay:
                self._seen.add(key)
                heapq.heappush(self._expiry, (expires, key))
        if replay:
            return self._reject(req, record, 409, "replay: this signature was already accepted")
        record["verified"], record["error"] = True, None
        if self.redact_dtmf:
            mask_webhook_record(record, event)
        try:
            self.verified_log.append(record)  # on disk before the 200
        except OSError as exc:
            with self._seen_lock:  # not kept, so Telnyx's retry must be accepted
                self._seen.discard(key)
            self.metrics.write_error()
            log.error("cannot write the verified log %s: %s", self.verified_log.path, exc.strerror or exc,
                      extra={"event": "write_error"})
            req.close_connection = True
            return req._answer(500, "the delivery could not be stored; retry")
        self.counts["verified"] += 1
        self.metrics.webhook("verified")
        log.info("verified %s %s from %s", record["event_type"], record["id"], record["remote"],
                 extra={"event": "webhook_verified", "peer": record["remote"],
                        "figures": {"event_type": record["event_type"], "id": record["id"]}})
        req._answer(200, "ok")

    def _refused(self, peer: str, status: int, reason: str, *, kind: str | None = None) -> None:
        """Log a refusal (throttled); with ``kind``, count it in ``telnyx_audio_refusals_total``."""
        if kind is not None:
            self.metrics.refused(kind)
        if self._throttle.allow():
            log.warning("refused %s: %d %s", peer, status, reason,
                        extra={"event": "refused", "peer": peer, "reason": kind or str(status)})

    @property
    def rejected_unlogged(self) -> int:
        """Refusals not written to the rejected log (past its size or rate limit)."""
        return self.rejected_log.skipped

    def _reject(self, req: _Handler, record: dict[str, Any], status: int, reason: str) -> None:
        record.update(verified=False, error=reason, status=status)
        # What the sender said is kept only in part: header names and values (a replay's too:
        # its headers are not signed) and the path, each cut to a prefix.
        record["headers"] = {k[:_REJECTED_NAME_PREFIX]: v[:_REJECTED_HEADER_PREFIX] for k, v in record["headers"].items()}
        if len(record["path"]) > _REJECTED_PATH_PREFIX:
            record.update(path=record["path"][:_REJECTED_PATH_PREFIX], path_truncated=len(record["path"]))
        self._refused(record["remote"], status, reason)
        if self.redact_dtmf:
            mask_webhook_record(record)
        try:
            self.rejected_log.append(record)
        except OSError as exc:
            self.metrics.write_error()
            log.error("cannot write the rejected log %s: %s", self.rejected_log.path, exc.strerror or exc)
        self.counts["rejected"] += 1
        self.metrics.webhook("replayed" if status == 409 else "rejected")
        req._answer(status, reason)


def _with_body(record: dict[str, Any], body: bytes, limit: int | None = None) -> dict[str, Any]:
    """Put the body in a log record: ``body`` (UTF-8) or ``body_b64``, whole or its first ``limit`` bytes.

    A cut body says so: ``body_truncated``, with the whole body's ``body_bytes`` and
    ``body_sha256`` (to match it against a sender's copy).
    """
    kept = body if limit is None or len(body) <= limit else body[:limit]
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        record["body_b64"] = base64.b64encode(kept).decode()
    else:  # ignore: only a character the cut split
        record["body"] = text if kept is body else kept.decode("utf-8", "ignore")
    if len(kept) < len(body):
        record.update(body_truncated=True, body_bytes=len(body), body_sha256=hashlib.sha256(body).hexdigest())
    return record
