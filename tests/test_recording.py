"""Assembly: ordering, duplicates, gaps, alignment, and what the report says."""

import random

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import expected_tracks, tone_frames
from telnyx_audio import codecs
from telnyx_audio.streams.protocol import Media
from telnyx_audio.model import FrameTable, assemble_events, plan


def events(frames):
    return [Media(f["track"], f["payload"], chunk=f.get("chunk"), timestamp=f.get("timestamp"),
                  sequence_number=f.get("sequence_number")) for f in frames]


def test_in_order_frames_give_each_track_joined_and_aligned():
    frames = tone_frames(50)
    rec = assemble_events(events(frames), "PCMU", 8000)
    want = expected_tracks(frames)
    assert rec.audio.shape == (2, 50 * 160) and rec.audio.dtype == np.int16
    assert np.array_equal(rec.inbound, want["inbound"]) and np.array_equal(rec.outbound, want["outbound"])
    r = rec.reports["inbound"]
    assert (r.frames_received, r.frames_expected, r.duplicates, r.reordered, r.gaps) == (50, 50, 0, 0, ())
    assert r.order_key == "chunk" and r.timestamp_unit == "ms" and r.samples_per_frame == 160


@given(seed=st.integers(0, 2**32 - 1), dup_rate=st.floats(0, 0.5))
@settings(max_examples=40, deadline=None)
def test_shuffling_or_duplicating_media_messages_leaves_the_audio_unchanged(seed, dup_rate):
    frames = tone_frames(40, seed=seed % 7)
    reference = assemble_events(events(frames), "PCMU", 8000)
    rng = random.Random(seed)
    messy = frames + [f for f in frames if rng.random() < dup_rate]
    rng.shuffle(messy)
    rec = assemble_events(events(messy), "PCMU", 8000)
    assert np.array_equal(rec.audio, reference.audio)
    dups = sum(r.duplicates for r in rec.reports.values())
    assert dups == len(messy) - len(frames)
    assert all(r.frames_expected == 40 and r.frames_missing == 0 for r in rec.reports.values())


def test_a_duplicate_keeps_the_first_arrival():
    first = Media("inbound", b"\x80", chunk=1)
    again = Media("inbound", b"\x00", chunk=1)
    rec = assemble_events([first, again], "PCMU", 8000)
    assert rec.inbound.tolist() == [32124] and rec.reports["inbound"].duplicates == 1


def test_reordered_frames_are_counted():
    frames = tone_frames(10, tracks=("inbound",))
    order = [0, 2, 1, 3, 4, 5, 9, 6, 7, 8]
    rec = assemble_events(events([frames[i] for i in order]), "PCMU", 8000)
    assert rec.reports["inbound"].reordered == 4


def test_gap_filling_keeps_later_audio_at_its_true_time():
    frames = tone_frames(10, tracks=("inbound",))
    kept = [f for f in frames if f["chunk"] not in (4, 5)]
    rec = assemble_events(events(kept), "PCMU", 8000)
    full = expected_tracks(frames)["inbound"]
    assert rec.inbound.size == full.size  # 10 frames of timeline, 2 of them silent
    assert np.array_equal(rec.inbound[:480], full[:480])
    assert not rec.inbound[480:800].any()
    assert np.array_equal(rec.inbound[800:], full[800:])
    r = rec.reports["inbound"]
    assert r.gaps == ((0.06, 40.0),) and r.gap_ms == 40.0
    assert (r.frames_received, r.frames_expected, r.frames_missing) == (8, 10, 2)


def test_a_stream_with_one_track_works():
    frames = tone_frames(5, tracks=("outbound",))
    rec = assemble_events(events(frames), "PCMU", 8000)
    assert rec.tracks == ("outbound",) and list(rec.reports) == ["outbound"]
    assert not rec.inbound.any() and np.array_equal(rec.outbound, expected_tracks(frames)["outbound"])


def test_a_track_that_starts_late_is_placed_by_its_timestamps():
    inbound = tone_frames(100, tracks=("inbound",))
    outbound = tone_frames(50, tracks=("outbound",))
    for f in outbound:
        f["timestamp"] += 1000  # starts one second into the call; chunks count from 1
    rec = assemble_events(events(inbound + outbound), "PCMU", 8000)
    assert rec.reports["outbound"].start_s == 1.0 and rec.reports["inbound"].start_s == 0.0
    assert not rec.outbound[:8000].any()
    assert np.array_equal(rec.outbound[8000:], expected_tracks(outbound)["outbound"])
    assert rec.audio.shape[1] == 100 * 160


def test_timestamps_in_rtp_samples_are_recognised():
    frames = tone_frames(20)
    for f in frames:
        f["timestamp"] = 4000 + (f["chunk"] - 1) * 160 + (800 if f["track"] == "outbound" else 0)
    rec = assemble_events(events(frames), "PCMU", 8000)
    assert rec.reports["inbound"].timestamp_unit == "samples"
    assert rec.reports["outbound"].start_s == 0.1


def test_timestamps_that_fit_no_unit_are_ignored_for_alignment():
    frames = tone_frames(20)
    for f in frames:
        f["timestamp"] = f["chunk"] * 7
    rec = assemble_events(events(frames), "PCMU", 8000)
    assert rec.reports["inbound"].timestamp_unit is None
    assert rec.reports["outbound"].start_s == 0.0


def test_without_chunks_frames_are_ordered_and_gaps_found_by_timestamp():
    frames = [dict(f, chunk=None) for f in tone_frames(10, tracks=("inbound",))]
    kept = [frames[i] for i in (3, 0, 1, 2, 6, 7, 8, 9)]  # 4 and 5 lost, 3 late
    rec = assemble_events(events(kept), "PCMU", 8000)
    r = rec.reports["inbound"]
    assert r.order_key == "timestamp" and r.gaps == ((0.08, 40.0),) and r.frames_expected == 10
    full = expected_tracks(tone_frames(10, tracks=("inbound",)))["inbound"]
    assert np.array_equal(rec.inbound[:640], full[:640]) and np.array_equal(rec.inbound[960:], full[960:])


def test_with_only_sequence_numbers_frames_are_ordered_by_them():
    frames = [dict(f, chunk=None, timestamp=None) for f in tone_frames(6, tracks=("inbound",))]
    rec = assemble_events(events(frames[::-1]), "PCMU", 8000)
    assert rec.reports["inbound"].order_key == "sequence_number"
    assert np.array_equal(rec.inbound, expected_tracks(tone_frames(6, tracks=("inbound",)))["inbound"])


def test_a_stream_with_no_media_gives_empty_audio():
    rec = assemble_events([], "PCMU", 8000)
    assert rec.audio.shape == (2, 0) and rec.tracks == () and rec.reports == {} and rec.duration_s == 0


def test_an_odd_length_l16_frame_keeps_its_whole_samples_and_reports_the_stray_byte():
    good = codecs.encode(np.arange(320, dtype=np.int16), "L16")
    ev = [Media("inbound", good, chunk=1), Media("inbound", good[:7], chunk=2), Media("inbound", good, chunk=3)]
    rec = assemble_events(ev, "L16", 16000)
    r = rec.reports["inbound"]
    assert r.bad_frames == 0 and r.stray_bytes == 1 and r.frames_received == 3
    assert rec.inbound[320:323].tolist() == [0, 1, 2]  # three whole samples, then the rest of the slot
    assert r.gaps == ((323 / 16000, 317 / 16)) or r.gap_ms == 0.0
    assert np.array_equal(rec.inbound[-320:], np.arange(320))


def test_frames_of_mixed_lengths_are_placed_sample_exactly():
    ev = [Media("inbound", b"\x80" * 160, chunk=1), Media("inbound", b"\x00" * 80, chunk=2),
          Media("inbound", b"\x80" * 160, chunk=4)]
    rec = assemble_events(ev, "PCMU", 8000)
    assert rec.inbound.size == 160 + 80 + 160 + 160
    assert (rec.inbound[160:240] == -32124).all() and not rec.inbound[240:400].any()


def test_a_bad_sample_rate_is_a_clear_error():
    with pytest.raises(ValueError, match="positive integer of at most 192000 Hz, got 0"):
        plan(FrameTable.empty(), "PCMU", 0)


def test_the_recording_repr_and_float_view_are_useful():
    rec = assemble_events(events(tone_frames(5)), "PCMU", 8000)
    assert "PCMU 8000 Hz 0.10 s" in repr(rec) and "inbound: 5 frames" in repr(rec)
    f = rec.to_float()
    assert f.dtype == np.float32 and f.shape == (2, 800) and np.abs(f).max() < 1


def test_an_absurd_counter_jump_is_capped_not_filled_with_hours_of_silence():
    frames = tone_frames(10, tracks=("inbound",))
    frames[6] = dict(frames[6], chunk=999_999_999_999_999_999)  # 18 digits: 10^18 * 160 would overflow int64
    rec = assemble_events(events(frames), "PCMU", 8000)
    r = rec.reports["inbound"]
    assert r.gaps_capped == 1 and rec.duration_s <= 60 + 1
    # ten frames, the 20 ms where chunk 7 should be, then one gap capped by the silence budget:
    # max(60 s, 10x the 0.2 s received) in all, the 20 ms gap included
    assert rec.inbound.size == 10 * 160 + 60 * 8000 and r.capped_ms > 1e15
    full = expected_tracks(tone_frames(10, tracks=("inbound",)))["inbound"]
    assert np.array_equal(rec.inbound[7 * 160 : 10 * 160], full[7 * 160 : 10 * 160])  # later frames at their true time


def test_a_capped_gap_is_counted_when_the_cap_is_no_whole_number_of_frames():
    ev = [Media("inbound", b"\x80" * 150, chunk=1), Media("inbound", b"\x80" * 150, chunk=10_000)]
    frames, _ = FrameTable.from_media(ev)
    report = plan(frames, "PCMU", 8000, max_gap_s=1.0).reports["inbound"]  # 8000 samples: 53.3 frames
    assert report.gaps_capped == 1 and report.gap_ms == 53 * 150 / 8


def test_what_the_caps_leave_out_is_counted_without_overflow():
    ev = [Media("inbound", b"\x80" * 160, chunk=1 + i * 2**52) for i in range(40)]  # samples asked > 2**63
    report = plan(FrameTable.from_media(ev)[0], "PCMU", 8000).reports["inbound"]
    assert report.gaps_capped == 39 and report.capped_ms > 2**63 / 8
    assert report.gap_ms == 60_000.0  # the budget: max(60 s, 10x 0.8 s received)
