"""Capture files: the vectorized reader against the one-message-at-a-time reference."""

import base64
import os
import json
import random

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import LAYOUTS, SID, capture_lines, expected_tracks, tone_frames, write_capture
from reference_reader import read_reference
from telnyx_audio.read import read_capture, read_captures
from telnyx_audio.errors import CaptureError, NotACaptureError, UnsupportedEncodingError
from telnyx_audio.streams.protocol import MediaFormat

audioop = pytest.importorskip("audioop")


def reference(path, encoding="PCMU", sample_rate=8000):
    """The slow path: every line through json.loads, one at a time (tests/reference_reader.py)."""
    [ref] = read_reference(path, MediaFormat(encoding, sample_rate))
    return ref["recording"], ref["bad_lines"]


def assert_agrees_with_reference(path, fmt=MediaFormat("PCMU", 8000), **kw):
    """Every stream, frame, bad line and event as the line-at-a-time reference reads them."""
    caps = read_captures(path, media_format=fmt, **kw)
    refs = read_reference(path, fmt)
    assert [c.stream_id for c in caps] == [r["stream_id"] for r in refs]
    for cap, ref in zip(caps, refs):
        assert cap.report.bad_lines == ref["bad_lines"], (cap.report.bad_examples, ref)
        assert cap.report.events.get("media", 0) == ref["n_media"]
        assert {k: v for k, v in cap.report.events.items() if k != "media"} == ref["events"]
        assert np.array_equal(cap.recording.audio, ref["recording"].audio)
        assert cap.recording.reports == ref["recording"].reports
    return caps


def per_message_oracle(path):
    """What peers do: json.loads + b64decode + audioop.ulaw2lin per message, then join."""
    tracks = {"inbound": [], "outbound": []}
    with open(path, "rb") as f:
        lines = f.readlines()
    for line in lines:
        msg = json.loads(line)
        msg = msg.get("message", msg)
        if msg.get("event") == "media":
            tracks[msg["media"]["track"]].append(audioop.ulaw2lin(base64.b64decode(msg["media"]["payload"]), 2))
    return {k: np.frombuffer(b"".join(v), np.int16) for k, v in tracks.items()}


@pytest.mark.parametrize("layout", LAYOUTS)
def test_every_layout_reads_bit_exactly_like_the_per_message_path(layout, tmp_capture):
    frames = tone_frames(300)
    path = tmp_capture(frames, layout=layout)
    cap = read_capture(path, block_size=4096)
    oracle = per_message_oracle(path)
    assert np.array_equal(cap.recording.inbound, oracle["inbound"])
    assert np.array_equal(cap.recording.outbound, oracle["outbound"])
    assert cap.report.bad_lines == 0 and cap.report.events["media"] == 600
    assert cap.stream_id == SID and cap.call_control_id == "v2:ctl" and cap.custom_parameters == {"customer_id": "c-1"}


@pytest.mark.parametrize("layout", LAYOUTS)
def test_counters_crossing_digit_boundaries_are_read_right(layout, tmp_capture):
    frames = tone_frames(1200, tracks=("inbound",))  # chunk 9->10->...->1000, seq to 1201
    for f in frames:
        f["timestamp"] = 99_999_000 + f["chunk"] * 20  # crosses 100,000,000: nine digits
    rng = random.Random(5)
    rng.shuffle(frames)
    path = tmp_capture(frames, layout=layout)
    cap = read_capture(path, block_size=2048)
    ref, _ = reference(path)
    assert np.array_equal(cap.recording.audio, ref.audio)
    assert cap.recording.reports == ref.reports


# (edit, whether the line still places its frame as a bad one: its counters are readable)
NEAR_MISSES = {
    "payload with a bad character": lambda line: line.replace('"payload": "', '"payload": "*', 1),
    "payload cut short": lambda line: line[:-8] + '"}}',
    "payload with a quote": lambda line: line.replace('"payload": "', '"payload": "AB"CD', 1),
    "chunk not digits": lambda line: line.replace('"chunk": "', '"chunk": "x', 1),
    "trailing garbage": lambda line: line + " garbage",
    "missing brace": lambda line: line[:-1],
    "unknown track": lambda line: line.replace('"track": "inbound"', '"track": "sideways"', 1),
    "not json at all": lambda line: "hello",
    "unknown event": lambda line: line.replace('"event": "media"', '"event": "medya"', 1),
    "payload not a string": lambda line: line.split('"payload": ')[0] + '"payload": 5}}',
}


@pytest.mark.parametrize("name", list(NEAR_MISSES))
def test_a_malformed_line_is_reported_and_the_good_frames_around_it_decode_exactly(name, tmp_path):
    frames = tone_frames(60, tracks=("inbound",))
    lines = capture_lines(frames)
    victim = 2 + 30  # the 31st media line
    lines[victim] = NEAR_MISSES[name](lines[victim])
    path = write_capture(tmp_path / "bad.jsonl", lines)
    cap = read_capture(path, block_size=2048)
    assert cap.report.bad_lines == 1, cap.report.bad_examples
    bad = cap.report.bad_examples[0]
    assert bad.line == victim + 1 and bad.reason
    ref, n_bad = reference(path)
    assert n_bad == 1
    assert np.array_equal(cap.recording.audio, ref.audio)
    full = expected_tracks(frames)["inbound"]
    lost = 30 * 160
    assert np.array_equal(cap.recording.inbound[:lost], full[:lost])
    assert not cap.recording.inbound[lost : lost + 160].any()
    assert np.array_equal(cap.recording.inbound[lost + 160 :], full[lost + 160 :])
    report = cap.report.tracks["inbound"]
    if name.startswith("payload") and name != "payload with a quote":
        # still a media message with its counters: a bad frame in its slot, not a network gap
        assert report.bad_frames == 1 and report.gaps == () and report.frames_missing == 0
    else:
        assert report.bad_frames == 0 and report.gaps == ((0.6, 20.0),)


def test_reasons_name_what_was_wrong(tmp_path):
    frames = tone_frames(3, tracks=("inbound",))
    lines = capture_lines(frames)
    media_line = lines[2]
    lines.insert(3, "{broken")
    lines.insert(4, media_line.replace('"payload": "', '"payload": "$', 1))
    cap = read_capture(write_capture(tmp_path / "c.jsonl", lines))
    reasons = [b.reason for b in cap.report.bad_examples]
    assert reasons[0].startswith("invalid JSON") and "not valid base64" in reasons[1]
    assert [b.line for b in cap.report.bad_examples] == [4, 5]


@given(seed=st.integers(0, 10**6), layout=st.sampled_from(LAYOUTS), junk=st.lists(st.text(max_size=30), max_size=5))
@settings(max_examples=int(os.environ.get("TA_EXAMPLES", 25)), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_the_fast_reader_agrees_with_the_reference_on_messy_captures(tmp_path, seed, layout, junk):
    rng = random.Random(seed)
    frames = tone_frames(rng.randint(1, 120), seed=seed % 5)
    frames = [f for f in frames if rng.random() > 0.1]
    frames += [f for f in frames if rng.random() < 0.1]
    for i in range(len(frames) - 1):
        if rng.random() < 0.2:
            frames[i], frames[i + 1] = frames[i + 1], frames[i]
    lines = capture_lines(frames, layout=layout)
    for text in junk:
        lines.insert(rng.randint(0, len(lines)), text.replace("\n", " ").replace("\r", " "))
    path = write_capture(tmp_path / f"m{seed}.jsonl", lines, layout)
    cap = read_capture(path, block_size=rng.choice([1024, 3000, 1 << 20]))
    ref, _ = reference(path)
    assert np.array_equal(cap.recording.audio, ref.audio)
    assert cap.recording.reports == ref.reports
    blank = sum(1 for t in junk if not t.strip(" \t\r\n"))
    non_media = 3  # connected, start, stop
    assert cap.report.events.get("media", 0) + cap.report.bad_lines + non_media + blank == len(lines)


def test_a_line_longer_than_a_block_is_still_read(tmp_path):
    frames = [{"track": "inbound", "chunk": 1, "timestamp": 0, "sequence_number": 2, "payload": b"\x80" * 4000},
              {"track": "inbound", "chunk": 2, "timestamp": 500, "sequence_number": 3, "payload": b"\x00" * 4000}]
    cap = read_capture(write_capture(tmp_path / "long.jsonl", capture_lines(frames)), block_size=1024)
    assert cap.recording.inbound.size == 8000 and (cap.recording.inbound[:4000] == 32124).all()


def test_the_last_line_may_lack_its_newline(tmp_path):
    frames = tone_frames(3, tracks=("inbound",))
    path = tmp_path / "c.jsonl"
    path.write_text("\n".join(capture_lines(frames, stop=False)))
    assert read_capture(path).report.events["media"] == 3


def test_an_empty_file_is_not_a_capture(tmp_path):
    path = tmp_path / "empty.jsonl"
    path.write_bytes(b"")
    with pytest.raises(NotACaptureError, match="is empty"):
        read_capture(path)


def test_a_log_without_start_takes_the_format_given_as_an_object_or_a_dict(tmp_path):
    frames = tone_frames(3, tracks=("inbound",), encoding="PCMA")
    path = write_capture(tmp_path / "c.jsonl", capture_lines(frames, start=False))
    for given in (MediaFormat("PCMA", 8000), {"encoding": "audio/x-alaw", "sample_rate": 8000}):
        cap = read_capture(path, media_format=given)
        assert np.array_equal(cap.recording.inbound, expected_tracks(frames, "PCMA")["inbound"])
        assert not cap.report.warnings


def test_l16_at_16khz_reads_at_its_real_rate(tmp_capture):
    frames = tone_frames(20, encoding="L16", sample_rate=16000)
    cap = read_capture(tmp_capture(frames, encoding="L16", sample_rate=16000))
    assert cap.recording.sample_rate == 16000 and cap.recording.audio.shape == (2, 20 * 320)
    assert np.array_equal(cap.recording.outbound, expected_tracks(frames, "L16")["outbound"])


def test_an_encoding_not_supported_yet_is_a_typed_error(tmp_capture):
    with pytest.raises(UnsupportedEncodingError, match="'SPEEX'"):
        read_capture(tmp_capture(tone_frames(2), encoding="PCMU") and tmp_capture(tone_frames(2)),
                     media_format=MediaFormat("SPEEX", 16000))


def test_files_that_cannot_be_read_raise_capture_error(tmp_path):
    with pytest.raises(CaptureError, match="cannot read capture"):
        read_capture(tmp_path / "missing.jsonl")
    with pytest.raises(CaptureError, match="is a directory"):
        read_capture(tmp_path)


def test_dtmf_and_other_events_are_kept_in_order(tmp_path):
    lines = capture_lines(tone_frames(2, tracks=("inbound",)))
    lines.insert(3, json.dumps({"event": "dtmf", "sequence_number": "9", "stream_id": SID, "dtmf": {"digit": "7"}}))
    lines.insert(4, json.dumps({"event": "mark", "mark": {"name": "m"}}))
    cap = read_capture(write_capture(tmp_path / "c.jsonl", lines))
    assert [type(e).__name__ for e in cap.events] == ["Connected", "Start", "Dtmf", "Mark", "Stop"]
    assert cap.summary()["dtmf"] == "7" and cap.report.events["dtmf"] == 1


def test_the_summary_is_json_and_names_ids_format_counts_gaps_duration(tmp_capture):
    frames = [f for f in tone_frames(10) if not (f["track"] == "outbound" and f["chunk"] == 5)]
    summary = read_capture(tmp_capture(frames)).summary()
    json.dumps(summary)
    assert summary["stream_id"] == SID and summary["media_format"]["encoding"] == "PCMU"
    assert summary["duration_s"] == 0.2 and summary["tracks"] == ["inbound", "outbound"]
    assert summary["track_reports"]["outbound"]["gap_ms"] == 20.0
    assert summary["track_reports"]["inbound"]["frames_received"] == 10


@given(seed=st.integers(0, 10**6), layout=st.sampled_from(LAYOUTS),
       edits=st.lists(st.tuples(st.integers(0, 10**6), st.sampled_from(list(b'0123456789"\\ {},:=+/Aaz\t_-'))),
                      min_size=1, max_size=8))
@settings(max_examples=int(os.environ.get("TA_EXAMPLES", 40)), deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_single_byte_edits_of_media_lines_never_fool_the_fast_reader(tmp_path, seed, layout, edits):
    """Whatever a byte becomes, the vectorized reader must judge the line as json.loads does."""
    frames = tone_frames(40, seed=seed % 3)
    lines = capture_lines(frames, layout=layout)
    rng = random.Random(seed)
    for where, byte in edits:
        i = rng.randrange(2, len(lines) - 1)  # a media line
        raw = bytearray(lines[i].encode())
        raw[where % len(raw)] = byte
        lines[i] = raw.decode()
    path = write_capture(tmp_path / f"e{seed}.jsonl", lines, layout)
    assert_agrees_with_reference(path, block_size=2048)


def test_a_bare_number_with_a_leading_zero_is_invalid_json_but_a_quoted_one_is_a_counter(tmp_path):
    frames = tone_frames(80, tracks=("inbound",))
    for layout, text, bad in (("numbers", '"chunk": 07,', 1), ("telnyx", '"chunk": "07",', 0)):
        lines = capture_lines(frames, layout=layout)
        target = '"chunk": 7,' if layout == "numbers" else '"chunk": "7",'
        victim = next(i for i, l in enumerate(lines) if target in l)
        lines[victim] = lines[victim].replace(target, text)
        cap = read_capture(write_capture(tmp_path / f"{layout}.jsonl", lines, layout), block_size=2048)
        ref, n_bad = reference(tmp_path / f"{layout}.jsonl")
        assert cap.report.bad_lines == n_bad == bad
        assert np.array_equal(cap.recording.audio, ref.audio)
