"""The fork receiver over real UDP sockets on 127.0.0.1: the simulator, ffmpeg as an
independent RTP sender, the command line with SIGTERM and SIGKILL, port ranges, --allow,
and TelnyxClient.fork_call against a local fake of the Call Control API."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest
import soundfile

from fake_telnyx import FakeTelnyx
from telnyx_audio import codecs
from telnyx_audio.callcontrol import TelnyxClient
from telnyx_audio.forks import ForkReceiver, read_fork_capture, read_records
from telnyx_audio.simulators.fork import fork_packets, simulate_fork

RATE = 8000


def call_audio(seconds: float = 2.0) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    pcm = np.stack([6000 * np.sin(2 * np.pi * 350 * t), 4000 * np.sin(2 * np.pi * 620 * t)])
    return pcm.astype(np.int16)


AUDIO = call_audio()
CLEAN = np.stack([codecs.decode(codecs.encode(x, "PCMU"), "PCMU") for x in AUDIO])


def placed(audio, report, n=CLEAN.shape[1]):
    """A track's audio from where the report says it starts (tracks are aligned by arrival
    time, to the millisecond: a busy machine may shift one by a millisecond)."""
    start = round(report["start_s"] * RATE)
    return audio[start : start + n]


def wait_for(predicate, timeout=15.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return False


def test_the_receiver_writes_a_simulated_call_with_its_faults_to_exact_wavs_and_a_summary(tmp_path):
    junk = [(0.3, 0, b"not rtp"), (0.6, 1, b"\x80\x00\x00"), (0.9, 0, bytes(range(30)))]
    with ForkReceiver(tmp_path) as receiver:
        session = receiver.allocate("v3:call-1")
        sent = simulate_fork(AUDIO, ("127.0.0.1", session.rx_port), ("127.0.0.1", session.tx_port),
                             reorder=0.1, duplicate=0.05, ssrc_change_at=1.2, dtmf=[(0.5, "8")], extra=junk, seed=2)
        assert wait_for(lambda: sum(session.packets) == sent.packets_sent)
        receiver.finish(session)
    assert session.state == "done" and session.folder.name == "v3_call-1"
    summary = json.loads((session.folder / "summary.json").read_text())
    assert summary["dtmf"] == "8" and summary["bad_lines"] == len(junk)
    assert summary["rtp"]["inbound"]["ssrcs"] == sent.ssrcs["inbound"]
    assert summary["rtp"]["outbound"]["missing"] == 0 and summary["rtp"]["outbound"]["duplicated"] > 0
    assert summary["receiver"]["datagrams_written"] == sent.packets_sent
    stereo, sr = soundfile.read(session.folder / "stereo.wav", dtype="int16")
    assert sr == RATE
    reports = summary["track_reports"]
    np.testing.assert_array_equal(placed(stereo[:, 1], reports["outbound"]), CLEAN[1])
    key = np.r_[4000 : 4000 + 1280]  # the rx audio pauses while the key is down
    np.testing.assert_array_equal(np.delete(placed(stereo[:, 0], reports["inbound"]), key), np.delete(CLEAN[0], key))


def test_datagrams_from_an_address_not_allowed_are_counted_and_never_written(tmp_path):
    packets = fork_packets(AUDIO[:, :1600], tracks="inbound")[0]
    with ForkReceiver(tmp_path, allow=["127.0.0.1/32"]) as receiver:
        session = receiver.allocate()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as stranger:
            stranger.bind(("127.0.0.2", 0))
            for p in packets:
                stranger.sendto(p.data, ("127.0.0.1", session.rx_port))
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as friend:
            for p in packets[:4]:
                friend.sendto(p.data, ("127.0.0.1", session.rx_port))
        assert wait_for(lambda: receiver.dropped == len(packets) and session.packets[0] == 4)
        receiver.finish(session)
    assert len(read_records(session.capture_path)) == 4
    assert session.summary["receiver"]["datagrams_dropped_not_allowed"] == len(packets)
    assert session.summary["receiver"]["dropped_from"] == {"127.0.0.2": len(packets)}


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg command not installed")
def test_ffmpeg_as_an_independent_rtp_sender_is_received_sample_exact(tmp_path):
    wav = tmp_path / "x.wav"
    soundfile.write(wav, AUDIO[0], RATE, subtype="PCM_16")
    raw = tmp_path / "x.ul"
    subprocess.run(["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-i", str(wav), "-c:a", "pcm_mulaw",
                    "-f", "mulaw", str(raw)], check=True, timeout=60)
    expected = codecs.decode(raw.read_bytes(), "PCMU")  # ffmpeg's own encoding, our decoder
    with ForkReceiver(tmp_path / "out") as receiver:
        session = receiver.allocate()
        subprocess.run(["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-i", str(wav), "-c:a",
                        "pcm_mulaw", "-f", "rtp", f"rtp://127.0.0.1:{session.rx_port}"],
                       check=True, timeout=60, capture_output=True)
        assert wait_for(lambda: session.packets[0] >= len(expected) // 1000)
        receiver.finish(session)
    cap = read_fork_capture(session.capture_path)
    np.testing.assert_array_equal(cap.recording.inbound, expected)
    assert cap.report.rtp["inbound"].lost == 0 and cap.report.bad_lines == 0


def start_cli(tmp_path, *extra):
    proc = subprocess.Popen([sys.executable, "-m", "telnyx_audio", "fork", "capture", "--out", str(tmp_path), *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    ports = [int(p) for m in re.findall(r"udp:127\.0\.0\.1:(\d+)(?:-(\d+))?", line) for p in m if p]
    if not ports:
        stop(proc)
        pytest.fail(f"the receiver did not start: {line}")
    return proc, ports


def stop(proc):
    """Make sure a receiver process is gone and its pipes closed."""
    if proc.poll() is None:
        proc.kill()
    proc.communicate(timeout=30)


def test_the_command_line_receiver_finishes_the_call_on_sigterm(tmp_path):
    proc, (rx, tx) = start_cli(tmp_path, "--rx-port", "0", "--tx-port", "0", "--payload-type", "101=telephone-event/8000")
    try:
        sent = simulate_fork(AUDIO, ("127.0.0.1", rx), ("127.0.0.1", tx), dtmf=[(1.0, "*")])
        capture = lambda: list(tmp_path.glob("*/fork.rtpcap"))  # noqa: E731
        assert wait_for(lambda: capture() and len(read_records(capture()[0])) == sent.packets_sent)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    finally:
        stop(proc)
    assert proc.returncode == 0, err
    assert "1 calls" in out and f"{sent.packets_sent} datagrams written" in out and "dtmf '*'" in out
    (folder,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["dtmf"] == "*"
    assert summary["warnings"] == []  # 101 came from --payload-type (in the capture's header), not guessed
    outbound = soundfile.read(folder / "outbound.wav", dtype="int16")[0]
    np.testing.assert_array_equal(placed(outbound, summary["track_reports"]["outbound"]), CLEAN[1])


def test_a_sigkilled_receiver_has_written_every_datagram_it_received(tmp_path):
    proc, (rx, tx) = start_cli(tmp_path, "--rx-port", "0", "--tx-port", "0")
    try:
        sent = simulate_fork(AUDIO, ("127.0.0.1", rx), ("127.0.0.1", tx))
        capture = lambda: list(tmp_path.glob("*/fork.rtpcap"))  # noqa: E731
        assert wait_for(lambda: capture() and len(read_records(capture()[0])) == sent.packets_sent)
    finally:
        proc.send_signal(signal.SIGKILL)
        stop(proc)
    cap = read_fork_capture(capture()[0])  # what `telnyx-audio decode` would read
    assert cap.report.lines == sent.packets_sent and cap.report.truncated_bytes == 0
    for t, name in enumerate(("inbound", "outbound")):
        np.testing.assert_array_equal(placed(cap.recording.audio[t], cap.report.tracks[name].as_dict()), CLEAN[t])


def free_port_range(n: int) -> int:
    """A base port with n free UDP ports from it (checked by binding them)."""
    for _ in range(50):
        base = np.random.default_rng().integers(20000, 30000) // 2 * 2
        socks = []
        try:
            for p in range(base, base + n):
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                socks.append(s)
                s.bind(("127.0.0.1", p))
            return int(base)
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError("no free port range")


def test_a_port_range_takes_several_calls_at_once_each_in_its_own_folder(tmp_path):
    base = free_port_range(4)
    proc, ports = start_cli(tmp_path, "--ports", f"{base}-{base + 3}", "--idle-timeout", "0.5")
    try:
        assert ports == [base, base + 3]
        for k in range(2):
            simulate_fork(AUDIO[:, :4000], ("127.0.0.1", base + 2 * k), ("127.0.0.1", base + 2 * k + 1),
                          dtmf=[(0.1, str(k))])
        assert wait_for(lambda: len(list(tmp_path.glob("*/summary.json"))) == 2)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        stop(proc)
    assert proc.returncode == 0, err
    digits = sorted(json.loads(p.read_text())["dtmf"] for p in tmp_path.glob("*/summary.json"))
    assert digits == ["0", "1"] and "2 calls" in out


def test_bad_receiver_options_are_refused_without_a_traceback(tmp_path):
    for args in (["--rx-port", "1"], ["--ports", "5-5"], ["--rx-port", "1", "--tx-port", "2", "--ports", "1-9"],
                 ["--ports", "40000-40003", "--payload-type", "96=speex/8000"], ["--ports", "40000-40003", "--allow", "nope"]):
        done = subprocess.run([sys.executable, "-m", "telnyx_audio", "fork", "capture", "--out", str(tmp_path), *args],
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 2 and "Traceback" not in done.stderr and "error" in done.stderr, (args, done.stderr)


def test_fork_call_allocates_a_pair_starts_the_fork_there_and_stop_ends_it(tmp_path):
    telnyx = FakeTelnyx()
    try:
        with TelnyxClient(api_key="KEY", base_url=telnyx.url) as client, ForkReceiver(tmp_path) as receiver:
            handle = client.fork_call("v3:live", receiver)
            start = telnyx.requests[0]
            assert start.path == "/v2/calls/v3:live/actions/fork_start"
            assert (start.json["rx"], start.json["tx"]) == (f"udp:127.0.0.1:{handle.session.rx_port}",
                                                            f"udp:127.0.0.1:{handle.session.tx_port}")
            sent = simulate_fork(AUDIO, ("127.0.0.1", handle.session.rx_port), ("127.0.0.1", handle.session.tx_port))
            assert wait_for(lambda: sum(handle.session.packets) == sent.packets_sent)
            handle.stop()
            assert telnyx.requests[1].path == "/v2/calls/v3:live/actions/fork_stop"
            assert telnyx.requests[1].json["stream_type"] == "decrypted"
            assert (handle.session.rx_port, handle.session.tx_port) not in receiver.pairs  # released
    finally:
        telnyx.close()
    summary = json.loads((handle.session.folder / "summary.json").read_text())
    assert summary["call_control_id"] == "v3:live" and summary["rtp"]["inbound"]["packets"] == 100


def test_fork_simulate_plays_a_wav_from_the_command_line(tmp_path):
    wav = tmp_path / "call.wav"
    soundfile.write(wav, AUDIO.T, RATE, subtype="PCM_16")  # stereo: left inbound, right outbound
    with ForkReceiver(tmp_path / "out") as receiver:
        session = receiver.allocate()
        done = subprocess.run([sys.executable, "-m", "telnyx_audio", "fork", "simulate", str(wav),
                               "--rx", f"127.0.0.1:{session.rx_port}", "--tx", f"127.0.0.1:{session.tx_port}",
                               "--dtmf", "1.5:#", "--ssrc-change-at", "0.5"],
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        report = json.loads(done.stdout)
        assert wait_for(lambda: sum(session.packets) == report["packets_sent"])
        receiver.finish(session)
    assert session.summary["dtmf"] == "#" and len(session.summary["rtp"]["outbound"]["ssrcs"]) == 2
    outbound = soundfile.read(session.folder / "outbound.wav", dtype="int16")[0]
    np.testing.assert_array_equal(placed(outbound, session.summary["track_reports"]["outbound"]), CLEAN[1])


def test_a_fork_capture_replays_as_a_fork_with_its_audio_and_digits(tmp_path):
    with ForkReceiver(tmp_path / "first") as receiver:
        first = receiver.allocate()
        sent = simulate_fork(AUDIO, ("127.0.0.1", first.rx_port), ("127.0.0.1", first.tx_port), dtmf=[(1.0, "6")])
        assert wait_for(lambda: sum(first.packets) == sent.packets_sent)
        receiver.finish(first)
        second = receiver.allocate()
        again = simulate_fork(first.capture_path, ("127.0.0.1", second.rx_port), ("127.0.0.1", second.tx_port))
        assert wait_for(lambda: sum(second.packets) == again.packets_sent)
        receiver.finish(second)
    assert first.summary["dtmf"] == second.summary["dtmf"] == "6"
    a, b = read_fork_capture(first.capture_path), read_fork_capture(second.capture_path)
    for name in ("inbound", "outbound"):
        t = ("inbound", "outbound").index(name)
        np.testing.assert_array_equal(placed(b.recording.audio[t], b.report.tracks[name].as_dict()),
                                      placed(a.recording.audio[t], a.report.tracks[name].as_dict()))


def test_fork_simulate_refuses_bad_arguments_without_a_traceback(tmp_path):
    for args in (["--rx", "nohost"], ["--rx", "127.0.0.1:9", "--dtmf", "soon:5"], ["--rx", "127.0.0.1:9", "--codec", "speex"],
                 ["--rx", "127.0.0.1:9", "--drop", "2"]):
        done = subprocess.run([sys.executable, "-m", "telnyx_audio", "fork", "simulate", "data/example_call.jsonl", *args],
                              capture_output=True, text=True, timeout=60, cwd=os.path.dirname(os.path.dirname(__file__)))
        assert done.returncode == 2 and "Traceback" not in done.stderr, (args, done.stderr)


def test_an_unreadable_source_or_output_folder_fails_with_a_message_not_a_traceback(tmp_path):
    bad = tmp_path / "bad.wav"
    bad.write_text("not audio")
    for args in (["fork", "simulate", str(bad), "--rx", "127.0.0.1:9"],
                 ["fork", "simulate", str(tmp_path / "missing.jsonl"), "--rx", "127.0.0.1:9"],
                 ["fork", "capture", "--rx-port", "0", "--tx-port", "0", "--out", str(bad / "sub")]):
        done = subprocess.run([sys.executable, "-m", "telnyx_audio", *args], capture_output=True, text=True, timeout=60)
        # a source or an output folder that cannot be used is a mistake in the arguments: exit 2 (#23)
        assert done.returncode == 2 and "Traceback" not in done.stderr and str(tmp_path) in done.stderr, done.stderr


def test_fork_call_on_a_receiver_bound_to_every_address_needs_its_public_address(tmp_path):
    telnyx = FakeTelnyx()
    try:
        with TelnyxClient(api_key="KEY", base_url=telnyx.url) as client, \
                ForkReceiver(tmp_path, host="0.0.0.0") as receiver:
            with pytest.raises(ValueError, match="public_host"):
                client.fork_call("v3:live", receiver)
            assert telnyx.requests == [] and receiver.pairs == []  # nothing started, the pair released
    finally:
        telnyx.close()
