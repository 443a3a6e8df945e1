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
    :meth:`ForkReceiver.__init__`)."""

    allow: list[Any] | None
    dropped: int
    dropped_from: dict[str, int]
    datagrams: int
    _allowed: dict[str, bool]
    _now_us: Callable[[], int]
    _open: Callable[[_Pair, str | None], ForkSession]

    def _datagram(self, pair: _Pair, track: int, data: bytes, addr: Any) -> None:
        host = addr[0]
        ok = self._allowed.get(host)
        if ok is None:
            ok = self._check(host)
        if not ok:
            self.dropped += 1
            self.dropped_from[host] = self.dropped_from.get(host, 0) + 1
            pair.n_dropped += 1
            if len(pair.dropped) < 100 or host in pair.dropped:
                pair.dropped[host] = pair.dropped.get(host, 0) + 1
            return
        session = pair.session
        if session is None:
            session = self._open(pair, None)
        try:
            session._writer.write(track, data, self._now_us() // 1000)
        except OSError as exc:  # disk full...: counted and reported, receiving goes on
            session.write_errors += 1
            session.write_error = session.write_error or f"{type(exc).__name__}: {exc}"
            return
        session.packets[track] += 1
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
        return ok
