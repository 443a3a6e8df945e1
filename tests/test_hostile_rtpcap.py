""".rtpcap files under damage, and payload-type clocks under hostile maps (#24 items 7-8)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from telnyx_audio import codecs
from telnyx_audio.forks.read import read_fork_capture
from telnyx_audio.forks.rtpcap import MAGIC, RECORD, ForkCaptureWriter
from telnyx_audio.rtp.packet import build_packet, parse_payload_type, payload_type_map

ROOT = Path(__file__).resolve().parents[1]
T0 = 1_700_000_000_000_000
N = 500  # packets per track: 10 s


def tone(track):
    t = np.arange(160 * N) / 8000
    return codecs.encode((8000 * np.sin(2 * np.pi * (300 + 200 * track) * t)).astype(np.int16), "PCMU")


def write_call(path, meta=None, pt=0, n=N):
    """A 10 s two-track PCMU call as the fork receiver writes it; returns the record offsets."""
    offsets = []
    payload = [tone(0), tone(1)]
    with ForkCaptureWriter(path, {"session_id": "s1", **(meta or {})}) as w:
        for i in range(n):
            for track in (0, 1):
                offsets.append(w.size)
                w.write(track, build_packet(payload[track][160 * i : 160 * (i + 1)], payload_type=pt,
                                            sequence_number=i, timestamp=160 * i, ssrc=10 + track),
                        T0 + 20_000 * i + 100 * track)
    return offsets


@pytest.fixture
def clean(tmp_path):
    path = tmp_path / "clean.rtpcap"
    offsets = write_call(path)
    return path, offsets, read_fork_capture(path)


def damaged(tmp_path, clean, change):
    path, offsets, _ = clean
    data = bytearray(path.read_bytes())
    change(data, offsets)
    out = tmp_path / "damaged.rtpcap"
    out.write_bytes(bytes(data))
    return read_fork_capture(out)


def same_late_audio(cap, ref, seconds=4):
    """The last seconds of both tracks are the clean capture's (reading went on after the damage)."""
    n = 8000 * seconds
    assert cap.recording.audio.shape[1] >= n
    return np.array_equal(cap.recording.audio[:, -n:], ref.recording.audio[:, -n:])


@pytest.mark.parametrize("how", ["flipped magic", "four junk bytes", "zero-filled hole"])
def test_damage_mid_file_loses_only_the_damaged_records(tmp_path, clean, how):
    mid = clean[1][N]  # a record header half way

    def change(data, offsets):
        if how == "flipped magic":
            data[mid] ^= 0xFF
        elif how == "four junk bytes":
            data[mid:mid] = b"\x01\x02\x03\x04"
        else:
            data[mid : mid + 2000] = bytes(2000)

    cap = damaged(tmp_path, clean, change)
    ref = clean[2]
    assert cap.report.lines >= ref.report.lines - 12
    assert same_late_audio(cap, ref)
    assert any("damaged stretches skipped" in w for w in cap.report.warnings)


def test_a_length_field_of_ffff_does_not_swallow_the_records_after_it(tmp_path, clean):
    mid = clean[1][N]

    def change(data, offsets):
        data[mid + 2 : mid + 4] = b"\xff\xff"

    cap = damaged(tmp_path, clean, change)
    assert cap.report.lines >= clean[2].report.lines - 2
    assert same_late_audio(cap, clean[2])
    assert cap.report.bad_lines == 0  # nothing decoded as noise


@pytest.mark.parametrize("when", [0, T0 - 86_400_000_000])
def test_one_receive_time_far_off_does_not_move_the_call(tmp_path, clean, when):
    def change(data, offsets):
        for at in (offsets[0], offsets[N]):
            data[at + 4 : at + 12] = int(when).to_bytes(8, "little", signed=True)

    cap = damaged(tmp_path, clean, change)
    assert abs(cap.recording.audio.shape[1] / 8000 - 10) < 0.1
    assert any("receive time out of line" in w for w in cap.report.warnings)


def test_a_record_with_an_unknown_track_byte_is_counted(tmp_path, clean):
    def change(data, offsets):
        data[offsets[N] + 1] = 7

    cap = damaged(tmp_path, clean, change)
    assert any("1 records with an unknown track byte" in w for w in cap.report.warnings)
    assert same_late_audio(cap, clean[2])


def test_a_header_of_the_wrong_types_is_said_and_decode_goes_on_to_the_next_files(tmp_path):
    bad = tmp_path / "bad.rtpcap"
    write_call(bad, {"custom_parameters": [1, 2], "call_control_id": 7}, n=50)
    good = tmp_path / "good.rtpcap"
    write_call(good, n=50)
    cap = read_fork_capture(bad)
    assert cap.custom_parameters == {} and cap.call_control_id is None
    assert any("custom_parameters" in w for w in cap.report.warnings)
    done = subprocess.run([sys.executable, "-m", "telnyx_audio", "decode", str(bad), str(good), "--out",
                           str(tmp_path / "out")], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert "Traceback" not in done.stderr, done.stderr[-2000:]
    assert (tmp_path / "out" / "good" / "stereo.wav").exists() and (tmp_path / "out" / "bad" / "stereo.wav").exists()


@pytest.mark.parametrize("spec", ["0=PCMU/1", "96=L16/1", "96=L16/100000000", "9=G722/16000", "96=OPUS/8000",
                                  "0=L16/16000", "96=AMR-WB/8000"])
def test_a_payload_type_with_a_clock_telnyx_never_uses_is_refused(spec):
    with pytest.raises(ValueError, match="clock|static"):
        parse_payload_type(spec)


def test_a_hostile_clock_in_a_capture_header_is_ignored_and_the_static_type_keeps_its_clock(tmp_path):
    path = tmp_path / "c.rtpcap"
    write_call(path, {"payload_types": {"0": "PCMU/1", "96": "L16/100000000"}}, n=50)
    cap = read_fork_capture(path)
    assert cap.recording.sample_rate == 8000
    assert cap.recording.audio.shape[1] == 50 * 160  # 1 s, not 7,840 s
    assert sum("in the header ignored" in w for w in cap.report.warnings) == 2
    assert payload_type_map(["96=L16/16000"])[96].clock_rate == 16000


def test_the_drop_table_of_a_receiver_stays_bounded_under_spoofed_senders(tmp_path):
    from telnyx_audio.forks._datagrams import MAX_DROPPED_FROM, OTHER_SENDERS
    from telnyx_audio.forks.receiver import ForkReceiver

    receiver = ForkReceiver(tmp_path, allow=["10.0.0.0/8"])
    pair = type("P", (), {"n_dropped": 0, "dropped": {}})()
    for i in range(MAX_DROPPED_FROM + 5000):
        receiver._datagram(pair, 0, b"x", (f"192.0.{i // 256 % 256}.{i % 256}" if i < 65536 else "x", 5))
    assert len(receiver.dropped_from) == MAX_DROPPED_FROM + 1
    assert receiver.dropped_from[OTHER_SENDERS] == 5000 and receiver.dropped == MAX_DROPPED_FROM + 5000
    assert len(pair.dropped) <= 100
