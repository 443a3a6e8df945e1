"""Wideband decoders under hostile frames: one bad frame is concealed like a lost one and
never ends the stream; a payload cannot list thousands of frames (#24 items 9-10)."""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path

import numpy as np

from conftest import capture_lines, write_capture
from telnyx_audio.codecs import amrwb
from telnyx_audio.read import read_capture
from telnyx_audio.rtp.assemble import capture_from_records
from telnyx_audio.rtp.datagrams import Records
from telnyx_audio.rtp.packet import build_packet

VECTORS = Path(__file__).parent / "vectors" / "wideband"


def payloads(name, key=None):
    v = json.loads((VECTORS / f"{name}.json").read_text())
    items = v["payloads"][key] if key else v["payloads"]
    return [base64.b64decode(p) for p in items]


def ws_capture(tmp_path, encoding, rate, frames, name="call.jsonl"):
    """A WebSocket capture with ``frames`` (None: lost) on the inbound track, 20 ms apart."""
    table = [{"track": "inbound", "chunk": i + 1, "timestamp": 20 * i, "payload": p}
             for i, p in enumerate(frames) if p is not None]
    return read_capture(write_capture(tmp_path / name, capture_lines(table, encoding=encoding, sample_rate=rate)))


def fork_capture(frames, pt, clock_step, ptmap=None):
    """A fork capture with ``frames`` (None: lost) as RTP on the inbound track, 20 ms apart."""
    dgrams, arrivals = [], []
    for i, p in enumerate(frames):
        if p is None:
            continue
        dgrams.append(build_packet(p, payload_type=pt, sequence_number=100 + i, timestamp=clock_step * i, ssrc=5))
        arrivals.append(1_700_000_000_000_000 + 20_000 * i)
    recs = Records.from_datagrams([0] * len(dgrams), arrivals, dgrams, {"payload_types": ptmap or {}})
    return capture_from_records(recs, path="mem")


def snr_db(got, want):
    g, w = got.astype(float), want.astype(float)
    return 10 * np.log10((w**2).sum() / max(((g - w) ** 2).sum(), 1e-9))


def test_a_g722_stream_with_an_empty_payload_between_lost_frames_decodes_to_its_end(tmp_path):
    clean = payloads("g722")[:80]
    hurt: list = list(clean)
    hurt[30], hurt[31], hurt[32] = None, b"", None  # lost, empty, lost
    for cap, ref in ((ws_capture(tmp_path, "G722", 16000, hurt), ws_capture(tmp_path, "G722", 16000, clean, "c.jsonl")),
                     (fork_capture(hurt, 9, 160), fork_capture(clean, 9, 160))):
        assert cap.error is None, cap.error
        got, want = cap.recording.audio[0], ref.recording.audio[0]
        assert abs(got.size - want.size) <= 320  # (the empty payload holds no time of its own)
        later = slice(-320 * 40, None)  # the audio after the damage decodes as without it
        assert np.abs(want[later]).max() > 1000 and snr_db(got[later], want[later]) > 20


def test_an_amrwb_frame_the_quick_check_takes_but_no_packing_fits_is_concealed_not_the_end(tmp_path):
    clean = payloads("amrwb_mode8", "octet-aligned 1")[:60]
    assert amrwb.frame_count(bytes([0xF7, 0xC1])) == 0  # fits no packing (padding bits set)
    hurt = list(clean)
    hurt[20] = bytes([0xF7, 0xC1])
    for cap, ref in ((ws_capture(tmp_path, "AMR-WB", 16000, hurt), ws_capture(tmp_path, "AMR-WB", 16000, clean, "c.jsonl")),
                     (fork_capture(hurt, 96, 320, {"96": "AMR-WB/16000"}),
                      fork_capture(clean, 96, 320, {"96": "AMR-WB/16000"}))):
        assert cap.error is None, cap.error
        got, want = cap.recording.audio[0], ref.recording.audio[0]
        assert got.size == want.size == 60 * 320
        assert np.abs(got[320 * 40 :]).max() > 1000  # the stream went on after the bad frame
        assert cap.recording.reports["inbound"].corrupt_frames >= 1


def nodata_payload(n, packing):
    return amrwb.pack([bytes([amrwb.NO_DATA << 3 | 0x04])] * n, packing)


def test_an_amrwb_payload_listing_forty_thousand_frames_is_refused_not_hours_of_audio(tmp_path):
    big = nodata_payload(40_000, "octet-aligned")
    assert amrwb.frame_count(big) == 0 and amrwb.frame_count(nodata_payload(amrwb.MAX_FRAMES, "octet-aligned")) == 50
    frames = payloads("amrwb_mode8", "octet-aligned 1")[:40]
    frames[10:30] = [big] * 20  # 20 messages of 40 KB
    cap = ws_capture(tmp_path, "AMR-WB", 16000, frames)
    assert cap.error is None
    assert cap.recording.audio.shape[1] < 16000 * 60  # not 40,000 x 20 x 20 ms (4.4 h)
    fork = fork_capture(frames, 96, 320, {"96": "AMR-WB/16000"})
    assert fork.recording.audio.shape[1] < 16000 * 60


def test_the_bandwidth_efficient_parse_of_a_long_payload_takes_linear_time():
    # 240 KB of NO_DATA tables of contents took 19.9 s (the payload shifted as one integer per field).
    long = nodata_payload(amrwb.MAX_FRAMES, "bandwidth-efficient") + bytes(240_000)
    t = time.perf_counter()
    for _ in range(20):
        assert amrwb.frame_count(long) == 0
        assert amrwb.frame_count(bytes([0xF7]) + bytes([0xFF]) * 240_000) == 0
    assert time.perf_counter() - t < 5.0
    assert amrwb.unpack(nodata_payload(3, "bandwidth-efficient"))[0] == [bytes([0x7C])] * 3
