"""Port pairs of the fork receiver: parsing a range, binding a pair, allocating one per call.

A pair is ``rx`` (the call's party: inbound) and ``tx`` (Telnyx: outbound), two UDP sockets
bound together; :meth:`ForkReceiver.allocate` takes a free one from the range (or from the
system) and :meth:`ForkReceiver.target` gives the ``udp:IP:PORT`` targets for ``fork_start``.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
from typing import Any

from telnyx_audio.forks._datagrams import _Endpoint

from telnyx_audio.forks._sessions import ForkSession, _Pair

log = logging.getLogger("telnyx_audio.fork.receiver")


def parse_port_range(text: str) -> tuple[int, int]:
    """``"40000-40999"`` -> ``(40000, 40999)``; the range must hold at least one pair.

    Parameters
    ----------
    text : str
        ``LOW-HIGH``, as ``telnyx-audio fork --ports`` takes it.

    Returns
    -------
    (int, int)
        The lowest and highest port, both included.

    Raises
    ------
    ValueError
        If ``text`` is not two ports within 1-65535, the lower first.

    Examples
    --------
    >>> parse_port_range("40000-40999")
    (40000, 40999)
    """
    lo, sep, hi = str(text).partition("-")
    try:
        a, b = int(lo), int(hi)
    except ValueError:
        a = b = -1
    if not sep or not 1 <= a < b <= 65535:
        raise ValueError(f"ports must be a range LOW-HIGH of at least two ports within 1-65535, got {text!r}")
    return a, b

def _raise_fd_limit(wanted: int) -> None:
    """Raise the soft open-files limit towards ``wanted`` (up to the hard limit), where the
    platform has one: 1024 is a common default, and a port range can need more."""
    try:
        import resource
    except ImportError:  # not on Windows
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError) as exc:
            log.warning("cannot raise the open-files limit to %d: %s", target, exc)

class _PortPairs:
    """ForkReceiver's port pairs (a mixin: the state is set in :meth:`ForkReceiver.__init__`)."""

    host: str
    public_host: str
    rcvbuf: int
    fixed: tuple[int, int] | None
    listen_all: bool
    port_range: tuple[int, int] | None
    _pairs: list[_Pair]
    _loop: asyncio.AbstractEventLoop | None
    _service: Any

    def _release(self, pair: _Pair) -> None:
        for tr in pair.transports:
            tr.close()
        pair.transports.clear()
        if pair in self._pairs:
            self._pairs.remove(pair)

    async def _bind_pair(self, rx: int, tx: int, persistent: bool) -> _Pair:
        assert self._loop is not None
        pair = _Pair(rx, tx, persistent)
        socks = []
        try:
            for port in (rx, tx):
                socks.append(self._socket(port))
        except OSError:
            for s in socks:
                s.close()
            raise
        for track, sock in enumerate(socks):
            tr, _ = await self._loop.create_datagram_endpoint(lambda t=track: _Endpoint(self, pair, t), sock=sock)
            pair.transports.append(tr)
        pair.rx_port, pair.tx_port = (s.getsockname()[1] for s in socks)
        self._pairs.append(pair)
        return pair

    def _socket(self, port: int) -> socket.socket:
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.rcvbuf)
            sock.bind((self.host, port))
        except OSError:
            sock.close()
            raise
        sock.setblocking(False)
        return sock

    async def allocate_async(self, call_control_id: str | None = None) -> ForkSession:
        """Bind a free pair for one call (from the range, else from the system) and open its
        session; the folder is named after ``call_control_id`` when given."""
        if self._loop is None:
            raise RuntimeError("the receiver is not running (start() it first)")
        if self._service.drain.draining:
            raise RuntimeError("the receiver is draining: it takes no new call")
        if self.fixed is not None:
            pair = self._pairs[0]
            if pair.session is not None or pair.call_control_id is not None:
                raise RuntimeError(f"the receiver's one pair {pair.rx_port}/{pair.tx_port} is in use")
        elif self.listen_all:
            pair = next((p for p in self._pairs if p.session is None and p.call_control_id is None), None)
            if pair is None:
                raise RuntimeError("every port pair of the range is in use")
        else:
            pair = await self._free_pair()
        pair.call_control_id = call_control_id or ""
        self._open(pair, call_control_id)
        assert pair.session is not None
        return pair.session

    async def _free_pair(self) -> _Pair:
        if self.port_range is None:
            return await self._bind_pair(0, 0, False)
        lo, hi = self.port_range
        used = {p for pair in self._pairs for p in (pair.rx_port, pair.tx_port)}
        for rx in range(lo, hi, 2):
            if rx in used or rx + 1 in used:
                continue
            try:
                return await self._bind_pair(rx, rx + 1, False)
            except OSError:
                continue  # taken by another program: try the next pair
        raise RuntimeError(f"no free port pair in {lo}-{hi}")

    def allocate(self, call_control_id: str | None = None, timeout: float = 10.0) -> ForkSession:
        """Blocking :meth:`allocate_async`, from any thread but the receiver's own."""
        if self._loop is None:
            raise RuntimeError("the receiver is not running (start() it first)")
        return asyncio.run_coroutine_threadsafe(self.allocate_async(call_control_id), self._loop).result(timeout)

    def target(self, session: ForkSession | None) -> tuple[str, str]:
        """The ``udp:IP:PORT`` ``rx`` and ``tx`` targets of a session, for ``fork_start``
        (with ``session=None``: only check that there can be targets).

        Raises
        ------
        ValueError
            If the receiver binds every address (``0.0.0.0``, ``::``) and no
            ``public_host`` says which one Telnyx can reach.
        """
        try:
            unspecified = ipaddress.ip_address(self.public_host).is_unspecified
        except ValueError:
            unspecified = False
        if unspecified:
            raise ValueError(f"the receiver binds {self.public_host!r}: give public_host= (the IP address Telnyx"
                             " can send to) for the fork's rx/tx targets")
        host = f"[{self.public_host}]" if ":" in self.public_host else self.public_host
        if session is None:
            return f"udp:{host}:0", f"udp:{host}:0"
        return f"udp:{host}:{session.rx_port}", f"udp:{host}:{session.tx_port}"
