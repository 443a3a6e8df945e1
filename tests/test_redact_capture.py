"""Redaction at capture (#20): ``CaptureServer(..., redact_dtmf=True)`` and ``telnyx-audio capture
--redact-dtmf``, with real WebSocket clients on 127.0.0.1 and multimon-ng as the oracle."""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import soundfile
from websockets.asyncio.client import connect

import dtmf_calls as dc
from telnyx_audio.read import read_captures
from telnyx_audio.streams.server import CaptureServer

ROOT = Path(__file__).resolve().parents[1]
DIGITS = "0123456789#ABCD"


@pytest.fixture(scope="module")
def call():
    return dc.make_call("heldout")


def messages(call, encoding, tmp_path, stream_id="redact-live"):
    src = dc.jsonl_capture(call, encoding, tmp_path / f"{stream_id}.src.jsonl", stream_id=stream_id)
    return [json.dumps(json.loads(line)["message"]) for line in src.read_text().splitlines()]


def wait_for(predicate, timeout=60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    raise AssertionError("timed out waiting")


def finished(srv, n=1):
    wait_for(lambda: len(srv.streams) >= n and all(i.state in ("done", "error") for i in srv.streams))
    return srv.streams


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def typed_digits_in(text: str) -> list[str]:
    return [d for d in DIGITS if f'"digit":"{d}"' in text.replace(" ", "")]


def send(url, msgs, *, before_stop=None):
    async def go():
        ws = await connect(url, compression=None)
        for m in msgs[:-1]:
            await ws.send(m)
        await asyncio.sleep(0.3)
        if before_stop is not None:
            before_stop()
        await ws.send(msgs[-1])
        await ws.wait_closed()
    asyncio.run(go())


def test_a_redacting_server_never_writes_a_digit_and_keeps_no_tone_after_the_call(call, tmp_path):
    if not dc.have_multimon():
        pytest.skip("multimon-ng not installed: it is the independent DTMF detector (apt-get install multimon-ng)")
    msgs = messages(call, "PCMU", tmp_path)
    seen = {}

    def during_the_call():  # what is on disk while the call is still going
        folder = tmp_path / "out" / "redact-live"
        seen["log"] = (folder / "messages.jsonl").read_text()
        seen["pending"] = (folder / ".redaction-pending").exists()

    with CaptureServer(tmp_path / "out", redact_dtmf=True, stats_interval_s=None) as srv:
        send(srv.url, msgs, before_stop=during_the_call)
        [info] = finished(srv)
    assert info.state == "done", info.error
    assert seen["pending"] and seen["log"].count('"event":"dtmf"') == len(call.presses)
    assert typed_digits_in(seen["log"]) == []  # the digits never reached the disk
    folder = tmp_path / "out" / "redact-live"
    assert not (folder / ".redaction-pending").exists()
    log = (folder / "messages.jsonl").read_text()
    assert typed_digits_in(log) == [] and log.count('"digit":"*","redacted":true') == len(call.presses)
    [capture] = read_captures(folder / "messages.jsonl")
    rec = capture.recording
    assert [dc.multimon(x, rec.sample_rate) for x in (rec.inbound, rec.outbound)] == ["", ""]
    assert rec.duration_s == 14.0
    for name in ("inbound.wav", "outbound.wav"):
        x, sr = soundfile.read(folder / name, dtype="int16")
        assert dc.multimon(x, sr) == ""
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["dtmf"] == "*" * len(call.presses) and summary["redaction"]["keys"] == len(call.presses)
    assert summary["redaction"]["tones_found"] >= len(call.presses) and summary["error"] is None
    manifest = json.loads((folder / "redaction.json").read_text())
    assert manifest["input"]["kind"] == "websocket" and manifest["detector"]["settings"]
    outputs = {o["path"]: o["sha256"] for o in manifest["outputs"]}
    assert {"messages.jsonl", "inbound.wav", "outbound.wav", "stereo.wav", "summary.json"} <= set(outputs)
    assert all(sha(folder / p) == h for p, h in outputs.items())
    assert manifest["input"]["sha256"] != outputs["messages.jsonl"]  # the log as it was, then as it is


def test_a_server_without_redaction_keeps_the_digits_the_oracle_finds(call, tmp_path):
    if not dc.have_multimon():
        pytest.skip("multimon-ng not installed: it is the independent DTMF detector (apt-get install multimon-ng)")
    with CaptureServer(tmp_path / "out", stats_interval_s=None) as srv:
        send(srv.url, messages(call, "PCMU", tmp_path))
        finished(srv)
    folder = tmp_path / "out" / "redact-live"
    assert set(typed_digits_in((folder / "messages.jsonl").read_text())) == set(call.digits) - {"*"}
    x, sr = soundfile.read(folder / "inbound.wav", dtype="int16")
    assert set(dc.multimon(x, sr)) == set(call.digits)
    assert not (folder / "redaction.json").exists()


def test_key_messages_in_every_shape_are_masked_before_they_are_written(call, tmp_path):
    every = messages(call, "PCMU", tmp_path)
    msgs = every[:40] + every[-1:]  # a short call, then stop
    odd = ['{"event": "dtmf",\n "stream_id": "redact-live", "dtmf": {"digit": "7"}}',  # kept as text: "raw"
           '{"event":"dtmf","stream_id":"redact-live","dtmf":{"digit":"8"}',  # cut short: not JSON
           '{"event":"dtmf","stream_id":"redact-live","dtmf":{"digit":"*","redacted":true}}']
    seen = {}

    def during_the_call():
        seen["log"] = (tmp_path / "out" / "redact-live" / "messages.jsonl").read_text()

    with CaptureServer(tmp_path / "out", redact_dtmf=True, stats_interval_s=None) as srv:
        send(srv.url, [*msgs[:-1], *odd, msgs[-1]], before_stop=during_the_call)
        finished(srv)
    for text in (seen["log"], (tmp_path / "out" / "redact-live" / "messages.jsonl").read_text()):
        assert re.search(r'digit[\\"\s:]+[0-9#A-D]', text) is None  # in any shape or escaping
        assert '"digit":"8' not in text and text.count('\\"digit\\":\\"*\\"') == 1  # the raw line, masked
        assert text.count("dtmf") >= 3


def test_a_log_that_cannot_be_redacted_is_deleted_and_the_summary_says_why(call, tmp_path):
    msgs = [m.replace('"encoding": "PCMU"', '"encoding": "SPEEX"') for m in messages(call, "PCMU", tmp_path)]
    with CaptureServer(tmp_path / "out", redact_dtmf=True, stats_interval_s=None) as srv:
        send(srv.url, msgs)
        [info] = finished(srv)
    folder = tmp_path / "out" / "redact-live"
    assert info.state == "error" and "unredacted log was deleted" in info.error
    assert sorted(p.name for p in folder.iterdir()) == ["summary.json"]
    summary = json.loads((folder / "summary.json").read_text())
    assert "SPEEX" in summary["error"] and "deleted" in summary["error"] and "log" not in summary["files"]


def test_a_stream_whose_finalising_runs_out_of_time_loses_its_unredacted_log(call, tmp_path):
    with CaptureServer(tmp_path / "out", redact_dtmf=True, finalize_timeout_s=0.05, stats_interval_s=None) as srv:
        send(srv.url, messages(call, "OPUS", tmp_path))
        [info] = finished(srv)
    folder = tmp_path / "out" / "redact-live"
    assert info.state == "error" and "longer than 0.05 s" in info.error and "unredacted log was deleted" in info.error
    assert sorted(p.name for p in folder.iterdir()) == ["summary.json"]
    summary = json.loads((folder / "summary.json").read_text())
    assert "deleted" in summary["error"] and "log" not in summary["files"]


def test_a_log_a_crash_left_unredacted_is_redacted_when_the_server_starts(call, tmp_path):
    folder = tmp_path / "out" / "crashed-call"
    folder.mkdir(parents=True)
    src = dc.jsonl_capture(call, "G722", tmp_path / "call.jsonl", stream_id="crashed-call")
    shutil.copy(src, folder / "messages.jsonl")
    (folder / ".redaction-pending").touch()
    (tmp_path / "out" / "older-call").mkdir()  # a finished folder: left alone
    shutil.copy(src, tmp_path / "out" / "older-call" / "messages.jsonl")
    with CaptureServer(tmp_path / "out", redact_dtmf=True, stats_interval_s=None):
        pass  # recovery runs before the server listens
    assert not (folder / ".redaction-pending").exists()
    assert typed_digits_in((folder / "messages.jsonl").read_text()) == []
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["dtmf"] == "*" * len(call.presses)
    assert summary["capture_server"]["ended_by"] == "recovered after a crash"
    assert (folder / "redaction.json").exists()
    assert (tmp_path / "out" / "older-call" / "messages.jsonl").read_bytes() == src.read_bytes()


def test_the_capture_command_redacts_with_redact_dtmf(call, tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-c", "import sys; from telnyx_audio.cli import main; sys.exit(main())", "capture",
         "--port", "0", "--out", str(tmp_path / "out"), "--redact-dtmf", "--log-level", "warning"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT)
    try:
        line = proc.stdout.readline()
        assert "listening on ws://" in line, line + proc.stderr.read()
        url = line.split("listening on ", 1)[1].split()[0]
        send(url, messages(call, "PCMA", tmp_path))
        wait_for(lambda: (tmp_path / "out" / "redact-live" / "redaction.json").exists())
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0 and "Traceback" not in err, err
    folder = tmp_path / "out" / "redact-live"
    assert typed_digits_in((folder / "messages.jsonl").read_text()) == []
    assert json.loads((folder / "summary.json").read_text())["dtmf"] == "*" * len(call.presses)


# --- the fork receiver --------------------------------------------------------------------------

def test_a_redacting_fork_receiver_keeps_no_tone_and_no_key_event_after_the_call(call, tmp_path):
    from scipy.signal import resample_poly

    from telnyx_audio.forks.receiver import ForkReceiver
    from telnyx_audio.simulators.fork import simulate_fork

    if not dc.have_multimon():
        pytest.skip("multimon-ng not installed: it is the independent DTMF detector (apt-get install multimon-ng)")
    audio = resample_poly(call.audio.astype(float), 1, 2, axis=1).round().astype("int16")  # PCMU's 8 kHz
    with ForkReceiver(tmp_path / "out", redact_dtmf=True) as receiver:
        session = receiver.allocate("v3:redact-fork")
        assert (session.folder / ".redaction-pending").exists()
        sent = simulate_fork(audio, ("127.0.0.1", session.rx_port), ("127.0.0.1", session.tx_port),
                             dtmf=[(7.5, "3"), (7.8, "8")], speed=50.0)
        wait_for(lambda: sum(session.packets) >= sent.packets_sent)
        receiver.finish(session)
    assert session.state == "done", session.error
    folder = session.folder
    assert not (folder / ".redaction-pending").exists()
    [capture] = read_captures(folder / "fork.rtpcap")
    assert [e.digit for e in capture.events if type(e).__name__ == "Dtmf"] == ["*", "*"]
    rec = capture.recording
    assert [dc.multimon(x, rec.sample_rate) for x in (rec.inbound, rec.outbound)] == ["", ""]
    for name in ("inbound.wav", "outbound.wav"):
        x, sr = soundfile.read(folder / name, dtype="int16")
        assert dc.multimon(x, sr) == ""
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["dtmf"] == "**" and summary["redaction"]["keys"] == 2 and summary["receiver"]["rx_port"]
    manifest = json.loads((folder / "redaction.json").read_text())
    assert manifest["input"]["kind"] == "fork"
    assert all(sha(folder / o["path"]) == o["sha256"] for o in manifest["outputs"])


def test_a_fork_capture_a_crash_left_unredacted_is_redacted_when_the_receiver_starts(call, tmp_path):
    from telnyx_audio.forks.receiver import ForkReceiver

    folder = tmp_path / "out" / "crashed-fork"
    folder.mkdir(parents=True)
    dc.fork_capture(call, "PCMA", folder / "fork.rtpcap", events=((7.5, "3"),))
    (folder / ".redaction-pending").touch()
    with ForkReceiver(tmp_path / "out", redact_dtmf=True):
        pass
    assert not (folder / ".redaction-pending").exists()
    [capture] = read_captures(folder / "fork.rtpcap")
    assert [e.digit for e in capture.events if type(e).__name__ == "Dtmf"] == ["*"]
    assert json.loads((folder / "summary.json").read_text())["dtmf"] == "*"


def test_a_fork_capture_that_cannot_be_redacted_is_deleted(tmp_path):
    from telnyx_audio.forks.receiver import ForkReceiver

    folder = tmp_path / "out" / "garbled-fork"
    folder.mkdir(parents=True)
    (folder / "fork.rtpcap").write_bytes(b"not a fork capture at all")
    (folder / ".redaction-pending").touch()
    with ForkReceiver(tmp_path / "out", redact_dtmf=True):
        pass
    assert sorted(p.name for p in folder.iterdir()) == ["summary.json"]
    summary = json.loads((folder / "summary.json").read_text())
    assert "unredacted capture was deleted" in summary["error"]
