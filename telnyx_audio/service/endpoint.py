"""The metrics and health endpoint of a server, on its own port (``metrics_port``).

=============  ===========================================================================
``/metrics``   the server's Prometheus registry (text format 0.0.4)
``/healthz``   200 while the server answers (its event loop runs a callback within 2 s;
               the webhook receiver: its serving thread is alive), else 503
``/readyz``    200 while the server accepts calls; 503 with the reason while it drains,
               when its output folder cannot be written, or when the disk holding it has
               less than ``min_free_bytes`` free
=============  ===========================================================================

It runs in a thread of its own (a small :class:`http.server.ThreadingHTTPServer`), so a
stuck event loop shows as a failing ``/healthz`` rather than as no answer. With a TLS
context it speaks HTTPS (the handshake is made in the connection's thread, under a
deadline). At most 16 requests are served at once; a request must arrive within 5 s.
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import ssl
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable

__all__ = ["HealthEndpoint", "storage_problem", "DEFAULT_MIN_FREE_BYTES"]

log = logging.getLogger("telnyx_audio.service")

#: ``/readyz`` fails when the output folder's disk has less than this free (1 GiB).
DEFAULT_MIN_FREE_BYTES = 1 << 30
_MAX_REQUESTS = 16
_REQUEST_TIMEOUT_S = 5.0


def storage_problem(folder: str | os.PathLike[str], min_free_bytes: int) -> str | None:
    """Why ``folder`` cannot take captures now (not writable, disk nearly full), or None.

    Writability is tested by creating and removing a file (permission bits do not tell, for
    root).

    Examples
    --------
    >>> import tempfile
    >>> storage_problem(tempfile.mkdtemp(), 0) is None
    True
    >>> storage_problem(tempfile.mkdtemp(), 1 << 62).startswith("disk nearly full")
    True
    """
    folder = Path(folder)
    probe = folder / f".readyz-{uuid.uuid4().hex}"
    try:
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        return f"output folder {folder} is not writable: {exc.strerror or exc}"
    try:
        free = shutil.disk_usage(folder).free
    except OSError as exc:
        return f"cannot read the free space of {folder}: {exc.strerror or exc}"
    if free < min_free_bytes:
        return f"disk nearly full: {free} bytes free under {folder}, below min_free_bytes={min_free_bytes}"
    return None


class _Handler(BaseHTTPRequestHandler):
    server: "_Server"
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # probes every few seconds: not logged
        pass

    def _send(self, status: int, body: bytes, content_type: str = "text/plain; charset=utf-8") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        endpoint = self.server.endpoint
        path = self.path.split("?", 1)[0].rstrip("/")
        if path == "/metrics":
            from prometheus_client import CONTENT_TYPE_LATEST

            self._send(200, endpoint.render(), CONTENT_TYPE_LATEST)
        elif path == "/healthz":
            ok = endpoint.live()
            self._send(200 if ok else 503, b"ok\n" if ok else b"not answering\n")
        elif path == "/readyz":
            problem = endpoint.ready()
            self._send(200 if problem is None else 503, b"ready\n" if problem is None else (problem + "\n").encode())
        else:
            self._send(404, b"not found: /metrics, /healthz or /readyz\n")

    do_HEAD = do_GET


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    endpoint: "HealthEndpoint"

    def __init__(self, address: tuple[str, int], context: ssl.SSLContext | None) -> None:
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        super().__init__(address, _Handler)
        self.context = context
        self.slots = threading.BoundedSemaphore(_MAX_REQUESTS)

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self.slots.acquire(blocking=False):  # too many at once: closed, no thread
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self.slots.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self.slots.release()

    def finish_request(self, request: Any, client_address: Any) -> None:
        request.settimeout(_REQUEST_TIMEOUT_S)
        if self.context is None:
            super().finish_request(request, client_address)
            return
        try:
            wrapped = self.context.wrap_socket(request, server_side=True)
        except (OSError, ssl.SSLError):  # a failed handshake (plain HTTP to the TLS port...)
            return
        try:
            super().finish_request(wrapped, client_address)
        finally:
            wrapped.close()


class HealthEndpoint:
    """``/metrics``, ``/healthz`` and ``/readyz`` of one server, served from a thread.

    Parameters
    ----------
    render : callable
        Returns the metrics text (``Metrics.render``).
    live : callable
        Returns whether the server answers.
    ready : callable
        Returns None when the server accepts calls, else why not.
    host, port : str, int
        Where to listen (port 0: a free one, see :attr:`port`).
    ssl_context : ssl.SSLContext, optional
        Serve HTTPS.

    Examples
    --------
    >>> import requests
    >>> with HealthEndpoint(lambda: b"x 1\\n", lambda: True, lambda: "draining") as ep:
    ...     [requests.get(ep.url + p, timeout=5).status_code for p in ("metrics", "healthz", "readyz")]
    [200, 200, 503]
    """

    def __init__(self, render: Callable[[], bytes], live: Callable[[], bool], ready: Callable[[], str | None], *,
                 host: str = "127.0.0.1", port: int = 0, ssl_context: ssl.SSLContext | None = None) -> None:
        self.render, self.live, self.ready = render, live, ready
        self._server = _Server((host, port), ssl_context)
        self._server.endpoint = self
        self._tls = ssl_context is not None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        """The port listened on."""
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """``http(s)://host:port/``."""
        host = self._server.server_address[0]
        host = f"[{host}]" if ":" in host else host
        return f"{'https' if self._tls else 'http'}://{host}:{self.port}/"

    def start(self) -> "HealthEndpoint":
        """Serve in a daemon thread."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.2},
                                            name="metrics-endpoint", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the port."""
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(10)
            self._thread = None
        self._server.server_close()

    def __enter__(self) -> "HealthEndpoint":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
