"""Finalising a stream: its log becomes WAVs and ``summary.json``, in bounded worker processes.

Finalising reads the whole log and renders the call, so its cost is the call's, and a
hostile stream (a few frames with huge jumps in their counters) can ask for hours of
silence. It therefore runs outside the server's process, in a small pool of worker processes
(``python -m telnyx_audio.streams.server._worker``, one JSON line per job on stdin/stdout), each
under an address-space limit (``RLIMIT_AS``: numpy refuses an array that does not fit,
and the call's summary says so) and every job under a time limit (the worker is killed and
replaced). Waiting jobs are served smallest first (by the audio span the server saw), so a
call with huge gaps waits behind ordinary calls instead of in front of them.

Plain worker processes rather than :mod:`multiprocessing`: its ``forkserver``/``spawn``
children re-import the parent's ``__main__`` (the CLI's included), and ``fork`` from the
server's threads is unsafe; a fixed command line has neither problem.

Every file is written under a temporary name and renamed when complete; ``summary.json``
is written the same way (temp file, fsync, rename), so a reader sees a whole file or none.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import json
import logging
import os
import sys
import warnings
from pathlib import Path
from typing import Any

from telnyx_audio.streams.server._host import LOG_NAME
from telnyx_audio.model.wav import PARTIAL_SUFFIX, write_json_atomic

log = logging.getLogger("telnyx_audio.server")

def remove_partials(folder: Path) -> list[str]:
    """Remove what an interrupted finalising left under temporary names; returns their names."""
    gone = []
    for p in folder.glob(f".*{PARTIAL_SUFFIX}"):
        p.unlink(missing_ok=True)
        gone.append(p.name)
    return gone


def finalize_capture(folder: str | os.PathLike[str], *, capture_server: dict[str, Any] | None = None,
                     redact_dtmf: bool = False) -> dict[str, Any]:
    """Write the WAVs and ``summary.json`` of a stream folder from its message log.

    Parameters
    ----------
    folder : str or PathLike
        A stream folder holding ``messages.jsonl``.
    capture_server : dict, optional
        What the server knows of the stream (how it ended, its error, frames received);
        stored under ``"capture_server"`` in the summary, and its ``error`` joins the
        summary's ``error``.
    redact_dtmf : bool
        Redact the log in place first (tones muted on both tracks, ``dtmf`` messages masked:
        see :mod:`telnyx_audio.streams.server._redact`), write the WAVs from the redacted call,
        and ``redaction.json`` beside them. If the log cannot be redacted it is deleted, no WAV
        is written, and the summary says why (fail closed).

    Returns
    -------
    dict
        The summary written (by :func:`telnyx_audio.model.wav.write_call`: WAVs under temporary
        names, renamed when complete; the summary atomically). A log holding more than one
        ``stream_id`` writes the first into ``folder`` and each other into a subfolder named
        from its id, listed under ``"other_streams"``.

    Raises
    ------
    CaptureError
        If the log cannot be read, or an output cannot be written (``OutputError``). A
        summary recording the error is written first wherever the disk allows.

    Examples
    --------
    >>> import json, pathlib, tempfile
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> start = {"event": "start", "stream_id": "s1", "start": {"media_format": {"encoding": "PCMU", "sample_rate": 8000}}}
    >>> media = {"event": "media", "media": {"track": "inbound", "chunk": "1", "payload": "gICA"}}
    >>> _ = (folder / "messages.jsonl").write_text(json.dumps(start) + "\\n" + json.dumps(media) + "\\n")
    >>> summary = finalize_capture(folder, capture_server={"ended_by": "stop", "error": None})
    >>> summary["files"], summary["capture_server"]["ended_by"]
    ({'inbound': 'inbound.wav', 'stereo': 'stereo.wav', 'log': 'messages.jsonl'}, 'stop')
    """
    from telnyx_audio._util.paths import unique_child
    from telnyx_audio.streams.read import read_stream_captures as read_captures
    from telnyx_audio.model.wav import write_call

    folder = Path(folder)
    extra = {"capture_server": capture_server} if capture_server is not None else {}
    stream_error = (capture_server or {}).get("error")

    def complete(summary: dict[str, Any], where: Path, **more: Any) -> dict[str, Any]:
        summary = {**summary, **more, **extra}
        summary["files"] = {**summary.get("files", {}), **({"log": LOG_NAME} if where == folder else {})}
        summary["error"] = "; ".join(e for e in (stream_error, summary.get("error")) if e) or None
        write_json_atomic(where / "summary.json", summary)
        return summary

    redacted = None
    try:
        if redact_dtmf:
            from telnyx_audio.streams.server._redact import redact_log

            redacted = redact_log(folder)
            captures = redacted.captures
        else:
            captures = read_captures(folder / LOG_NAME)
    except Exception as exc:
        if redact_dtmf:  # fail closed: whatever went wrong, the unredacted log does not stay
            from telnyx_audio.streams.server._redact import discard_unredacted, is_pending

            if is_pending(folder):
                discard_unredacted(folder, "")
        try:
            summary = complete({"error": f"{type(exc).__name__}: {exc}"}, folder)
            if redact_dtmf and not (folder / LOG_NAME).exists():
                summary["files"].pop("log", None)
                write_json_atomic(folder / "summary.json", summary)
        except OSError:
            pass
        raise
    others = {c.stream_id or f"stream-{n}": unique_child(folder, c.stream_id or f"stream-{n}")
              for n, c in enumerate(captures[1:], start=2)}
    result: dict[str, Any] = {}
    failure: Exception | None = None
    for n, (capture, where) in enumerate(zip(captures, [folder, *others.values()])):
        try:
            summary = write_call(capture, where)
            if redacted is not None:
                summary.update(redacted.summary_part(n))
        except Exception as exc:  # OutputError: write_call recorded it in the summary it wrote
            failure = failure or exc
            summary = capture.summary() | {"error": str(exc), "files": {}}
            summary.update({k: v for k, v in _read_summary(where).items() if k in ("files", "error")})
        more = {"other_streams": {sid: path.name for sid, path in others.items()}} if n == 0 and others else {}
        try:
            done = complete(summary, where, **more)
        except OSError as exc:
            failure = failure or exc
            done = summary
        result = result or done
    remove_partials(folder)
    if redacted is not None:
        try:
            redacted.write_manifest(folder)
        except OSError as exc:
            failure = failure or exc
    if failure is not None:
        raise failure
    return result


def _read_summary(folder: Path) -> dict[str, Any]:
    try:
        return json.loads((folder / "summary.json").read_text())
    except (OSError, ValueError):
        return {}


# --- the worker process -------------------------------------------------------------------

def _worker_main() -> None:
    """Serve finalising jobs: one JSON line in (folder, capture_server), one JSON line out."""
    import resource

    limit = int(os.environ.get("TELNYX_AUDIO_FINALIZE_AS", "0"))
    if limit > 0:
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    import telnyx_audio.streams.read  # noqa: F401 - ready before the first job

    out = sys.stdout
    sys.stdout = sys.stderr  # nothing else may write to the reply channel
    out.write('{"ready": true}\n')
    out.flush()
    for line in sys.stdin:
        job = json.loads(line)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                summary = finalize_capture(job["folder"], capture_server=job.get("capture_server"),
                                           redact_dtmf=bool(job.get("redact_dtmf")))
                reply: dict[str, Any] = {"ok": True, "summary": summary}
            except Exception as exc:  # noqa: BLE001 - every failure is reported as the call's
                reply = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
        reply["warnings"] = [str(w.message) for w in caught]
        out.write(json.dumps(reply, default=str) + "\n")
        out.flush()


class FinalizeFailed(Exception):
    """A job did not finish: killed at its time limit, or its worker died."""


class _Worker:
    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc

    @classmethod
    async def spawn(cls, memory_bytes: int | None) -> "_Worker":
        env = dict(os.environ)
        package_root = str(Path(__file__).resolve().parents[2])
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [package_root, env.get("PYTHONPATH")]))
        env["TELNYX_AUDIO_FINALIZE_AS"] = str(memory_bytes or 0)
        env.setdefault("OPENBLAS_NUM_THREADS", "1")  # one job per worker: no thread pools
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "telnyx_audio.streams.server._worker",
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, env=env, limit=1 << 26,
        )
        worker = cls(proc)
        ready = await proc.stdout.readline()  # type: ignore[union-attr]
        if not ready:
            await proc.wait()
            raise FinalizeFailed(f"the finalising worker did not start (exit code {proc.returncode})")
        return worker

    async def run(self, job: dict[str, Any], timeout_s: float) -> dict[str, Any]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write((json.dumps(job) + "\n").encode())
        await self.proc.stdin.drain()
        line = await asyncio.wait_for(self.proc.stdout.readline(), timeout_s)
        if not line:
            raise FinalizeFailed(f"the finalising worker died (exit code {await self.proc.wait()})")
        return json.loads(line)

    async def kill(self) -> None:
        if self.proc.returncode is None:
            self.proc.kill()
        await self.proc.wait()

    async def close(self) -> None:
        if self.proc.stdin is not None and not self.proc.stdin.is_closing():
            self.proc.stdin.close()
        try:
            await asyncio.wait_for(self.proc.wait(), 10)
        except asyncio.TimeoutError:
            await self.kill()


class FinalizerPool:
    """At most ``size`` finalising jobs at once, smallest first, each under limits.

    Parameters
    ----------
    size : int
        Worker processes.
    timeout_s : float
        Time limit of one job; the worker is then killed (and replaced for the next job).
    memory_bytes : int or None
        Address-space limit of each worker.
    redact_dtmf : bool
        Every job redacts its log (see :func:`finalize_capture`); a job that does not finish
        has its unredacted log deleted.
    """

    def __init__(self, size: int, timeout_s: float, memory_bytes: int | None, *, redact_dtmf: bool = False) -> None:
        self.size, self.timeout_s, self.memory_bytes = size, timeout_s, memory_bytes
        self.redact_dtmf = redact_dtmf
        self._idle: list[_Worker] = []
        self._busy = 0
        self._waiting: list[tuple[float, int, asyncio.Future[None]]] = []
        self._order = itertools.count()
        self.queued = 0

    async def warm(self, n: int | None = None) -> None:
        """Start ``n`` workers (all by default) now, so the first calls do not wait for their imports."""
        want = min(self.size if n is None else n, self.size) - len(self._idle)
        try:
            workers = await asyncio.gather(*(_Worker.spawn(self.memory_bytes) for _ in range(max(want, 0))))
        except (OSError, FinalizeFailed) as exc:
            log.error("finalising workers did not start: %s", exc)
            return
        for worker in workers:
            await self._keep(worker)

    async def _keep(self, worker: _Worker) -> None:
        if len(self._idle) < self.size:
            self._idle.append(worker)
        else:  # warm() and run() both started one: no more than size stay
            await worker.close()

    def _pump(self) -> None:
        while self._waiting and self._busy < self.size:
            _, _, future = heapq.heappop(self._waiting)
            if not future.done():
                self._busy += 1
                future.set_result(None)

    async def run(self, folder: Path, capture_server: dict[str, Any], cost: float) -> dict[str, Any]:
        """Finalise ``folder`` in a worker; returns the worker's reply (``ok``, ``summary``/``error``)."""
        if not self.redact_dtmf:
            return await self._run(folder, capture_server, cost)
        from telnyx_audio.streams.server._redact import discard_unredacted, is_pending

        try:
            return await self._run(folder, capture_server, cost)
        except FinalizeFailed as exc:
            # Killed at its time limit, or its worker died, before its log was redacted: fail
            # closed. (Cancelled instead, the log and its marker stay for the next start.)
            if is_pending(folder):
                raise FinalizeFailed(discard_unredacted(folder, str(exc))) from exc
            raise

    async def recover(self, root: Path) -> int:
        """Finalise every stream folder under ``root`` whose log was left unredacted (a crash
        between a call and its finalising); returns how many."""
        from telnyx_audio.streams.server._redact import pending_folders

        folders = pending_folders(root)
        for folder in folders:
            log.warning("stream folder %s holds a log never redacted (the server stopped before finalising"
                        " it): redacting it now", folder)
            try:
                reply = await self.run(folder, {"ended_by": "recovered after a crash", "error": None}, cost=0.0)
            except FinalizeFailed as exc:
                log.error("stream folder %s: %s", folder, exc)
                continue
            if not reply.get("ok"):
                log.error("stream folder %s: finalising failed: %s", folder, reply.get("error"))
        return len(folders)

    async def _run(self, folder: Path, capture_server: dict[str, Any], cost: float) -> dict[str, Any]:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._waiting, (cost, next(self._order), future))
        self.queued += 1
        self._pump()
        try:
            await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled():  # granted, then cancelled: give it back
                self._busy -= 1
                self._pump()
            raise
        finally:
            self.queued -= 1
        worker: _Worker | None = None
        try:
            try:
                worker = self._idle.pop() if self._idle else await _Worker.spawn(self.memory_bytes)
            except OSError as exc:
                raise FinalizeFailed(f"cannot start a finalising worker: {exc}") from exc
            job = {"folder": str(folder), "capture_server": capture_server, "redact_dtmf": self.redact_dtmf}
            reply = await worker.run(job, self.timeout_s)
            kept, worker = worker, None
            await self._keep(kept)
            return reply
        except asyncio.TimeoutError:
            raise FinalizeFailed(f"finalising took longer than {self.timeout_s:g} s and was stopped") from None
        finally:
            if worker is not None:  # it timed out or died: never reuse it
                await worker.kill()
            self._busy -= 1
            self._pump()

    async def close(self) -> None:
        idle, self._idle = self._idle, []
        await asyncio.gather(*(w.close() for w in idle))
