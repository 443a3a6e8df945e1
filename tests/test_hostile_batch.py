"""Batch under hostile inputs: link loops, FIFOs, devices, endless lines, files that never
finish, damaged or foreign resume state, and runs sharing one output folder (#24 items 14-15)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pandas as pd
import pytest

from conftest import capture_lines, tone_frames, write_capture
from telnyx_audio.fleet.run import batch, expand_inputs
from telnyx_audio.fleet.work import Task, run_task

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "data" / "example_call.jsonl"
# The command line of this tree (the venv's ``telnyx-audio`` script may import another checkout).
CLI = [sys.executable, "-m", "telnyx_audio"]
CLI_ENV = {**os.environ, "PYTHONPATH": str(ROOT)}
CRASH_ENV = "_TELNYX_AUDIO_TEST_CRASH_ON"


def run(*args, timeout=120, env=None):
    return subprocess.run([*CLI, *map(str, args)], capture_output=True, text=True, timeout=timeout,
                          env={**CLI_ENV, **(env or {})})


def in_subprocess(code, timeout=60, memory=None):
    """Run Python ``code`` in a child (with an address-space limit); its result."""
    pre = f"import resource; resource.setrlimit(resource.RLIMIT_AS, ({memory}, {memory}))\n" if memory else ""
    return subprocess.run([sys.executable, "-c", pre + code], capture_output=True, text=True, timeout=timeout,
                          cwd=ROOT)


def test_a_recursive_glob_over_a_folder_that_links_to_itself_finds_each_file_once(tmp_path):
    caps = tmp_path / "caps"
    (caps / "day1").mkdir(parents=True)
    write_capture(caps / "day1" / "a.jsonl", capture_lines(tone_frames(5)))
    write_capture(caps / "b.jsonl", capture_lines(tone_frames(5)))
    os.symlink("..", caps / "day1" / "up")  # day1/up/day1/up/... for ever
    os.symlink(caps, caps / "self")
    (tmp_path / "elsewhere").mkdir()
    write_capture(tmp_path / "elsewhere" / "c.jsonl", capture_lines(tone_frames(5)))
    os.symlink(tmp_path / "elsewhere", caps / "linked")  # a link to another folder is followed
    code = f"from telnyx_audio.fleet.run import expand_inputs; print(expand_inputs({str(caps / '**' / '*.jsonl')!r}))"
    done = in_subprocess(code, timeout=60)
    found = eval(done.stdout)
    assert sorted(Path(p).name for p in found) == ["a.jsonl", "b.jsonl", "c.jsonl"]
    assert sorted(Path(p).name for p in expand_inputs(caps)) == ["a.jsonl", "b.jsonl", "c.jsonl"]


def test_a_fifo_or_a_device_matched_by_a_glob_is_an_error_row_and_the_batch_ends(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    write_capture(src / "good.jsonl", capture_lines(tone_frames(20)))
    os.mkfifo(src / "pipe.jsonl")  # opening it for reading waits for a writer: forever
    os.symlink("/dev/zero", src / "zero.jsonl")
    done = run("batch", src / "*.jsonl", "--out", tmp_path / "out", "--jobs", "1", "--no-progress", timeout=120)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    calls = pd.read_parquet(tmp_path / "out" / "calls.parquet").set_index("path")
    assert calls.loc[str(src / "good.jsonl"), "error"] == ""
    assert "FIFO" in calls.loc[str(src / "pipe.jsonl"), "error"]
    assert "character device" in calls.loc[str(src / "zero.jsonl"), "error"]


def test_decode_of_a_fifo_fails_at_once_with_a_message(tmp_path):
    os.mkfifo(tmp_path / "pipe.jsonl")
    done = run("decode", tmp_path / "pipe.jsonl", "--out", tmp_path / "out", timeout=60)
    assert done.returncode != 0 and "FIFO" in done.stderr and "Traceback" not in done.stderr


def test_reading_dev_zero_never_grows_a_line_buffer_to_gigabytes():
    code = ("from telnyx_audio.read import read_captures\n"
            "from telnyx_audio.streams.read import read_stream_captures\n"
            "from telnyx_audio.errors import CaptureError\n"
            "for read in (read_captures, read_stream_captures):\n"
            "    try:\n        read('/dev/zero')\n    except CaptureError as exc:\n        print('refused:', exc)\n")
    done = in_subprocess(code, timeout=60, memory=2 << 30)
    assert done.stdout.count("refused:") == 2 and "character device" in done.stdout, done.stderr[-2000:]


def test_a_line_longer_than_any_message_is_a_bad_line_and_the_rest_is_read(tmp_path):
    from telnyx_audio.read import read_capture
    from telnyx_audio.streams.reader import MAX_LINE_BYTES

    lines = EXAMPLE.read_bytes().splitlines(keepends=True)
    path = tmp_path / "long.jsonl"
    with open(path, "wb") as f:
        f.writelines(lines[:40])
        f.write(b'{"event": "media", "pad": "' + b"x" * (MAX_LINE_BYTES + 1000) + b'"}\n')
        f.writelines(lines[40:])
    capture, clean = read_capture(path), read_capture(EXAMPLE)
    assert capture.report.bad_lines == 1 and "no Telnyx message is that long" in capture.report.bad_examples[0].reason
    assert (capture.recording.audio == clean.recording.audio).all()


def test_a_file_that_takes_longer_than_the_time_limit_is_an_error_row_in_a_pool_and_in_a_thread(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    write_capture(src / "good.jsonl", capture_lines(tone_frames(20)))
    write_capture(src / "slow.jsonl", capture_lines(tone_frames(20)))
    env = {CRASH_ENV: "slow.jsonl@hang"}
    done = run("batch", src, "--out", tmp_path / "out", "--jobs", "1", "--no-progress", "--file-timeout", "3",
               env=env, timeout=120)
    assert done.returncode == 1, done.stderr
    calls = pd.read_parquet(tmp_path / "out" / "calls.parquet").set_index("path")
    assert calls.loc[str(src / "good.jsonl"), "error"] == ""
    assert "longer than the file time limit of 3 s" in calls.loc[str(src / "slow.jsonl"), "error"]
    # A Dask worker runs tasks in threads, where no signal reaches: the limit holds there too.
    os.environ[CRASH_ENV] = "slow.jsonl@hang"
    try:
        box = []
        worker = threading.Thread(target=lambda: box.append(run_task(Task(0, str(src / "slow.jsonl"), None, False,
                                                                            False, 1.0))))
        worker.start()
        worker.join(30)
    finally:
        del os.environ[CRASH_ENV]
    assert box and "longer than the file time limit of 1 s" in box[0].calls[0]["error"]


def make_sources(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    for name in ("a", "b"):
        write_capture(src / f"{name}.jsonl", capture_lines(tone_frames(30)))
    return src


@pytest.mark.parametrize("damage", ["not json{", "[1, 2]", '{"options": {"analyze": false, "wav": true}, "calls": 5}',
                                    '{"options": {"analyze": false, "wav": true}, "calls": [], "segments": []}',
                                    '{"options": {"analyze": false, "wav": true}, "calls": [7], "segments": []}'])
def test_a_damaged_resume_state_file_is_ignored_and_the_call_is_done_again(tmp_path, damage):
    src, out = make_sources(tmp_path), tmp_path / "out"
    first = batch(src, out, jobs=1, analyze=False, progress=False)
    assert first.skipped == 0 and len(first.errors) == 0
    state = out / ".batch" / "a.json"
    state.write_text(damage)
    later = os.stat(src / "a.jsonl").st_mtime + 60
    os.utime(state, (later, later))  # "newer than the capture", as the old rule wanted
    again = batch(src, out, jobs=1, analyze=False, progress=False)
    assert again.skipped == 1 and len(again.calls) == 2 and len(again.errors) == 0
    assert json.loads(state.read_text())["calls"][0]["path"] == str(src / "a.jsonl")


def test_another_capture_under_the_same_name_is_never_taken_for_the_one_done_before(tmp_path):
    src, out = make_sources(tmp_path), tmp_path / "out"
    batch(src / "a.jsonl", out, jobs=1, analyze=False, progress=False)
    other = tmp_path / "other"
    other.mkdir()
    write_capture(other / "a.jsonl", capture_lines(tone_frames(90, seed=3)))  # another call, 1.8 s
    os.utime(other / "a.jsonl", (1_000_000_000, 1_000_000_000))  # and older
    result = batch(other / "a.jsonl", out, jobs=1, analyze=False, progress=False)
    assert result.skipped == 0
    assert result.calls.iloc[0]["path"] == str(other / "a.jsonl")
    assert abs(result.calls.iloc[0]["duration_s"] - 1.8) < 0.05
    # The same file again, unchanged: skipped. Rewritten with the same mtime but another size: done again.
    assert batch(other / "a.jsonl", out, jobs=1, analyze=False, progress=False).skipped == 1
    data = (other / "a.jsonl").read_bytes()
    (other / "a.jsonl").write_bytes(data + data.splitlines(keepends=True)[-1])
    os.utime(other / "a.jsonl", (1_000_000_000, 1_000_000_000))
    assert batch(other / "a.jsonl", out, jobs=1, analyze=False, progress=False).skipped == 0


def test_four_runs_on_one_output_folder_each_finish_with_whole_tables(tmp_path):
    src, out = make_sources(tmp_path), tmp_path / "out"
    for n in range(6):
        write_capture(src / f"c{n}.jsonl", capture_lines(tone_frames(20, seed=n)))
    procs = [subprocess.Popen([*CLI, "batch", str(src), "--out", str(out), "--jobs", "1", "--no-progress",
                               "--no-analysis"], env=CLI_ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(4)]
    results = [p.communicate(timeout=240) for p in procs]
    assert [p.returncode for p in procs] == [0] * 4, [r[1][-1500:] for r in results]
    assert len(pd.read_parquet(out / "calls.parquet")) == 8
    leftovers = [p.name for p in out.rglob("*") if p.name.endswith((".tmp", ".part"))]
    assert leftovers == []
