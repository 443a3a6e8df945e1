"""The telnyx-audio command line, run as users run it."""

import json
import subprocess
import sys
from pathlib import Path

import soundfile

from conftest import capture_lines, tone_frames, write_capture

BIN = Path(sys.executable).parent / "telnyx-audio"


def run(*args, cwd=None):
    return subprocess.run([str(BIN), *map(str, args)], capture_output=True, text=True, cwd=cwd, timeout=120)


def test_the_console_script_is_installed_and_lists_its_commands():
    out = run("--help")
    assert out.returncode == 0 and "decode" in out.stdout


def test_decode_writes_wavs_and_a_summary_for_each_capture_and_survives_a_bad_one(tmp_path):
    a = write_capture(tmp_path / "a.jsonl", capture_lines(tone_frames(25)))
    b = write_capture(tmp_path / "b.jsonl", capture_lines(tone_frames(10, tracks=("inbound",))))
    out = run("decode", a, tmp_path / "missing.jsonl", b, "--out", tmp_path / "out")
    assert out.returncode == 1
    assert "missing.jsonl: error: cannot read capture" in out.stderr
    for name, tracks, seconds in (("a", ["inbound", "outbound"], 0.5), ("b", ["inbound"], 0.2)):
        folder = tmp_path / "out" / name
        summary = json.loads((folder / "summary.json").read_text())
        assert summary["tracks"] == tracks and summary["duration_s"] == seconds
        assert summary["media_format"] == {"encoding": "PCMU", "sample_rate": 8000, "channels": 1}
        assert soundfile.info(folder / "stereo.wav").channels == 2
        assert (folder / "inbound.wav").exists()
    assert "a.jsonl ->" in out.stdout and "b.jsonl ->" in out.stdout


def test_decode_without_out_is_a_usage_error():
    out = run("decode", "x.jsonl")
    assert out.returncode == 2 and "--out" in out.stderr


def test_captures_with_the_same_name_do_not_overwrite_each_other(tmp_path):
    for d in ("one", "two"):
        (tmp_path / d).mkdir()
        write_capture(tmp_path / d / "call.jsonl", capture_lines(tone_frames(3)))
    out = run("decode", tmp_path / "one" / "call.jsonl", tmp_path / "two" / "call.jsonl", "--out", tmp_path / "o")
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "o" / "call" / "summary.json").exists() and (tmp_path / "o" / "call-2" / "summary.json").exists()


def test_the_bundled_example_decodes(tmp_path):
    root = Path(__file__).resolve().parents[1]
    out = run("decode", root / "data" / "example_call.jsonl", "--out", tmp_path)
    assert out.returncode == 0, out.stderr
    summary = json.loads((tmp_path / "example_call" / "summary.json").read_text())
    assert summary["dtmf"] == "15" and summary["track_reports"]["inbound"]["gap_ms"] == 60.0


def test_the_demo_runs_the_main_job_on_the_example_data(tmp_path):
    root = Path(__file__).resolve().parents[1]
    out = subprocess.run([sys.executable, "-m", "telnyx_audio.demo", "--data", str(root / "data"), "--out", str(tmp_path)],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "WAVs and summary in" in out.stdout and "call.hangup" in out.stdout
    [folder] = list((tmp_path / "captures").iterdir())
    assert json.loads((folder / "summary.json").read_text())["dtmf"] == "15"
    assert (tmp_path / "decoded" / "stereo.wav").exists()
