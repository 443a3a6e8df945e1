"""The fork receiver's hot path: one datagram in, one record written.

As thin as a naive receiver's: a dict lookup for the sender's address (the ``allow`` check is
made once per address) and one ``os.write`` of a 12-byte header plus the datagram.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from typing import Any, Callable, Protocol

from telnyx_audio.forks._sessions import ForkSession, _Pair


class _DatagramSink(Protocol):
    """What an endpoint hands its datagrams to (the receiver)."""

    def _datagram(self, pair: _Pair, track: int, data: bytes, addr: Any) -> None:
        """Take one datagram that arrived on ``pair``'s ``track`` (0 rx, 1 tx) from ``addr``."""

log = logging.getLogger("telnyx_audio.fork.receiver")

#: Senders :attr:`ForkReceiver.dropped_from` counts one by one; later ones are counted together.
MAX_DROPPED_FROM = 1000
#: The key later senders are counted under.
OTHER_SENDERS = "(other senders)"


class _Endpoint(asyncio.DatagramProtocol):
    __slots__ = ("receiver", "pair", "track")

    def __init__(self, receiver: _DatagramSink, pair: _Pair, track: int) -> None:
        self.receiver, self.pair, self.track = receiver, pair, track

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.receiver._datagram(self.pair, self.track, data, addr)

    def error_received(self, exc: Exception) -> None:  # ICMP errors and the like: never fatal
        log.info("UDP error on port %s: %s", self.pair.rx_port if self.track == 0 else self.pair.tx_port, exc)

class _DatagramPath:
    """ForkReceiver's per-datagram work (a mixin: the state is set in
    :meth:`ForkReceiver.__init__`).

    Each track of a call belongs to its first sender (address and port) until the call
    ends: datagrams from any other are counted (per call, in its summary) and never
    written. A call holds at most ``max_call_bytes`` of capture and ``max_call_us`` of time
    (attributes: set them on the receiver before it starts); later datagrams are counted
    and dropped. A capture that cannot be opened (disk full) drops the pair's datagrams for a
    back-off (1 s, doubling to 30 s), counted in ``not_written``.
    """

    max_call_bytes: int = 1 << 30
    max_call_us: int = 4 * 3600 * 1_000_000  # Telnyx ends calls at 4 h by default
    not_written: int = 0

    allow: list[Any] | None
    dropped: int
    dropped_from: dict[str, int]
    datagrams: int
    _allowed: dict[str, bool]
    _dropped_by: dict[tuple[str, int], int]
    _service: Any
    _now_us: Callable[[], int]
    _open: Callable[[_Pair, str | None], ForkSession]

    def _datagram(self, pair: _Pair, track: int, data: bytes, addr: Any) -> None:
        host = addr[0]
        ok = self._allowed.get(host)
        if ok is None:
            ok = self._check(host)
        if not ok:
            self._dropped_by["not_allowed", track] = self._dropped_by.get(("not_allowed", track), 0) + 1
            self.dropped += 1
            if host in self.dropped_from or len(self.dropped_from) < MAX_DROPPED_FROM:
                self.dropped_from[host] = self.dropped_from.get(host, 0) + 1
            else:  # spoofed sources without end: the rest under one key, the table stays small
                self.dropped_from[OTHER_SENDERS] = self.dropped_from.get(OTHER_SENDERS, 0) + 1
            pair.n_dropped += 1
            if len(pair.dropped) < 100 or host in pair.dropped:
                pair.dropped[host] = pair.dropped.get(host, 0) + 1
            return
        session = pair.session
        now = self._now_us() // 1000
        if session is None:
            if now < pair.retry_us:  # opening failed a moment ago (disk full...): backing off
                self._dropped_by["write_error", track] = self._dropped_by.get(("write_error", track), 0) + 1
                self.not_written += 1
                return
            if self._service.drain.draining:  # no new call while draining: counted, not written
                self._dropped_by["draining", track] = self._dropped_by.get(("draining", track), 0) + 1
                return
            try:
                session = self._open(pair, None)
            except OSError as exc:  # counted and said (once per back-off), never a traceback
                self._dropped_by["write_error", track] = self._dropped_by.get(("write_error", track), 0) + 1
                self.not_written += 1
                pair.backoff_s = min(2 * pair.backoff_s, 30.0) if pair.backoff_s else 1.0
                pair.retry_us = now + int(pair.backoff_s * 1e6)
                log.error("fork on %d/%d: cannot open a call's capture (%s: %s); datagrams dropped for %g s",
                          pair.rx_port, pair.tx_port, type(exc).__name__, exc, pair.backoff_s)
                return
            pair.backoff_s = 0.0
        owner = session.sources[track]
        if owner is None:
            session.sources[track] = addr  # the track belongs to its first sender until the call ends
        elif owner != addr:
            self._dropped_by["stranger", track] = self._dropped_by.get(("stranger", track), 0) + 1
            session.strangers += 1
            key = f"{addr[0]}:{addr[1]}"
            if key in session.strangers_from or len(session.strangers_from) < 100:
                if key not in session.strangers_from:
                    log.warning("fork session %s: datagrams from %s on its %s track, which belongs to %s:%s:"
                                " dropped", session.session_id, key, "rx" if track == 0 else "tx", owner[0], owner[1])
                session.strangers_from[key] = session.strangers_from.get(key, 0) + 1
            return
        if session._writer.size >= self.max_call_bytes or now - session.started_us > self.max_call_us:
            self._dropped_by["over_limit", track] = self._dropped_by.get(("over_limit", track), 0) + 1
            session.over_limit += 1
            if session.over_limit == 1:
                log.warning("fork session %s: past the call limit (%d bytes or %g s): later datagrams dropped",
                            session.session_id, self.max_call_bytes, self.max_call_us / 1e6)
            return
        try:
            session._writer.write(track, data, now)
        except OSError as exc:  # disk full...: counted and reported, receiving goes on
            self._dropped_by["write_error", track] = self._dropped_by.get(("write_error", track), 0) + 1
            session.write_errors += 1
            session.write_error = session.write_error or f"{type(exc).__name__}: {exc}"
            return
        session.packets[track] += 1
        session.octets[track] += len(data)
        self.datagrams += 1

    def _check(self, host: str) -> bool:
        if self.allow is None:
            ok = True
        else:
            try:
                ip = ipaddress.ip_address(host.split("%", 1)[0])
            except ValueError:
                ok = False
            else:
                if ip.version == 6 and ip.ipv4_mapped is not None:
                    ip = ip.ipv4_mapped
                ok = any(ip in net for net in self.allow)
        if len(self._allowed) < 65536:
            self._allowed[host] = ok
        if not ok:  # once per sender (the answer is remembered)
            log.warning("refused %s: not in the allow list; its datagrams are counted and dropped", host,
                        extra={"event": "refused", "peer": host, "reason": "not_allowed"})
        return ok
