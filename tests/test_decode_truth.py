"""Never silently wrong: one test per form and per failure of issue #9, each built from the
input as described (and each able to fail on the reader before it)."""

import base64
import gzip
import json

import numpy as np
import pytest

from conftest import SID, capture_lines, expected_tracks, media_obj, start_obj, tone_frames, write_capture
from telnyx_audio import codecs
from telnyx_audio.read import read_capture, read_captures
from telnyx_audio.errors import MultipleStreamsError, NotACaptureError
from telnyx_audio.model.wav import write_call

PCMU = {"encoding": "PCMU", "sample_rate": 8000}


def lines_of(frames, **kw):
    return capture_lines(frames, **kw)


def test_json_escapes_in_payloads_keep_every_frame(tmp_path):
    frames = tone_frames(200, tracks=("inbound",))
    lines = [l.replace("/", "\\/") for l in lines_of(frames)]  # PHP's json_encode default
    cap = read_capture(write_capture(tmp_path / "php.jsonl", lines))
    assert cap.report.bad_lines == 0 and cap.report.events["media"] == 200
    assert np.array_equal(cap.recording.inbound, expected_tracks(frames)["inbound"])


def test_a_unicode_escape_anywhere_is_read_as_json_loads_reads_it(tmp_path):
    frames = tone_frames(60, tracks=("inbound",))
    lines = lines_of(frames)
    payload = json.loads(lines[10])["media"]["payload"]
    first = payload[0]
    lines[10] = lines[10].replace(f'"payload": "{payload}"', f'"payload": "\\u{ord(first):04x}{payload[1:]}"')
    lines[11] = lines[11].replace('"track": "inbound"', '"tr\\u0061ck": "inbo\\u0075nd"')
    cap = read_capture(write_capture(tmp_path / "u.jsonl", lines))
    assert cap.report.bad_lines == 0
    assert np.array_equal(cap.recording.inbound, expected_tracks(frames)["inbound"])


@pytest.mark.parametrize("value", [str(2**64), str(10**30), str(2**53), "9" * 40])
def test_a_counter_out_of_range_is_a_bad_line_with_its_reason_not_a_crash(tmp_path, value):
    frames = tone_frames(20, tracks=("inbound",))
    lines = lines_of(frames)
    lines[7] = lines[7].replace(f'"chunk": "{frames[5]["chunk"]}"', f'"chunk": "{value}"')
    lines[8] = lines[8].replace(f'"sequence_number": "{frames[6]["sequence_number"]}"', f'"sequence_number": {value}')
    cap = read_capture(write_capture(tmp_path / "big.jsonl", lines))
    assert cap.report.bad_lines == 2
    assert all("out of range" in b.reason for b in cap.report.bad_examples), cap.report.bad_examples
    assert cap.recording.duration_s == pytest.approx(0.4)


@pytest.mark.parametrize("rate", [10**30, 0, 10**7])
def test_an_absurd_sample_rate_drops_only_the_format_and_the_call_keeps_its_ids_and_decodes(tmp_path, rate):
    frames = tone_frames(10, tracks=("inbound",))
    lines = lines_of(frames)
    lines[1] = json.dumps(start_obj(sample_rate=rate))
    cap = read_capture(write_capture(tmp_path / "rate.jsonl", lines))
    assert cap.report.bad_lines == 0 and cap.call_control_id == "v2:ctl" and cap.call_session_id == "sess-1"
    assert cap.custom_parameters == {"customer_id": "c-1"} and cap.stream_id == SID
    assert cap.media_format.sample_rate == 8000 and cap.recording.duration_s == pytest.approx(0.2)
    assert any(f"media_format is unusable (start.media_format.sample_rate must be an integer from 1000 to 192000,"
               f" got {rate}" in w and "inferred" in w for w in cap.report.warnings), cap.report.warnings
    assert any("G.711 law read from the audio: PCMU" in w for w in cap.report.warnings), cap.report.warnings


def test_five_lines_cannot_make_gigabytes(tmp_path):
    """Huge counter jumps (gaps and the offset between tracks) are capped by the audio received."""
    f = tone_frames(2)
    lines = [json.dumps(start_obj()),
             json.dumps(media_obj(dict(f[0], chunk=1, timestamp=0))),
             json.dumps(media_obj(dict(f[1], chunk=4_000_000_000, timestamp=80_000_000_000))),
             json.dumps(media_obj(dict(f[2], chunk=9_000_000_000_000, timestamp=0))),
             json.dumps(media_obj(dict(f[3], chunk=1, timestamp=2**52)))]
    path = write_capture(tmp_path / "five.jsonl", lines)
    [cap] = read_captures(path)
    summary = write_call(cap, tmp_path / "out")
    size = sum(p.stat().st_size for p in (tmp_path / "out").iterdir())
    assert size < 4 * 60 * 8000 * 2 * 2, size  # at most about a minute per track, not gigabytes
    assert cap.recording.duration_s <= 2 * 60 + 1
    assert any("capped" in w for w in cap.report.warnings) and summary["warnings"]
    capped = sum(r.gaps_capped for r in cap.recording.reports.values())
    assert capped >= 1


def test_many_gaps_share_one_budget(tmp_path):
    frames = tone_frames(300, tracks=("inbound",))
    for i, fr in enumerate(frames):
        fr["chunk"] = 1 + i * 25_000  # every frame 500 s after the last: 41 hours asked
    cap = read_capture(write_capture(tmp_path / "gaps.jsonl", lines_of(frames)))
    assert cap.recording.duration_s <= 60 + 6 + 0.1
    assert cap.recording.reports["inbound"].capped_ms > 100_000_000


def test_two_calls_in_one_file_are_two_captures_never_spliced(tmp_path):
    a, b = tone_frames(25, seed=1), tone_frames(15, tracks=("inbound",), seed=2)
    other = "9B0B2A4E-0000-4000-8000-000000000002"
    lines = lines_of(a)
    second = [json.dumps(start_obj(encoding="PCMA", stream_id=other))]
    for fr in b:
        fr = dict(fr, payload=codecs.encode(codecs.decode(fr["payload"], "PCMU"), "PCMA"))
        second.append(json.dumps(media_obj(fr, stream_id=other)))
    mixed = lines[:2] + [x for pair in zip(lines[2:17], second) for x in pair] + lines[17:] + second[15:]
    path = write_capture(tmp_path / "two.jsonl", mixed)
    first, second_cap = read_captures(path)
    assert (first.stream_id, second_cap.stream_id) == (SID, other)
    assert first.media_format.encoding == "PCMU" and second_cap.media_format.encoding == "PCMA"
    assert np.array_equal(first.recording.audio[0], expected_tracks(a)["inbound"])
    assert second_cap.recording.tracks == ("inbound",) and second_cap.recording.duration_s == pytest.approx(0.3)
    with pytest.raises(MultipleStreamsError, match="read_captures"):
        read_capture(path)


def test_a_second_start_with_another_format_is_reported(tmp_path):
    lines = lines_of(tone_frames(5))
    lines.insert(4, json.dumps(start_obj(encoding="L16", sample_rate=16000)))
    cap = read_capture(write_capture(tmp_path / "s.jsonl", lines))
    assert cap.media_format.encoding == "PCMU"
    assert any("second start" in w and "L16" in w for w in cap.report.warnings)


def test_without_start_l16_at_16khz_is_inferred_from_640_bytes_per_chunk_and_said(tmp_path):
    frames = tone_frames(30, encoding="L16", sample_rate=16000)
    cap = read_capture(write_capture(tmp_path / "l16.jsonl", lines_of(frames, start=False)))
    assert (cap.media_format.encoding, cap.media_format.sample_rate) == ("L16", 16000)
    assert np.array_equal(cap.recording.outbound, expected_tracks(frames, "L16")["outbound"])
    assert any("inferred L16 at 16000 Hz" in w for w in cap.report.warnings)


@pytest.mark.parametrize("law", ["PCMU", "PCMA"])
def test_without_start_the_g711_law_is_read_from_the_audio(tmp_path, law):
    frames = tone_frames(100, encoding=law)
    cap = read_capture(write_capture(tmp_path / "g711.jsonl", lines_of(frames, start=False)))
    assert cap.media_format.encoding == law
    assert np.array_equal(cap.recording.inbound, expected_tracks(frames, law)["inbound"])
    assert any(f"law read from the audio: {law}" in w for w in cap.report.warnings)


def test_without_start_payloads_of_varying_size_fail_with_a_clear_message(tmp_path):
    frames = tone_frames(20, tracks=("inbound",))
    for i, fr in enumerate(frames):
        fr["payload"] = fr["payload"][: 20 + 7 * i]
    [cap] = read_captures(write_capture(tmp_path / "opus.jsonl", lines_of(frames, start=False)))
    assert cap.error and "cannot be inferred" in cap.error and "--encoding" in cap.error
    assert cap.recording.audio.size == 0 and cap.report.events["media"] == 20
    with pytest.raises(ValueError, match="cannot be inferred"):
        read_capture(tmp_path / "opus.jsonl")


def test_a_format_that_could_not_be_inferred_is_shown_as_none_beside_the_error_never_as_pcmu(tmp_path):
    frames = tone_frames(20, tracks=("inbound",))
    for i, fr in enumerate(frames):
        fr["payload"] = fr["payload"][: 20 + 7 * i]
    [cap] = read_captures(write_capture(tmp_path / "opus.jsonl", lines_of(frames, start=False)))
    assert cap.media_format is None and "cannot be inferred" in cap.error
    summary = write_call(cap, tmp_path / "out")
    written = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert written == json.loads(json.dumps(summary))
    assert written["media_format"] is None and written["audio_sample_rate"] is None
    assert "cannot be inferred" in written["error"]
    row = cap.to_dict()
    assert row["encoding"] is None and row["sample_rate_hz"] is None
    known = read_capture(write_capture(tmp_path / "nostart.jsonl", lines_of(tone_frames(20), start=False)))
    assert known.summary()["media_format"]["encoding"] == "PCMU"  # inferred: shown, with its warning


def test_a_capture_labelled_pcma_whose_audio_is_pcmu_gets_a_warning_with_the_fix(tmp_path):
    frames = tone_frames(100)  # PCMU bytes
    cap = read_capture(write_capture(tmp_path / "mislabelled.jsonl", lines_of(frames, encoding="PCMA")))
    assert any("--encoding PCMU" in w for w in cap.report.warnings), cap.report.warnings
    right = read_capture(write_capture(tmp_path / "right.jsonl", lines_of(frames)))
    assert not right.report.warnings


@pytest.mark.parametrize("content", [b"", b"hello\nworld\n", gzip.compress(b"just text\n"), b"\x00\x01\x02" * 50])
def test_a_file_with_no_telnyx_message_is_not_a_capture(tmp_path, content):
    path = tmp_path / "x.jsonl"
    path.write_bytes(content)
    with pytest.raises(NotACaptureError, match="is not a capture"):
        read_captures(path)


def test_a_gzip_capture_reads_like_the_plain_one(tmp_path):
    frames = tone_frames(120)
    plain = write_capture(tmp_path / "c.jsonl", lines_of(frames))
    packed = tmp_path / "c.jsonl.gz"
    packed.write_bytes(gzip.compress(plain.read_bytes()))
    a, b = read_capture(plain), read_capture(packed, block_size=4096)
    assert np.array_equal(a.recording.audio, b.recording.audio) and a.summary()["track_reports"] == b.summary()["track_reports"]


def test_a_gzip_capture_cut_off_while_written_keeps_every_whole_line(tmp_path):
    plain = write_capture(tmp_path / "c.jsonl", lines_of(tone_frames(200)))
    data = gzip.compress(plain.read_bytes())
    cut = tmp_path / "cut.jsonl.gz"
    cut.write_bytes(data[: len(data) * 2 // 3])
    cap = read_capture(cut)
    assert cap.report.events["media"] > 200 and cap.report.bad_lines <= 1
    assert any("gzip stream is cut off" in w for w in cap.report.warnings)
    broken = tmp_path / "broken.jsonl.gz"
    broken.write_bytes(data[:10] + b"\x00" * 50)
    with pytest.raises(ValueError, match="cannot read capture"):
        read_capture(broken)


def test_a_bom_before_the_first_line_keeps_the_start_message(tmp_path):
    path = tmp_path / "bom.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + "\n".join(lines_of(tone_frames(5))).encode() + b"\n")
    cap = read_capture(path)
    assert cap.stream_id == SID and cap.call_control_id == "v2:ctl" and cap.report.bad_lines == 0
    assert cap.report.events["start"] == 1


def test_odd_length_l16_frames_keep_whole_samples_and_report_the_stray_byte(tmp_path):
    frames = tone_frames(10, tracks=("inbound",), encoding="L16", sample_rate=16000)
    frames[4]["payload"] = frames[4]["payload"] + b"\x7f"
    cap = read_capture(write_capture(tmp_path / "odd.jsonl", lines_of(frames, encoding="L16", sample_rate=16000)))
    r = cap.recording.reports["inbound"]
    assert r.stray_bytes == 1 and r.bad_frames == 0 and r.gaps == ()
    assert np.array_equal(cap.recording.inbound, expected_tracks(tone_frames(10, tracks=("inbound",), encoding="L16",
                                                                            sample_rate=16000), "L16")["inbound"])
    assert any("stray bytes" in w for w in cap.report.warnings)


def test_a_cut_off_last_line_says_truncated(tmp_path):
    text = "\n".join(lines_of(tone_frames(5, tracks=("inbound",)), stop=False))
    path = tmp_path / "cut.jsonl"
    path.write_text(text[:-25])
    cap = read_capture(path)
    assert cap.report.bad_lines == 1 and cap.report.bad_examples[0].reason.startswith("truncated")
    assert any("truncated" in w for w in cap.report.warnings)


def test_bad_base64_is_a_bad_frame_in_its_place_not_a_network_gap(tmp_path):
    frames = tone_frames(10, tracks=("inbound",))
    lines = lines_of(frames)
    lines[6] = lines[6].replace('"payload": "', '"payload": "!!!!', 1)
    cap = read_capture(write_capture(tmp_path / "b64.jsonl", lines))
    r = cap.recording.reports["inbound"]
    assert r.bad_frames == 1 and r.gaps == () and r.frames_missing == 0 and r.frames_expected == 10
    assert "10 of 10 frames arrived (0 missing)" in r.describe()


def test_write_call_records_an_unwritable_folder_in_the_error_and_leaves_no_partial_wav(tmp_path):
    cap = read_capture(write_capture(tmp_path / "c.jsonl", lines_of(tone_frames(5))))
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "stereo.wav").mkdir()  # a folder where a WAV must go: libsndfile fails
    from telnyx_audio.errors import OutputError
    with pytest.raises(OutputError) as info:
        write_call(cap, tmp_path / "out")
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["error"] and info.value.path
    assert not [p for p in (tmp_path / "out").iterdir() if p.name.startswith(".")]


def test_media_without_stream_id_in_a_file_of_two_streams_is_placed_by_position_and_said(tmp_path):
    frames = tone_frames(4, tracks=("inbound",))
    lines = [json.dumps(start_obj())] + [json.dumps(media_obj(fr)) for fr in frames[:2]]
    lines += [json.dumps({k: v for k, v in media_obj(fr).items() if k != "stream_id"}) for fr in frames[2:]]
    lines += [json.dumps(start_obj(stream_id="other")), json.dumps(media_obj(frames[0], stream_id="other"))]
    a, b = read_captures(write_capture(tmp_path / "p.jsonl", lines))
    assert a.report.events["media"] == 4 and b.report.events["media"] == 1
    assert any("name no stream_id" in w for w in a.report.warnings)


def test_a_stream_whose_audio_cannot_be_decoded_still_gets_its_summary_with_the_reason(tmp_path):
    lines = lines_of(tone_frames(5), encoding="G729")
    lines.insert(4, json.dumps({"event": "dtmf", "stream_id": SID, "dtmf": {"digit": "4"}}))
    [cap] = read_captures(write_capture(tmp_path / "g729.jsonl", lines))
    assert cap.error and "G729" in cap.error
    summary = write_call(cap, tmp_path / "out")
    on_disk = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert on_disk == json.loads(json.dumps(summary))
    assert on_disk["error"] and on_disk["call_control_id"] == "v2:ctl" and on_disk["dtmf"] == "4"
    assert on_disk["events"]["media"] == 10 and on_disk["files"] == {}
    with pytest.raises(ValueError, match="G729"):
        read_capture(tmp_path / "g729.jsonl")


def test_without_start_silence_cannot_tell_the_law_and_says_so(tmp_path):
    frames = tone_frames(20)
    for fr in frames:
        fr["payload"] = b"\xff" * 160
    cap = read_capture(write_capture(tmp_path / "quiet.jsonl", lines_of(frames, start=False)))
    assert any("ambiguous" in w for w in cap.report.warnings), cap.report.warnings


def test_iter_lines_reads_a_bom_and_gzip_like_the_reader(tmp_path):
    from telnyx_audio.streams.lines import iter_lines

    path = tmp_path / "c.jsonl.gz"
    path.write_bytes(gzip.compress(b"\xef\xbb\xbf" + "\n".join(lines_of(tone_frames(2))).encode() + b"\n\n"))
    kinds = [type(e).__name__ for _, e, _ in iter_lines(path)]
    assert kinds == ["Connected", "Start", "Media", "Media", "Media", "Media", "Stop"]


@pytest.mark.parametrize("encoding", ["PCMU", "PCMA"])
@pytest.mark.parametrize("reported", [16000, 48000])
def test_g711_reported_at_another_rate_is_decoded_as_8_khz_audio_and_says_so(tmp_path, encoding, reported):
    frames = tone_frames(100, tracks=("inbound",), encoding=encoding)
    cap = read_capture(write_capture(tmp_path / "g711.jsonl", lines_of(frames, encoding=encoding,
                                                                      sample_rate=reported)))
    assert cap.recording.sample_rate == 8000 and cap.recording.duration_s == pytest.approx(2.0)
    assert np.array_equal(cap.recording.inbound, expected_tracks(frames, encoding)["inbound"])
    assert any(f"reported {reported} Hz" in w for w in cap.report.warnings), cap.report.warnings


def test_a_short_frame_leaves_a_reported_gap_where_timestamps_say_later_audio_belongs(tmp_path):
    frames = tone_frames(100, tracks=("inbound",))
    for fr in frames[4::10]:
        fr["payload"] = fr["payload"][:80]
    cap = read_capture(write_capture(tmp_path / "short.jsonl", lines_of(frames)))
    report = cap.recording.reports["inbound"]
    assert cap.recording.duration_s == pytest.approx(2.0) and report.timestamp_unit == "ms"
    assert report.gap_ms == pytest.approx(100.0) and len(report.gaps) == 10
    want = expected_tracks(tone_frames(100, tracks=("inbound",)))["inbound"]
    got = cap.recording.inbound
    assert np.array_equal(got[-800:], want[-800:])  # the last frames at their true time
    assert np.array_equal(got[800:2240], want[800:2240]) and not got[720:800].any()  # frames 5-13; a hole
    assert any("10 frames shorter than the usual 160 samples: placed by their timestamps" in w
               for w in cap.report.warnings), cap.report.warnings


def test_a_short_frame_without_timestamps_is_warned_that_later_audio_comes_early(tmp_path):
    frames = tone_frames(30, tracks=("inbound",))
    for fr in frames:
        fr["timestamp"] = None
    frames[5]["payload"] = frames[5]["payload"][:80]
    cap = read_capture(write_capture(tmp_path / "short.jsonl", lines_of(frames)))
    assert cap.recording.duration_s == pytest.approx(0.59)
    assert any("1 frames shorter than the usual 160 samples" in w and "later audio comes early" in w
               for w in cap.report.warnings), cap.report.warnings


def test_frames_after_a_start_with_another_format_are_bad_frames_not_decoded_in_the_first(tmp_path):
    pcmu = tone_frames(30, tracks=("inbound",))
    l16 = tone_frames(30, tracks=("inbound",), encoding="L16", sample_rate=16000)
    for fr in l16:
        fr["chunk"] += 30
        fr["timestamp"] += 600
    lines = lines_of(pcmu, stop=False) + [json.dumps(start_obj("L16", 16000))] + [
        json.dumps(media_obj(fr)) for fr in l16]
    cap = read_capture(write_capture(tmp_path / "change.jsonl", lines))
    assert cap.media_format.encoding == "PCMU"
    assert np.array_equal(cap.recording.inbound[:4800], expected_tracks(pcmu)["inbound"])
    assert not cap.recording.inbound[4800:].any() and cap.recording.reports["inbound"].bad_frames == 30
    assert any("second start message says L16 at 16000 Hz" in w and "30 media messages after it are bad frames" in w
               for w in cap.report.warnings), cap.report.warnings
    assert not any("PCMA" in w for w in cap.report.warnings), cap.report.warnings


def test_a_startless_g722_stream_is_told_from_g711_by_its_audio_and_said(tmp_path):
    from telnyx_audio.codecs.outbound import encode_payloads

    t = np.arange(32000) / 16000
    pcm = (6000 * np.sin(2 * np.pi * 300 * t) * np.sin(2 * np.pi * 3 * t)).astype(np.int16)
    frames = [{"track": "inbound", "chunk": i + 1, "timestamp": 20 * i, "sequence_number": i + 2, "payload": p}
              for i, p in enumerate(encode_payloads(pcm, 16000, "G722", target_rate=8000))]
    cap = read_capture(write_capture(tmp_path / "g722.jsonl", lines_of(frames, start=False)))
    assert cap.media_format.encoding == "G722" and cap.recording.sample_rate == 16000
    assert cap.recording.duration_s == pytest.approx(2.0)
    assert any("reads as G.722" in w for w in cap.report.warnings), cap.report.warnings
    for encoding in ("PCMU", "PCMA"):  # and G.711 stays G.711, its law read as before
        g711 = read_capture(write_capture(tmp_path / f"{encoding}.jsonl",
                                          lines_of(tone_frames(50, encoding=encoding), start=False)))
        assert g711.media_format.encoding == encoding and not any("reads as G.722" in w for w in g711.report.warnings)


def test_startless_bytes_that_read_as_neither_g711_nor_g722_fail_naming_encoding(tmp_path):
    rng = np.random.default_rng(0)
    frames = [{"track": "inbound", "chunk": i + 1, "timestamp": 20 * i, "sequence_number": i + 2,
               "payload": rng.integers(0, 256, 160).astype(np.uint8).tobytes()} for i in range(50)]
    [cap] = read_captures(write_capture(tmp_path / "noise.jsonl", lines_of(frames, start=False)))
    assert cap.error and "G.711" in cap.error and "G.722" in cap.error and "--encoding PCMU, PCMA or G722" in cap.error


def test_a_frame_length_assumed_without_timestamps_is_said(tmp_path):
    frames = tone_frames(1, tracks=("inbound",))
    frames[0]["timestamp"] = None
    cap = read_capture(write_capture(tmp_path / "one.jsonl", lines_of(frames, start=False)))
    assert any("20 ms per chunk ASSUMED" in w for w in cap.report.warnings), cap.report.warnings


def test_assemble_gives_g711_at_8_khz_whatever_rate_it_is_told():
    from telnyx_audio.streams.protocol import Media
    from telnyx_audio.model import FrameTable, assemble

    frames, raw = FrameTable.from_media([Media("inbound", b"\x80" * 160, chunk=i) for i in range(1, 51)])
    rec = assemble(frames, raw, "PCMA", 16000)
    assert rec.sample_rate == 8000 and rec.duration_s == pytest.approx(1.0)
