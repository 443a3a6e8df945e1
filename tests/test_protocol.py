"""The sans-I/O protocol: every Telnyx message, malformed ones, and the builders."""

import base64
import dataclasses
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from telnyx_audio.protocol import (
    Connected,
    Dtmf,
    Malformed,
    Mark,
    Media,
    Start,
    Stop,
    StreamError,
    clear_message,
    mark_message,
    media_message,
    parse_message,
)

SID = "32DE0DEA-53CB-4B21-89A4-9E1819C043BC"
START = {
    "event": "start",
    "sequence_number": "1",
    "stream_id": SID,
    "start": {
        "user_id": "3E6F995F-85F7-4705-9741-53B116D28237",
        "call_control_id": "v2:T02llQxIyaRkhfRKxgAP8nY511EhFLizdvdUKJiSw8d6A9BborherQ",
        "call_session_id": "ff55a038-4f8a-11ee-a1d8-02420a0f7b68",
        "from": "+13122010094",
        "to": "+13122123456",
        "tags": ["TAG1"],
        "client_state": "aGF2ZSBhIG5pY2UgZGF5ID1d",
        "custom_parameters": {"customer_id": "customer_123"},
        "media_format": {"encoding": "PCMU", "sample_rate": 8000, "channels": 1},
    },
}


def media(**over):
    msg = {"event": "media", "sequence_number": "4", "stream_id": SID,
           "media": {"track": "inbound", "chunk": "2", "timestamp": "5", "payload": "/w=="}}
    msg["media"].update(over)
    return json.dumps(msg)


def test_connected_is_parsed():
    ev = parse_message('{"event": "connected", "version": "1.0.0"}')
    assert ev == Connected("1.0.0")


def test_start_keeps_telnyx_field_names_and_types():
    ev = parse_message(json.dumps(START))
    assert isinstance(ev, Start)
    assert ev.sequence_number == 1 and ev.stream_id == SID
    assert ev.call_control_id.startswith("v2:") and ev.call_session_id.startswith("ff55")
    assert (ev.media_format.encoding, ev.media_format.sample_rate, ev.media_format.channels) == ("PCMU", 8000, 1)
    assert ev.custom_parameters == {"customer_id": "customer_123"}
    assert ev.start["tags"] == ["TAG1"] and ev.client_state == "aGF2ZSBhIG5pY2UgZGF5ID1d"


def test_media_counters_become_ints_and_the_payload_bytes():
    ev = parse_message(media().encode())
    assert ev == Media("inbound", b"\xff", chunk=2, timestamp=5, sequence_number=4, stream_id=SID)


def test_track_names_with_the_track_suffix_are_accepted():
    assert parse_message(media(track="outbound_track")).track == "outbound"


def test_dtmf_mark_error_stop_are_parsed():
    assert parse_message(json.dumps({"event": "dtmf", "sequence_number": "5", "stream_id": SID,
                                     "occurred_at": "2025-06-05T08:54:19.698408Z",
                                     "dtmf": {"digit": "1"}})) == Dtmf("1", 5, SID, "2025-06-05T08:54:19.698408Z")
    assert parse_message('{"event": "mark", "sequence_number": "6", "mark": {"name": "greeting-done"}}') == Mark("greeting-done", 6)
    err = parse_message(json.dumps({"event": "error", "stream_id": SID,
                                    "payload": {"code": 100003, "title": "malformed_frame", "detail": "x"}}))
    assert err == StreamError(100003, "malformed_frame", "x", SID)
    stop = parse_message(json.dumps({"event": "stop", "sequence_number": "7", "stream_id": SID,
                                     "stop": {"user_id": "u", "call_control_id": "v2:abc"}}))
    assert isinstance(stop, Stop) and stop.call_control_id == "v2:abc" and stop.sequence_number == 7


def test_events_are_frozen():
    ev = parse_message(media())
    with pytest.raises(dataclasses.FrozenInstanceError):
        ev.chunk = 3  # type: ignore[misc]


MALFORMED = [
    ("{not json", "invalid JSON"),
    ("[1, 2]", "must be a JSON object, got list"),
    ('"media"', "must be a JSON object, got str"),
    ('{"event": "hello"}', "unknown event 'hello'"),
    ('{"no_event": 1}', "unknown event None"),
    ('{"event": "media"}', "media must be an object, got nothing"),
    ('{"event": "media", "media": {"track": "inbound"}}', "media.payload must be a base64 string, got nothing"),
    (media(payload=5), "media.payload must be a base64 string, got int"),
    (media(payload="abc$"), "media.payload is not valid base64"),
    (media(payload="abc"), "media.payload is not valid base64"),
    (media(track="both"), "media.track must be 'inbound' or 'outbound', got 'both'"),
    (media(chunk="2a"), "media.chunk must be a string of digits, got '2a'"),
    (media(chunk="-1"), "media.chunk must be a string of digits, got '-1'"),
    (media(chunk=-1), "media.chunk must not be negative"),
    (media(timestamp=True), "media.timestamp must be a string of digits, got True"),
    ('{"event": "start", "start": {}}', "start.media_format must be an object"),
    ('{"event": "start", "start": {"media_format": {"encoding": "PCMU", "sample_rate": "x"}}}', "sample_rate must be a positive integer"),
    ('{"event": "start", "start": {"media_format": {"sample_rate": 8000}}}', "encoding must be a codec name"),
    ('{"event": "dtmf", "dtmf": {}}', "dtmf.digit must be a string"),
    ('{"event": "mark", "mark": {"name": 3}}', "mark.name must be a string"),
    ('{"event": "error", "payload": {"code": "x1"}}', "error.payload.code must be an integer"),
    ('{"event": "stop", "stop": []}', "stop must be an object"),
]


@pytest.mark.parametrize("raw, reason", MALFORMED)
def test_a_malformed_message_becomes_an_event_with_its_reason_and_raw_text(raw, reason):
    ev = parse_message(raw)
    assert isinstance(ev, Malformed)
    assert reason in ev.reason
    assert ev.raw == raw


def test_bytes_that_are_not_utf8_are_malformed_not_an_exception():
    ev = parse_message(b"\xff\xfe{")
    assert isinstance(ev, Malformed) and "invalid JSON" in ev.reason


@given(st.one_of(st.text(), st.binary()))
@settings(max_examples=300, deadline=None)
def test_the_parser_never_raises_on_peer_data(data):
    parse_message(data)


def test_a_caller_passing_a_non_message_gets_a_type_error():
    with pytest.raises(TypeError, match="str or bytes, got int"):
        parse_message(5)  # type: ignore[arg-type]


def test_builders_make_what_telnyx_expects():
    assert json.loads(media_message(b"\x01\x02", stream_id="s")) == {
        "event": "media", "stream_id": "s", "media": {"payload": base64.b64encode(b"\x01\x02").decode()}}
    assert json.loads(mark_message("m1")) == {"event": "mark", "mark": {"name": "m1"}}
    assert json.loads(clear_message("s")) == {"event": "clear", "stream_id": "s"}


def test_builders_refuse_bad_arguments():
    with pytest.raises(TypeError, match="payload must be bytes"):
        media_message("text")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="non-empty string"):
        mark_message("")
