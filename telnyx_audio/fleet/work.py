"""The per-call work of a batch: one capture file in, its rows (small) out.

This is what runs in a worker process (or on a Dask worker). It reads the file, writes its
WAVs and ``summary.json`` when asked, analyses each stream, and returns only the table rows,
so a worker holds one call at a time and sends back a few kilobytes whatever the call's size.
It holds no decoding or analysis logic of its own: it calls the library's functions.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["Task", "FileResult", "init_worker", "process_file", "run_task", "tune_malloc", "FILE_TIMEOUT_S"]

#: Time limit of one file in a worker (decode, WAVs and analysis): a file that takes longer
#: (a pathological capture) becomes an error row, not a hung batch. An hour of call decodes
#: and is analysed in well under a minute, so ten minutes means something is wrong.
FILE_TIMEOUT_S = 600.0

# Test-only: a worker asked to process a file named here exits at once, as a worker killed by
# the OS would, so the tests crash real worker processes without mocking. Comma-separated base
# names; ``NAME:MARKER`` crashes only the first time (it creates the file MARKER first);
# ``NAME@hang`` sleeps instead (a file that never finishes, for the time limit).
_CRASH_ENV = "_TELNYX_AUDIO_TEST_CRASH_ON"


def _test_crash(path: str) -> None:
    for entry in filter(None, os.environ.get(_CRASH_ENV, "").split(",")):
        name, _, marker = entry.partition(":")
        name, hang, _ = name.partition("@hang")
        if name != os.path.basename(path):
            continue
        if hang:
            time.sleep(3600)
            return
        if marker:
            try:
                os.close(os.open(marker, os.O_CREAT | os.O_EXCL))
            except FileExistsError:
                return
        os._exit(70)


#: The allocator thresholds a worker runs with (glibc's ``mallopt``): large arrays come from
#: the heap, reused call after call, instead of being mapped and zeroed afresh each time.
MMAP_THRESHOLD = 32 * 2**20  # glibc's own ceiling for its dynamic threshold (64-bit)
TRIM_THRESHOLD = 2 * MMAP_THRESHOLD  # what glibc's dynamic rule pairs with it
_tuned = False


def tune_malloc() -> bool:
    """Set this process's allocator thresholds for the batch's work, once; True if set.

    glibc raises its mmap threshold by itself as a process frees large blocks (up to 32 MB),
    so a worker's per-call arrays (megabytes each) soon come from the heap. But setting any
    threshold turns that rule off, and Dask's nanny starts its workers with
    ``MALLOC_TRIM_THRESHOLD_=65536``: there every array over 128 kB was mapped, page-faulted
    and zeroed afresh, measured at 1.9x the CPU per call of the process pool (bench/batch.py).
    This sets fixed thresholds at the values glibc's rule reaches, in whatever process runs
    the batch's tasks (its own pool, or a Dask worker: there it stays for later tasks too; a
    process keeps at most ``TRIM_THRESHOLD`` of freed memory). Nothing is done off glibc.

    Returns
    -------
    bool
        True if the thresholds were set by this call.
    """
    global _tuned
    if _tuned:
        return False
    _tuned = True
    import ctypes

    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # not glibc (macOS, musl without it...)
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3  # <malloc.h>
    return bool(mallopt(m_mmap_threshold, MMAP_THRESHOLD)) and bool(mallopt(m_trim_threshold, TRIM_THRESHOLD))


def init_worker() -> None:
    """Set up a worker process: one BLAS/OpenMP thread per process.

    The batch's parallelism is its processes; a BLAS pool of its own in each (OpenBLAS starts
    one thread per core) only makes them fight for the cores: measured on 2 cores, a call
    took twice the wall time and 1.6x the CPU. Dask's nanny sets the same limits through
    ``OMP_NUM_THREADS``/``OPENBLAS_NUM_THREADS``; here threadpoolctl sets them at run time,
    as the libraries were loaded before the worker started (fork server).
    """
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)


@dataclass(frozen=True)
class Task:
    """One file to process: where it is, where its outputs go, and what to compute."""

    index: int
    path: str
    folder: str | None  # None: write nothing
    analyze: bool = True
    wav: bool = True
    timeout_s: float | None = FILE_TIMEOUT_S  # None: no time limit


@dataclass
class FileResult:
    """What one file gave: a row per stream (or one error row) and the segment rows."""

    index: int
    path: str
    calls: list[dict[str, Any]] = field(default_factory=list)
    segments: list[dict[str, Any]] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        """Whether any row of the file has an error."""
        return any(row.get("error") for row in self.calls)


def error_result(task: Task, message: str) -> FileResult:
    """The one-row result of a file that could not be processed."""
    return FileResult(task.index, task.path, [{"path": task.path, "error": message, "folder": ""}])


def _describe(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text if isinstance(exc, (OSError, ValueError)) else f"{type(exc).__name__}: {text}"


def run_task(task: Task) -> FileResult:
    """Process one file; every failure becomes an error row, never an exception.

    This is the function executors map over files: whatever goes wrong with one file
    (unreadable, not a capture, an encoding that cannot be decoded, a bug a strange file
    reveals) must not end the batch, so any ``Exception`` is caught here, at the boundary,
    and reported with its type and message in the row.

    Parameters
    ----------
    task : Task
        The file and what to do with it.

    Returns
    -------
    FileResult
        Its rows, or one error row.
    """
    tune_malloc()
    try:
        return _within(task.timeout_s, _process, task)
    except FileTimeout:
        return error_result(task, f"processing took longer than the file time limit of {task.timeout_s:g} s"
                                  " and was stopped")
    except Exception as exc:  # the batch boundary: see the docstring
        return error_result(task, _describe(exc))


def _process(task: Task) -> FileResult:
    _test_crash(task.path)
    return process_file(task)


class FileTimeout(BaseException):
    """A file took longer than its time limit (a BaseException, as KeyboardInterrupt is: it
    comes from outside the work, and no ``except Exception`` inside it may take it for a
    failure of one stream and carry on)."""


def _within(timeout_s: float | None, func: Any, task: Task) -> FileResult:
    """``func(task)`` under a time limit.

    In a process's main thread (a pool worker) a ``SIGALRM`` timer interrupts the work where
    it stands (a blocking read included) and the worker goes on to its next file. Elsewhere
    (a Dask worker's task thread, where signals cannot reach) the work runs in a thread of its
    own and is abandoned at the limit: the row is an error and the batch goes on, while that
    thread finishes in the background.
    """
    import signal
    import threading

    if timeout_s is None:
        return func(task)
    if threading.current_thread() is threading.main_thread() and hasattr(signal, "setitimer"):
        def expire(signum: int, frame: Any) -> None:
            raise FileTimeout

        previous = signal.signal(signal.SIGALRM, expire)
        signal.setitimer(signal.ITIMER_REAL, timeout_s)
        try:
            return func(task)
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)
    box: list[Any] = []

    def work() -> None:
        try:
            box.append(func(task))
        except BaseException as exc:  # handed back to the caller's thread, raised there
            box.append(exc)

    worker = threading.Thread(target=work, name=f"telnyx-audio-file-{task.index}", daemon=True)
    worker.start()
    worker.join(timeout_s)
    if not box:
        raise FileTimeout
    if isinstance(box[0], BaseException):
        raise box[0]
    return box[0]


def process_file(task: Task) -> FileResult:
    """Read one capture file and make its rows; write its WAVs when ``task.wav``.

    Raises whatever reading the file raises; :func:`run_task` makes that an error row. A
    failure after reading (writing or analysing one stream) is that stream's error row.

    Parameters
    ----------
    task : Task
        The file and what to do with it.

    Returns
    -------
    FileResult
        A call row per stream and the segment rows.
    """
    from telnyx_audio._util.paths import stream_folders
    from telnyx_audio.analysis import analyze_call
    from telnyx_audio.read import read_captures
    from telnyx_audio.model.wav import write_call

    from telnyx_audio.model import schema

    t0 = time.perf_counter()
    captures = read_captures(task.path)
    result = FileResult(task.index, task.path)
    for capture, sub in zip(captures, stream_folders([c.stream_id for c in captures])):
        row = schema.capture_row(capture)
        row["path"] = task.path
        row["error"] = capture.error or ""  # the stream's audio could not be decoded
        row["folder"] = ""
        segments: list[dict[str, Any]] = []
        try:
            if task.wav and task.folder is not None:
                folder = Path(task.folder) / sub
                write_call(capture, folder)  # with an error too: its summary.json says why
                row["folder"] = os.fspath(folder)
            if task.analyze and capture.error is None:
                from telnyx_audio.diagnosis import diagnose

                row.update(_codec_check(capture))
                diagnosis = diagnose(capture)  # the call analysis with echo left out of talk, and findings
                analysis = diagnosis.evidence.analysis if diagnosis.evidence is not None else analyze_call(capture)
                row.update(analysis.to_dict())
                row.update(diagnosis.to_row())
                key = {"path": task.path, "stream_id": capture.stream_id}
                segments = [{**key, **seg} for seg in analysis.segments().to_dict("records")]
                segments += [{**key, "kind": "finding", "track": f.track, "start_s": f.start_s, "end_s": f.end_s,
                              "duration_s": f.end_s - f.start_s, "label": f"{f.code} ({f.severity})"}
                             for f in diagnosis.findings.itertuples(index=False)]
        except Exception as exc:  # one stream's failure is its row's error (batch boundary)
            row["error"] = _describe(exc)
        result.calls.append({k: schema.json_safe(v) for k, v in row.items()})
        result.segments.extend({k: schema.json_safe(v) for k, v in seg.items()} for seg in segments)
    elapsed = time.perf_counter() - t0
    for row in result.calls:
        row["process_s"] = elapsed / max(len(result.calls), 1)
    return result


def _codec_check(capture: Any) -> dict[str, Any]:
    """The G.711 law check over the tracks with media; empty for other codecs."""
    from telnyx_audio.analysis import check_codec

    rec = capture.recording
    if rec.encoding not in ("PCMU", "PCMA") or not rec.tracks:
        return {"codec_check": "", "codec_check_likely_encoding": None, "codec_check_score": None}
    checks = [check_codec(rec.audio[i], rec.encoding) for i, t in enumerate(("inbound", "outbound")) if t in rec.tracks]
    worst = max(checks, key=lambda c: c.score)
    return {"codec_check": "suspect" if worst.suspect else "ok",
            "codec_check_likely_encoding": worst.likely_encoding, "codec_check_score": float(worst.score)}
