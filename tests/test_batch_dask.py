"""Batch on a real Dask cluster: LocalCluster worker processes, and a scheduler and workers
started as their own processes with the ``dask`` command, as a user would."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

import telnyx_audio as ta
from conftest import capture_lines, tone_frames, write_capture

distributed = pytest.importorskip("distributed")

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "data" / "example_call.jsonl"
BIN = Path(sys.executable).parent
CRASH_ENV = "_TELNYX_AUDIO_TEST_CRASH_ON"


def _captures(folder: Path) -> list[Path]:
    folder.mkdir()
    paths = [folder / "example.jsonl"]
    paths[0].write_bytes(EXAMPLE.read_bytes())
    for n, encoding in enumerate(("PCMA", "L16")):
        paths.append(write_capture(folder / f"call{n}.jsonl", capture_lines(tone_frames(60 + 20 * n, encoding=encoding),
                                                                           encoding=encoding)))
    return paths


def _comparable(calls: pd.DataFrame) -> pd.DataFrame:
    return calls.drop(columns=["process_s", "folder"])


@pytest.fixture
def environ():
    """Dask's nanny writes its worker variables (MALLOC_TRIM_THRESHOLD_, OMP_NUM_THREADS...)
    into this process's environment: put it back as it was for the tests that follow."""
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)


def test_a_local_cluster_gives_the_rows_of_the_process_pool_and_a_worker_killing_file_is_an_error_row(tmp_path, environ):
    import dask
    from distributed import Client, LocalCluster

    paths = _captures(tmp_path / "src")
    for name in ("crash.jsonl", "flaky.jsonl"):
        (tmp_path / "src" / name).write_bytes(EXAMPLE.read_bytes())
    local = ta.batch(paths, tmp_path / "pool", jobs=2, progress=False)
    # A worker lost mid-task is retried on another (flaky.jsonl kills the first worker it meets,
    # then works); a file that kills every worker it meets comes back as KilledWorker after
    # `allowed-failures` retries, and again when run alone: its row, not the batch's end, and
    # not the end of the files that were beside it on a worker that died.
    flaky = tmp_path / "flaky-crashed"
    with dask.config.set({"distributed.scheduler.allowed-failures": 1}), \
            LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                         dashboard_address="127.0.0.1:0", worker_dashboard_address="127.0.0.1:0",
                         env={CRASH_ENV: f"crash.jsonl,flaky.jsonl:{flaky}"}) as cluster, Client(cluster) as client:
        inputs = [tmp_path / "src" / "flaky.jsonl", *paths, tmp_path / "src" / "crash.jsonl"]
        on_dask = ta.batch(inputs, tmp_path / "dask", client=client, progress=False)
    assert flaky.exists()  # a worker died on it
    crash = on_dask.calls.iloc[-1]
    assert "KilledWorker" in crash["error"] and crash["path"].endswith("crash.jsonl")
    assert on_dask.calls.iloc[0]["error"] == "" and on_dask.calls.iloc[0]["dtmf_events"] == "15"
    good = on_dask.calls.iloc[1:-1].reset_index(drop=True)
    pd.testing.assert_frame_equal(_comparable(good), _comparable(local.calls))
    segments = on_dask.segments[on_dask.segments["path"] != str(inputs[0])].reset_index(drop=True)
    pd.testing.assert_frame_equal(segments, local.segments)
    for row in good.itertuples():
        assert (Path(row.folder) / "stereo.wav").exists() and "dask" in row.folder


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def test_the_cli_runs_on_a_scheduler_and_workers_started_with_the_dask_command(tmp_path):
    paths = _captures(tmp_path / "src")
    scheduler_file = tmp_path / "scheduler.json"
    logs = [open(tmp_path / name, "w") for name in ("scheduler.log", "worker.log")]
    procs = [subprocess.Popen([str(BIN / "dask"), "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
                               "--dashboard-address", "127.0.0.1:0",
                               "--scheduler-file", str(scheduler_file)], stdout=logs[0], stderr=subprocess.STDOUT)]
    try:
        deadline = time.monotonic() + 60
        while not scheduler_file.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        address = json.loads(scheduler_file.read_text())["address"]
        procs.append(subprocess.Popen([str(BIN / "dask"), "worker", address, "--nworkers", "2", "--nthreads", "1",
                                       "--host", "127.0.0.1", "--no-dashboard", "--dashboard-address", "127.0.0.1:0"], stdout=logs[1], stderr=subprocess.STDOUT))
        with distributed.Client(address, timeout="30s") as client:
            client.wait_for_workers(2, timeout=60)
        out = tmp_path / "out"
        done = subprocess.run([str(BIN / "telnyx-audio"), "batch", *map(str, paths), "--out", str(out),
                               "--scheduler", address, "--no-progress"], capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        calls = pd.read_parquet(out / "calls.parquet")
        assert calls["path"].tolist() == list(map(str, paths)) and (calls["error"] == "").all()
        assert calls["encoding"].tolist() == ["PCMU", "PCMA", "L16"]
        assert (out / "example" / "summary.json").exists() and len(pd.read_parquet(out / "segments.parquet"))
    finally:
        for proc in reversed(procs):
            _stop(proc)
        for log in logs:
            log.close()
    unreachable = subprocess.run([str(BIN / "telnyx-audio"), "batch", str(EXAMPLE), "--out", str(tmp_path / "x"),
                                  "--scheduler", address], capture_output=True, text=True, timeout=60)
    assert unreachable.returncode == 2 and "cannot connect to the Dask scheduler" in unreachable.stderr
