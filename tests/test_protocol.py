"""The sans-I/O protocol: every Telnyx message, malformed ones, and the builders."""

import base64
import dataclasses
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from telnyx_audio.streams.protocol import (
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
    ('{"event": "dtmf", "dtmf": {}}', "dtmf.digit must be a string"),
    ('{"event": "mark", "mark": {"name": null}}', "mark.name must be a string or a number, got None"),
    ('{"event": "mark", "mark": {"name": [1]}}', "mark.name must be a string or a number, got [1]"),
    ('{"event": "error", "payload": {"code": 1.5}}', "error.payload.code must be an integer or a string"),
    ('{"event": "error", "error": ["100005"]}', "error.error must be an object, got list"),
    (media(chunk="9223372036854775808"), "media.chunk is out of range: 9223372036854775808 is not below 2**63"),
    (media(timestamp=2**63), "media.timestamp is out of range"),
    (media(chunk="9" * 5000), "media.chunk is out of range: 999999999999999999999999999999..."),
    (media(chunk=10**400), "media.chunk is out of range: a 1329-bit integer is not below 2**63"),
    ('{"event": "media", "media": {"chunk": ' + "9" * 5000 + ', "payload": ""}}', "invalid JSON: Exceeds the limit"),
    ('{"event": "mark", "mark": {"name": ' + "9" * 100 + '}}', "mark.name is a number too long"),
    ('{"event": "error", "payload": {"code": -1}}', "error.payload.code is out of range: -1"),
    ('{"event": "error", "payload": {"code": ' + "9" * 30 + '}}', "error.payload.code is out of range"),
    ('{"event": "stop", "stop": []}', "stop must be an object"),
]


BAD_FORMATS = [
    ('"PCMU"', "start.media_format must be an object, got str"),
    ('{"encoding": "PCMU", "sample_rate": "x"}', "sample_rate must be an integer from 1000 to 192000, got 'x'"),
    ('{"encoding": "PCMU", "sample_rate": 8000000000}',
     "sample_rate must be an integer from 1000 to 192000, got 8000000000"),
    ('{"encoding": "PCMU", "sample_rate": 8000, "channels": 0}', "channels must be an integer from 1 to 8"),
    ('{"sample_rate": 8000}', "encoding must be a codec name"),
]


@pytest.mark.parametrize("fmt, reason", BAD_FORMATS)
def test_a_start_with_an_unusable_media_format_keeps_its_ids_and_says_why_the_format_was_dropped(fmt, reason):
    ev = parse_message('{"event": "start", "stream_id": "s-1", "start": {"call_control_id": "v3:c",'
                       ' "custom_parameters": {"k": "v"}, "media_format": ' + fmt + '}}')
    assert isinstance(ev, Start) and ev.media_format is None and reason in ev.media_format_error
    assert (ev.stream_id, ev.call_control_id, dict(ev.custom_parameters)) == ("s-1", "v3:c", {"k": "v"})


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


# --- every real form of the protocol notes, section 6, as Telnyx's documents show it ---------

START_CAMEL = {  # TeXML <Stream> and some demos spell the fields in camelCase
    "event": "start", "sequenceNumber": "1", "streamId": SID,
    "start": {"callControlId": START["start"]["call_control_id"], "callSessionId": START["start"]["call_session_id"],
              "clientState": "aGF2ZSBhIG5pY2UgZGF5ID1d", "customParameters": {"customer_id": "customer_123"},
              "mediaFormat": {"encoding": "PCMU", "sampleRate": 8000, "channels": 1}}}
START_NO_FORMAT = {"event": "start", "sequence_number": "1", "stream_id": SID,  # integrations' tests
                   "start": {k: v for k, v in START["start"].items() if k != "media_format"}}


def with_encoding(encoding, rate=8000):
    msg = json.loads(json.dumps(START))
    msg["start"]["media_format"].update(encoding=encoding, sample_rate=rate)
    return json.dumps(msg)


@pytest.mark.parametrize("encoding, rate, codec", [
    ("audio/x-mulaw", 8000, "PCMU"),  # older Telnyx documents
    ("audio/x-alaw", 8000, "PCMA"),
    ("audio/PCMU", 8000, "PCMU"),
    ("audio/L16", 16000, "L16"),
    ("pcma", 8000, "PCMA"),
    ("audio/G722", 16000, "G722"),
    ("Opus", 48000, "OPUS"),
])
def test_mime_style_and_lower_case_encoding_names_read_as_the_codec_they_name(encoding, rate, codec):
    ev = parse_message(with_encoding(encoding, rate))
    assert isinstance(ev, Start) and ev.media_format.encoding == codec and ev.media_format.sample_rate == rate


def test_an_encoding_no_codec_answers_to_is_kept_as_sent_for_the_report():
    assert parse_message(with_encoding("audio/speex")).media_format.encoding == "audio/speex"


def test_a_start_without_media_format_keeps_the_ids_and_says_the_format_is_unknown():
    ev = parse_message(json.dumps(START_NO_FORMAT))
    assert isinstance(ev, Start) and ev.media_format is None
    assert (ev.stream_id, ev.call_control_id, ev.custom_parameters) == (
        SID, START["start"]["call_control_id"], {"customer_id": "customer_123"})


def test_camel_case_start_fields_read_the_same_as_snake_case():
    assert parse_message(json.dumps(START_CAMEL)) == parse_message(json.dumps(START))
    camel = parse_message(json.dumps(START_CAMEL))
    assert camel.custom_parameters == {"customer_id": "customer_123"} and camel.client_state.startswith("aGF2")


def test_camel_case_media_and_stop_fields_read_the_same_as_snake_case():
    snake = json.loads(media())
    camel = {"event": "media", "sequenceNumber": "4", "streamId": SID, "media": snake["media"]}
    assert parse_message(json.dumps(camel)) == parse_message(media())
    stop = parse_message(json.dumps({"event": "stop", "sequenceNumber": "7", "streamId": SID,
                                     "stop": {"callControlId": "v2:abc"}}))
    assert (stop.sequence_number, stop.stream_id, stop.call_control_id) == (7, SID, "v2:abc")


@pytest.mark.parametrize("name, text", [(3, "3"), (12345678901234567890, "12345678901234567890"), (1.5, "1.5"), ("", "")])
def test_a_numeric_mark_name_is_read_as_its_text(name, text):
    raw = json.dumps({"event": "mark", "sequence_number": "6", "stream_id": SID, "mark": {"name": name}})
    assert parse_message(raw) == Mark(text, 6, SID)


@pytest.mark.parametrize("as_bytes", [False, True])
def test_a_leading_utf8_bom_does_not_lose_the_message(as_bytes):
    text = "\ufeff" + json.dumps(START)
    ev = parse_message(text.encode("utf-8") if as_bytes else text)
    assert isinstance(ev, Start) and ev.stream_id == SID and ev.media_format.encoding == "PCMU"


@pytest.mark.parametrize("msg, expected", [
    # the media-streaming guide: "payload", integer code
    ({"event": "error", "stream_id": SID, "payload": {"code": 100003, "title": "malformed_frame",
                                                      "detail": "Received media frame is not valid JSON"}},
     StreamError(100003, "malformed_frame", "Received media frame is not valid JSON", SID)),
    # older spec text: "error", code as a string
    ({"event": "error", "stream_id": SID, "error": {"code": "100005", "title": "rate_limit_reached",
                                                    "detail": "Too many requests"}},
     StreamError(100005, "rate_limit_reached", "Too many requests", SID)),
    ({"event": "error", "error": {"code": "E42", "title": "odd", "detail": {"why": 1}}},
     StreamError("E42", "odd", '{"why": 1}', None)),
    ({"event": "error", "payload": None, "error": {"code": 100004, "title": "invalid_media"}},
     StreamError(100004, "invalid_media", None, None)),
])
def test_error_frames_in_both_shapes_keep_code_title_and_detail(msg, expected):
    assert parse_message(json.dumps(msg)) == expected


@pytest.mark.parametrize("value, ok", [("9223372036854775807", True), (2**63 - 1, True), ("0", True),
                                       ("9223372036854775808", False), (2**64, False), ("1" * 4400, False)])
def test_counters_are_range_checked_to_int64_without_raising(value, ok):
    raw = media(chunk=value)
    ev = parse_message(raw)
    if ok:
        assert isinstance(ev, Media) and ev.chunk == int(value)
    else:
        assert isinstance(ev, Malformed) and "out of range" in ev.reason and ev.raw == raw


@given(st.integers(min_value=0, max_value=2**70), st.sampled_from(["chunk", "timestamp"]), st.booleans())
@settings(max_examples=200, deadline=None)
def test_a_counter_is_kept_exactly_when_in_range_and_refused_with_a_reason_otherwise(value, key, as_text):
    ev = parse_message(media(**{key: str(value) if as_text else value}))
    if value < 2**63:
        assert getattr(ev, key) == value
    else:
        assert isinstance(ev, Malformed) and f"media.{key} is out of range" in ev.reason


def camel(key):
    head, *rest = key.split("_")
    return head + "".join(word.title() for word in rest)


@given(st.lists(st.booleans(), min_size=9, max_size=9), st.sampled_from(["PCMU", "audio/x-alaw", "l16", "audio/G722"]),
       st.sampled_from([8000, 16000, "16000"]), st.text(max_size=8), st.integers(0, 2**63 - 1))
@settings(max_examples=200, deadline=None)
def test_any_mix_of_camel_and_snake_case_spellings_reads_the_same(flips, encoding, rate, text, seq):
    def spell(obj, keys):
        return {(camel(k) if k in keys else k): v for k, v in obj.items()}

    names = ["sequence_number", "stream_id", "call_control_id", "call_session_id", "client_state",
             "custom_parameters", "media_format", "sample_rate", "user_id"]
    flipped = {name for name, flip in zip(names, flips) if flip}
    fmt = {"encoding": encoding, "sample_rate": rate, "channels": 1}
    start = {"call_control_id": "v3:" + text, "call_session_id": text, "client_state": text,
             "custom_parameters": {"k": text}, "media_format": fmt, "user_id": text}
    snake = {"event": "start", "sequence_number": str(seq), "stream_id": text, "start": start}
    mixed = spell({**snake, "start": spell({**start, "media_format": spell(fmt, flipped)}, flipped)}, flipped)
    expected = parse_message(json.dumps(snake))
    assert isinstance(expected, Start) and parse_message(json.dumps(mixed)) == expected
    assert expected.media_format.sample_rate == int(rate) and expected.sequence_number == seq
