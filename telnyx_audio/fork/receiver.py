"""The fork receiver: asyncio UDP endpoints that write every RTP datagram of a call to disk.

One *port pair* per call: ``rx`` (what the call's party sends: the inbound track) and
``tx`` (what Telnyx sends to it: outbound). Each call gets a folder under the output root
holding ``fork.rtpcap`` (every datagram with its receive time and track, written as it
arrives; see :mod:`telnyx_audio.fork.capturefile`), and when the call ends (stop, or
``idle_timeout`` seconds without a packet) ``inbound.wav``, ``outbound.wav``,
``stereo.wav`` and ``summary.json`` with the DTMF digits and RTP statistics.

Pairs come from a fixed ``rx_port``/``tx_port``, from a range (``ports=(40000, 40999)``:
pairs 40000/40001, 40002/40003...) or from the system (port 0). With ``listen_all`` every
pair of the range listens at once and a call begins at its first datagram; otherwise
:meth:`ForkReceiver.allocate` binds a free pair for one call (what
:meth:`telnyx_audio.TelnyxClient.fork_call` uses). Datagrams from outside ``allow`` (CIDRs)
are counted and dropped, never written.

The datagram path is as thin as the naive receiver's: a dict lookup for the sender's
address and one ``os.write`` of a 12-byte header plus the datagram. Decoding happens at the
end of a call, in one worker thread, so other calls keep being received meanwhile.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
import os
import socket
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

from telnyx_audio._paths import unique_child

__all__ = ["ForkReceiver", "ForkSession", "ForkHandle", "parse_port_range", "CAPTURE_NAME"]

log = logging.getLogger(__name__)

CAPTURE_NAME = "fork.rtpcap"
DEFAULT_RCVBUF = 4 << 20


def parse_port_range(text: str) -> tuple[int, int]:
    """``"40000-40999"`` -> ``(40000, 40999)``; the range must hold at least one pair.

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


@dataclass
class ForkSession:
    """One call's fork as received: where it is written and what arrived.

    ``state`` is ``"receiving"``, ``"finalizing"``, ``"done"`` or ``"error"``.
    """

    session_id: str
    folder: Path
    rx_port: int
    tx_port: int
    call_control_id: str | None
    started_us: int
    packets: list[int] = field(default_factory=lambda: [0, 0])
    last_packet: float | None = None  # monotonic, as of the idle check that saw it (not per packet)
    _seen: int = field(default=0, repr=False)
    write_errors: int = 0  # datagrams that could not be written (disk full...)
    write_error: str | None = None
    state: str = "receiving"
    summary: dict[str, Any] | None = None
    error: str | None = None
    done: threading.Event = field(default_factory=threading.Event, repr=False)
    _writer: Any = field(default=None, repr=False)

    @property
    def capture_path(self) -> Path:
        """The session's fork capture."""
        return self.folder / CAPTURE_NAME


class _Pair:
    """A bound rx/tx pair of UDP endpoints and the call currently on it."""

    def __init__(self, rx_port: int, tx_port: int, persistent: bool) -> None:
        self.rx_port, self.tx_port = rx_port, tx_port
        self.persistent = persistent
        self.transports: list[asyncio.DatagramTransport] = []
        self.session: ForkSession | None = None
        self.call_control_id: str | None = None
        self.n_dropped = 0  # datagrams from senders not allowed, since the pair's last call ended
        self.dropped: dict[str, int] = {}  # ... by sender (the first 100 senders)


class _Endpoint(asyncio.DatagramProtocol):
    __slots__ = ("receiver", "pair", "track")

    def __init__(self, receiver: "ForkReceiver", pair: _Pair, track: int) -> None:
        self.receiver, self.pair, self.track = receiver, pair, track

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.receiver._datagram(self.pair, self.track, data, addr)

    def error_received(self, exc: Exception) -> None:  # ICMP errors and the like: never fatal
        log.info("UDP error on port %s: %s", self.pair.rx_port if self.track == 0 else self.pair.tx_port, exc)


class ForkReceiver:
    """Receive forked RTP for one or many calls; write captures, then WAVs and summaries.

    Parameters
    ----------
    out : str or Path
        Output root; one folder per call is created in it.
    host : str
        Address to bind (``0.0.0.0`` to receive from Telnyx).
    rx_port, tx_port : int, optional
        One fixed pair (both or neither).
    ports : (int, int) or str, optional
        A range of ports to take pairs from, e.g. ``"40000-40999"``.
    listen_all : bool
        Bind every pair of ``ports`` now; a call starts at a pair's first datagram.
    idle_timeout : float, optional
        A call with no packet for this long is finished (WAVs and summary written). Counted
        from the call's last packet, so a call that has not started yet never times out.
    allow : iterable of str, optional
        CIDRs (``"10.0.0.0/8"``, ``"192.0.2.7"``) whose datagrams are kept; others are
        counted (in :attr:`dropped`, and per call in its summary) and never written.
        Default: every sender.
    payload_types : list of str, optional
        ``["96=OPUS/48000"]``: stored in each capture's header for decoding.
    public_host : str, optional
        The address Telnyx should send to (in ``udp:IP:PORT`` targets); default ``host``.
    rcvbuf : int
        ``SO_RCVBUF`` asked for each socket: room for bursts while the loop is busy.

    Examples
    --------
    >>> import tempfile, time
    >>> import numpy as np
    >>> from telnyx_audio.fork import simulate_fork
    >>> with ForkReceiver(tempfile.mkdtemp()) as receiver:
    ...     call = receiver.allocate("v3:example")
    ...     sent = simulate_fork(np.zeros((2, 1600), np.int16), ("127.0.0.1", call.rx_port),
    ...                          ("127.0.0.1", call.tx_port), dtmf=[(0.1, "3")])
    ...     while sum(call.packets) < sent.packets_sent:
    ...         time.sleep(0.01)
    ...     _ = receiver.finish(call)
    >>> call.state, call.summary["dtmf"], sorted(p.name for p in call.folder.iterdir())
    ('done', '3', ['fork.rtpcap', 'inbound.wav', 'outbound.wav', 'stereo.wav', 'summary.json'])
    """

    def __init__(
        self,
        out: str | os.PathLike[str],
        *,
        host: str = "127.0.0.1",
        rx_port: int | None = None,
        tx_port: int | None = None,
        ports: tuple[int, int] | str | None = None,
        listen_all: bool = False,
        idle_timeout: float | None = None,
        allow: Iterable[str] | None = None,
        payload_types: Sequence[str] | None = None,
        public_host: str | None = None,
        rcvbuf: int = DEFAULT_RCVBUF,
    ) -> None:
        from telnyx_audio import rtp

        if (rx_port is None) != (tx_port is None):
            raise ValueError("give both rx_port and tx_port, or neither")
        if rx_port is not None and ports is not None:
            raise ValueError("give either rx_port/tx_port or ports, not both")
        for name, p in (("rx_port", rx_port), ("tx_port", tx_port)):
            if p is not None and not (isinstance(p, int) and 0 <= p <= 65535):
                raise ValueError(f"{name} must be a port number 0-65535, got {p!r}")
        if rx_port is not None and rx_port == tx_port and rx_port != 0:
            raise ValueError(f"rx_port and tx_port must differ, both are {rx_port}")
        self.port_range = parse_port_range(ports) if isinstance(ports, str) else ports
        if listen_all and self.port_range is None:
            raise ValueError("listen_all needs a port range (ports=)")
        if idle_timeout is not None and not idle_timeout > 0:
            raise ValueError(f"idle_timeout must be a positive number of seconds, got {idle_timeout!r}")
        self.allow = [ipaddress.ip_network(c, strict=False) for c in allow] if allow else None
        self.payload_types = [f"{pt}={t}" for pt, t in (rtp.parse_payload_type(s) for s in payload_types or ())]
        self.out = Path(out)
        self.out.mkdir(parents=True, exist_ok=True)
        self.host = host
        self.public_host = public_host or host
        self.fixed = (rx_port, tx_port) if rx_port is not None else None
        self.listen_all = listen_all
        self.idle_timeout = idle_timeout
        self.rcvbuf = rcvbuf
        self.sessions: list[ForkSession] = []
        self.dropped = 0
        self.dropped_from: dict[str, int] = {}
        self.datagrams = 0
        self._allowed: dict[str, bool] = {}
        self._pairs: list[_Pair] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._ready = threading.Event()
        self._thread: threading.Thread | None = None
        self._finisher: Any = None
        self._finishing: set[asyncio.Future] = set()
        self._now_us = time.time_ns

    # --- the live view ----------------------------------------------------------------------

    @property
    def listening(self) -> bool:
        """Whether the receiver's sockets are bound."""
        return self._ready.is_set()

    @property
    def pairs(self) -> list[tuple[int, int]]:
        """The bound ``(rx_port, tx_port)`` pairs."""
        return [(p.rx_port, p.tx_port) for p in self._pairs]

    def __repr__(self) -> str:
        return (f"<ForkReceiver {self.host} pairs={len(self._pairs)} sessions={len(self.sessions)}"
                f" datagrams={self.datagrams} dropped={self.dropped} out={self.out}>")

    # --- the hot path -----------------------------------------------------------------------

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

    # --- sessions ---------------------------------------------------------------------------

    def _open(self, pair: _Pair, call_control_id: str | None) -> ForkSession:
        from telnyx_audio.fork.capturefile import ForkCaptureWriter

        started = self._now_us() // 1000
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(started / 1e6))
        folder = unique_child(self.out, call_control_id or f"fork-{pair.rx_port}-{pair.tx_port}-{stamp}")
        session = ForkSession(
            session_id=str(uuid.uuid4()), folder=folder, rx_port=pair.rx_port, tx_port=pair.tx_port,
            call_control_id=call_control_id, started_us=started,
        )
        meta = {"session_id": session.session_id, "call_control_id": call_control_id, "host": self.host,
                "rx_port": pair.rx_port, "tx_port": pair.tx_port, "started_us": started,
                "payload_types": dict(s.split("=", 1) for s in self.payload_types)}
        session._writer = ForkCaptureWriter(session.capture_path, meta)
        pair.session = session
        self.sessions.append(session)
        log.info("fork session %s on %d/%d -> %s", session.session_id, pair.rx_port, pair.tx_port, folder)
        return session

    def _finish(self, pair: _Pair) -> asyncio.Future | None:
        """Close the pair's session and finalise it in the worker thread."""
        session = pair.session
        if session is None:
            return None
        pair.session = None
        session._writer.close()
        session.state = "finalizing"
        extra = {"receiver": {"rx_port": session.rx_port, "tx_port": session.tx_port,
                              "datagrams_written": sum(session.packets),
                              "datagrams_not_written": session.write_errors, "write_error": session.write_error,
                              "datagrams_dropped_not_allowed": pair.n_dropped,
                              "dropped_from": dict(pair.dropped)}}
        pair.n_dropped, pair.dropped = 0, {}
        assert self._loop is not None
        fut = self._loop.run_in_executor(self._finisher, _finalize, session, extra)
        self._finishing.add(fut)
        fut.add_done_callback(self._finishing.discard)
        if not pair.persistent:
            self._release(pair)
        return fut

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

    async def finish_async(self, session: ForkSession) -> ForkSession:
        """End a session now (write WAVs and summary) and wait for it."""
        pair = next((p for p in self._pairs if p.session is session), None)
        if pair is not None:
            pair.call_control_id = None
            fut = self._finish(pair)
            if fut is not None:
                await fut
        while session.state in ("receiving", "finalizing"):
            await asyncio.sleep(0.01)
        return session

    def finish(self, session: ForkSession, timeout: float = 120.0) -> ForkSession:
        """Blocking :meth:`finish_async`, from any thread but the receiver's own."""
        if self._loop is None:
            raise RuntimeError("the receiver is not running")
        return asyncio.run_coroutine_threadsafe(self.finish_async(session), self._loop).result(timeout)

    # --- running ----------------------------------------------------------------------------

    async def serve_async(self, *, until_idle: bool = False) -> None:
        """Receive until :meth:`request_stop` (or, with ``until_idle``, until the first call
        has ended by ``idle_timeout``); then finish every open call."""
        from concurrent.futures import ThreadPoolExecutor

        import telnyx_audio.fork.assemble  # noqa: F401 - load what finalising needs before calls arrive
        import telnyx_audio.wav  # noqa: F401

        self._loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        self._finisher = ThreadPoolExecutor(max_workers=1, thread_name_prefix="fork-finalize")
        try:
            if self.fixed is not None:
                await self._bind_pair(*self.fixed, True)
            elif self.listen_all:
                assert self.port_range is not None
                lo, hi = self.port_range
                _raise_fd_limit(2 * (hi - lo + 1) + 256)  # a socket per port, a capture per call
                for rx in range(lo, hi, 2):
                    await self._bind_pair(rx, rx + 1, True)
        except OSError:
            for pair in list(self._pairs):
                self._release(pair)
            self._finisher.shutdown(wait=False)
            raise
        self._ready.set()
        tick = min(1.0, self.idle_timeout / 4) if self.idle_timeout else 1.0
        try:
            while not self._stopping.is_set():
                try:
                    await asyncio.wait_for(self._stopping.wait(), tick)
                except asyncio.TimeoutError:
                    pass
                if self.idle_timeout:
                    # Activity is read off the packet counts once a tick: nothing per packet.
                    now = time.monotonic()
                    for pair in list(self._pairs):
                        s = pair.session
                        if s is None:
                            continue
                        count = s.packets[0] + s.packets[1]
                        if count != s._seen:
                            s._seen, s.last_packet = count, now
                        elif s.last_packet is not None and now - s.last_packet > self.idle_timeout:
                            log.info("fork session %s idle for %.1f s: finishing", s.session_id, self.idle_timeout)
                            pair.call_control_id = None
                            self._finish(pair)
                            if until_idle:
                                self._stopping.set()
        finally:
            for pair in list(self._pairs):
                self._finish(pair)
                self._release(pair)
            while self._finishing:
                await asyncio.gather(*list(self._finishing), return_exceptions=True)
            self._finisher.shutdown(wait=True)
            self._ready.clear()

    def start(self, timeout: float = 10.0) -> "ForkReceiver":
        """Receive in a background thread with its own event loop; returns once bound."""
        if self._thread is not None:
            return self
        failure: list[BaseException] = []

        def run() -> None:
            try:
                asyncio.run(self.serve_async())
            except OSError as exc:
                failure.append(exc)
                self._ready.set()

        self._thread = threading.Thread(target=run, name="fork-receiver", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            raise RuntimeError(f"fork receiver did not start on {self.host}")
        if failure:
            self._thread = None
            raise failure[0]
        return self

    def request_stop(self) -> None:
        """From inside the loop (a signal handler): stop receiving and finish every call."""
        if self._stopping is not None:
            self._stopping.set()

    def stop(self, timeout: float = 120.0) -> None:
        """Stop receiving, finish every call (WAVs and summaries) and wait for it."""
        if self._loop is not None and self._stopping is not None:
            self._loop.call_soon_threadsafe(self._stopping.set)
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def __enter__(self) -> "ForkReceiver":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


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


def _finalize(session: ForkSession, extra: dict[str, Any]) -> None:
    """Worker thread: read the session's capture, write WAVs and ``summary.json``."""
    from telnyx_audio.errors import TelnyxAudioError
    from telnyx_audio.fork.assemble import read_fork_capture

    try:
        capture = read_fork_capture(session.capture_path)
        session.summary = write_outputs(capture, session.folder, extra)
        session.state = "done"
    except (TelnyxAudioError, OSError, ValueError) as exc:
        session.error = f"{type(exc).__name__}: {exc}"
        session.state = "error"
        log.error("fork session %s: %s", session.session_id, session.error)
    finally:
        session.done.set()


def write_outputs(capture: Any, folder: Path, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Write a capture's WAVs and ``summary.json`` with :func:`telnyx_audio.wav.write_call`,
    then add ``extra`` keys (the receiver's counts) to the summary, again atomically."""
    from telnyx_audio.wav import write_call

    summary = dict(write_call(capture, folder))
    if not extra:
        return summary
    summary.update(extra)
    tmp = folder / ".summary.json.tmp"
    with open(tmp, "w") as f:
        f.write(json.dumps(summary, indent=2) + "\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, folder / "summary.json")
    return summary


@dataclass
class ForkHandle:
    """A fork started by :meth:`telnyx_audio.TelnyxClient.fork_call`; ``stop()`` ends it.

    ``session`` is the receiver's record of the call (folder, packets, then summary).
    """

    client: Any
    receiver: ForkReceiver
    call_control_id: str
    session: ForkSession
    started: Any
    stopped: Any = None

    @classmethod
    def start(cls, client: Any, call_control_id: str, receiver: ForkReceiver, **kwargs: Any) -> "ForkHandle":
        """Allocate a port pair, then ``fork_start`` with its ``rx``/``tx`` targets."""
        receiver.target(None)  # a receiver Telnyx cannot be told how to reach: fail before binding
        session = receiver.allocate(call_control_id)
        try:
            rx, tx = receiver.target(session)
            started = client.start_forking(call_control_id, rx=rx, tx=tx, **kwargs)
        except BaseException:
            receiver.finish(session)
            raise
        return cls(client, receiver, call_control_id, session, started)

    @property
    def rx(self) -> str:
        """The ``rx`` target sent to Telnyx."""
        return self.receiver.target(self.session)[0]

    @property
    def tx(self) -> str:
        """The ``tx`` target sent to Telnyx."""
        return self.receiver.target(self.session)[1]

    def stop(self, *, finish: bool = True) -> Any:
        """``fork_stop``, then (unless ``finish=False``) write the call's WAVs and summary.

        The session is finished even when Telnyx answers with an error (the call may have
        ended already): nothing received is lost.
        """
        try:
            self.stopped = self.client.stop_forking(self.call_control_id)
        finally:
            if finish:
                self.receiver.finish(self.session)
        return self.stopped
