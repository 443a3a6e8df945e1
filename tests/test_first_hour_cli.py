"""Every command with the mistakes a newcomer makes: one line naming the flag and the value, no
traceback (issue #23, item 3)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EX = str(ROOT / "data" / "example_call.jsonl")
DEAD = "http://127.0.0.1:9"  # the discard port: nothing answers
KEY = (ROOT / "data" / "example_webhooks.pub").read_text().strip()

# (arguments, exit code, what the one line must name)
MISTAKES = [
    (["simulate", "missing.wav", "ws://127.0.0.1:9/"], 2, ["AUDIO_OR_CAPTURE", "'missing.wav'"]),
    (["simulate", "notes.txt", "ws://127.0.0.1:9/"], 2, ["AUDIO_OR_CAPTURE", "'notes.txt'"]),
    (["simulate", EX, "localhost:8765"], 2, ["URL", "'localhost:8765'"]),
    (["simulate", EX, "ws://127.0.0.1:9/", "--drop", "2"], 2, ["--drop", "'2'"]),
    (["simulate", EX, "ws://127.0.0.1:9/", "--duplicate", "5%"], 2, ["--duplicate", "'5%'"]),
    (["simulate", EX, "ws://127.0.0.1:9/", "--codec", "mp3"], 2, ["'mp3'"]),
    (["simulate", EX, "ws://127.0.0.1:9/"], 1, ["ws://127.0.0.1:9/"]),
    (["capture", "--port", "99999", "--out", "o"], 2, ["--port", "'99999'"]),
    (["capture", "--port", "http", "--out", "o"], 2, ["--port", "'http'"]),
    (["capture", "--out", "o", "--auth-token", ""], 2, ["--auth-token", "--no-auth"]),
    (["capture", "--out", "o", "--host", "0.0.0.0"], 2, ["--host 0.0.0.0", "--no-auth"]),
    (["capture", "--out", "o", "--workers", "0"], 2, ["--workers", "0"]),
    (["capture", "--out", "o", "--no-auth", "--auth-token", "t"], 2, ["--no-auth", "--auth-token"]),
    (["decode", "x.jsonl"], 2, ["--out"]),
    (["decode", "x.jsonl", "--out", "o", "--format", "wav"], 2, ["telnyx-audio decode", "--format wav"]),
    (["decode", "missing.jsonl", "--out", "o"], 1, ["missing.jsonl"]),
    (["decode", "notes.txt", "--out", "o"], 1, ["notes.txt"]),
    (["decode", EX, "--out", "o", "--encoding", "mp3"], 2, ["mp3"]),
    (["batch", "nonexist/", "--out", "o"], 2, ["'nonexist/'"]),
    (["batch", "nonexist/*.jsonl", "--out", "o"], 2, ["'nonexist/*.jsonl'"]),
    (["batch", EX, "--out", "o", "--jobs", "0"], 2, ["--jobs", "0"]),
    (["batch", EX, "--out", "o", "--webhooks", "missing.jsonl"], 2, ["--webhooks", "missing.jsonl"]),
    (["webhooks", "serve", "--out", "w.jsonl"], 2, ["--public-key", "TELNYX_PUBLIC_KEY"]),
    (["webhooks", "serve", "--out", "w.jsonl", "--public-key", "abc"], 2, ["--public-key"]),
    (["webhooks", "serve", "--out", "w.jsonl", "--public-key", "abc", "--port", "70000"], 2, ["--port", "'70000'"]),
    (["stream", "start", "v3:abc", "--url", "wss://x/"], 2, ["TELNYX_API_KEY", "--api-key"]),
    (["stream", "start", "v3:abc", "--url", "wss://x/", "--api-key", "k", "--base-url", DEAD], 4, [DEAD]),
    (["stream", "stop", "v3:abc", "--api-key", "k", "--base-url", DEAD], 4, [DEAD]),
    (["fork", "start", "v3:abc", "--api-key", "k", "--base-url", DEAD], 2, ["--rx", "--tx"]),
    (["fork", "stop", "v3:abc", "--api-key", "k", "--base-url", DEAD], 4, [DEAD]),
    (["fork", "simulate", EX], 2, ["--rx", "--tx"]),
    (["fork", "simulate", EX, "--rx", "127.0.0.1"], 2, ["--rx", "'127.0.0.1'"]),
    (["fork", "simulate", EX, "--rx", "127.0.0.1:9", "--drop", "2"], 2, ["--drop", "'2'"]),
    (["fork", "simulate", "missing.wav", "--rx", "127.0.0.1:9"], 2, ["AUDIO_OR_CAPTURE", "'missing.wav'"]),
    (["fork", "simulate", "notes.txt", "--rx", "127.0.0.1:9"], 2, ["AUDIO_OR_CAPTURE", "'notes.txt'"]),
    (["fork", "capture", "--out", "o"], 2, ["--rx-port", "--ports"]),
    (["fork", "capture", "--out", "o", "--rx-port", "99999", "--tx-port", "5"], 2, ["--rx-port", "'99999'"]),
    (["transcription", "start", "v3:abc", "--api-key", "k", "--config", "{bad"], 2, ["--config", "'{bad'"]),
    (["transcription", "stop", "v3:abc", "--api-key", "k", "--base-url", DEAD], 4, [DEAD]),
    (["nosuchcommand"], 2, ["'nosuchcommand'"]),
    (["capture", "--out", "/proc/nope/x", "--port", "0"], 2, ["--out /proc/nope/x"]),
    (["capture", "--out", "o", "--max-message-bytes", "-1"], 2, ["--max-message-bytes", "'-1'"]),
    (["capture", "--out", "o", "--auth-timeout", "soon"], 2, ["--auth-timeout", "'soon'"]),
    (["webhooks", "serve", "--out", "/proc/nope/w.jsonl", "--public-key", KEY, "--port", "0"], 2, ["--out /proc/nope/w.jsonl"]),
    (["batch", EX, "--out", "/proc/nope", "--no-progress"], 2, ["--out /proc/nope"]),
    (["fork", "capture", "--out", "/proc/nope", "--rx-port", "0", "--tx-port", "0"], 2, ["--out /proc/nope"]),
    (["decode", EX, "--out", "o", "--encoding", "L16", "--sample-rate", "-5"], 2, ["--sample-rate", "'-5'"]),
    (["simulate", EX, "ws://127.0.0.1:9/", "--sample-rate", "8"], 2, ["--sample-rate", "'8'"]),
    (["fork", "simulate", EX, "--rx", "127.0.0.1:9", "--packet-ms", "0"], 2, ["--packet-ms", "'0'"]),
    (["fork", "simulate", EX, "--rx", "127.0.0.1:9", "--dtmf", "x"], 2, ["--dtmf", "'x'"]),
    (["fork", "capture", "--out", "o", "--rx-port", "0", "--tx-port", "0", "--idle-timeout", "-1"], 2, ["--idle-timeout", "'-1'"]),
]


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    path = tmp_path_factory.mktemp("mistakes")
    (path / "notes.txt").write_text("call notes, not audio\n")
    return path


@pytest.mark.parametrize("args, code, named", MISTAKES, ids=[" ".join(a[:3]).replace(EX, "example") for a, _, _ in MISTAKES])
def test_a_typical_mistake_gets_one_line_that_names_it_and_no_traceback(folder, args, code, named):
    env = {k: v for k, v in os.environ.items()
           if k not in ("TELNYX_API_KEY", "TELNYX_PUBLIC_KEY", "TELNYX_STREAM_AUTH_TOKEN", "TELNYX_AUDIO_DEBUG")}
    env["PYTHONPATH"] = str(ROOT)
    out = subprocess.run([sys.executable, "-m", "telnyx_audio", *args], capture_output=True, text=True, cwd=folder,
                         env=env, timeout=60)
    assert "Traceback" not in out.stderr, out.stderr
    assert out.returncode == code, out.stderr
    lines = [line for line in out.stderr.splitlines() if "error" in line.lower() or "cannot" in line or "no answer" in line]
    assert len(lines) == 1, out.stderr
    for text in named:
        assert text in lines[0], (text, lines[0])
    assert not (folder / "o").exists() or code != 2  # a usage error writes nothing
