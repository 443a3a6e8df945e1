"""Benchmark: a batch of two-minute two-track calls, on 1 and 2 worker processes and on Dask.

Makes (once, cached in bench/_work/) a fleet of clean two-minute two-track PCMU calls with
data/make_fleet.py, then, in this one run, processes it with ``telnyx_audio.batch`` (read,
WAVs and summary.json written, analysis, rows) three ways:

  (a) ``jobs=1``: one worker process (the baseline);
  (b) ``jobs=2``: two worker processes;
  (c) ``client=``: a Dask ``LocalCluster`` of two worker processes, one thread each (the
      cluster's start is timed apart).

Targets (the issue): (b) at least 1.8x the throughput of (a) on a 2-core machine; (c) within
15 % of (b); each worker's peak memory under 3x the largest call's capture file. Printed: calls
per second, audio hours per hour, the scheduler overhead per call (worker-time not spent
reading, writing or analysing: dispatch, pickling, gathering, idle), and each worker's peak
resident memory, sampled from /proc while it works (VmHWM). A worker's resident memory
includes the libraries it imported (numpy, pandas, scipy...), the same for any call; what one
call adds on top is measured apart, in a fresh worker that reset its peak (``clear_refs``)
after a first small call, for the largest file: decode only, and with the analysis.

Usage: python bench/batch.py [--calls 200] [--minutes 2] [--no-dask]
"""

from __future__ import annotations

import argparse
import importlib
import os
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
WORK = HERE / "_work"
sys.path.insert(0, str(ROOT / "data"))


def _status(pid: int, key: str) -> int | None:
    """A /proc/<pid>/status figure in kB (VmHWM, VmRSS), or None if the process is gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def _children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(p) for p in f.read().split()]
    except OSError:
        return []


def _cpu_s(pid: int) -> float | None:
    """User + system CPU seconds of a process so far, or None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class PeakSampler:
    """Samples the peak resident memory (VmHWM) and CPU time of the processes ``pids()``
    names (CPU time is what a call costs whatever else the machine runs)."""

    def __init__(self, pids) -> None:  # noqa: ANN001 - a callable returning pids
        self.pids = pids
        self.peak_kb: dict[int, int] = {}
        self.first_cpu: dict[int, float] = {}
        self.cpu: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            for pid in self.pids():
                hwm, cpu = _status(pid, "VmHWM"), _cpu_s(pid)
                if hwm and cpu is not None:
                    self.peak_kb[pid] = max(self.peak_kb.get(pid, 0), hwm)
                    self.first_cpu.setdefault(pid, cpu)
                    self.cpu[pid] = cpu
            self._stop.wait(0.05)

    def cpu_s(self) -> float:
        """CPU seconds the processes used while sampled (a process's start-up before its
        first sample excepted)."""
        return sum(self.cpu[p] - self.first_cpu[p] for p in self.cpu)

    def __enter__(self) -> "PeakSampler":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def _pool_workers() -> list[int]:
    """The worker processes of our process pools: children of the multiprocessing fork server."""
    from multiprocessing import forkserver

    server = getattr(forkserver._forkserver, "_forkserver_pid", None)
    return _children(server) if server else []


def _one_call_memory(small: str, largest: str, analyze: bool) -> tuple[int, int]:
    """In this (fresh worker) process: baseline resident kB after a first small call, and the
    peak added by the largest call."""
    from telnyx_audio.fleet.work import Task, run_task

    with tempfile.TemporaryDirectory() as out:
        run_task(Task(0, small, os.path.join(out, "small"), analyze, True))  # every lazy import done
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # reset VmHWM to the current resident size
        base = _status(os.getpid(), "VmRSS") or 0
        result = run_task(Task(0, largest, os.path.join(out, "largest"), analyze, True))
    assert not result.failed, result.calls
    return base, (_status(os.getpid(), "VmHWM") or 0) - base


def _fleet(calls: int, minutes: float) -> list[Path]:
    from make_fleet import make_fleet

    folder = WORK / f"fleet-{calls}x{minutes:g}min"
    paths = sorted(folder.glob("call*.jsonl")) if folder.exists() else []
    if len(paths) != calls:
        shutil.rmtree(folder, ignore_errors=True)
        t0 = time.perf_counter()
        paths = make_fleet(folder, calls=calls, minutes=minutes, bad_files=False)
        print(f"made {calls} calls of {minutes:g} min in {time.perf_counter() - t0:.0f} s -> {folder}")
    return paths


def _report(name: str, result, wall: float, workers: int, sampler: PeakSampler) -> dict:  # noqa: ANN001
    calls = result.calls
    assert calls["error"].eq("").all(), calls.loc[calls["error"] != "", "error"].tolist()
    n = len(calls)
    audio_h = float(calls["duration_s"].sum()) / 3600
    busy = float(calls["process_s"].sum())
    overhead_ms = (wall * workers - busy) / n * 1000
    peak = ", ".join(f"{kb / 1024:.0f}" for kb in sorted(sampler.peak_kb.values())) or "n/a"
    print(f"{name:<30} {wall:6.1f} s {n / wall:6.2f} calls/s {audio_h / (wall / 3600):6.0f} audio h/h"
          f"  overhead {overhead_ms:5.1f} ms/call  worker CPU {sampler.cpu_s() / n * 1000:4.0f} ms/call"
          f"  peak RSS MB: {peak}  (load {os.getloadavg()[0]:.1f})")
    return {"wall": wall, "rate": n / wall}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--minutes", type=float, default=2.0)
    parser.add_argument("--no-dask", action="store_true", help="skip the Dask run")
    args = parser.parse_args()

    import telnyx_audio as ta

    paths = _fleet(args.calls, args.minutes)
    largest = max(paths, key=lambda p: p.stat().st_size)
    size_mb = largest.stat().st_size / 2**20
    print(f"{len(paths)} calls, {sum(p.stat().st_size for p in paths) / 2**20:.0f} MB; largest {size_mb:.1f} MB;"
          f" {os.cpu_count()} cores (shared with whatever else runs: load {os.getloadavg()[0]:.1f})")
    runs = {}
    small = str(ROOT / "data" / "example_call.jsonl")
    with tempfile.TemporaryDirectory(dir=WORK) as tmp:
        # Start-up apart, as the cluster's: the pool's workers fork from a server that imports
        # the library once per parent process (made by the first batch, kept for the others).
        t0 = time.perf_counter()
        ta.batch(small, jobs=1, progress=False)
        print(f"    (the fork server took {time.perf_counter() - t0:.1f} s to start and import the library,"
              " not counted)")
        for jobs in (1, 2):
            os.sync()  # each run from the same state: no writeback of the last run's WAVs pending
            with PeakSampler(_pool_workers) as sampler:
                t0 = time.perf_counter()
                result = ta.batch(paths, Path(tmp) / f"jobs{jobs}", jobs=jobs, progress=False)
                wall = time.perf_counter() - t0
            runs[jobs] = _report(f"(a) process pool, jobs=1" if jobs == 1 else "(b) process pool, jobs=2",
                                 result, wall, jobs, sampler)
        if not args.no_dask:
            import dask
            from distributed import Client, LocalCluster

            # Dask's nanny starts workers with MALLOC_TRIM_THRESHOLD_=65536, which turns off
            # glibc's dynamic mmap threshold: every large temporary array is then mapped and
            # zeroed afresh. Measured with and without (config None unsets it).
            for label, config in (("(c) Dask LocalCluster, 2", {}),
                                  ("(d) the same, no malloc trim",
                                   {"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None})):
                saved = os.environ.get("MALLOC_TRIM_THRESHOLD_")
                t0 = time.perf_counter()
                with dask.config.set(config), \
                        LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                     dashboard_address="127.0.0.1:0", worker_dashboard_address="127.0.0.1:0") as cluster, \
                        Client(cluster) as client:
                    # The same imports the pool's fork server made before (a) and (b), not counted.
                    for module in ("telnyx_audio.fleet.work", "telnyx_audio.read", "telnyx_audio.streams.read", "telnyx_audio.analysis",
                                   "pandas", "threadpoolctl"):
                        client.run(importlib.import_module, module)
                    start = time.perf_counter() - t0
                    pids = list(client.run(os.getpid).values())
                    os.sync()
                    with PeakSampler(lambda: pids) as sampler:
                        t0 = time.perf_counter()
                        result = ta.batch(paths, Path(tmp) / f"dask{len(runs)}", client=client, progress=False)
                        wall = time.perf_counter() - t0
                    runs[label] = _report(label, result, wall, 2, sampler)
                # The nanny sets its variables in this process's environment too: undo that.
                if saved is None:
                    os.environ.pop("MALLOC_TRIM_THRESHOLD_", None)
                print(f"    (the cluster took {start:.1f} s to start and import the library, not counted)")

    from concurrent.futures import ProcessPoolExecutor
    import multiprocessing

    one = {}
    for analyze in (False, True):
        with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
            one[analyze] = pool.submit(_one_call_memory, small, str(largest), analyze).result()
    print()
    speedup = runs[2]["rate"] / runs[1]["rate"]
    print(f"throughput jobs=2 / jobs=1: {speedup:.2f}x   (target >= 1.8x)  {'OK' if speedup >= 1.8 else 'MISSED'}")
    for label in [k for k in runs if isinstance(k, str)]:
        gap = runs[label]["rate"] / runs[2]["rate"] - 1
        print(f"{label[:3]} Dask vs process pool:   {gap:+.1%}    (target within 15%)  {'OK' if abs(gap) <= 0.15 else 'MISSED'}")
    limit = 3 * size_mb
    print(f"memory one call adds to a worker (largest file {size_mb:.1f} MB; target < 3x = {limit:.1f} MB), "
          f"over a worker's {one[True][0] / 1024:.0f} MB of libraries:")
    for analyze, label in ((False, "decode + WAVs"), (True, "decode + WAVs + analysis")):
        added = one[analyze][1] / 1024
        print(f"    {label:<26} {added:6.1f} MB = {added / size_mb:.1f}x the file  {'OK' if added < limit else 'MISSED'}")


if __name__ == "__main__":
    main()
