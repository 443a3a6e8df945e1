"""Run the per-call work over many files: on every core through processes, or on Dask."""

from __future__ import annotations

import fnmatch
import functools
import glob
import json
import os
import time
import uuid
import warnings
from collections import deque
from collections.abc import Generator, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from telnyx_audio.fleet.work import FILE_TIMEOUT_S, FileResult, Task, error_result, init_worker, run_task

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

__all__ = ["BatchResult", "batch", "expand_inputs", "folder_names", "CAPTURE_PATTERNS", "FILE_TIMEOUT_S"]

#: Tasks a worker process runs before it is replaced (bounds what a long batch can leak).
MAX_TASKS_PER_CHILD = 100
#: What a folder given to :func:`batch` is searched for: WebSocket captures (plain or gzip),
#: fork captures and packet captures (pcap, pcapng; plain or gzip).
CAPTURE_PATTERNS = ("*.jsonl", "*.jsonl.gz", "*.rtpcap", "*.pcap", "*.pcap.gz", "*.pcapng", "*.pcapng.gz")
_STATE = ".batch"  # DIR/.batch/<name>.json: the rows of each finished call (for resume)
#: Times a file that was in flight when a worker died is run again alone before it is
#: declared the one that kills workers (a worker can also die of something passing).
ISOLATED_TRIES = 2
_CRASHED = (
    f"the worker process died each of the {ISOLATED_TRIES} times this file was run alone "
    "(killed by the OS, out of memory, or a crash in native code)"
)


@dataclass(frozen=True)
class BatchResult:
    """What :func:`batch` made.

    Attributes
    ----------
    calls : DataFrame
        One row per stream (per input file that failed: one row with ``error``); the columns
        of :data:`telnyx_audio.fleet.CALL_COLUMNS`, in input order.
    segments : DataFrame
        Speech segments, turns, overlaps, interruptions, silences and DTMF digits, one row
        each, with the call's ``path`` and ``stream_id``.
    errors : DataFrame
        ``path``, ``stream_id``, ``error`` of the rows that failed.
    skipped : int
        Calls not processed again: an earlier run on the same ``out`` did them from the same
        file (path, size and modification time) with the same options.
    out : Path or None
        Where the tables and per-call folders were written.
    """

    calls: "pd.DataFrame"
    segments: "pd.DataFrame"
    errors: "pd.DataFrame"
    skipped: int = 0
    out: Path | None = None
    elapsed_s: float = field(default=0.0, repr=False)

    @property
    def findings(self) -> "pd.DataFrame":
        """The diagnosis's findings of every call (the segments of kind ``finding``): ``path``,
        ``stream_id``, ``code``, ``severity``, ``track``, ``start_s``, ``end_s``, ``duration_s``.

        Returns
        -------
        DataFrame
            One row per finding.
        """
        rows = self.segments[self.segments["kind"] == "finding"]
        parts = rows["label"].str.extract(r"^(?P<code>\w+) \((?P<severity>\w+)\)$")
        table = rows[["path", "stream_id"]].join(parts).join(rows[["track", "start_s", "end_s", "duration_s"]])
        return table.reset_index(drop=True)

    def __repr__(self) -> str:
        return (f"<BatchResult {len(self.calls)} calls, {len(self.errors)} errors, {self.skipped} skipped,"
                f" {len(self.segments)} segments>")


def expand_inputs(paths_or_globs: str | os.PathLike[str] | Iterable[str | os.PathLike[str]]) -> list[str]:
    """The files to process: globs expanded (``**`` included), folders searched for captures
    (:data:`CAPTURE_PATTERNS`).

    A path that names no file is kept (it becomes an error row: unreadable, as ``decode``
    reports it and goes on), so is anything that is not a regular file (a FIFO, a device: an
    error row, never opened); a glob that matches nothing, or a folder (a path ending in ``/``)
    that does not exist or holds no capture, raises at once. A folder yields every file matching
    :data:`CAPTURE_PATTERNS` under it, at any depth. Each file once, in the order given.
    Recursive globs and folders follow links to folders, but each folder (by device and inode)
    is searched once: a link to a parent folder ends the search there.

    Parameters
    ----------
    paths_or_globs : str, os.PathLike or iterable of them
        Capture files, folders or glob patterns.

    Returns
    -------
    list of str
        The files, each once, in the order given.

    Raises
    ------
    ValueError
        If a glob matches nothing, a folder does not exist or holds no capture, or nothing
        was given.

    Examples
    --------
    >>> expand_inputs(["data/example_call.jsonl", "data/*_call.jsonl"])
    ['data/example_call.jsonl']
    """
    items = [paths_or_globs] if isinstance(paths_or_globs, (str, os.PathLike)) else list(paths_or_globs)
    if not items:
        raise ValueError("no capture files given: expected paths, folders or globs")
    found: list[str] = []
    for item in items:
        text = os.fspath(item)
        if any(c in text for c in "*?["):
            matches = _glob(text)
            if not matches:
                raise ValueError(f"no files match {text!r}")
            found.extend(m for m in matches if not os.path.isdir(m))
        elif text.endswith(("/", os.sep)) and not os.path.isdir(text):
            raise ValueError(f"no folder {text!r}")  # as a glob that matches nothing: a whole input is missing
        elif os.path.isdir(text):
            inside = _walk(text, [os.path.join("**", p) for p in CAPTURE_PATTERNS])
            if not inside:
                raise ValueError(f"no capture files ({', '.join(CAPTURE_PATTERNS)}) in the folder {text!r}")
            found.extend(inside)
        else:
            found.append(text)
    seen: set[str] = set()
    unique = []
    for path in found:
        key = os.path.realpath(path)
        if key not in seen:
            seen.add(key)
            unique.append(path)
    return unique


def _glob(pattern: str) -> list[str]:
    """The non-folder paths ``pattern`` matches, sorted: :func:`glob.glob` where it cannot
    recurse; with ``**``, a walk that follows each folder once (glob's own follows a link to
    a parent folder forever)."""
    if "**" not in pattern:
        return sorted(m for m in glob.glob(pattern) if not os.path.isdir(m))
    parts = pattern.split(os.sep)
    magic = next(i for i, part in enumerate(parts) if any(c in part for c in "*?["))
    base = os.sep.join(parts[:magic]) or (os.sep if pattern.startswith(os.sep) else "")
    return _walk(base, [os.sep.join(parts[magic:])])


def _walk(base: str, patterns: list[str]) -> list[str]:
    """Non-folder entries under ``base`` whose path relative to it matches any of
    ``patterns`` (glob syntax, ``**`` for any folders; hidden names only where a pattern
    names them), sorted. Links to folders are followed; each folder is entered once."""
    compiled = [tuple(p.split(os.sep)) for p in patterns]
    seen: set[tuple[int, int]] = set()
    found: list[str] = []
    for root, dirs, files in os.walk(base or os.curdir, followlinks=True):
        try:
            st = os.stat(root)
        except OSError:
            dirs[:] = []
            continue
        if (st.st_dev, st.st_ino) in seen:  # a link back to a folder already searched
            dirs[:] = []
            continue
        seen.add((st.st_dev, st.st_ino))
        rel_root = os.path.relpath(root, base or os.curdir)
        prefix = () if rel_root == os.curdir else tuple(rel_root.split(os.sep))
        for name in files:
            rel = prefix + (name,)
            if any(_match(rel, pat) for pat in compiled):
                found.append(os.path.join(root, name) if base else os.path.join(*rel))
    return sorted(found)


@functools.lru_cache(maxsize=4096)
def _match(parts: tuple[str, ...], pattern: tuple[str, ...]) -> bool:
    """Whether path components match pattern components (``**``: any number of folders)."""
    if not pattern:
        return not parts
    head, rest = pattern[0], pattern[1:]
    if head == "**":
        return any(_match(parts[k:], rest) for k in range(len(parts)) if not any(p.startswith(".") for p in parts[:k]))
    if not parts or (parts[0].startswith(".") and not head.startswith(".")):
        return False
    return fnmatch.fnmatchcase(parts[0], head) and _match(parts[1:], rest)


def folder_names(paths: list[str]) -> list[str]:
    """One output folder name per file, as ``telnyx-audio decode`` names them: the file's name
    without its suffixes, or its folder's for the capture server's ``messages.jsonl`` and the
    fork receiver's ``fork.rtpcap``. Where names repeat, the parent folder's name is put in
    front (``<folder>-<name>``), so a file's folder does not depend on the other inputs' order.

    Parameters
    ----------
    paths : list of str
        The capture files, in input order.

    Returns
    -------
    list of str
        One unique folder name per path.

    Examples
    --------
    >>> folder_names(["a/x.jsonl", "b/y.jsonl.gz", "c/s1/messages.jsonl", "d/x.jsonl"])
    ['a-x', 'y', 's1', 'd-x']
    """
    from collections import Counter

    from telnyx_audio._util.paths import capture_stem, claim_name, safe_name

    stems = [safe_name(capture_stem(p), "capture") for p in paths]
    counts = Counter(stems)
    names = [f"{safe_name(Path(p).parent.name, 'capture')}-{s}" if counts[s] > 1 else s for p, s in zip(paths, stems)]
    used: set[str] = set()
    return [claim_name(name, used) for name in names]


# --- resume ---------------------------------------------------------------------------------

def _state_path(out: Path, name: str) -> Path:
    return out / _STATE / f"{name}.json"


def _source_key(path: str) -> dict[str, Any] | None:
    """What identifies a capture's contents for resume: its absolute path, size and mtime."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return {"path": os.path.abspath(path), "size": st.st_size, "mtime_ns": st.st_mtime_ns}


def _load_done(out: Path, name: str, task: Task) -> FileResult | None:
    """The saved result of a call done by an earlier run, if it was made from this very file
    (same path, size and mtime), with the same options, and its outputs are still there.

    Anything else in the state file (damaged, another capture's, from another version) is
    ignored: the call is processed again.
    """
    key = _source_key(task.path)
    try:
        saved = json.loads(_state_path(out, name).read_text())
    except (OSError, ValueError):
        return None
    if key is None or not isinstance(saved, dict) or saved.get("source") != key:
        return None
    if saved.get("options") != {"analyze": task.analyze, "wav": task.wav}:
        return None
    calls, segments = saved.get("calls"), saved.get("segments")
    if (not isinstance(calls, list) or not calls or not all(isinstance(r, dict) for r in calls)
            or not isinstance(segments, list) or not all(isinstance(r, dict) for r in segments)):
        return None
    if task.wav:
        for row in calls:
            folder = row.get("folder")
            if not isinstance(folder, str) or not folder or not (Path(folder) / "summary.json").is_file():
                return None
    return FileResult(task.index, task.path, calls, segments)


def _save_done(out: Path, name: str, task: Task, result: FileResult, key: dict[str, Any] | None) -> None:
    """Remember a call that worked (atomically, under a temporary name of this run's own),
    so a later run can skip it. ``key`` is the file's :func:`_source_key` from before it was
    read: a file changed meanwhile is not remembered as done."""
    if key is None or key != _source_key(task.path):
        return
    state = _state_path(out, name)
    state.parent.mkdir(parents=True, exist_ok=True)
    tmp = state.with_name(f".{state.name}.{os.getpid()}.{uuid.uuid4().hex}.tmp")
    try:
        tmp.write_text(json.dumps({"source": key, "options": {"analyze": task.analyze, "wav": task.wav},
                                   "calls": result.calls, "segments": result.segments}))
        os.replace(tmp, state)
    finally:
        tmp.unlink(missing_ok=True)


# --- executors ------------------------------------------------------------------------------

def _run_processes(tasks: list[Task], jobs: int) -> Iterator[FileResult]:
    """Yield results as they finish, from a pool of ``jobs`` processes.

    A worker that dies (BrokenProcessPool) takes the pool and the tasks in flight with it:
    those are run again one at a time, each in a pool of its own, so only the file that kills
    a worker becomes an error row; then a new pool takes the rest.
    """
    queue = deque(tasks)
    while queue:
        suspects = yield from _until_broken(queue, jobs)
        yield from _isolate(suspects)


def _until_broken(queue: deque[Task], jobs: int) -> Generator[FileResult, None, list[Task]]:
    """Run the queue's tasks on a new pool (at most ``2 * jobs`` in flight) until it is empty
    or a worker dies; returns the tasks that were in flight when it died."""
    from concurrent.futures import FIRST_COMPLETED, wait
    from concurrent.futures.process import BrokenProcessPool

    pool = _pool(jobs)
    running: dict[Any, Task] = {}
    try:
        while queue or running:
            while queue and len(running) < 2 * jobs:
                running[pool.submit(run_task, queue[0])] = queue[0]  # a broken pool raises here
                queue.popleft()
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                result = future.result()  # BrokenProcessPool: the task stays in running
                del running[future]
                yield result
        return []
    except BrokenProcessPool:
        return list(running.values())
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _isolate(tasks: list[Task]) -> Iterator[FileResult]:
    """Run each task alone in a fresh one-process pool, up to :data:`ISOLATED_TRIES` times;
    a task that kills its worker every time is an error row."""
    from concurrent.futures.process import BrokenProcessPool

    for task in sorted(tasks, key=lambda t: t.index):
        for _ in range(ISOLATED_TRIES):
            pool = _pool(1)
            try:
                yield pool.submit(run_task, task).result()
                break
            except BrokenProcessPool:
                continue
            finally:
                pool.shutdown(wait=True, cancel_futures=True)
        else:
            yield error_result(task, _CRASHED)


def _pool(jobs: int):
    """Worker processes started by a fork server that has the library imported (fast start,
    no fork of a parent with threads; required for max_tasks_per_child)."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["telnyx_audio.fleet.work", "telnyx_audio.read", "telnyx_audio.streams.read", "telnyx_audio.analysis", "pandas",
                                "threadpoolctl"])
    return ProcessPoolExecutor(max_workers=jobs, mp_context=ctx, max_tasks_per_child=MAX_TASKS_PER_CHILD,
                               initializer=init_worker)


def _run_dask(tasks: list[Task], client: Any) -> Iterator[FileResult]:
    """Yield results as they finish on a Dask cluster.

    A worker lost mid-task is the scheduler's to retry on another worker, up to Dask's
    ``distributed.scheduler.allowed-failures``; past that the task comes back as
    ``KilledWorker``. As a task that kills workers takes down the tasks beside it too, each
    such task is run again at the end, alone on the cluster: a file that was only beside the
    culprit then works, and the culprit's ``KilledWorker`` is its error row.
    """
    from distributed import KilledWorker, as_completed

    def submit(task: Task) -> Any:
        return client.submit(run_task, task, key=f"telnyx-audio-call-{task.index}-{os.urandom(4).hex()}", pure=False)

    def failed(task: Task, exc: Exception) -> FileResult:
        return error_result(task, f"the Dask cluster could not run this file: {type(exc).__name__}: {exc}")

    futures = {submit(task): task for task in tasks}
    killed: list[Task] = []
    for future in as_completed(futures):
        task = futures.pop(future)
        try:
            yield future.result()
        except KilledWorker:
            killed.append(task)
        except Exception as exc:  # CancelledError, comm errors...: the file's row, not the batch's end
            yield failed(task, exc)
        future.release()
    for task in sorted(killed, key=lambda t: t.index):
        future = submit(task)
        try:
            yield future.result()
        except Exception as exc:  # KilledWorker again: this file kills workers
            yield failed(task, exc)
        future.release()


# --- the function ---------------------------------------------------------------------------

def batch(
    paths_or_globs: str | os.PathLike[str] | Iterable[str | os.PathLike[str]],
    out: str | os.PathLike[str] | None = None,
    *,
    jobs: int | None = None,
    client: Any = None,
    analyze: bool = True,
    wav: bool = True,
    webhooks: Any = None,
    progress: bool = True,
    file_timeout_s: float | None = FILE_TIMEOUT_S,
) -> BatchResult:
    """Process many capture files into one call table, on every core or a Dask cluster.

    Each file is read, written out (WAVs and ``summary.json`` in ``out/<name>/``, as
    ``telnyx-audio decode`` does) and analysed in a worker; only its rows come back, so a
    worker's memory is bounded by one call whatever the number of calls. One bad file never
    ends a batch: it is a row with its ``error``.

    Parameters
    ----------
    paths_or_globs : str, PathLike, or iterable of them
        Capture files, folders (searched at any depth for :data:`CAPTURE_PATTERNS`: ``*.jsonl``,
        ``*.jsonl.gz``, ``*.rtpcap``) and globs (``"caps/**/*.jsonl"``). A missing file is an
        error row; a missing folder or a glob that matches nothing raises ``ValueError``.
    out : str or PathLike, optional
        Output root. With it, calls an earlier run did from the same file (its path, size and
        modification time, kept in ``out/.batch/``) with the same options, whose outputs are
        still there, are not processed again: their rows are reused. ``calls.parquet`` and
        ``segments.parquet`` are written here too (under temporary names of the run's own,
        renamed when complete).
    jobs : int, optional
        Worker processes (default: every core). Ignored with ``client``.
    client : dask.distributed.Client, optional
        Run on this cluster instead (``pip install telnyx-audio[dask]``). Its workers open
        the files by their absolute paths here, and write outputs under ``out``: on several
        machines, both must be on a shared file system.
    analyze : bool
        Run :func:`analyze_call` and the G.711 codec check (the analysis columns and the
        segments); off for decoding only, which is several times faster.
    wav : bool
        Write each call's WAVs and ``summary.json`` (needs ``out``).
    webhooks : path, glob, list of paths, or DataFrame, optional
        Webhook logs to join on the call ids (hangup cause, call quality, stream failures,
        transcripts): see :func:`telnyx_audio.load_webhooks`.
    progress : bool
        Show a tqdm progress bar (a widget in Jupyter with ipywidgets, else text).
    file_timeout_s : float or None
        Time limit of one file (:data:`FILE_TIMEOUT_S` by default; None for none): a file
        that takes longer is an error row saying so.

    Returns
    -------
    BatchResult
        ``.calls``, ``.segments``, ``.errors`` (pandas DataFrames), ``.skipped``.

    Notes
    -----
    Worker processes start from a fork server, as ``multiprocessing`` recommends for a parent
    with threads, and each runs the script that started it again before it works: in a
    script (or a module run with ``python -m``), call :func:`batch` under
    ``if __name__ == "__main__":`` (in Jupyter, with ``python -c``, and from the command
    line nothing is needed). A script that
    calls it outside that guard gets one ``RuntimeError`` at once saying so, before any
    worker starts. A worker that dies takes only the
    file that killed it: the files in flight are run again, each alone, up to
    :data:`ISOLATED_TRIES` times. Workers run one BLAS thread each, as Dask's do. A process
    that runs the batch's tasks (a pool worker or a Dask worker) gets fixed glibc allocator
    thresholds on its first task (:func:`telnyx_audio.fleet.work.tune_malloc`): Dask's nanny
    otherwise makes every large array a fresh page-faulted mapping.

    Examples
    --------
    >>> import telnyx_audio as ta
    >>> result = ta.batch("data/example_call.jsonl", jobs=1, progress=False)
    >>> row = result.calls.iloc[0]
    >>> row["encoding"], int(row["inbound_n_gaps"]), row["error"], row["dtmf_inband"]
    ('PCMU', 1, '', '15')
    """
    import pandas as pd

    from telnyx_audio.fleet.join import join_webhooks
    from telnyx_audio.model.schema import SEGMENT_COLUMNS, calls_frame, segments_frame

    t0 = time.perf_counter()
    if client is None:
        _refuse_unguarded_script()
    if jobs is not None and (not isinstance(jobs, int) or isinstance(jobs, bool) or jobs < 1):
        raise ValueError(f"jobs must be a positive integer, got {jobs!r}")
    if file_timeout_s is not None and (isinstance(file_timeout_s, bool) or not isinstance(file_timeout_s, (int, float))
                                       or not file_timeout_s > 0):
        raise ValueError(f"file_timeout_s must be a positive number of seconds or None, got {file_timeout_s!r}")
    if client is not None and not callable(getattr(client, "submit", None)):
        raise TypeError(f"client must be a dask.distributed.Client, got {type(client).__name__}")
    paths = expand_inputs(paths_or_globs)
    if webhooks is not None and not isinstance(webhooks, pd.DataFrame):
        from telnyx_audio.webhooks import load_webhooks

        webhooks = load_webhooks(webhooks)  # early: a bad path fails before hours of work
    root = Path(out) if out is not None else None
    names = folder_names(paths)
    # Workers get absolute paths (their working folder may not be ours); rows say the path as given.
    tasks = [Task(i, os.path.abspath(p), os.path.abspath(root / n) if root is not None and wav else None,
                  bool(analyze), bool(wav), file_timeout_s) for i, (p, n) in enumerate(zip(paths, names))]

    results: dict[int, FileResult] = {}
    # Segments are kept per call as tuples in SEGMENT_COLUMNS order (a third of the memory of
    # dicts) and made one frame at the end: the parent's work per result stays near zero, as
    # on a machine whose cores all run workers it takes its CPU from them.
    segment_columns = list(SEGMENT_COLUMNS)
    segment_parts: dict[int, list[tuple[Any, ...]]] = {}

    def keep(result: FileResult) -> None:
        if result.segments:
            path = paths[result.index]
            segment_parts[result.index] = [tuple(path if c == "path" else seg.get(c) for c in segment_columns)
                                            for seg in result.segments]
        result.segments = []
        results[result.index] = result

    todo = []
    keys: dict[int, dict[str, Any] | None] = {}
    for task, name in zip(tasks, names):
        done = _load_done(root, name, task) if root is not None else None
        if done is not None:
            keep(done)
        else:
            todo.append(task)
            keys[task.index] = _source_key(task.path)
    skipped = len(results)

    if client is not None:
        stream = _run_dask(todo, client)
    else:
        stream = _run_processes(todo, jobs or _cores()) if todo else iter(())
    with warnings.catch_warnings():  # no ipywidgets in this Jupyter: a text bar, without the nag
        warnings.filterwarnings("ignore", message="IProgress not found")
        from tqdm.auto import tqdm

    with tqdm(total=len(tasks), initial=skipped, disable=not progress, unit="call", desc="batch") as bar:
        for result in stream:
            if root is not None and not result.failed:
                _save_done(root, names[result.index], tasks[result.index], result, keys.get(result.index))
            keep(result)
            bar.update(1)

    call_rows = []
    for index in sorted(results):
        call_rows.extend({**row, "path": paths[index]} for row in results[index].calls)
    if webhooks is not None:
        call_rows = join_webhooks(call_rows, webhooks)
    calls = calls_frame(call_rows)
    segment_rows = [row for i in sorted(segment_parts) for row in segment_parts.pop(i)]
    segments = segments_frame([pd.DataFrame.from_records(segment_rows, columns=segment_columns)] if segment_rows else [])
    errors = calls.loc[calls["error"].fillna("") != "", ["path", "stream_id", "error"]].reset_index(drop=True)
    if root is not None:
        root.mkdir(parents=True, exist_ok=True)
        _write_parquet(calls, root / "calls.parquet")
        _write_parquet(segments, root / "segments.parquet")
    return BatchResult(calls, segments, errors, skipped, root, time.perf_counter() - t0)


_GUARD = 'if __name__ == "__main__":'


def _refuse_unguarded_script() -> None:
    """Raise at once if :func:`batch` was called from a script's top level outside
    ``if __name__ == "__main__":``.

    Each worker process runs the ``__main__`` script again before its first task (that is how
    ``multiprocessing`` gives it the script's functions); there an unguarded call starts a
    batch inside the worker, which ``multiprocessing`` refuses, so every worker would die and
    every call become an error row. Whether the call is guarded is read from the script's
    source: the line of its top level that led here must lie inside such an ``if`` (a module
    run with ``python -m`` is run again too, and checked alike). In Jupyter, with
    ``python -c``, or from a package's ``__main__`` (the CLI), nothing runs again.
    """
    import multiprocessing.process
    import sys

    if getattr(multiprocessing.process.current_process(), "_inheriting", False):
        raise RuntimeError(f"telnyx_audio.batch was called while a worker process was starting: the script that"
                           f" calls it must do so under {_GUARD}")
    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None)
    name = getattr(getattr(main, "__spec__", None), "name", None) or ""
    if main is None or path is None or name == "__main__" or name.endswith(".__main__"):
        return  # Jupyter, python -c, a package's __main__ (the CLI): multiprocessing runs none of them again
    frame = sys._getframe(1)
    line = None
    while frame is not None:  # the outermost frame of the script's own top level
        if frame.f_globals is main.__dict__ and frame.f_code.co_name == "<module>":
            line = frame.f_lineno
        frame = frame.f_back
    if line is None:
        return
    if not _guarded(path, line):
        raise RuntimeError(
            f"telnyx_audio.batch runs its work in worker processes, and each runs the script {path!r} again"
            f" before it starts: the call on line {line} would start a batch in every worker. Put it under"
            f" {_GUARD} (the script's top-level code that starts work goes there).")


def _guarded(path: str, line: int) -> bool:
    """Whether ``line`` of the script at ``path`` lies inside an ``if __name__ == "__main__":``
    (True when the source cannot be read: nothing to say, multiprocessing will)."""
    import ast

    try:
        tree = ast.parse(Path(path).read_bytes(), filename=path)
    except (OSError, SyntaxError, ValueError):
        return True

    def is_main_test(test: ast.expr) -> bool:
        if not (isinstance(test, ast.Compare) and len(test.ops) == 1 and isinstance(test.ops[0], ast.Eq)):
            return False
        sides = [test.left, test.comparators[0]]
        names = [s for s in sides if isinstance(s, ast.Name) and s.id == "__name__"]
        texts = [s for s in sides if isinstance(s, ast.Constant) and s.value == "__main__"]
        return bool(names and texts)

    return any(isinstance(node, ast.If) and is_main_test(node.test) and node.body[0].lineno <= line <= (node.end_lineno or 0)
               for node in ast.walk(tree))


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _write_parquet(df: "pd.DataFrame", path: Path) -> None:
    """Write a table atomically, under a temporary name of this run's own: a reader never
    sees half a file, and runs sharing an output folder never write into each other's."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex}.tmp")
    try:
        df.to_parquet(tmp, index=False)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
