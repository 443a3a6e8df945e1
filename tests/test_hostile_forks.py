"""Fork assembly under forged packets: silence measured from payloads and capped across
sources, SSRC floods bounded (#24 items 1 and 4)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np

from telnyx_audio import codecs
from telnyx_audio.rtp.assemble import MAX_SOURCES, capture_from_records
from telnyx_audio.rtp.datagrams import Records
from telnyx_audio.rtp.packet import build_packet

ROOT = Path(__file__).resolve().parents[1]
T0 = 1_700_000_000_000_000


def call(n=500, ssrc=1, track=0, t0=T0, seq0=0, ts0=0):
    """``n`` 20 ms PCMU packets of a tone, as (track, received_us, datagram)."""
    t = np.arange(160 * n) / 8000
    payload = codecs.encode((8000 * np.sin(2 * np.pi * 440 * t)).astype(np.int16), "PCMU")
    return [(track, t0 + 20_000 * i, build_packet(payload[160 * i : 160 * (i + 1)], payload_type=0,
                                                   sequence_number=(seq0 + i) % 65536,
                                                   timestamp=(ts0 + 160 * i) % (1 << 32), ssrc=ssrc))
            for i in range(n)]


def assemble(datagrams, ptmap=None):
    datagrams = sorted(datagrams, key=lambda d: d[1])
    recs = Records.from_datagrams([d[0] for d in datagrams], [d[1] for d in datagrams], [d[2] for d in datagrams],
                                  {"payload_types": ptmap or {}})
    return capture_from_records(recs, path="mem")


def test_four_packets_with_one_huge_equal_timestamp_step_give_no_hours_of_silence():
    step = 100_000_000  # 3.5 h at 8 kHz between packets, the same every time
    pkts = [(0, T0 + 20_000 * i, build_packet(bytes(160), payload_type=0, sequence_number=i, timestamp=step * i,
                                              ssrc=3)) for i in range(4)]
    cap = assemble(pkts)
    assert cap.recording.audio.shape[1] <= 8000 * 61  # was 7 h (1.2 GB of WAV)
    assert any("jumps cut" in w for w in cap.report.warnings)


def test_three_amrwb_packets_two_hours_apart_cost_no_gigabytes():
    frame = bytes([0xF0, 0x44]) + bytes(60)  # octet-aligned, one mode-8 frame
    step = 16000 * 7200
    pkts = [(0, T0 + 20_000 * i, build_packet(frame, payload_type=96, sequence_number=i, timestamp=step * i, ssrc=3))
            for i in range(3)]
    cap = assemble(pkts, {"96": "AMR-WB/16000"})
    assert cap.recording.sample_rate == 16000 and cap.recording.audio.shape[1] <= 16000 * 61


def test_sources_hours_apart_in_arrival_are_capped_across_the_call_and_both_tracks_stay_aligned():
    real = call(500, ssrc=1, track=0) + call(500, ssrc=2, track=1)
    later = call(10, ssrc=9, track=0, t0=T0 + 7_200_000_000, seq0=3000, ts0=10**9)  # 2 h later
    cap = assemble(real + later)
    n = cap.recording.audio.shape[1]
    assert n <= 8000 * 11 + 10 * 1010 * 160  # at most 10x the audio, not 2 h
    assert any("between sources left out" in w for w in cap.report.warnings)
    clean = assemble(real)
    assert np.array_equal(cap.recording.audio[:, : 8000 * 10], clean.recording.audio[:, : 8000 * 10])


def test_a_flood_of_one_packet_ssrcs_is_bounded_and_leaves_the_real_call_whole():
    code = f"""
import sys; sys.path.insert(0, {str(ROOT / 'tests')!r})
import numpy as np
from test_hostile_forks import call, assemble, T0
from telnyx_audio.rtp.packet import build_packet
real = call(500, ssrc=1, track=0)
flood = [(0, T0 + 10_000_000 + i, build_packet(bytes(160), payload_type=0, sequence_number=i % 65536,
         timestamp=i * 160, ssrc=1000 + i)) for i in range(60_000)]
cap = assemble(real + flood)
clean = assemble(real)
st = cap.report.rtp["inbound"]
print(len(st.ssrcs), st.sources_left_out, np.array_equal(cap.recording.audio[0, :80000], clean.recording.audio[0, :80000]))
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=90, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-2000:]
    kept, left, same = done.stdout.split()
    assert int(kept) == MAX_SOURCES and int(left) == 60_001 - MAX_SOURCES and same == "True"


def test_two_hundred_thousand_alternating_losses_give_a_summary_of_bounded_size():
    import json

    from telnyx_audio.model.recording import MAX_LISTED

    pkts = [d for i, d in enumerate(call(20_000, ssrc=1)) if i % 2 == 0]  # every other packet lost
    cap = assemble(pkts)
    summary = cap.summary()
    report = summary["track_reports"]["inbound"]
    assert report["n_gaps"] == 9_999 and len(report["gaps"]) == MAX_LISTED
    assert report["gaps_not_listed"] == 9_999 - MAX_LISTED
    assert len(json.dumps(summary, default=str)) < 200_000  # was about 80 bytes a gap


def test_a_new_ssrc_on_every_fifth_packet_from_the_same_sender_never_overwrites_the_real_audio():
    real = call(500, ssrc=1, track=0)
    forged = [(0, T0 + 20_000 * i + 5, build_packet(bytes([0x00]) * 160, payload_type=0, sequence_number=40_000 + i,
                                                    timestamp=160 * i, ssrc=5000 + i)) for i in range(5, 500, 5)]
    cap = assemble(real + forged)
    clean = assemble(real)
    n = clean.recording.audio.shape[1]
    assert np.array_equal(cap.recording.audio[0, :n], clean.recording.audio[0, :n])
    assert any("never overwrites the one that began it" in w for w in cap.report.warnings)
