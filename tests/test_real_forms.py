"""Every message form of the protocol notes (section 6), end to end: file -> read_capture -> summary.

The protocol tests check each form message by message; these check that the reader keeps
what the forms carry (ids, format, Telnyx's error frames) when they arrive in a capture.
"""

import base64
import json

import numpy as np

import telnyx_audio as ta

SID = "32DE0DEA-53CB-4B21-89A4-9E1819C043BC"
CALL = "v2:T02llQxIyaRkhfRKxgAP8nY511EhFLizdvdUKJiSw8d6A9BborherQ"


def media(i, *, camel=False, byte=0xFF):
    msg = {"event": "media", "sequence_number": str(i + 2), "stream_id": SID,
           "media": {"track": "inbound", "chunk": str(i), "timestamp": str(20 * i),
                     "payload": base64.b64encode(bytes([byte]) * 160).decode()}}
    if camel:  # TeXML <Stream> and some demos
        msg["sequenceNumber"], msg["streamId"] = msg.pop("sequence_number"), msg.pop("stream_id")
    return json.dumps(msg)


def write(tmp_path, lines):
    path = tmp_path / "call.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_a_capture_in_every_documented_form_keeps_ids_format_and_error_frames(tmp_path):
    start = {"event": "start", "sequenceNumber": "1", "streamId": SID,
             "start": {"callControlId": CALL, "callSessionId": "ff55a038", "customParameters": {"customer_id": "c-1"},
                       "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1}}}
    lines = ['{"event": "connected", "version": "1.0.0"}', "\ufeff" + json.dumps(start)]
    lines += [media(i, camel=i % 2 == 0) for i in range(1, 51)]
    lines += [json.dumps({"event": "error", "stream_id": SID,
                          "payload": {"code": 100003, "title": "malformed_frame", "detail": "not JSON"}}),
              json.dumps({"event": "error", "stream_id": SID,
                          "error": {"code": "100005", "title": "rate_limit_reached", "detail": "slow down"}}),
              json.dumps({"event": "mark", "sequence_number": "60", "stream_id": SID, "mark": {"name": 7}})]
    capture = ta.read_capture(write(tmp_path, lines))
    summary = capture.summary()
    assert (summary["stream_id"], summary["call_control_id"], summary["call_session_id"]) == (SID, CALL, "ff55a038")
    assert summary["media_format"]["encoding"] == "PCMU" and summary["custom_parameters"] == {"customer_id": "c-1"}
    assert summary["stream_errors"] == [{"code": 100003, "title": "malformed_frame", "detail": "not JSON"},
                                        {"code": 100005, "title": "rate_limit_reached", "detail": "slow down"}]
    assert summary["bad_lines"] == 0 and summary["events"]["mark"] == 1 and summary["events"]["start"] == 1
    assert capture.recording.reports["inbound"].frames_received == 50
    assert capture.recording.audio.shape[-1] == 50 * 160 and not np.any(capture.recording.audio[0])  # 0xFF is silence


def test_a_start_without_media_format_keeps_the_call_ids_and_says_how_the_format_was_found(tmp_path):
    start = {"event": "start", "sequence_number": "1", "stream_id": SID,
             "start": {"call_control_id": CALL, "custom_parameters": {"customer_id": "c-1"}}}
    lines = ['{"event": "connected", "version": "1.0.0"}', json.dumps(start)] + [media(i, byte=0x55) for i in range(1, 51)]
    summary = ta.read_capture(write(tmp_path, lines)).summary()
    assert (summary["stream_id"], summary["call_control_id"], summary["custom_parameters"]) == (
        SID, CALL, {"customer_id": "c-1"})
    assert summary["media_format"]["sample_rate"] == 8000 and summary["bad_lines"] == 0
    assert any(w.startswith("the start message has no media_format: inferred") for w in summary["warnings"]), summary["warnings"]


def test_a_number_past_pythons_digit_limit_is_one_bad_line_and_the_call_decodes(tmp_path):
    start = {"event": "start", "sequence_number": "1", "stream_id": SID,
             "start": {"call_control_id": CALL, "media_format": {"encoding": "PCMU", "sample_rate": 8000}}}
    poison = media(25).replace('"chunk": "25"', '"chunk": ' + "9" * 5000)
    lines = [json.dumps(start)] + [media(i) for i in range(1, 25)] + [poison] + [media(i) for i in range(26, 51)]
    capture = ta.read_capture(write(tmp_path, lines))
    summary = capture.summary()
    assert summary["bad_lines"] == 1 and "Exceeds the limit" in json.dumps(summary["bad_examples"])
    assert capture.recording.reports["inbound"].frames_received == 49
