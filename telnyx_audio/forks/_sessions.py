"""The fork receiver's calls: a session's record, its opening and finishing, and the handle
:meth:`telnyx_audio.TelnyxClient.fork_call` returns.

A session is finished (its capture read, WAVs and ``summary.json`` written) in a worker
process of its own (:mod:`._finalizer`) under an address-space and a time limit, at most
``finalize_workers`` at once (each waited for by a thread of the receiver's), so other
calls keep being received meanwhile and a huge or hostile call costs only its worker. Any
failure is recorded: the session's ``error``, the log, and a ``summary.json`` saying it.
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
#: The environment variable that carries a finalising worker's address-space limit (bytes).
MEMORY_ENV = "TELNYX_AUDIO_FORK_FINALIZE_AS"


@dataclass
class ForkSession:
    """One call's fork as received: where it is written and what arrived.

    ``state`` is ``"receiving"``, ``"finalizing"``, ``"done"`` or ``"error"``.

    Attributes
    ----------
    session_id : str
        A random UUID naming this session (a port pair carries many calls in turn).
    folder : Path
        Where the call's capture, WAVs and summary are written.
    rx_port, tx_port : int
        The UDP ports the call's inbound (``rx``) and outbound (``tx``) packets arrive on.
    call_control_id : str or None
        The forked call, when it is known (a fork started with :class:`ForkHandle`).
    started_us : int
        When the session opened, Unix time in microseconds.
    packets, octets : list of int
        Datagrams and their bytes written so far, ``[inbound, outbound]``.
    last_packet : float or None
        When the idle check last saw packets arrive (``time.monotonic``), not per packet.
    write_errors : int
        Datagrams that could not be written (a full disk...).
    write_error : str or None
        The first write error's text.
    sources : list
        Each track's first sender, ``[inbound, outbound]``: the only one written from.
    strangers : int
        Datagrams from other senders: counted, never written.
    strangers_from : dict of str to int
        Those datagrams by sender (the first 100 senders).
    over_limit : int
        Datagrams past the call's size or duration limit: counted, never written.
    state : str
        ``"receiving"``, ``"finalizing"``, ``"done"`` or ``"error"``.
    summary : dict or None
        The call's ``summary.json``, once finished.
    error : str or None
        What went wrong, if finishing failed.
    redact_dtmf : bool
        The capture is redacted (DTMF muted) when the call ends.
    done : threading.Event
        Set once the session is finished (WAVs and summary written, or an error).
    """

    session_id: str
    folder: Path
    rx_port: int
    tx_port: int
    call_control_id: str | None
    started_us: int
    packets: list[int] = field(default_factory=lambda: [0, 0])
    octets: list[int] = field(default_factory=lambda: [0, 0])  # bytes of the datagrams written, per track
    last_packet: float | None = None  # monotonic, as of the idle check that saw it (not per packet)
    _seen: int = field(default=0, repr=False)
    write_errors: int = 0  # datagrams that could not be written (disk full...)
    write_error: str | None = None
    sources: list[Any] = field(default_factory=lambda: [None, None])  # each track's first sender: its owner
    strangers: int = 0  # datagrams from other senders: counted, never written
    strangers_from: dict[str, int] = field(default_factory=dict)  # ... by sender (the first 100)
    over_limit: int = 0  # datagrams past the call's size or duration limit: counted, never written
    state: str = "receiving"
    summary: dict[str, Any] | None = None
    error: str | None = None
    redact_dtmf: bool = False  # its capture is redacted when it ends (ForkReceiver(redact_dtmf=True))
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
        self.retry_us = 0  # opening a capture failed: not again before this time
        self.backoff_s = 0.0

class _Sessions:
    """ForkReceiver's sessions (a mixin: the state is set in :meth:`ForkReceiver.__init__`).

    The finalising limits are attributes (set them on the receiver before it starts):
    ``finalize_workers`` calls finalised at once, each in a process under
    ``finalize_memory_bytes`` of address space (None: no limit) and stopped after
    ``finalize_timeout_s``.
    """

    finalize_workers: int = 2
    finalize_memory_bytes: int | None = 3 << 30
    finalize_timeout_s: float = 600.0

    out: Path
    host: str
    payload_types: list[str]
    redact_dtmf: bool
    sessions: list[ForkSession]
    _pairs: list[_Pair]
    _loop: asyncio.AbstractEventLoop | None
    _finisher: Any
    _finishing: set[asyncio.Future]
    _metrics: Any

    def _open(self, pair: _Pair, call_control_id: str | None) -> ForkSession:
        from telnyx_audio.forks.rtpcap import ForkCaptureWriter

        started = self._now_us() // 1000
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(started / 1e6))
        folder = unique_child(self.out, call_control_id or f"fork-{pair.rx_port}-{pair.tx_port}-{stamp}")
        session = ForkSession(
            session_id=str(uuid.uuid4()), folder=folder, rx_port=pair.rx_port, tx_port=pair.tx_port,
            call_control_id=call_control_id, started_us=started, redact_dtmf=self.redact_dtmf,
        )
        meta = {"session_id": session.session_id, "call_control_id": call_control_id, "host": self.host,
                "rx_port": pair.rx_port, "tx_port": pair.tx_port, "started_us": started,
                "payload_types": dict(s.split("=", 1) for s in self.payload_types)}
        try:
            if self.redact_dtmf:  # removed once the capture is redacted (a crash leaves it)
                from telnyx_audio.forks.redact import mark_pending

                mark_pending(folder)
            session._writer = ForkCaptureWriter(session.capture_path, meta)
        except OSError:  # disk full...: leave no folder behind (the caller counts the drop)
            from telnyx_audio.model.manifest import PENDING_NAME

            (folder / PENDING_NAME).unlink(missing_ok=True)
            try:
                folder.rmdir()
            except OSError:
                pass
            raise
        pair.session = session
        self.sessions.append(session)
        log.info("fork session %s on %d/%d -> %s", session.session_id, pair.rx_port, pair.tx_port, folder,
                 extra={"event": "session_started", "session_id": session.session_id,
                        "call_control_id": call_control_id, "folder": str(folder),
                        "figures": {"rx_port": pair.rx_port, "tx_port": pair.tx_port}})
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
                              "dropped_from": dict(pair.dropped),
                              "sources": {track: f"{a[0]}:{a[1]}" for track, a in zip(("rx", "tx"), session.sources) if a},
                              "datagrams_dropped_strangers": session.strangers,
                              "strangers_from": dict(session.strangers_from),
                              "datagrams_over_limit": session.over_limit}}
        pair.n_dropped, pair.dropped = 0, {}
        assert self._loop is not None
        limits = (self.finalize_memory_bytes, self.finalize_timeout_s)
        fut = self._loop.run_in_executor(self._finisher, _finalize, session, extra, limits, self._metrics.finalized)
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

def _finalize(session: ForkSession, extra: dict[str, Any], limits: tuple[int | None, float] = (None, 600.0),
              observe: Any = None) -> None:
    """Finisher thread: finalise the session in a worker process and record how it went;
    ``observe`` is given the seconds it took.

    Whatever goes wrong (the worker runs out of memory, is killed at its time limit, cannot
    start; anything here) ends the session as ``"error"`` with the reason, logged, and in a
    ``summary.json`` if the worker wrote none: never a session left ``"finalizing"``.
    """
    began = time.perf_counter()
    try:
        reply = _run_worker(session, extra, *limits)
        if reply.get("ok"):
            session.summary = reply["summary"]
            session.state = "done"
        else:
            _failed(session, extra, str(reply.get("error")))
    except Exception as exc:  # noqa: BLE001 - the finisher's boundary: any failure is the session's, recorded
        _failed(session, extra, f"{type(exc).__name__}: {exc}")
    finally:
        if session.state not in ("done", "error"):
            _failed(session, extra, "finalising ended without a result")
        if observe is not None:
            observe(time.perf_counter() - began)
        log.info("fork session %s %s: rx %d / tx %d datagrams -> %s", session.session_id, session.state,
                 session.packets[0], session.packets[1], session.folder,
                 extra={"event": "session_ended", "session_id": session.session_id,
                        "call_control_id": session.call_control_id, "folder": str(session.folder),
                        "figures": {"state": session.state, "datagrams": {"inbound": session.packets[0],
                                                                          "outbound": session.packets[1]},
                                    "write_errors": session.write_errors}})
        session.done.set()


def _run_worker(session: ForkSession, extra: dict[str, Any], memory_bytes: int | None,
                timeout_s: float) -> dict[str, Any]:
    """Run :mod:`._finalizer` on the session; its reply (``ok``, ``summary`` or ``error``)."""
    import json
    import os
    import subprocess
    import sys

    env = dict(os.environ)
    package_root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [package_root, env.get("PYTHONPATH")]))
    env[MEMORY_ENV] = str(memory_bytes or 0)
    env.setdefault("OPENBLAS_NUM_THREADS", "1")
    job = {"capture": str(session.capture_path), "folder": str(session.folder), "extra": extra,
           "redact_dtmf": session.redact_dtmf}
    try:
        done = subprocess.run([sys.executable, "-m", "telnyx_audio.forks._finalizer"], input=json.dumps(job),
                              capture_output=True, text=True, timeout=timeout_s, env=env)
    except subprocess.TimeoutExpired:
        return {"ok": False, "error": f"finalising took longer than {timeout_s:g} s and was stopped"}
    lines = done.stdout.strip().splitlines()
    if lines:
        try:
            return json.loads(lines[-1])
        except ValueError:
            pass
    said = (done.stderr.strip().splitlines() or [""])[-1][:500]
    return {"ok": False, "error": f"the finalising worker failed (exit code {done.returncode}): {said}"}


def _failed(session: ForkSession, extra: dict[str, Any], error: str) -> None:
    """Record a session's failure: its state, the log, and ``summary.json`` (if none was written).

    A session to be redacted whose redaction did not finish (its marker is still there) loses
    its capture: redaction fails closed, the digits never stay on disk.
    """
    from telnyx_audio.model.manifest import PENDING_NAME
    from telnyx_audio.model.wav import SUMMARY_NAME, write_json_atomic

    if session.redact_dtmf and (session.folder / PENDING_NAME).exists():
        try:
            session.capture_path.unlink(missing_ok=True)
            (session.folder / PENDING_NAME).unlink(missing_ok=True)
            error += "; the unredacted capture was deleted (redact_dtmf fails closed)"
        except OSError as exc:
            error += f"; the unredacted capture could not be deleted ({exc}): it is left for recovery"

    session.error = error
    session.state = "error"
    log.error("fork session %s: %s", session.session_id, error,
              extra={"event": "session_error", "session_id": session.session_id,
                     "call_control_id": session.call_control_id, "reason": error})
    summary = {"session_id": session.session_id, "call_control_id": session.call_control_id, "error": error, **extra}
    if session.summary is None:
        session.summary = summary
    try:
        if not (session.folder / SUMMARY_NAME).exists():
            write_json_atomic(session.folder / SUMMARY_NAME, summary)
    except OSError as exc:
        log.error("fork session %s: cannot write its summary: %s", session.session_id, exc)


def write_outputs(capture: Any, folder: Path, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Write a capture's WAVs and ``summary.json``, then add ``extra`` keys to the summary.

    The files are written with :func:`telnyx_audio.model.wav.write_call`; the summary with
    ``extra`` is written again atomically (a reader never sees half a file).

    Parameters
    ----------
    capture : Capture
        The call, as :func:`telnyx_audio.forks.read_fork_capture` assembles it.
    folder : Path
        Where to write; created if missing.
    extra : dict of str to object, optional
        More keys for ``summary.json`` (the receiver's counts: packets, strangers...).

    Returns
    -------
    dict of str to object
        The summary as written.
    """
    from telnyx_audio.model.wav import SUMMARY_NAME, write_call, write_json_atomic

    summary = dict(write_call(capture, folder))
    if not extra:
        return summary
    summary.update(extra)
    write_json_atomic(folder / SUMMARY_NAME, summary)
    return summary
