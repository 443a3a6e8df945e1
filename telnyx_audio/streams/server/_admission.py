"""The capture server's door: connection limits, admission and authentication.

A connection is counted and capped at TCP accept (in total and per source address; more are
answered HTTP 503 at once, before a byte is read), and must then present the token: in the
upgrade (header, bearer, path segment) or in its ``connected`` message. Refusals are logged
at most 20 lines a second.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import time
from typing import TYPE_CHECKING, Any

from telnyx_audio.streams.server._host import AdmissionHost

log = logging.getLogger("telnyx_audio.server")

AUTH_HEADER = "x-telnyx-streaming-auth-token"
_AUTH_FIELDS = (AUTH_HEADER, "stream_auth_token", "auth_token", "token")
_PREAUTH_MESSAGE = 16 << 10  # largest message from a peer that has not authenticated yet
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


def _busy_response(reason: str, status: bytes = b"503 Service Unavailable") -> bytes:
    body = f"{reason}\n".encode()
    return (b"HTTP/1.1 " + status + b"\r\nContent-Type: text/plain; charset=utf-8\r\nRetry-After: 5\r\n"
            b"Connection: close\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)


# A refusal's reason (its text) -> the label it is counted under in telnyx_audio_refusals_total.
_REFUSAL_KINDS = (
    ("address not allowed", "not_allowed"), ("server busy", "busy"), ("too many connections from", "per_address"),
    ("draining", "draining"), ("no upgrade request within", "timeout"), ("no credential within", "timeout"),
    ("no start message within", "timeout"), ("message over", "oversize"), ("over ", "prestart"),
    ("wrong stream auth", "auth"), ("the auth header is repeated", "auth"), ("no valid stream auth", "auth"),
)


def refusal_kind(reason: str) -> str:
    """The metric label of a refusal reason (``other`` for one not listed).

    Examples
    --------
    >>> refusal_kind("no start message within 30 s of connecting"), refusal_kind("address not allowed: 192.0.2.1")
    ('timeout', 'not_allowed')
    """
    for prefix, kind in _REFUSAL_KINDS:
        if reason.startswith(prefix):
            return kind
    return "other"


def _connection_class() -> type:
    """websockets' ServerConnection, counted and capped at TCP accept (before any byte is read)."""
    from websockets.asyncio.server import ServerConnection

    class _Connection(ServerConnection):
        def __init__(self, owner: AdmissionHost, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.telnyx_owner = owner
            self.telnyx_peer = "?"
            self.telnyx_client: str | None = None  # behind a trusted proxy: the X-Forwarded-For client
            self.telnyx_admitted = False
            self.telnyx_authenticated = owner.auth_token is None
            self.telnyx_connected = time.monotonic()

        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            super().connection_made(transport)
            peer = transport.get_extra_info("peername")
            self.telnyx_peer = str(peer[0]) if peer else "?"
            refusal = self.telnyx_owner._not_allowed(self.telnyx_peer)
            if refusal is not None:  # not on the allow list: 403 at once, nothing read
                self.telnyx_owner._refusal(self.telnyx_peer, refusal)
                transport.write(_busy_response(refusal, b"403 Forbidden"))  # type: ignore[attr-defined]
                transport.close()
                return
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


class _Admission:
    """CaptureServer's connection slots and credential checks (a mixin: the state is set in
    :meth:`CaptureServer.__init__`)."""

    auth_token: str | None
    max_connections: int
    max_connections_per_address: int
    _connections: int
    _per_address: dict[str, int]
    _refusal_budget: tuple[float, int]
    refused: int

    _metrics: Any

    def _refusal(self, peer: str, reason: str) -> None:
        """Count a refusal and log it (at most 20 lines a second; the periodic line has the count)."""
        self.refused += 1
        kind = refusal_kind(reason)
        self._metrics.refused(kind)
        second, n = self._refusal_budget
        now = int(time.monotonic())
        if now != second:
            second, n = now, 0
        if n < 20:
            log.warning("refused %s: %s", peer, reason, extra={"event": "refused", "peer": peer, "reason": kind})
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
