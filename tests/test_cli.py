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
        # as the README says: a WAV per track that carried media, and the stereo pair
        assert (folder / "outbound.wav").exists() == (tracks == ["inbound", "outbound"])
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
    fork = json.loads((tmp_path / "forks" / "demo-fork" / "summary.json").read_text())
    assert fork["dtmf"] == "15" and set(fork["rtp"]) == {"inbound", "outbound"}


def test_decode_a_poisoned_b_c_still_decodes_c_and_no_traceback_reaches_the_user(tmp_path):
    a = write_capture(tmp_path / "a.jsonl", capture_lines(tone_frames(5)))
    lines = capture_lines(tone_frames(5))
    lines[3] = lines[3].replace('"chunk": "2"', '"chunk": "' + "9" * 30 + '"')
    lines[1] = lines[1].replace('"sample_rate": 8000', '"sample_rate": 100000000000000000000')
    b = write_capture(tmp_path / "b.jsonl", lines)
    empty = tmp_path / "empty.jsonl"
    empty.write_text("just some text\n")
    c = write_capture(tmp_path / "c.jsonl", capture_lines(tone_frames(7)))
    out = run("decode", a, b, empty, c, "--out", tmp_path / "out")
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert "empty.jsonl: error:" in out.stderr and "is not a capture" in out.stderr
    assert "b.jsonl: warning:" in out.stderr  # b's bad lines said out loud, b still decoded
    for name in ("a", "b", "c"):
        assert (tmp_path / "out" / name / "summary.json").exists()
    assert "7 of 7 frames arrived (0 missing)" in out.stdout


def test_decode_writes_one_folder_per_stream_named_by_stream_id(tmp_path):
    from conftest import media_obj, start_obj

    lines = capture_lines(tone_frames(3))
    lines += [json.dumps(start_obj(stream_id="second/stream")), json.dumps(media_obj(tone_frames(1)[0], stream_id="second/stream"))]
    both = write_capture(tmp_path / "both.jsonl", lines)
    server = tmp_path / "captures" / "v3_abc"
    server.mkdir(parents=True)
    log = write_capture(server / "messages.jsonl", capture_lines(tone_frames(2)))
    out = run("decode", both, log, "--out", tmp_path / "out")
    assert out.returncode == 0, out.stderr
    from conftest import SID
    assert (tmp_path / "out" / "both" / SID / "summary.json").exists()
    assert (tmp_path / "out" / "both" / "second_stream" / "summary.json").exists()
    assert (tmp_path / "out" / SID / "summary.json").exists()  # a server log: its stream id, never messages-2


def test_decode_says_its_guesses_on_stderr_and_strict_makes_them_errors(tmp_path):
    path = write_capture(tmp_path / "nostart.jsonl", capture_lines(tone_frames(30), start=False))
    out = run("decode", path, "--out", tmp_path / "o1")
    assert out.returncode == 0 and "warning: no start message: inferred" in out.stderr
    strict = run("decode", path, "--out", tmp_path / "o2", "--strict")
    assert strict.returncode == 1 and "--strict" in strict.stderr and not (tmp_path / "o2" / "nostart").exists()
    given = run("decode", path, "--out", tmp_path / "o3", "--strict", "--encoding", "audio/x-mulaw")
    assert given.returncode == 0, given.stderr
    assert json.loads((tmp_path / "o3" / "nostart" / "summary.json").read_text())["media_format"]["encoding"] == "PCMU"
    bad = run("decode", path, "--out", tmp_path / "o4", "--encoding", "MP5")
    assert bad.returncode == 2 and "MP5" in bad.stderr


def test_an_unwritable_output_is_that_captures_error_and_the_next_still_decodes(tmp_path):
    a = write_capture(tmp_path / "a.jsonl", capture_lines(tone_frames(3)))
    b = write_capture(tmp_path / "b.jsonl", capture_lines(tone_frames(3)))
    (tmp_path / "out" / "a" / "inbound.wav").mkdir(parents=True)  # libsndfile cannot write there
    out = run("decode", a, b, "--out", tmp_path / "out")
    assert out.returncode == 1 and "a.jsonl: error: cannot write" in out.stderr and "Traceback" not in out.stderr
    assert json.loads((tmp_path / "out" / "a" / "summary.json").read_text())["error"]
    assert (tmp_path / "out" / "b" / "stereo.wav").exists()


def test_decode_names_every_capture_kind_as_batch_does_and_a_fork_capture_by_its_folder(tmp_path):
    import gzip

    import numpy as np

    from telnyx_audio.fleet.run import folder_names
    from telnyx_audio.forks import ForkCaptureWriter
    from telnyx_audio.simulators.fork import fork_packets

    def fork_capture(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        with ForkCaptureWriter(path, {"session_id": "a-random-session-id"}) as w:
            for p in fork_packets(np.zeros((2, 1600), np.int16))[0]:
                w.write(p.track, p.data, int(p.due_s * 1e6))
        return path

    receiver = fork_capture(tmp_path / "captures" / "v3_call-1" / "fork.rtpcap")
    named = fork_capture(tmp_path / "named.rtpcap")
    zipped = tmp_path / "zipped.jsonl.gz"
    zipped.write_bytes(gzip.compress(("\n".join(capture_lines(tone_frames(3))) + "\n").encode()))
    plain = write_capture(tmp_path / "plain.jsonl", capture_lines(tone_frames(3)))
    paths = [receiver, named, zipped, plain]
    out = run("decode", *paths, "--out", tmp_path / "out")
    assert out.returncode == 0, out.stderr
    made = sorted(p.parent.name for p in (tmp_path / "out").glob("*/summary.json"))
    assert made == ["named", "plain", "v3_call-1", "zipped"]  # never "fork.rtpcap" nor "zipped.jsonl"
    assert made == sorted(folder_names([str(p) for p in paths]))


def test_version():
    out = run("--version")
    assert out.returncode == 0 and out.stdout.startswith("telnyx-audio ")


def test_decode_prints_the_audio_rate_beside_a_different_reported_one(tmp_path):
    path = write_capture(tmp_path / "c.jsonl", capture_lines(tone_frames(50, tracks=("inbound",)), sample_rate=16000))
    out = run("decode", path, "--out", tmp_path / "out")
    assert out.returncode == 0, out.stderr
    assert "1.00 s PCMU 8000 Hz (reported 16000)" in out.stdout


def test_decode_takes_the_rate_from_an_l16_mime_parameter(tmp_path):
    frames = tone_frames(50, tracks=("inbound",), encoding="L16", sample_rate=16000)
    path = write_capture(tmp_path / "l16.jsonl", capture_lines(frames, start=False))
    out = run("decode", path, "--encoding", "audio/L16;rate=16000", "--out", tmp_path / "out")
    assert out.returncode == 0, out.stderr
    assert "1.00 s L16 16000 Hz" in out.stdout
