"""The fork receiver: asyncio UDP endpoints that write every RTP datagram of a call to disk.

One *port pair* per call: ``rx`` (what the call's party sends: the inbound track) and
``tx`` (what Telnyx sends to it: outbound). Each call gets a folder under the output root
holding ``fork.rtpcap`` (every datagram with its receive time and track, written as it
arrives; see :mod:`telnyx_audio.forks.rtpcap`), and when the call ends (stop, or
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
end of a call, in limited worker processes (:mod:`._finalizer`), so other calls keep being
received meanwhile. Each track of a call belongs to its first sender; a call is capped in
bytes and duration (see :class:`._datagrams._DatagramPath` and :class:`._sessions._Sessions`).

:class:`ForkReceiver` is assembled by subject: the hot path in :mod:`._datagrams`, port pairs
in :mod:`._ports`, sessions and their finishing (and :class:`ForkHandle`) in
:mod:`._sessions`; this module holds the settings and the receive loop.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
import logging
import os
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

from telnyx_audio.service.addresses import RTP_WARNING, parse_networks
from telnyx_audio.service.drain import loop_answers
from telnyx_audio.service.metrics import TRACKS, ForkMetrics
from telnyx_audio.service.runtime import DEFAULT_MIN_FREE_BYTES, Service
from telnyx_audio.forks._datagrams import _DatagramPath
from telnyx_audio.forks._ports import _PortPairs, _raise_fd_limit, parse_port_range
from telnyx_audio.forks._sessions import _Pair
from telnyx_audio.forks._sessions import CAPTURE_NAME, ForkSession, _Sessions, write_outputs

__all__ = ["ForkReceiver", "ForkSession", "ForkHandle", "parse_port_range", "CAPTURE_NAME", "write_outputs"]

log = logging.getLogger(__name__)

DEFAULT_RCVBUF = 4 << 20


class ForkReceiver(_DatagramPath, _PortPairs, _Sessions):
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
        counted (in ``dropped``, and per call in its summary) and never written.
        Default: every sender. It may hold ``"telnyx"``: Telnyx's published webhook and
        WebSocket ranges. The media subnets forks come from are not among them (see
        :mod:`telnyx_audio.service.addresses`), which is logged as a warning.
    payload_types : list of str, optional
        ``["96=OPUS/48000"]``: stored in each capture's header for decoding.
    redact_dtmf : bool
        Keep no typed digits: when a call ends its capture is rewritten in place (tones muted
        on both tracks, RFC 4733 events masked as ``*`` and muted around) before its WAVs,
        summary and ``redaction.json`` are written; a capture that cannot be redacted is
        deleted. Until then the datagrams sit on disk as received (the datagram path does not
        parse them); captures a crash left unredacted are redacted at the next start. See
        docs/privacy.md.
    public_host : str, optional
        The address Telnyx should send to (in ``udp:IP:PORT`` targets); default ``host``.
    rcvbuf : int
        ``SO_RCVBUF`` asked for each socket: room for bursts while the loop is busy.
    certfile, keyfile : str, optional
        Serve the metrics endpoint over HTTPS (forked RTP is plain UDP, as Telnyx sends it).
    metrics_host, metrics_port : str, int, optional
        Serve ``/metrics``, ``/healthz`` and ``/readyz`` there (see :attr:`metrics_url`).
    drain_timeout_s : float
        After :meth:`request_drain` (SIGTERM): open no new call (datagrams to an idle pair are
        counted as dropped, ``draining``), let the open calls run (until ``idle_timeout`` ends
        them) for at most this long, then finish every call.
    min_free_bytes : int
        ``/readyz`` answers 503 when the output folder's disk has less free.

    Examples
    --------
    >>> import tempfile, time
    >>> import numpy as np
    >>> from telnyx_audio.simulators.fork import simulate_fork
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
        redact_dtmf: bool = False,
        public_host: str | None = None,
        rcvbuf: int = DEFAULT_RCVBUF,
        certfile: str | os.PathLike[str] | None = None,
        keyfile: str | os.PathLike[str] | None = None,
        metrics_host: str = "127.0.0.1",
        metrics_port: int | None = None,
        drain_timeout_s: float = 0.0,
        min_free_bytes: int = DEFAULT_MIN_FREE_BYTES,
    ) -> None:
        from telnyx_audio.rtp import packet as rtp

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
        allow = [allow] if isinstance(allow, str) else list(allow or ())
        self.allow = parse_networks(allow) if allow else None
        if any(str(a).strip().lower() == "telnyx" for a in allow):
            log.warning(RTP_WARNING, extra={"event": "allow_telnyx_rtp"})
        self.payload_types = [f"{pt}={t}" for pt, t in (rtp.parse_payload_type(s) for s in payload_types or ())]
        self.out = Path(out)
        self.out.mkdir(parents=True, exist_ok=True)
        self.host = host
        self.public_host = public_host or host
        self.fixed = (rx_port, tx_port) if rx_port is not None else None
        self.listen_all = listen_all
        self.idle_timeout = idle_timeout
        self.rcvbuf = rcvbuf
        self.redact_dtmf = bool(redact_dtmf)
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
        self._dropped_by: dict[tuple[str, int], int] = {}
        self._drainer: asyncio.Future[None] | None = None
        self._service = Service(self.out, certfile=certfile, keyfile=keyfile, metrics_host=metrics_host,
                                metrics_port=metrics_port, drain_timeout_s=drain_timeout_s,
                                min_free_bytes=min_free_bytes)
        #: Prometheus metrics (:class:`telnyx_audio.service.metrics.ForkMetrics`), read off the counters.
        self.metrics = self._metrics = ForkMetrics(sample=self._sample)

    def _sample(self) -> dict[str, Any]:
        """The receiver's counts, for a scrape (read from the metrics thread: copies only)."""
        sessions = list(self.sessions)
        return {"streams": len(sessions), "active": sum(1 for s in sessions if s.state == "receiving"),
                "queue": len(self._finishing),
                "written": {t: sum(s.packets[i] for s in sessions) for i, t in enumerate(TRACKS)},
                "bytes": {t: sum(s.octets[i] for s in sessions) for i, t in enumerate(TRACKS)},
                "dropped": {(reason, TRACKS[track]): n for (reason, track), n in dict(self._dropped_by).items()},
                "write_errors": sum(s.write_errors for s in sessions)}

    @property
    def metrics_url(self) -> str | None:
        """``http(s)://host:port/`` of the metrics endpoint (None without ``metrics_port``)."""
        endpoint = self._service.endpoint
        return endpoint.url if endpoint is not None else None

    @property
    def draining(self) -> bool:
        """Whether :meth:`request_drain` was called: no new call is opened."""
        return self._service.drain.draining

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

    # --- running ----------------------------------------------------------------------------

    async def serve_async(self, *, until_idle: bool = False) -> None:
        """Receive until :meth:`request_stop`, then finish every open call.

        Parameters
        ----------
        until_idle : bool
            Stop by itself once the first call has ended by ``idle_timeout`` (one call,
            as ``telnyx-audio fork --once`` records it), instead of waiting for a stop.
        """
        from concurrent.futures import ThreadPoolExecutor

        import telnyx_audio.rtp.assemble  # noqa: F401 - load what finalising needs before calls arrive
        import telnyx_audio.model.wav  # noqa: F401

        if self.redact_dtmf:  # captures a crash left unredacted, before any new call
            from telnyx_audio.forks.redact import recover_pending

            await asyncio.to_thread(recover_pending, self.out, CAPTURE_NAME)
        self._loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        self._finisher = ThreadPoolExecutor(max_workers=max(1, int(self.finalize_workers)),
                                            thread_name_prefix="fork-finalize")
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
        self._service.start_endpoint(self._metrics.render, lambda: loop_answers(self._loop))
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
            self._service.stop_endpoint()
            self._ready.clear()

    def start(self, timeout: float = 10.0) -> "ForkReceiver":
        """Receive in a background thread with its own event loop; returns once bound.

        Parameters
        ----------
        timeout : float
            Seconds to wait for the receiver to bind its ports; raise it on a slow machine.

        Returns
        -------
        ForkReceiver
            This receiver, bound (so ``receiver = ForkReceiver(...).start()`` works); a
            second call does nothing.

        Raises
        ------
        RuntimeError
            If the receiver is not bound within ``timeout`` seconds.
        OSError
            If its ports cannot be bound (taken, or not allowed).
        """
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

    def request_drain(self) -> None:
        """From inside the loop (SIGTERM's handler): the first call drains, a second stops now.

        Draining opens no new call, lets the open ones run until they end (``idle_timeout``,
        :meth:`finish`) or ``drain_timeout_s`` passes, then finishes every call.
        """
        state = self._service.drain.signal()
        self._metrics.set_draining(True)
        if self._drainer is None:
            self._drainer = asyncio.ensure_future(self._drain())
        if state == "stopping":
            log.info("stopping now: open calls are finished", extra={"event": "drain_now"})

    def drain(self, timeout: float | None = None) -> None:
        """From any thread: :meth:`request_drain`, then wait (``timeout`` s) until the receiver stopped.

        Parameters
        ----------
        timeout : float, optional
            Seconds to wait at most; ``None`` waits as long as it takes.
        """
        self._call_in_loop(self.request_drain)
        if self._thread is not None and timeout != 0:
            self._thread.join(timeout)
            if not self._thread.is_alive():
                self._thread = None

    async def _drain(self) -> None:
        drain = self._service.drain

        def open_calls() -> int:
            return sum(1 for p in self._pairs if p.session is not None)

        log.info("draining: no new call; %d calls open, finished when they end or in %g s", open_calls(),
                 drain.timeout_s, extra={"event": "drain_started", "figures": {"calls_open": open_calls(),
                                                                               "drain_timeout_s": drain.timeout_s}})
        while not drain.expired() and open_calls() > 0:
            await asyncio.sleep(0.05)
        if self._stopping is not None:
            self._stopping.set()

    def _call_in_loop(self, callback: Callable[[], object]) -> None:
        """Run ``callback`` in the receiver's loop, if it still runs (a drain may have ended it)."""
        if self._loop is None:
            return
        try:
            self._loop.call_soon_threadsafe(callback)
        except RuntimeError:  # the loop has closed: the receiver already stopped
            pass

    def stop(self, timeout: float = 120.0) -> None:
        """Stop receiving, finish every call (WAVs and summaries) and wait for it.

        Parameters
        ----------
        timeout : float
            Seconds to wait for the receiver's thread to finish (finishing long calls takes
            a while); past it, this returns and the thread finishes on its own.
        """
        if self._stopping is not None:
            self._call_in_loop(self._stopping.set)
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def __enter__(self) -> "ForkReceiver":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@dataclass
class ForkHandle:
    """A fork started by :meth:`telnyx_audio.TelnyxClient.fork_call`; ``stop()`` ends it.

    ``session`` is the receiver's record of the call (folder, packets, then summary).

    Attributes
    ----------
    client : TelnyxClient
        The client that sent ``fork_start`` and will send ``fork_stop``.
    receiver : ForkReceiver
        The receiver the fork's packets go to.
    call_control_id : str
        The forked call.
    session : ForkSession
        The receiver's record of the call.
    started : CommandResult
        Telnyx's answer to ``fork_start``.
    stopped : CommandResult or None
        Telnyx's answer to ``fork_stop``, once :meth:`stop` sent it.
    """

    client: Any
    receiver: "ForkReceiver"
    call_control_id: str
    session: ForkSession
    started: Any
    stopped: Any = None

    @classmethod
    def start(cls, client: Any, call_control_id: str, receiver: "ForkReceiver", **kwargs: Any) -> "ForkHandle":
        """Allocate a port pair, then ``fork_start`` with its ``rx``/``tx`` targets.

        Parameters
        ----------
        client : TelnyxClient
            The client that sends ``fork_start``.
        call_control_id : str
            The call to fork, as its webhooks name it.
        receiver : ForkReceiver
            A started receiver that Telnyx can reach (its ``public_host`` set).
        **kwargs
            More options of :meth:`telnyx_audio.TelnyxClient.start_forking`
            (``stream_type``, ``client_state``...).

        Returns
        -------
        ForkHandle
            The running fork; the port pair is freed again if ``fork_start`` fails.
        """
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

        Parameters
        ----------
        finish : bool
            Write the call's WAVs and summary now; False leaves the session open, for
            packets still on their way.

        Returns
        -------
        CommandResult
            Telnyx's answer to ``fork_stop`` (also kept as ``stopped``).
        """
        try:
            self.stopped = self.client.stop_forking(self.call_control_id)
        finally:
            if finish:
                self.receiver.finish(self.session)
        return self.stopped
