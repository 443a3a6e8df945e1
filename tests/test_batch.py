"""Batch at scale: many captures into one table on every core, one bad file never ending it."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile

import telnyx_audio as ta
from conftest import SID, capture_lines, start_obj, tone_frames, write_capture
from telnyx_audio.fleet import CALL_COLUMNS, SEGMENT_COLUMNS
from telnyx_audio.model.schema import __doc__ as SCHEMA_DOC

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "data" / "example_call.jsonl"
WEBHOOKS = ROOT / "data" / "example_webhooks.jsonl"
BIN = Path(sys.executable).parent / "telnyx-audio"
CRASH_ENV = "_TELNYX_AUDIO_TEST_CRASH_ON"


def run(*args, env=None):
    return subprocess.run([str(BIN), *map(str, args)], capture_output=True, text=True, timeout=300,
                          env={**os.environ, **(env or {})})


@pytest.fixture
def fleet(tmp_path):
    """Good calls (one PCMA, one that kills its worker the first time) and one of every kind
    of bad file: empty, not a capture, binary, an encoding we cannot decode, one that kills
    every worker it meets, one that cannot be opened."""
    src = tmp_path / "src"
    src.mkdir()
    good = {
        "example.jsonl": EXAMPLE.read_bytes(),
        "alaw.jsonl": "\n".join(capture_lines(tone_frames(40, encoding="PCMA"), encoding="PCMA")).encode() + b"\n",
    }
    lines = capture_lines(tone_frames(5))
    lines[1] = json.dumps(start_obj(encoding="G729"))
    bad = {
        "empty.jsonl": b"",
        "not_a_capture.jsonl": b"name,age\nann,3\n",
        "binary.jsonl": bytes(range(256)) * 4,
        "g729.jsonl": ("\n".join(lines) + "\n").encode(),
        "crash.jsonl": EXAMPLE.read_bytes(),
    }
    good["flaky.jsonl"] = EXAMPLE.read_bytes()
    for name, data in {**good, **bad}.items():
        (src / name).write_bytes(data)
    os.symlink("unreadable.jsonl", src / "unreadable.jsonl")  # a link to itself: cannot be opened
    return src


def test_good_and_broken_files_give_one_row_each_and_a_crashed_worker_is_an_error_row(fleet, tmp_path):
    out = tmp_path / "out"
    inputs = sorted(str(p) for p in fleet.iterdir()) + [str(fleet / "missing.jsonl")]
    crashes = f"crash.jsonl,flaky.jsonl:{tmp_path / 'flaky-crashed'}"
    done = run("batch", *inputs, "--out", out, "--jobs", "2", "--no-analysis", "--no-progress", env={CRASH_ENV: crashes})
    assert done.returncode == 1, done.stderr
    calls = pd.read_parquet(out / "calls.parquet")
    assert calls["path"].tolist() == inputs
    errors = dict(zip(calls["path"].map(lambda p: Path(p).name), calls["error"]))
    assert errors["example.jsonl"] == errors["alaw.jsonl"] == errors["flaky.jsonl"] == ""
    assert (tmp_path / "flaky-crashed").exists()  # it did kill a worker
    assert "is not a capture: it is empty" in errors["empty.jsonl"]
    assert "is not a capture" in errors["not_a_capture.jsonl"] and "line 1" in errors["not_a_capture.jsonl"]
    assert "is not a capture" in errors["binary.jsonl"]
    assert "cannot decode" in errors["g729.jsonl"] and "G729" in errors["g729.jsonl"]
    assert calls.loc[calls["path"].str.endswith("g729.jsonl"), "call_control_id"].item() == "v2:ctl"
    assert "worker process died" in errors["crash.jsonl"]
    assert "Too many levels of symbolic links" in errors["unreadable.jsonl"]
    assert "No such file" in errors["missing.jsonl"]
    for name, error in errors.items():
        if error:
            assert f"{name}: error: " in done.stderr
    assert "7 failed" in done.stdout and "0 skipped" in done.stdout
    ok = calls[calls["error"] == ""].set_index(calls["path"].map(lambda p: Path(p).name)[calls["error"] == ""])
    assert ok.loc["alaw.jsonl", "encoding"] == "PCMA" and ok.loc["alaw.jsonl", "inbound_frames_received"] == 40
    assert ok.loc["example.jsonl", "inbound_n_gaps"] == 1 and ok.loc["example.jsonl", "dtmf_events"] == "15"


def _same_row(row, expected: dict) -> None:
    for key, value in expected.items():
        if value is None or (isinstance(value, float) and np.isnan(value)):
            assert pd.isna(row[key]), key
        else:
            assert row[key] == value, key


def _same_wavs(a: Path, b: Path) -> None:
    names = sorted(p.name for p in a.glob("*.wav"))
    assert names == sorted(p.name for p in b.glob("*.wav")) and names
    for name in names:
        x, rate_x = soundfile.read(a / name, dtype="int16")
        y, rate_y = soundfile.read(b / name, dtype="int16")
        assert rate_x == rate_y and np.array_equal(x, y), name


def test_batch_wavs_and_rows_equal_decode_and_analyze_call_on_each_file_alone(tmp_path):
    from telnyx_audio.read import read_captures

    src = tmp_path / "src"
    src.mkdir()
    (src / "example.jsonl").write_bytes(EXAMPLE.read_bytes())
    write_capture(src / "tones.jsonl", capture_lines(tone_frames(150, encoding="L16", sample_rate=16000),
                                                     encoding="L16", sample_rate=16000))
    # One file, two streams (a log shared by two calls): a row and a folder each.
    one = capture_lines(tone_frames(60, seed=1))
    two = [line.replace(SID, "second-stream") for line in capture_lines(tone_frames(90, encoding="PCMA", seed=2),
                                                                         encoding="PCMA")]
    write_capture(src / "shared.jsonl", [line for pair in zip(one, two) for line in pair] + two[len(one):])
    inputs = [src / "example.jsonl", src / "shared.jsonl", src / "tones.jsonl"]
    result = ta.batch(src, tmp_path / "batch", jobs=2, progress=False)
    assert result.errors.empty and len(result.calls) == 4
    assert result.calls["stream_id"].tolist()[1:3] == [SID, "second-stream"]
    assert run("decode", *inputs, "--out", tmp_path / "decode").returncode == 0
    expected_rows = []
    for path in map(str, inputs):
        for capture in read_captures(path):
            analysis = ta.analyze_call(capture)
            expected_rows.append((capture, analysis))
    for row, (capture, analysis) in zip(result.calls.to_dict("records"), expected_rows):
        path = row["path"]
        folder = Path(row["folder"])
        alone = tmp_path / "decode" / folder.relative_to(tmp_path / "batch")  # the same layout
        _same_wavs(folder, alone)
        assert json.loads((folder / "summary.json").read_text()) == json.loads((alone / "summary.json").read_text())
        expected = {**capture.to_dict(), **analysis.to_dict()}
        _same_row(row, expected)
        mine = (result.segments["path"] == path) & (result.segments["stream_id"] == capture.stream_id)
        mine &= result.segments["kind"] != "finding"  # the diagnosis's rows: tests/test_diagnosis.py
        segments = result.segments[mine].drop(columns=["path", "stream_id"])
        pd.testing.assert_frame_equal(segments.reset_index(drop=True),
                                      analysis.segments().astype(segments.dtypes.to_dict()), check_dtype=False)


def test_a_second_run_on_the_same_out_skips_the_calls_already_done(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    for name in ("a", "b", "c"):
        write_capture(src / f"{name}.jsonl", capture_lines(tone_frames(30)))
    (src / "bad.jsonl").write_bytes(b"")
    out = tmp_path / "out"
    first = run("batch", src, "--out", out, "--jobs", "1", "--no-analysis", "--no-progress")
    assert first.returncode == 1 and "0 skipped" in first.stdout
    table = pd.read_parquet(out / "calls.parquet")
    stamp = os.stat(out / "a" / "stereo.wav").st_mtime_ns
    # b's capture is newer than its outputs now (an interrupted run, or a capture rewritten).
    later = os.stat(out / "b" / "summary.json").st_mtime + 5
    os.utime(src / "b.jsonl", (later, later))
    second = run("batch", src, "--out", out, "--jobs", "1", "--no-analysis", "--no-progress")
    assert second.returncode == 1 and "2 skipped" in second.stdout, second.stdout
    assert os.stat(out / "a" / "stereo.wav").st_mtime_ns == stamp
    assert os.stat(out / "b" / "summary.json").st_mtime > later - 5
    again = pd.read_parquet(out / "calls.parquet")
    pd.testing.assert_frame_equal(again.drop(columns="process_s"), table.drop(columns="process_s"))
    # Other options are other outputs: nothing is skipped.
    third = run("batch", src, "--out", out, "--jobs", "1", "--no-progress")
    assert "0 skipped" in third.stdout
    assert pd.read_parquet(out / "calls.parquet")["n_turns"].notna().sum() == 3


def test_webhooks_join_the_example_call_and_a_call_without_webhooks_keeps_its_row(tmp_path):
    other = write_capture(tmp_path / "other.jsonl", capture_lines(tone_frames(20)))
    result = ta.batch([EXAMPLE, other], jobs=1, analyze=False, webhooks=WEBHOOKS, progress=False)
    rows = result.calls.set_index(result.calls["path"].map(lambda p: Path(p).name))
    call = rows.loc["example_call.jsonl"]
    assert call["hangup_cause"] == "normal_clearing" and call["hangup_source"] == "caller"
    assert call["sip_hangup_cause"] == "200"
    assert call["inbound_mos"] == 4.41 and call["inbound_jitter_max_variance"] == 2.74
    assert call["inbound_packet_count"] == 400 and call["inbound_packet_loss_pct"] == 0.75
    assert call["outbound_packet_loss_pct"] == 0.0 and pd.isna(call["outbound_mos"])
    assert call["n_stream_failures"] == 0 and call["stream_failure_reasons"] == ""
    assert call["inbound_transcript"] == "and you always want to see it in the superlative degree"
    assert call["outbound_transcript"] == "thank you for your patience one moment please"
    assert call["n_webhooks"] == 12
    alone = rows.loc["other.jsonl"]
    assert alone["error"] == "" and alone["n_webhooks"] == 0 and pd.isna(alone["hangup_cause"])


def test_a_stream_failure_webhook_is_counted_with_its_reason(tmp_path):
    lines = capture_lines(tone_frames(10))
    path = write_capture(tmp_path / "call.jsonl", lines)
    hooks = [{"data": {"event_type": "streaming.failed", "id": str(i), "occurred_at": f"2026-01-01T00:00:0{i}Z",
                       "payload": {"call_control_id": "v2:ctl", "failure_reason": reason, "stream_id": "s"}}}
             for i, reason in enumerate(["connection_failed", "stream_timeout"])]
    row = ta.batch(path, jobs=1, analyze=False, webhooks=hooks, progress=False).calls.iloc[0]
    assert row["n_stream_failures"] == 2 and row["stream_failure_reasons"] == "connection_failed; stream_timeout"


def test_bad_arguments_exit_2_and_a_clean_batch_exits_0(tmp_path):
    nothing = run("batch", str(tmp_path / "*.jsonl"), "--out", tmp_path / "o")
    assert nothing.returncode == 2 and "no files match" in nothing.stderr and "Traceback" not in nothing.stderr
    assert run("batch", EXAMPLE, "--out", tmp_path / "o", "--jobs", "0").returncode == 2
    assert run("batch", EXAMPLE).returncode == 2
    hooks = run("batch", EXAMPLE, "--out", tmp_path / "o", "--webhooks", tmp_path / "none.jsonl")
    assert hooks.returncode == 2 and "--webhooks" in hooks.stderr
    ok = run("batch", EXAMPLE, "--out", tmp_path / "o", "--no-wav", "--no-progress", "--webhooks", WEBHOOKS)
    assert ok.returncode == 0, ok.stderr
    calls = pd.read_parquet(tmp_path / "o" / "calls.parquet")
    assert calls.loc[0, "hangup_cause"] == "normal_clearing" and calls.loc[0, "folder"] == ""
    assert not (tmp_path / "o" / "example_call").exists()


def test_the_call_table_has_every_schema_column_typed_and_json_safe():
    result = ta.batch([EXAMPLE, "no/such/file.jsonl"], jobs=1, progress=False)
    assert list(result.calls.columns) == list(CALL_COLUMNS)
    assert list(result.segments.columns) == list(SEGMENT_COLUMNS)
    assert {str(t) for t in result.calls.dtypes} <= {"string", "Int64", "Float64", "boolean"}
    assert result.errors["path"].tolist() == ["no/such/file.jsonl"]
    json.dumps(result.calls.astype(object).where(result.calls.notna(), None).to_dict("records"))
    row = result.calls.iloc[0]
    assert 0 < row["inbound_talk_share"] < 1 and row["n_turns"] >= 3 and row["dtmf_inband"] == "15"
    assert set(result.segments["kind"]) >= {"speech", "turn", "overlap", "dtmf"}


def test_every_column_that_capture_and_analysis_give_is_in_the_documented_schema():
    capture = ta.read_capture(EXAMPLE)
    keys = set(capture.to_dict()) | set(ta.analyze_call(capture).to_dict())
    assert keys <= set(CALL_COLUMNS), keys - set(CALL_COLUMNS)


def test_the_docs_show_the_schema_columns_from_the_schemas_own_docstring():
    # the batch how-to renders telnyx_audio.model.schema's docstring: the table is written once
    page = (ROOT / "docs" / "howto" / "batch.md").read_text()
    assert ".. automodule:: telnyx_audio.model.schema" in page
    assert re.findall(r"^([a-z0-9_]+) +(?:string|int|float|bool)\b", SCHEMA_DOC, re.M) == list(CALL_COLUMNS)


def test_caller_mistakes_are_value_and_type_errors_naming_the_value(tmp_path):
    with pytest.raises(ValueError, match="jobs must be a positive integer, got 0"):
        ta.batch(EXAMPLE, jobs=0)
    with pytest.raises(TypeError, match="client must be a dask.distributed.Client, got str"):
        ta.batch(EXAMPLE, client="tcp://127.0.0.1:8786")
    with pytest.raises(ValueError, match="no files match"):
        ta.batch(str(tmp_path / "*.jsonl"))
    with pytest.raises(ValueError, match="no capture files"):
        ta.batch([])
    with pytest.raises(ValueError, match=r"no capture files \(\*\.jsonl, \*\.jsonl\.gz, \*\.rtpcap, \*\.pcap, \*\.pcap\.gz,"
                       r" \*\.pcapng, \*\.pcapng\.gz\) in the folder"):
        ta.batch(tmp_path)


def test_a_fork_capture_is_a_row_like_a_websocket_one_with_its_rtp_figures(tmp_path):
    from telnyx_audio.forks.rtpcap import ForkCaptureWriter
    from telnyx_audio.simulators.fork import fork_packets

    audio = ta.read_capture(EXAMPLE).recording.audio
    packets = fork_packets(audio, dtmf=[(6.3, "1")], reorder=0.05, drop=0.01, seed=3)[0]
    path = tmp_path / "src" / "call-7" / "fork.rtpcap"
    path.parent.mkdir(parents=True)
    with ForkCaptureWriter(path, {"session_id": "s-7", "call_control_id": "v3:fork-7"}) as writer:
        for p in packets:
            writer.write(p.track, p.data, int(p.due_s * 1e6))
    result = ta.batch(tmp_path / "src", tmp_path / "batch", jobs=1, progress=False)
    row = result.calls.iloc[0]
    assert row["error"] == "" and row["source_kind"] == "fork" and row["call_control_id"] == "v3:fork-7"
    assert Path(row["folder"]).name == "call-7"  # named by its folder, as the fork receiver lays calls out
    assert row["inbound_rtp_packets_lost"] > 0 and row["inbound_rtp_max_jitter_ms"] >= 0
    capture = ta.read_capture(path)
    expected = {**capture.to_dict(), **ta.analyze_call(capture).to_dict()}
    _same_row(row, expected)
    assert run("decode", path, "--out", tmp_path / "decode").returncode == 0
    (alone,) = (tmp_path / "decode").iterdir()
    _same_wavs(Path(row["folder"]), alone)
