"""The fork receiver's calls: a session's record, its opening and finishing, and the handle
:meth:`telnyx_audio.TelnyxClient.fork_call` returns.

A session is finished (its capture read, WAVs and ``summary.json`` written) in one worker
thread, so other calls keep being received meanwhile.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from telnyx_audio._util.paths import unique_child


log = logging.getLogger("telnyx_audio.fork.receiver")

CAPTURE_NAME = "fork.rtpcap"


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

class _Sessions:
    """ForkReceiver's sessions (a mixin: the state is set in :meth:`ForkReceiver.__init__`)."""

    out: Path
    host: str
    payload_types: list[str]
    sessions: list[ForkSession]
    _pairs: list[_Pair]
    _loop: asyncio.AbstractEventLoop | None
    _finisher: Any
    _finishing: set[asyncio.Future]

    def _open(self, pair: _Pair, call_control_id: str | None) -> ForkSession:
        from telnyx_audio.forks.rtpcap import ForkCaptureWriter

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

def _finalize(session: ForkSession, extra: dict[str, Any]) -> None:
    """Worker thread: read the session's capture, write WAVs and ``summary.json``."""
    from telnyx_audio.errors import TelnyxAudioError
    from telnyx_audio.forks.read import read_fork_capture

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
    """Write a capture's WAVs and ``summary.json`` with :func:`telnyx_audio.model.wav.write_call`,
    then add ``extra`` keys (the receiver's counts) to the summary, again atomically."""
    from telnyx_audio.model.wav import SUMMARY_NAME, write_call, write_json_atomic

    summary = dict(write_call(capture, folder))
    if not extra:
        return summary
    summary.update(extra)
    write_json_atomic(folder / SUMMARY_NAME, summary)
    return summary
