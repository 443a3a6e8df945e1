"""A webhook receiver: a real HTTP server that verifies Telnyx deliveries and logs them.

Each POST is verified (:func:`telnyx_audio.webhooks.verify_webhook`). A valid delivery is
appended to the verified log, flushed and fsynced, and only then answered 200, so nothing
acknowledged is lost to a crash. Everything else is answered 4xx and goes to the rejected
log, never the verified one:

======  =====================================================================
400     malformed: missing or bad headers, a body that is not a JSON object
401     the signature does not match, or it was made outside the tolerance
409     a replay: the same signature already accepted within the tolerance
411     no Content-Length (chunked bodies are not accepted)
413     a body over the size limit (not read)
======  =====================================================================

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
import json
import os
import threading
import time
from collections import deque
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from telnyx_audio.errors import (
    InvalidSignatureError,
    TimestampToleranceError,
    WebhookVerificationError,
)
from telnyx_audio.webhooks import DEFAULT_TOLERANCE_S, SIGNATURE_HEADER, load_public_key, verify_webhook

__all__ = ["WebhookReceiver"]

DEFAULT_MAX_BODY = 1 << 20
_MAX_DRAIN = 64 << 20


class _Log:
    """An append-only JSONL file; every record is on disk before append() returns."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._file = open(path, "ab")
        self._lock = threading.Lock()

    def append(self, record: dict[str, Any]) -> None:
        line = json.dumps(record, ensure_ascii=False).encode() + b"\n"
        with self._lock:
            self._file.write(line)
            self._file.flush()
            os.fsync(self._file.fileno())

    def close(self) -> None:
        with self._lock:
            self._file.close()


class _Handler(BaseHTTPRequestHandler):
    server: "_Server"
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # quiet: the logs are the JSONL files
        pass

    def _answer(self, status: int, message: str) -> None:
        body = json.dumps({"ok": status == 200, "message": message}).encode()
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
    daemon_threads = True
    allow_reuse_address = True
    receiver: "WebhookReceiver"


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
    ) -> None:
        self.public_key = load_public_key(public_key)
        if not isinstance(max_body, int) or max_body <= 0:
            raise ValueError(f"max_body must be a positive number of bytes, got {max_body!r}")
        out = Path(out)
        self.verified_log = _Log(out)
        self.rejected_log = _Log(Path(rejected) if rejected else out.with_name(out.stem + ".rejected.jsonl"))
        self.max_body = max_body
        self.tolerance_s = tolerance_s
        self.counts = {"verified": 0, "rejected": 0}
        # Signatures accepted within the tolerance, oldest first (expiries come in order).
        self._seen: set[str] = set()
        self._expiry: deque[tuple[float, str]] = deque()
        self._seen_lock = threading.Lock()
        self._server = _Server((host, port), _Handler)
        self._server.receiver = self
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """The URL to POST deliveries to."""
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/"

    def start(self) -> "WebhookReceiver":
        """Serve in a background thread (works inside Jupyter's running event loop)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._server.serve_forever, name="webhook-receiver", daemon=True)
            self._thread.start()
        return self

    def serve_forever(self) -> None:
        """Serve in this thread until :meth:`stop` (or KeyboardInterrupt)."""
        try:
            self._server.serve_forever()
        finally:
            self._close()

    def stop(self) -> None:
        """Stop serving and close the logs."""
        self._server.shutdown()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        self._close()

    def _close(self) -> None:
        self._server.server_close()
        self.verified_log.close()
        self.rejected_log.close()

    def __enter__(self) -> "WebhookReceiver":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"<WebhookReceiver {self.url} verified={self.counts['verified']} rejected={self.counts['rejected']}>"

    # One request, on the server's thread for it.
    def _handle(self, req: _Handler) -> None:
        now = time.time()
        record: dict[str, Any] = {
            "received_at": datetime.fromtimestamp(now, timezone.utc).isoformat(),
            "remote": req.client_address[0],
            "path": req.path,
            "headers": {k.lower(): v for k, v in req.headers.items()},
        }
        length_text = req.headers.get("Content-Length")
        if length_text is None or not length_text.strip().isdigit():
            req.close_connection = True
            status = 411 if length_text is None else 400
            return self._reject(req, record, status, "a Content-Length header with the body size is required")
        length = int(length_text)
        if length > self.max_body:
            # Read and drop a modest excess so the client sees the 413; cut off the rest.
            left = length if length <= _MAX_DRAIN else 0
            while left > 0:
                chunk = req.rfile.read(min(left, 1 << 16))
                if not chunk:
                    break
                left -= len(chunk)
            req.close_connection = True
            return self._reject(req, record, 413, f"body of {length} bytes exceeds the limit of {self.max_body}")
        body = req.rfile.read(length)
        if len(body) < length:
            req.close_connection = True
            return self._reject(req, record, 400, f"body ended after {len(body)} of {length} bytes")
        try:
            record["body"] = body.decode("utf-8")
        except UnicodeDecodeError:
            record["body_b64"] = base64.b64encode(body).decode()
        try:
            event = verify_webhook(body, req.headers.items(), self.public_key, tolerance_s=self.tolerance_s, now=now)
        except (InvalidSignatureError, TimestampToleranceError) as exc:
            return self._reject(req, record, 401, str(exc))
        except WebhookVerificationError as exc:
            return self._reject(req, record, 400, str(exc))
        data = event.get("data") if isinstance(event.get("data"), dict) else {}
        record["event_type"], record["id"] = data.get("event_type"), data.get("id")
        signature = req.headers.get(SIGNATURE_HEADER, "").strip()
        with self._seen_lock:
            while self._expiry and self._expiry[0][0] <= now:
                self._seen.discard(self._expiry.popleft()[1])
            replay = signature in self._seen
            if not replay:
                self._seen.add(signature)
                self._expiry.append((now + 2 * self.tolerance_s, signature))
        if replay:
            return self._reject(req, record, 409, "replay: this signature was already accepted")
        record["verified"], record["error"] = True, None
        self.verified_log.append(record)  # on disk before the 200
        self.counts["verified"] += 1
        req._answer(200, "ok")

    def _reject(self, req: _Handler, record: dict[str, Any], status: int, reason: str) -> None:
        record.update(verified=False, error=reason, status=status)
        self.rejected_log.append(record)
        self.counts["rejected"] += 1
        req._answer(status, reason)
