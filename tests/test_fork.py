"""Fork captures: RTP packets to the same Recording and report as a WebSocket stream.

Pure tests: packets come from the fork simulator or are written byte by byte, and are
assembled in memory or through a capture file on disk. The UDP receiver is tested in
test_fork_receiver.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import telnyx_audio
from telnyx_audio import codecs, rtp
from telnyx_audio.forks import ForkCaptureWriter, Records, assemble_fork, read_fork_capture, read_records
from telnyx_audio.simulators.fork import fork_packets

RATE = 8000


def call_audio(seconds: float = 2.0, rate: int = RATE, seed: int = 0) -> np.ndarray:
    """Two noisy tones, [inbound, outbound], int16."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    pcm = np.stack([6000 * np.sin(2 * np.pi * 350 * t), 4000 * np.sin(2 * np.pi * 620 * t)])
    pcm += rng.normal(0, 200, pcm.shape)
    return np.clip(pcm, -32768, 32767).astype(np.int16)


def g711(audio: np.ndarray, codec: str = "PCMU") -> np.ndarray:
    """What a perfect fork of ``audio`` decodes to."""
    return np.stack([codecs.decode(codecs.encode(x, codec), codec) for x in audio])


def records_of(packets, *, spacing_us=None, meta=None) -> Records:
    """In-memory records; receive times are the packets' due times unless spaced evenly."""
    times = [int(p.due_s * 1e6) if spacing_us is None else i * spacing_us for i, p in enumerate(packets)]
    return Records.from_datagrams([p.track for p in packets], times, [p.data for p in packets], meta)


def assemble(packets, **kwargs):
    return assemble_fork(records_of(packets), **kwargs)


AUDIO = call_audio()
CLEAN = g711(AUDIO)


def test_a_clean_fork_decodes_bit_exact_on_both_tracks():
    rec, report, events = assemble(fork_packets(AUDIO, seed=1)[0])
    assert (rec.encoding, rec.sample_rate, rec.tracks) == ("PCMU", 8000, ("inbound", "outbound"))
    np.testing.assert_array_equal(rec.audio, CLEAN)
    assert report.rtp["inbound"].lost == 0 and report.bad_lines == 0 and events == ()


def test_pcma_and_l16_forks_decode_bit_exact():
    rec, _, _ = assemble(fork_packets(AUDIO, codec="PCMA")[0])
    np.testing.assert_array_equal(rec.audio, g711(AUDIO, "PCMA"))
    wide = call_audio(1.0, 16000)
    rec, _, _ = assemble(fork_packets(wide, codec="L16")[0], payload_types=["96=L16/16000"])
    assert rec.sample_rate == 16000
    np.testing.assert_array_equal(rec.audio, wide)


@pytest.mark.parametrize("packet_ms", [10, 30, 60])
def test_packets_of_any_size_are_placed_the_same(packet_ms):
    rec, report, _ = assemble(fork_packets(AUDIO, packet_ms=packet_ms)[0])
    np.testing.assert_array_equal(rec.audio[:, : CLEAN.shape[1]], CLEAN)
    assert report.tracks["inbound"].samples_per_frame == RATE * packet_ms // 1000


def test_packets_of_mixed_sizes_in_one_track_are_placed_by_timestamp():
    pcmu = codecs.encode(AUDIO[0], "PCMU")
    sizes = [80, 160, 240, 160, 320, 40]
    packets, at = [], 0
    for i, size in enumerate(sizes * 10):
        packets.append(rtp.build_packet(pcmu[at : at + size], payload_type=0, sequence_number=i, timestamp=at, ssrc=9))
        at += size
    rec, _, _ = assemble_fork(Records.from_datagrams([0] * len(packets), range(len(packets)), packets))
    np.testing.assert_array_equal(rec.inbound, CLEAN[0][:at])


def test_reordered_and_duplicated_packets_give_the_same_audio_and_are_counted():
    packets, sent = fork_packets(AUDIO, reorder=0.3, duplicate=0.2, seed=3)
    rec, report, _ = assemble(packets)
    np.testing.assert_array_equal(rec.audio, CLEAN)
    stats = report.rtp
    assert stats["inbound"].duplicated + stats["outbound"].duplicated == sent.duplicated
    assert stats["inbound"].reordered > 0 and stats["outbound"].reordered > 0
    assert stats["inbound"].missing == 0 and stats["outbound"].missing == 0  # Wireshark's lost: duplicates offset


@settings(max_examples=25, deadline=None)
@given(st.randoms(use_true_random=False))
def test_any_arrival_order_with_repeats_gives_the_same_recording(rnd):
    packets = fork_packets(AUDIO[:, :3200], seed=5)[0]
    shuffled = packets + [rnd.choice(packets) for _ in range(5)]
    rnd.shuffle(shuffled)
    # Even receive times: arrival order carries no timing, so the tracks are aligned only by
    # their least-delayed packet; each track's own audio must still be exact.
    rec, _, _ = assemble_fork(records_of(shuffled, spacing_us=1000))
    for t in range(2):
        row = rec.audio[t][rec.audio[t] != 0]
        ref = CLEAN[t, :3200][CLEAN[t, :3200] != 0]
        np.testing.assert_array_equal(row, ref)


def test_lost_packets_leave_silence_at_their_place_and_later_audio_at_its_true_time():
    packets, sent = fork_packets(AUDIO, drop=0.1, seed=7)
    rec, report, _ = assemble(packets)
    # RTP cannot see a loss before a track's first packet or after its last: not counted.
    clean = fork_packets(AUDIO, seed=7)[0]
    got = {p.data for p in packets}
    kept = {t: [i for i, p in enumerate(clean) if p.track == t and p.data in got] for t in (0, 1)}
    tail = sum(1 for i, p in enumerate(clean)
               if p.data not in got and not kept[p.track][0] < i < kept[p.track][-1])
    lost = report.rtp["inbound"].lost + report.rtp["outbound"].lost
    assert lost == sent.dropped - tail > 0
    assert rec.audio.shape == CLEAN.shape or rec.audio.shape[1] < CLEAN.shape[1]
    frames = rec.audio[:, : rec.audio.shape[1] // 160 * 160].reshape(2, -1, 160)
    ref = CLEAN[:, : frames.shape[1] * 160].reshape(2, -1, 160)
    same = (frames == ref).all(axis=2)
    silent = (frames == 0).all(axis=2)
    assert (same | silent).all()  # every 20 ms is either the true audio or a silent gap
    assert int((~same).sum()) <= sent.dropped
    assert sum(len(r.gaps) for r in report.tracks.values()) > 0


def test_sequence_numbers_and_timestamps_wrapping_mid_call_change_nothing():
    packets = fork_packets(AUDIO, seq_start=65500, ts_start=2**32 - 4000, reorder=0.2, seed=2)[0]
    rec, report, _ = assemble(packets)
    np.testing.assert_array_equal(rec.audio, CLEAN)
    assert report.rtp["inbound"].packets == 100 and report.rtp["inbound"].missing == 0


def test_an_ssrc_change_mid_call_continues_the_same_track():
    packets, sent = fork_packets(AUDIO, ssrc_change_at=1.1, seed=4)
    rec, report, _ = assemble(packets)
    np.testing.assert_array_equal(rec.audio, CLEAN)
    assert report.rtp["inbound"].ssrcs == tuple(sent.ssrcs["inbound"])
    assert report.rtp["inbound"].lost == 0  # the sequence jump between sources is no loss


def test_an_ssrc_change_written_byte_by_byte_continues_where_the_new_source_began():
    pcmu = codecs.encode(AUDIO[0], "PCMU")

    def pkt(ssrc, seq, ts, i):
        # V=2, PT 0 (M=1 on a source's first packet), seq, ts, SSRC, then 160 bytes of PCMU
        head = bytes([0x80, 0x80 if seq in (65534, 7) else 0x00]) + seq.to_bytes(2, "big") + ts.to_bytes(4, "big")
        return head + ssrc.to_bytes(4, "big") + pcmu[i * 160 : (i + 1) * 160]

    old = [pkt(0xAAAAAAAA, (65534 + i) % 65536, (4294967000 + 160 * i) % 2**32, i) for i in range(40)]
    new = [pkt(0xBBBBBBBB, 7 + i, 123456 + 160 * i, 40 + i) for i in range(60)]  # a re-INVITE at 0.8 s
    arrival = np.arange(100) * 20000  # the new source's first packet arrives right after the old's last
    rec, report, _ = assemble_fork(Records.from_datagrams([0] * 100, arrival, old + new))
    np.testing.assert_array_equal(rec.inbound, CLEAN[0])
    stats = report.rtp["inbound"]
    assert stats.ssrcs == ("aaaaaaaa", "bbbbbbbb") and stats.expected == 100 and stats.lost == 0


def test_a_new_source_after_a_pause_starts_at_its_arrival_time():
    packets = fork_packets(AUDIO, tracks="inbound", ssrc_change_at=1.0, seed=2)[0]
    held = [p if p.due_s <= 1.0 else type(p)(p.due_s + 0.5, p.track, p.data) for p in packets]  # on hold 0.5 s
    rec, report, _ = assemble(held)
    np.testing.assert_array_equal(rec.inbound[:8000], CLEAN[0][:8000])
    assert (rec.inbound[8000:12000] == 0).all()
    np.testing.assert_array_equal(rec.inbound[12000:], CLEAN[0][8000:])
    assert report.tracks["inbound"].gaps == ((1.0, 500.0),)


def test_tracks_are_aligned_on_one_timeline_by_arrival_time():
    packets = fork_packets(AUDIO, seed=1)[0]
    # The tx side starts 0.5 s later on the receive clock: its first audio belongs there.
    shifted = [p if p.track == 0 else type(p)(p.due_s + 0.5, p.track, p.data) for p in packets]
    rec, report, _ = assemble(shifted)
    np.testing.assert_array_equal(rec.inbound[: CLEAN.shape[1]], CLEAN[0])
    np.testing.assert_array_equal(rec.outbound[4000 : 4000 + CLEAN.shape[1]], CLEAN[1])
    assert report.tracks["outbound"].start_s == pytest.approx(0.5)


def event(code: int, end: bool, volume: int, duration: int) -> bytes:
    return bytes([code, (0x80 if end else 0) | volume, duration >> 8, duration & 0xFF])


def test_rfc_4733_end_packets_repeated_give_one_digit_with_start_and_duration():
    pcmu = codecs.encode(AUDIO[0], "PCMU")
    pkts, seq = [], 0

    def add(payload, pt, ts, marker=False, same_seq=False):
        nonlocal seq
        if not same_seq:
            seq += 1
        pkts.append(rtp.build_packet(payload, payload_type=pt, sequence_number=seq, timestamp=ts, ssrc=5, marker=marker))

    for i in range(10):  # 200 ms of audio
        add(pcmu[i * 160 : (i + 1) * 160], 0, i * 160)
    # '#' from ts 1600: 3 updates, then the end packet three times (the last two repeat its
    # sequence number too, as some senders do)
    add(event(11, False, 10, 160), 101, 1600, marker=True)
    add(event(11, False, 10, 320), 101, 1600)
    add(event(11, False, 10, 480), 101, 1600)
    add(event(11, True, 10, 640), 101, 1600)
    add(event(11, True, 10, 640), 101, 1600, same_seq=True)
    add(event(11, True, 10, 640), 101, 1600, same_seq=True)
    for i in range(14, 20):  # audio resumes after the event
        add(pcmu[i * 160 : (i + 1) * 160], 0, i * 160)
    rec, report, events = assemble_fork(Records.from_datagrams([0] * len(pkts), np.arange(len(pkts)) * 20000, pkts),
                                        payload_types=["101=telephone-event/8000"])
    (digit,) = report.dtmf_events
    assert (digit.digit, digit.track, digit.start_s, digit.duration_s, digit.volume_dbm0, digit.ended) == (
        "#", "inbound", 0.2, 0.08, -10, True)
    assert [e.digit for e in events] == ["#"]
    assert report.rtp["inbound"].duplicated == 2 and report.rtp["inbound"].dtmf_packets == 4
    np.testing.assert_array_equal(rec.inbound[:1600], CLEAN[0][:1600])
    assert (rec.inbound[1600:2240] == 0).all()  # the event's time: no audio decoded from it
    np.testing.assert_array_equal(rec.inbound[2240:3200], CLEAN[0][2240:3200])


def test_telephone_events_are_recognised_from_their_shape_without_a_map():
    packets = fork_packets(AUDIO, dtmf=[(0.3, "1"), (1.0, "9"), (1.5, "D")], dtmf_payload_type=110)[0]
    rec, report, events = assemble(packets)
    assert [(d.digit, round(d.start_s, 2)) for d in report.dtmf_events] == [("1", 0.3), ("9", 1.0), ("D", 1.5)]
    assert any("110" in w and "telephone-event" in w for w in report.warnings)
    assert "".join(e.digit for e in events) == "19D"


def test_comfort_noise_fills_its_span_at_the_signalled_level_and_is_never_decoded_as_audio():
    pcmu = codecs.encode(AUDIO[0], "PCMU")
    pkts = [rtp.build_packet(pcmu[i * 160 : (i + 1) * 160], payload_type=0, sequence_number=i, timestamp=i * 160,
                             ssrc=1) for i in range(5)]
    # CN at -40 dBov for 1 s (the next packet's timestamp says how long), then CN at 127
    # (-127 dBov: silence) for 0.5 s, then audio again
    pkts.append(rtp.build_packet(bytes([40, 0x11, 0x22]), payload_type=13, sequence_number=5, timestamp=800, ssrc=1))
    pkts.append(rtp.build_packet(bytes([127]), payload_type=13, sequence_number=6, timestamp=8800, ssrc=1))
    pkts.append(rtp.build_packet(pcmu[:160], payload_type=0, sequence_number=7, timestamp=12800, ssrc=1))
    rec, report, _ = assemble_fork(Records.from_datagrams([0] * 8, np.arange(8) * 20000, pkts))
    noise = rec.inbound[800:8800].astype(float)
    level = 20 * np.log10(np.sqrt(np.mean(noise**2)) / 32767)
    assert level == pytest.approx(-40, abs=0.5)
    assert (rec.inbound[8800:12800] == 0).all()
    np.testing.assert_array_equal(rec.inbound[12800:12960], CLEAN[0][:160])
    assert report.rtp["inbound"].comfort_noise_packets == 2
    assert report.tracks["inbound"].gaps == ()  # comfort noise is no gap


def test_malformed_datagrams_interleaved_with_good_ones_leave_the_audio_bit_exact():
    packets = fork_packets(AUDIO, seed=1)[0]
    junk = [b"", b"\x80", b"hello world!", bytes(range(40)), b"\x80\x00" + b"\x00" * 4,
            bytes.fromhex("83000001000000000000000111"), bytes.fromhex("a00000010000000000000001ff09")]
    mixed = []
    for i, p in enumerate(packets):
        mixed.append(p)
        if i % 15 == 0:
            j = junk[(i // 15) % len(junk)]
            mixed.append(type(p)(p.due_s, p.track, j))
    rec, report, _ = assemble(mixed)
    np.testing.assert_array_equal(rec.audio, CLEAN)
    assert report.bad_lines == len(mixed) - len(packets)
    assert {b.reason for b in report.bad_examples} >= {
        "shorter than the 12-byte RTP header", "RTP version is not 2", "CSRC list runs past the end of the datagram"}


def test_a_codec_switch_between_pcmu_and_pcma_decodes_each_packet_with_its_own_law():
    mu, a = codecs.encode(AUDIO[0], "PCMU"), codecs.encode(AUDIO[0], "PCMA")
    pkts = [rtp.build_packet((mu if i < 50 else a)[i * 160 : (i + 1) * 160], payload_type=0 if i < 50 else 8,
                             sequence_number=i, timestamp=i * 160, ssrc=1) for i in range(100)]
    rec, report, _ = assemble_fork(Records.from_datagrams([0] * 100, np.arange(100) * 20000, pkts))
    np.testing.assert_array_equal(rec.inbound[:8000], CLEAN[0][:8000])
    np.testing.assert_array_equal(rec.inbound[8000:], g711(AUDIO, "PCMA")[0][8000:])
    assert report.rtp["inbound"].payload_types == {"0": 50, "8": 50}


def test_a_corrupt_timestamp_cannot_ask_for_hours_of_silence():
    packets = fork_packets(AUDIO, tracks="inbound", seed=1)[0]
    data = bytearray(packets[50].data)
    data[4:8] = (int.from_bytes(data[4:8], "big") + 8000 * 3600 * 5).to_bytes(4, "big")[-4:]  # +5 h
    packets[50] = type(packets[50])(packets[50].due_s, 0, bytes(data))
    rec, report, _ = assemble(packets, max_gap_s=30)
    assert rec.duration_s <= 1.1 + 30  # the one bad packet (at 1 s) cut to max_gap_s away
    r = report.tracks["inbound"]
    assert r.gaps_capped == 2 and any("timestamp jumps cut" in w for w in report.warnings)
    # Every other packet is where it belongs: the jump back gave back what the cut took.
    keep = np.r_[0 : 50 * 160, 51 * 160 : 16000]
    np.testing.assert_array_equal(rec.inbound[keep], CLEAN[0][keep])


def test_a_restarted_timestamp_continues_the_track_and_bounds_the_silence():
    packets = fork_packets(AUDIO, tracks="inbound", seed=1)[0]
    for i in range(60, len(packets)):  # the sender restarts its timestamps 10 h back
        data = bytearray(packets[i].data)
        data[4:8] = ((int.from_bytes(data[4:8], "big") - 8000 * 36000) % 2**32).to_bytes(4, "big")
        packets[i] = type(packets[i])(packets[i].due_s, 0, bytes(data))
    rec, report, _ = assemble(packets, max_gap_s=30)
    np.testing.assert_array_equal(rec.inbound, CLEAN[0])  # the restart's packets follow on
    assert report.tracks["inbound"].gaps_capped == 1
    assert rec.duration_s == pytest.approx(2.0)


def test_a_track_of_only_malformed_datagrams_is_reported_without_audio():
    packets = fork_packets(AUDIO, tracks="inbound")[0]
    junk = [type(p)(p.due_s, 1, b"\x00" * 20) for p in packets[:5]]
    rec, report, _ = assemble(packets + junk)
    np.testing.assert_array_equal(rec.inbound, CLEAN[0])
    assert rec.tracks == ("inbound",) and report.rtp["outbound"].malformed == 5
    assert report.tracks["outbound"].bad_frames == 5


def test_jitter_is_reported_in_ms_as_rfc_3550_computes_it():
    packets = [p for p in fork_packets(AUDIO, tracks="inbound")[0]]
    delays = np.random.default_rng(0).uniform(0, 0.03, len(packets))
    arrival = np.array([p.due_s for p in packets]) + delays
    order = np.argsort(arrival, kind="stable")
    recs = Records.from_datagrams([0] * len(packets), (arrival[order] * 1e6).astype(np.int64),
                                  [packets[i].data for i in order])
    _, report, _ = assemble_fork(recs)
    # Oracle: the RFC's loop over packets in arrival order, times in timestamp units.
    ts = np.array([rtp.parse_packet(packets[i].data).timestamp for i in order], float)
    r = (arrival[order] * 1e6).astype(np.int64) / 1e6 * RATE
    j = 0.0
    for i in range(1, len(r)):
        j += (abs((r[i] - r[i - 1]) - (ts[i] - ts[i - 1])) - j) / 16
    assert report.rtp["inbound"].jitter_ms == pytest.approx(j / RATE * 1000, rel=1e-9)


def test_an_unknown_dynamic_payload_type_is_skipped_with_a_warning_naming_it():
    packets = fork_packets(AUDIO, payload_type=120, tracks="inbound")[0]
    rec, report, _ = assemble(packets)
    assert rec.tracks == () and any("payload type 120" in w for w in report.warnings)
    rec, report, _ = assemble(packets, payload_types={120: "PCMU/8000"})
    np.testing.assert_array_equal(rec.inbound, CLEAN[0])


def write_capture(path, packets, meta=None):
    with ForkCaptureWriter(path, meta or {"session_id": "s-1"}) as w:
        for p in packets:
            w.write(p.track, p.data, int(p.due_s * 1e6))


def test_a_capture_file_reads_back_every_datagram_as_written(tmp_path):
    packets = fork_packets(AUDIO, dtmf=[(0.5, "3")], seed=1)[0]
    path = tmp_path / "fork.rtpcap"
    write_capture(path, packets)
    recs = read_records(path)
    assert [recs.buf[o : o + n].tobytes() for o, n in zip(recs.offset, recs.length)] == [p.data for p in packets]
    assert recs.track.tolist() == [p.track for p in packets] and recs.meta == {"session_id": "s-1"}


def test_a_torn_last_record_is_reported_and_ignored(tmp_path):
    packets = fork_packets(AUDIO, seed=1)[0]
    path = tmp_path / "fork.rtpcap"
    write_capture(path, packets)
    size = path.stat().st_size
    os.truncate(path, size - 50)  # SIGKILL mid-write, or the disk filled
    cap = read_fork_capture(path)
    assert cap.report.lines == len(packets) - 1
    assert cap.report.truncated_bytes == 12 + len(packets[-1].data) - 50
    assert any("torn" in w for w in cap.report.warnings)
    np.testing.assert_array_equal(cap.recording.inbound, CLEAN[0])  # the last packet was tx's
    np.testing.assert_array_equal(cap.recording.outbound[:15840], CLEAN[1][:15840])


def test_a_corrupt_record_is_skipped_with_a_warning_and_reading_goes_on_after_it(tmp_path):
    packets = fork_packets(AUDIO, seed=1)[0]
    path = tmp_path / "fork.rtpcap"
    write_capture(path, packets)
    data = bytearray(path.read_bytes())
    header_end = data.index(b"\n") + 1
    at = header_end + 100 * (12 + 172)
    data[at] = 0x00  # the 101st record's magic byte
    path.write_bytes(bytes(data))
    cap = read_fork_capture(path)
    assert cap.report.lines == 199  # only the damaged record is lost (#24 item 7)
    assert any(f"{12 + 172} bytes at byte {at}" in w for w in cap.report.warnings)


def test_read_capture_and_decode_take_a_fork_capture_like_a_websocket_one(tmp_path):
    packets = fork_packets(AUDIO, dtmf=[(0.5, "4")], reorder=0.1, seed=1)[0]
    path = tmp_path / "call.rtpcap"
    write_capture(path, packets, {"session_id": "s-2", "call_control_id": "v3:abc"})
    cap = telnyx_audio.read_capture(path)
    assert (cap.stream_id, cap.call_control_id, cap.media_format.encoding) == ("s-2", "v3:abc", "PCMU")
    summary = cap.summary()
    assert summary["dtmf"] == "4" and summary["rtp"]["inbound"]["lost"] == 0
    json.dumps(summary)  # JSON-able
    out = tmp_path / "out"
    done = subprocess.run([sys.executable, "-m", "telnyx_audio", "decode", str(path), "--out", str(out)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    (folder,) = out.iterdir()
    written = json.loads((folder / "summary.json").read_text())
    assert written["dtmf"] == "4" and written["rtp"]["outbound"]["packets"] == 100
    assert {"inbound.wav", "outbound.wav", "stereo.wav"} <= set(os.listdir(folder))


def test_a_file_that_is_not_a_fork_capture_is_refused_by_name(tmp_path):
    path = tmp_path / "x.rtpcap"
    path.write_bytes(b"\x80\x00garbage")
    with pytest.raises(telnyx_audio.errors.CaptureError, match="x.rtpcap"):
        read_fork_capture(path)


VECTORS = __import__("pathlib").Path(__file__).parent / "vectors" / "wideband"


def wideband_vector(name):
    import base64

    v = json.loads((VECTORS / f"{name}.json").read_text())
    return [base64.b64decode(p) for p in v["payloads"]], np.frombuffer(base64.b64decode(v["expected_pcm"]), "<i2"), v


def rtp_stream(payloads, pt, ticks_per_packet, ssrc=3):
    return [rtp.build_packet(p, payload_type=pt, sequence_number=i, timestamp=i * ticks_per_packet, ssrc=ssrc)
            for i, p in enumerate(payloads)]


def test_a_g722_fork_decodes_at_16_khz_as_ffmpeg_does():
    payloads, expected, _ = wideband_vector("g722")  # ffmpeg's encoder and decoder (the oracle)
    packets = rtp_stream(payloads, 9, 160)  # static PT 9; the RTP clock is 8 kHz (RFC 3551 4.5.2)
    rec, report, _ = assemble_fork(Records.from_datagrams([0] * len(packets), np.arange(len(packets)) * 20000, packets))
    assert (rec.encoding, rec.sample_rate) == ("G722", 16000)
    np.testing.assert_array_equal(rec.inbound, expected[: rec.inbound.size])
    assert rec.inbound.size == 320 * len(payloads) and report.rtp["inbound"].lost == 0


def test_an_opus_fork_with_a_lost_packet_keeps_later_audio_at_its_true_time():
    payloads, expected, v = wideband_vector("opus_20ms_fec")
    packets = rtp_stream(payloads, 111, 960)
    lost = packets[:40] + packets[41:]
    rec, report, _ = assemble_fork(Records.from_datagrams([1] * len(lost), np.arange(len(lost)) * 20000, lost),
                                   payload_types=["111=OPUS/48000"])
    assert (rec.encoding, rec.sample_rate) == ("OPUS", 48000)
    assert rec.outbound.size == 960 * len(payloads)  # the lost 20 ms concealed, not dropped
    r = report.tracks["outbound"]
    assert report.rtp["outbound"].lost == 1 and r.concealed_frames == 1 and r.concealment == "opus plc/fec"
    # Audio after the loss converges on the uninterrupted decode (Opus state recovers).
    whole, _, _ = assemble_fork(Records.from_datagrams([1] * len(packets), np.arange(len(packets)) * 20000, packets),
                                payload_types=["111=OPUS/48000"])
    got, ref = rec.outbound[960 * 60 :].astype(float), whole.outbound[960 * 60 :].astype(float)
    assert np.sqrt(np.mean((got - ref) ** 2)) < 0.05 * np.sqrt(np.mean(ref**2))
    skip = v["pre_skip"]
    n = min(whole.outbound.size - skip, expected.size)
    np.testing.assert_allclose(whole.outbound[skip : skip + n], expected[:n], atol=2)


def test_a_write_that_does_not_fit_leaves_the_capture_readable_up_to_the_last_whole_record(tmp_path):
    # A file-size limit stands in for a full disk: the record that crosses it is written in
    # part (a short write) and must be cut back, and the next ones refused whole.
    script = f"""
import resource, signal, numpy as np
from telnyx_audio.forks import ForkCaptureWriter
from telnyx_audio.simulators.fork import fork_packets
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
packets = fork_packets(np.zeros((2, 8000), np.int16))[0]
w = ForkCaptureWriter({str(tmp_path / "f.rtpcap")!r}, {{}})
resource.setrlimit(resource.RLIMIT_FSIZE, (w.size + 30 * 184 + 100, resource.RLIM_INFINITY))
ok = failed = 0
for p in packets:
    try:
        w.write(p.track, p.data, 0)
        ok += 1
    except OSError:
        failed += 1
print(ok, failed)
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    ok, failed = map(int, done.stdout.split())
    assert ok == 30 and failed == 70
    cap = read_fork_capture(tmp_path / "f.rtpcap")
    assert cap.report.lines == 30 and cap.report.truncated_bytes == 0 and cap.report.warnings == ()


def test_an_amr_wb_fork_decodes_like_the_same_frames_from_a_websocket_stream():
    import base64

    from telnyx_audio.codecs import REGISTRY

    v = json.loads((VECTORS / "amrwb_mode8.json").read_text())
    payloads = [base64.b64decode(p) for p in v["payloads"]["octet-aligned 1"]]  # one 20 ms frame each
    packets = rtp_stream(payloads, 97, 320)
    rec, report, _ = assemble_fork(Records.from_datagrams([0] * len(packets), np.arange(len(packets)) * 20000, packets),
                                   payload_types=["97=AMR-WB/16000"])
    decoder = REGISTRY["AMR-WB"].decoder_factory(16000)  # the stream path's decoder, frame by frame
    expected = np.concatenate([decoder.decode(p) for p in payloads])
    assert (rec.encoding, rec.sample_rate) == ("AMR-WB", 16000)
    np.testing.assert_array_equal(rec.inbound, expected)


def test_an_undecodable_codec_gives_the_capture_with_its_error_not_an_exception(tmp_path):
    packets = fork_packets(AUDIO, payload_type=120, seed=1)[0]
    path = tmp_path / "f.rtpcap"
    write_capture(path, packets)
    (cap,) = telnyx_audio.read_captures(path, media_format={"encoding": "speex", "sample_rate": 8000})
    assert "speex" in cap.error and cap.recording.audio.shape == (2, 0) and cap.report.lines == len(packets)
    with pytest.raises(telnyx_audio.errors.UnsupportedEncodingError):
        telnyx_audio.read_capture(path, media_format={"encoding": "speex", "sample_rate": 8000})


@pytest.mark.parametrize(("codec", "types"), [("G722", None), ("OPUS", ["111=OPUS/48000"])])
def test_the_simulator_sends_wideband_forks_that_decode_as_their_payloads_do(codec, types):
    from telnyx_audio.codecs import REGISTRY
    from telnyx_audio.simulators.fork import default_rate

    rate = default_rate(codec)
    t = np.arange(rate) / rate
    audio = (np.stack([np.sin(2 * np.pi * 440 * t), np.sin(2 * np.pi * 700 * t)]) * 8000).astype(np.int16)
    packets = fork_packets(audio, codec=codec, reorder=0.2, seq_start=1000, seed=3)[0]
    rec, report, _ = assemble(packets, payload_types=types)
    assert (rec.encoding, rec.sample_rate, report.rtp["outbound"].lost) == (codec, rate, 0)
    for t_index, name in enumerate(("inbound", "outbound")):
        ordered = sorted((rtp.parse_packet(p.data) for p in packets if p.track == t_index), key=lambda q: q.sequence_number)
        decoder = REGISTRY[codec].decoder_factory(rate)  # the same payloads through one decoder, in order
        expected = np.concatenate([decoder.decode(q.payload) for q in ordered])
        np.testing.assert_array_equal(rec.audio[t_index][: expected.size], expected)


@pytest.mark.parametrize("held_ticks", [50 * 160, 0])  # A's clock ran on meanwhile, or stood still
def test_a_source_that_comes_back_after_another_resumes_where_its_timestamps_put_it(held_ticks):
    """A -> B -> A (hold and resume, a transfer back): each run at its own time, no false gap."""
    audio = call_audio(3.0, seed=7)
    pcmu = codecs.encode(audio[0], "PCMU")

    def pkt(ssrc, seq, ts, i):
        return rtp.build_packet(pcmu[i * 160 : (i + 1) * 160], payload_type=0, sequence_number=seq, timestamp=ts,
                                ssrc=ssrc)

    a1 = [pkt(0xA, i, 1000 + 160 * i, i) for i in range(50)]
    b = [pkt(0xB, 4000 + i, 777777 + 160 * i, 50 + i) for i in range(50)]
    a2 = [pkt(0xA, 50 + i, 1000 + held_ticks + 160 * (50 + i), 100 + i) for i in range(50)]
    rec, report, _ = assemble_fork(Records.from_datagrams([0] * 150, np.arange(150) * 20000, a1 + b + a2))
    assert rec.duration_s == pytest.approx(3.0)
    np.testing.assert_array_equal(rec.inbound, g711(audio)[0])
    assert report.tracks["inbound"].gaps == ()
    assert report.rtp["inbound"].lost == 0 and report.rtp["inbound"].ssrcs == ("0000000a", "0000000b")


def test_a_stray_sequence_number_is_counted_as_an_outlier_and_never_placed():
    packets = fork_packets(call_audio(3.0), tracks="inbound", seed=1)[0]
    data = bytearray(packets[61].data)
    data[2:4] = ((int.from_bytes(data[2:4], "big") + 30000) % 65536).to_bytes(2, "big")
    stray = type(packets[61])(packets[61].due_s + 0.001, 0, bytes(data[:12]) + b"\xff" * 160)  # 61's timestamp
    clean, _, _ = assemble(packets)
    rec, report, _ = assemble(packets[:62] + [stray] + packets[62:])
    np.testing.assert_array_equal(rec.audio, clean.audio)  # packet 61's audio is still its own
    stats = report.rtp["inbound"]
    assert (stats.packets, stats.missing, stats.outliers) == (151, 0, 1)


def test_packets_reordered_across_source_switches_stay_where_their_timestamps_put_them():
    audio = call_audio(3.0, seed=8)
    pcmu = codecs.encode(audio[0], "PCMU")
    ssrc, seq = [0xA] * 50 + [0xB] * 50 + [0xA] * 50, list(range(50)) + list(range(900, 950)) + list(range(50, 100))
    ts = [160 * i for i in range(50)] + [5000 + 160 * i for i in range(50)] + [160 * i for i in range(100, 150)]
    pkts = [rtp.build_packet(pcmu[i * 160 : (i + 1) * 160], payload_type=0, sequence_number=seq[i], timestamp=ts[i],
                             ssrc=ssrc[i]) for i in range(150)]
    order = list(range(150))
    order[48:52] = [50, 48, 51, 49]  # A's last two arrive among B's first two
    order[98:102] = [100, 98, 99, 101]  # and B's last two after A's first
    arrival = np.arange(150) * 20000
    rec, report, _ = assemble_fork(Records.from_datagrams([0] * 150, arrival, [pkts[i] for i in order]))
    np.testing.assert_array_equal(rec.inbound, g711(audio)[0])
    assert report.tracks["inbound"].gaps == () and report.rtp["inbound"].lost == 0


AUDIO_4S = call_audio(4.0, seed=9)


@settings(max_examples=25, deadline=None)
@given(st.randoms(use_true_random=False))
def test_interleaved_sources_with_clocks_running_or_stopped_give_the_call_as_spoken(rnd):
    """Runs of 2 to 40 packets from 3 SSRCs in turn, each packet at its time; some late."""
    pcmu = codecs.encode(AUDIO_4S[0], "PCMU")
    bases, next_seq, paused, tick = [0, 10**6, 3 * 10**6], [0, 40000, 65500], [0, 0, 0], [None, None, None]
    pkts, runs, i = [], [], 0
    while i < 150:
        k = rnd.choice([j for j in range(3) if not runs or j != runs[-1][0]])
        if tick[k] is not None and rnd.random() < 0.5:  # its clock stood still while it was away
            paused[k] = i - (tick[k] + 1)
        runs.append((k, i, rnd.randint(2, 40)))
        for _ in range(runs[-1][2]):
            tick[k] = i - paused[k]
            pkts.append(rtp.build_packet(pcmu[i * 160 : (i + 1) * 160], payload_type=0, sequence_number=next_seq[k] % 65536,
                                         timestamp=(bases[k] + 160 * tick[k]) % 2**32, ssrc=k + 1))
            next_seq[k], i = next_seq[k] + 1, i + 1
    due = np.arange(len(pkts)) * 20000
    for _, first, n in rnd.sample(runs, min(6, len(runs))):  # one packet of a run late: after the next one
        due[first + rnd.randrange(n)] += 25000
    order = np.argsort(due, kind="stable")
    rec, report, _ = assemble_fork(Records.from_datagrams([0] * len(pkts), due[order], [pkts[j] for j in order]))
    np.testing.assert_array_equal(rec.inbound, g711(AUDIO_4S)[0][: i * 160])
    assert report.rtp["inbound"].missing == 0 and report.tracks["inbound"].gaps == ()
