"""The fork receiver under hostile senders: strangers kept out of a call, calls capped in size,
finalising in limited worker processes with every failure recorded, disk full without
leaks (#24 items 2, 3, 5, 6)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from telnyx_audio import codecs
from telnyx_audio.forks.receiver import ForkReceiver
from telnyx_audio.rtp.packet import build_packet

ROOT = Path(__file__).resolve().parents[1]


def packets(n, ssrc, ts_step=160, seq0=0):
    t = np.arange(160 * n) / 8000
    payload = codecs.encode((8000 * np.sin(2 * np.pi * 440 * t)).astype(np.int16), "PCMU")
    return [build_packet(payload[160 * i : 160 * (i + 1)], payload_type=0, sequence_number=seq0 + i,
                         timestamp=(ts_step * i) % (1 << 32), ssrc=ssrc) for i in range(n)]


def send(sock, data, port, pause=0.0):
    for d in data:
        sock.sendto(d, ("127.0.0.1", port))
        if pause:
            time.sleep(pause)


def wait_for(cond, timeout=20):
    end = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < end, "timed out"
        time.sleep(0.01)


def test_a_stranger_cannot_join_a_call_and_is_counted_and_said(tmp_path, caplog):
    with ForkReceiver(tmp_path) as receiver, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as real, \
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as stranger:
        call = receiver.allocate("v3:call")
        rx, tx = call.rx_port, call.tx_port
        mine_rx, mine_tx = packets(250, 1), packets(250, 2)
        send(real, mine_rx[:1], rx)
        send(real, mine_tx[:1], tx)
        wait_for(lambda: sum(call.packets) == 2)
        for i in range(1, 250):
            real.sendto(mine_rx[i], ("127.0.0.1", rx))
            real.sendto(mine_tx[i], ("127.0.0.1", tx))
            if i % 25 == 0:  # 10 packets under another SSRC, another address, amid the call
                stranger.sendto(packets(1, 77, seq0=i)[0], ("127.0.0.1", rx))
            if i in (100, 101, 102):  # and 3 with huge timestamp steps
                stranger.sendto(packets(1, 88, ts_step=0, seq0=i)[0][:4] + ((10**9 * i) % (1 << 32)).to_bytes(4, "big")
                                + packets(1, 88)[0][8:], ("127.0.0.1", rx))
            time.sleep(0.0005)
        wait_for(lambda: sum(call.packets) == 500 and call.strangers == 12)
        receiver.finish(call)
        real_port, stranger_port = real.getsockname()[1], stranger.getsockname()[1]
    assert call.state == "done", call.error
    assert abs(call.summary["duration_s"] - 5.0) < 0.1  # 250 packets of 20 ms, not stretched
    info = call.summary["receiver"]
    assert info["datagrams_dropped_strangers"] == 12
    assert list(info["strangers_from"]) == [f"127.0.0.1:{stranger_port}"]
    assert info["sources"]["rx"] == f"127.0.0.1:{real_port}"
    assert call.summary["rtp"]["inbound"]["ssrcs"] == ["00000001"]
    assert any("belongs to" in r.getMessage() for r in caplog.records)


def test_a_call_past_its_size_limit_keeps_what_came_before_and_counts_the_rest(tmp_path):
    receiver = ForkReceiver(tmp_path)
    receiver.max_call_bytes = 20_000
    with receiver, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        call = receiver.allocate("v3:big")
        send(sock, packets(200, 1), call.rx_port, pause=0.0002)
        wait_for(lambda: call.packets[0] + call.over_limit == 200)
        receiver.finish(call)
    assert call.state == "done" and call.over_limit > 0
    assert os.path.getsize(call.capture_path) <= 20_000 + 12 + 172
    assert call.summary["receiver"]["datagrams_over_limit"] == call.over_limit


def test_a_finaliser_out_of_memory_ends_the_call_as_an_error_with_a_summary_and_a_log_line(tmp_path, caplog):
    receiver = ForkReceiver(tmp_path)
    receiver.finalize_memory_bytes = 40 << 20  # too little to even import numpy: the worker fails
    with receiver, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        call = receiver.allocate("v3:oom")
        send(sock, packets(50, 1), call.rx_port)
        wait_for(lambda: call.packets[0] == 50)
        receiver.finish(call)
    assert call.state == "error" and call.done.is_set()
    assert "Error" in call.error  # (an ImportError or MemoryError of the worker: under 40 MB nothing fits)
    summary = json.loads((call.folder / "summary.json").read_text())
    assert summary["error"] == call.error and summary["receiver"]["datagrams_written"] == 50
    assert any(call.error in r.getMessage() for r in caplog.records if r.levelname == "ERROR")


def test_finalising_runs_in_a_worker_process_not_in_the_receiver(tmp_path):
    # A call that needs more memory than the worker is allowed fails there; the receiver's
    # own process (under no limit here) never allocates it, and the next call is done.
    with ForkReceiver(tmp_path) as receiver, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        receiver.finalize_memory_bytes = 40 << 20
        first = receiver.allocate("v3:first")
        send(sock, packets(20, 1), first.rx_port)
        wait_for(lambda: first.packets[0] == 20)
        receiver.finish(first)
        receiver.finalize_memory_bytes = 3 << 30
        second = receiver.allocate("v3:second")
        send(sock, packets(20, 1), second.rx_port)
        wait_for(lambda: second.packets[0] == 20)
        receiver.finish(second)
    assert first.state == "error" and second.state == "done"
    assert (second.folder / "stereo.wav").exists()


DISK_FULL = """
import json, os, resource, signal, socket, sys, time
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
from telnyx_audio.forks.receiver import ForkReceiver
out = sys.argv[1]
receiver = ForkReceiver(out, rx_port=0, tx_port=0).start()
rx, tx = receiver.pairs[0]
fds = len(os.listdir('/proc/self/fd'))
resource.setrlimit(resource.RLIMIT_FSIZE, (0, resource.RLIM_INFINITY))  # every write fails: a full disk
with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
    for i in range(1200):
        s.sendto(b"\\x80\\x00" + bytes(170), ("127.0.0.1", rx if i % 2 else tx))
        time.sleep(0.0002)
end = time.monotonic() + 20
while receiver.not_written < 1200 and time.monotonic() < end:
    time.sleep(0.01)
print(json.dumps({"not_written": receiver.not_written, "folders": len(os.listdir(out)),
                  "leaked_fds": len(os.listdir('/proc/self/fd')) - fds}))
receiver.stop()
"""


def test_a_full_disk_leaks_no_descriptor_makes_no_folders_and_counts_the_drops(tmp_path):
    out = tmp_path / "out"
    done = subprocess.run([sys.executable, "-c", DISK_FULL, str(out)], capture_output=True, text=True, timeout=120,
                          cwd=ROOT)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result == {"not_written": 1200, "folders": 0, "leaked_fds": 0}
    assert "Traceback" not in done.stderr
    assert done.stderr.count("cannot open a call's capture") <= 3  # said once per back-off, not per datagram


def test_a_call_flooded_with_sixty_thousand_ssrcs_finishes_promptly_beside_a_normal_call(tmp_path):
    receiver = ForkReceiver(tmp_path)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        receiver.start()
        flood, normal = receiver.allocate("v3:flood"), receiver.allocate("v3:normal")
        send(sock, packets(100, 1), flood.rx_port)
        send(sock, packets(100, 2), normal.rx_port)
        one = packets(1, 0)[0]
        for i in range(60_000):  # one packet per SSRC
            sock.sendto(one[:8] + (1000 + i).to_bytes(4, "big") + one[12:], ("127.0.0.1", flood.rx_port))
            if i % 500 == 0:
                time.sleep(0.005)
        wait_for(lambda: normal.packets[0] == 100 and flood.packets[0] > 50_000, timeout=60)
        t = time.monotonic()
        receiver.stop()  # finishes both calls (what SIGTERM does), two at once
        took = time.monotonic() - t
    assert normal.state == "done" and flood.state == "done", (normal.error, flood.error)
    assert flood.summary["rtp"]["inbound"]["sources_left_out"] > 50_000
    assert took < 30  # was 31 s for SIGTERM, 60 s to finalise (quadratic in the SSRCs)
