"""Webhook verification: a known answer, then a valid delivery broken one way at a time."""

import base64
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from telnyx_audio.errors import (
    InvalidSignatureError,
    MalformedKeyError,
    MalformedPayloadError,
    MalformedSignatureError,
    MalformedTimestampError,
    MissingHeaderError,
    TimestampToleranceError,
    WebhookVerificationError,
)
from telnyx_audio.webhooks import call_timeline, load_public_key, load_webhooks, sign_webhook, transcripts, verify_webhook
from webhook_fixtures import CALL, OTHER, TEXML_ANSWERED, TEXML_STREAM, body, call_deliveries, delivery, flat, form

VECTOR = json.loads((Path(__file__).parent / "vectors" / "webhook.json").read_text())
SEED = bytes.fromhex(VECTOR["seed_hex"])
KEY = VECTOR["public_key_b64"]
T0 = VECTOR["timestamp"]
BODY = VECTOR["body"].encode()
HEADERS = {"telnyx-signature-ed25519": VECTOR["signature_b64"], "telnyx-timestamp": str(T0)}


def test_the_known_answer_vector_verifies():
    event = verify_webhook(BODY, HEADERS, KEY, now=T0 + 5)
    assert event["data"]["event_type"] == "streaming.started"


def test_our_signature_equals_the_independent_one():
    assert sign_webhook(BODY, SEED, T0) == HEADERS


def test_the_independent_implementation_accepts_our_signatures():
    ed = pytest.importorskip("cryptography.hazmat.primitives.asymmetric.ed25519")
    headers = sign_webhook(b'{"x":1}', SEED, 42)
    ed.Ed25519PublicKey.from_public_bytes(base64.b64decode(KEY)).verify(
        base64.b64decode(headers["telnyx-signature-ed25519"]), b'42|{"x":1}')


@pytest.mark.parametrize("form", ["base64", "raw", "spki_b64", "spki_der", "pem"])
def test_the_public_key_is_accepted_in_every_common_form(form):
    raw = base64.b64decode(KEY)
    der = bytes.fromhex("302a300506032b6570032100") + raw
    key = {"base64": KEY, "raw": raw, "spki_b64": base64.b64encode(der).decode(), "spki_der": der,
           "pem": VECTOR["public_key_pem"]}[form]
    assert load_public_key(key) == raw
    assert verify_webhook(BODY, HEADERS, key, now=T0)["data"]["id"]


@pytest.mark.parametrize("key, reason", [
    ("not base64!", "not base64"),
    (base64.b64encode(b"x" * 31).decode(), "32 bytes, got 31"),
    (b"\x00" * 33, "got 33 bytes"),
    ("-----BEGIN PUBLIC KEY-----\n$$$\n-----END PUBLIC KEY-----", "not base64"),
])
def test_a_malformed_key_is_named_as_such(key, reason):
    with pytest.raises(MalformedKeyError, match=reason):
        verify_webhook(BODY, HEADERS, key, now=T0)


def test_header_names_are_case_insensitive_and_may_be_pairs():
    upper = {k.upper(): v for k, v in HEADERS.items()}
    assert verify_webhook(BODY, upper, KEY, now=T0)
    assert verify_webhook(BODY, list({k.title(): v for k, v in HEADERS.items()}.items()), KEY, now=T0)


@pytest.mark.parametrize("missing", ["telnyx-signature-ed25519", "telnyx-timestamp"])
def test_a_missing_header_is_named(missing):
    headers = {k: v for k, v in HEADERS.items() if k != missing}
    with pytest.raises(MissingHeaderError, match=missing) as err:
        verify_webhook(BODY, headers, KEY, now=T0)
    assert err.value.header == missing


@pytest.mark.parametrize("value", ["abc", "-5", "1e9", "", "1764000000.5"])
def test_a_malformed_timestamp_is_refused(value):
    with pytest.raises(MalformedTimestampError, match="Unix seconds"):
        verify_webhook(BODY, {**HEADERS, "telnyx-timestamp": value}, KEY, now=T0)


@pytest.mark.parametrize("skew", [301, -301, 86400])
def test_a_delivery_outside_the_tolerance_gives_its_skew(skew):
    with pytest.raises(TimestampToleranceError) as err:
        verify_webhook(BODY, HEADERS, KEY, now=T0 + skew)
    assert err.value.skew_s == skew and str(abs(skew)) in str(err.value)


@pytest.mark.parametrize("skew", [300, -300, 0])
def test_the_tolerance_is_inclusive(skew):
    assert verify_webhook(BODY, HEADERS, KEY, now=T0 + skew)


def test_no_tolerance_verifies_an_archived_delivery():
    assert verify_webhook(BODY, HEADERS, KEY, tolerance_s=None, now=T0 + 10**8)


@pytest.mark.parametrize("signature, reason", [("***", "not base64"), (base64.b64encode(b"x" * 63).decode(), "64 bytes, got 63")])
def test_a_malformed_signature_is_refused(signature, reason):
    with pytest.raises(MalformedSignatureError, match=reason):
        verify_webhook(BODY, {**HEADERS, "telnyx-signature-ed25519": signature}, KEY, now=T0)


def flip(b64: str) -> str:
    raw = bytearray(base64.b64decode(b64))
    raw[10] ^= 1
    return base64.b64encode(bytes(raw)).decode()


@pytest.mark.parametrize("change", ["signature bit", "body byte", "timestamp", "other key", "body re-serialised"])
def test_any_change_breaks_the_signature(change):
    body, headers, key = BODY, dict(HEADERS), KEY
    if change == "signature bit":
        headers["telnyx-signature-ed25519"] = flip(headers["telnyx-signature-ed25519"])
    elif change == "body byte":
        body = body.replace(b"streaming.started", b"streaming.stopped")
    elif change == "timestamp":
        headers["telnyx-timestamp"] = str(T0 + 1)
    elif change == "other key":
        from nacl.signing import SigningKey
        key = base64.b64encode(bytes(SigningKey(bytes(32)).verify_key)).decode()
    else:
        body = json.dumps(json.loads(body)).encode()  # same JSON, other bytes
    with pytest.raises(InvalidSignatureError):
        verify_webhook(body, headers, key, now=T0)


def test_a_signed_body_that_is_not_a_json_object_is_refused():
    for raw in (b"not json", b"[1,2]"):
        with pytest.raises(MalformedPayloadError):
            verify_webhook(raw, sign_webhook(raw, SEED, T0), KEY, now=T0)


def test_every_failure_is_a_value_error_and_a_str_body_a_type_error():
    assert issubclass(InvalidSignatureError, (WebhookVerificationError, ValueError))
    with pytest.raises(TypeError, match="raw bytes"):
        verify_webhook(BODY.decode(), HEADERS, KEY, now=T0)  # type: ignore[arg-type]


def test_signing_refuses_bad_arguments():
    with pytest.raises(ValueError, match="32 bytes"):
        sign_webhook(b"{}", base64.b64encode(b"x" * 5).decode(), 1)
    with pytest.raises(ValueError, match="non-negative int"):
        sign_webhook(b"{}", SEED, -1)


# --- loading and views -------------------------------------------------------------------------

def write_mixed(tmp_path):
    deliveries = call_deliveries()
    retry = delivery("call.hangup", "e7", "2026-11-24T10:00:09.000000Z", {"hangup_cause": "x"}, attempt=2)
    lines = [json.dumps(d) for d in deliveries[:4]] + ["{broken", json.dumps({"hello": 1})]
    lines += [json.dumps(d) for d in deliveries[4:]] + [json.dumps(retry)]
    path = tmp_path / "hooks.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_a_mixed_file_loads_with_duplicates_unknown_types_and_bad_lines_reported(tmp_path):
    df = load_webhooks(write_mixed(tmp_path))
    assert list(df.columns[:9]) == ["event_type", "id", "occurred_at", "call_control_id", "call_leg_id",
                                    "call_session_id", "connection_id", "client_state", "client_state_decoded"]
    assert len(df) == 8 and df["id"].is_unique
    assert "call.something.new" in set(df["event_type"]) and df.loc[df.event_type == "call.something.new", "novel.field"].item() == 1
    report = df.attrs["load_report"]
    assert report["duplicates"] == 1 and report["rows"] == 8
    assert [(b["line"], b["reason"][:8]) for b in report["bad"]] == [(5, "not JSON"), (6, "no event")]
    assert isinstance(df["occurred_at"].dtype, pd.DatetimeTZDtype) and str(df["occurred_at"].dt.tz) == "UTC"
    assert df["occurred_at"].is_monotonic_increasing
    assert (df["client_state_decoded"] == "have a nice day =]").all()


def test_call_quality_numbers_sent_as_strings_become_numbers_and_codes_stay_strings(tmp_path):
    df = load_webhooks(write_mixed(tmp_path))
    hangup = df[df.event_type == "call.hangup"].iloc[0]
    assert hangup["call_quality_stats.inbound.mos"] == 4.5 and hangup["call_quality_stats.inbound.packet_count"] == 591
    assert isinstance(hangup["sip_hangup_cause"], str) and isinstance(hangup["connection_id"], str)
    assert hangup["hangup_cause"] == "normal_clearing"  # the first delivery, not the retry


def test_sources_may_be_globs_lists_dicts_and_raw_bodies(tmp_path):
    deliveries = call_deliveries()
    (tmp_path / "a.jsonl").write_text(json.dumps(deliveries[0]) + "\n")
    (tmp_path / "b.jsonl").write_text(json.dumps(deliveries[1]) + "\n")
    assert len(load_webhooks(str(tmp_path / "*.jsonl"))) == 2
    assert len(load_webhooks([tmp_path / "a.jsonl", tmp_path / "b.jsonl"])) == 2
    assert len(load_webhooks([deliveries[2], body(deliveries[3]), body(deliveries[4]).decode()])) == 3
    with pytest.raises(FileNotFoundError, match="no webhook files match"):
        load_webhooks(str(tmp_path / "none*.jsonl"))


def test_an_empty_source_gives_an_empty_frame_with_the_columns():
    df = load_webhooks([])
    assert len(df) == 0 and "event_type" in df.columns and "occurred_at" in df.columns


def test_transcripts_show_final_and_interim_with_track_confidence_and_time():
    t = transcripts(load_webhooks(call_deliveries()))
    assert list(t["transcript"]) == ["hello", "hello there"]
    assert list(t["is_final"]) == [False, True] and list(t["track"]) == ["inbound", "outbound"]
    assert np.isnan(t["confidence"][0]) and t["confidence"][1] == 0.93
    assert list(t["t_s"]) == [4.0, 5.25]


def test_the_call_timeline_orders_each_call_with_seconds_since_its_first_event():
    tl = call_timeline(load_webhooks(call_deliveries()))
    mine = tl[tl.call_control_id == CALL]
    assert list(mine["event_type"])[:2] == ["call.initiated", "streaming.started"]
    assert list(mine["t_s"]) == [0.0, 1.5, 4.0, 5.25, 6.0, 7.0, 9.0]
    assert tl[tl.call_control_id == OTHER]["t_s"].tolist() == [0.0]
    assert isinstance(tl, pd.DataFrame) and list(tl.columns[:5]) == ["call_control_id", "t_s", "occurred_at", "event_type", "id"]


# --- every real form (protocol notes, section 6) -----------------------------------------------

FORM_TYPE = {"Content-Type": "application/x-www-form-urlencoded"}


def test_flat_deliveries_fill_the_same_columns_as_the_data_envelope():
    enveloped = [delivery("call.initiated", "e1", "2026-11-24T10:00:00.000000Z", {"direction": "incoming"}),
                 delivery("call.hangup", "e2", "2026-11-24T10:00:09.000000Z", {"hangup_cause": "normal_clearing"})]
    flattened = [flat("call.initiated", "e1", "2026-11-24T10:00:00.000000Z", {"direction": "incoming"}),
                 flat("call.hangup", "e2", "2026-11-24T10:00:09.000000Z", {"hangup_cause": "normal_clearing"})]
    a, b = load_webhooks(enveloped), load_webhooks([body(d) for d in flattened])
    core = ["event_type", "id", "occurred_at", "call_control_id", "call_leg_id", "call_session_id", "connection_id",
            "client_state", "client_state_decoded", "direction", "hangup_cause", "record_type"]
    pd.testing.assert_frame_equal(a[core], b[core])
    assert b["id"].tolist() == ["e1", "e2"] and b["occurred_at"].notna().all()
    assert (b["created_at"] == "2026-11-24T10:59:59.000000Z").all()  # the delivery's own time, kept apart


def test_the_v1_flat_shape_takes_its_time_from_created_at():
    v1 = {"record_type": "event", "id": "0ccc7b54-4df3-4bca-a65a-3da1ecc777f0", "event_type": "call_initiated",
          "created_at": "2018-02-02T22:25:27.521992Z",
          "payload": {"to": "+12025550131", "call_control_id": "AgDIxmoRX6QMuaIj_uXRXnPAXP0QlNfXczRrZvZakpWxBlpw48KyZQ==",
                      "connection_id": "7267xxxxxxxxxxxxxx", "direction": "incoming", "state": "parked"}}
    row = load_webhooks([v1]).iloc[0]
    assert row["id"] == v1["id"] and str(row["occurred_at"]) == "2018-02-02 22:25:27.521992+00:00"
    assert row["call_control_id"].startswith("AgDI") and row["state"] == "parked"


def test_a_texml_form_callback_is_verified_on_the_raw_body_and_read_as_its_fields():
    raw = form(TEXML_ANSWERED)
    headers = {**sign_webhook(raw, SEED, T0), **FORM_TYPE}
    assert verify_webhook(raw, headers, KEY, now=T0) == TEXML_ANSWERED
    assert verify_webhook(raw, list(headers.items()), KEY, now=T0)["CallSid"].startswith("v3:")
    with pytest.raises(InvalidSignatureError):
        verify_webhook(raw.replace(b"in-progress", b"completed"), headers, KEY, now=T0)
    with pytest.raises(MalformedPayloadError, match="form-encoded"):
        bad = b"CallSid"  # a field without '='
        verify_webhook(bad, {**sign_webhook(bad, SEED, T0), **FORM_TYPE}, KEY, now=T0)


def test_texml_callbacks_load_into_the_usual_columns_and_keep_their_other_fields():
    df = load_webhooks([form(TEXML_ANSWERED), form(TEXML_STREAM).decode(), TEXML_STREAM | {"Timestamp": "2024-01-15T10:30:02Z"}])
    assert df["event_type"].tolist() == ["texml.in-progress", "texml.stream-started", "texml.stream-started"]
    first = df.iloc[0]
    assert first["call_control_id"] == TEXML_ANSWERED["CallSid"] and first["connection_id"] == "1234567890"
    assert str(first["occurred_at"]) == "2024-01-15 10:30:00+00:00" and first["record_type"] == "texml"
    assert first["CallStatus"] == "in-progress" and first["Codec"] == "PCMU" and first["From"] == "+35319605860"
    assert df.loc[1, "StreamSid"] == "stream-abc123" and df.attrs["load_report"]["bad"] == []


@pytest.mark.parametrize("form_of_key", ["str", "str newline", "bytes", "bytes newline", "bytes crlf", "bytearray"])
def test_the_base64_public_key_may_be_str_or_bytes_with_or_without_a_newline(form_of_key):
    key = {"str": KEY, "str newline": KEY + "\n", "bytes": KEY.encode(), "bytes newline": KEY.encode() + b"\n",
           "bytes crlf": KEY.encode() + b"\r\n", "bytearray": bytearray(KEY.encode())}[form_of_key]
    assert load_public_key(key) == base64.b64decode(KEY)
    assert verify_webhook(BODY, HEADERS, key, now=T0)["data"]["id"]


@pytest.mark.parametrize("now_minus_t0, ok", [(-300, True), (-300.5, False), (-301, False), (300, True),
                                              (300.5, True), (300.999, True), (301, False), (-0.5, True)])
def test_the_tolerance_compares_whole_seconds_of_the_clock_as_the_sdk(now_minus_t0, ok):
    # Telnyx's SDK: abs(int(time.time()) - timestamp) > 300 is refused; 300.5 s ahead is 301.
    if ok:
        assert verify_webhook(BODY, HEADERS, KEY, now=T0 + now_minus_t0)
    else:
        with pytest.raises(TimestampToleranceError) as err:
            verify_webhook(BODY, HEADERS, KEY, now=T0 + now_minus_t0)
        assert abs(err.value.skew_s) == 301


@pytest.mark.parametrize("value", ["1764000000.5", "1764000000.0", "1764000000."])
def test_a_fractional_timestamp_is_a_clear_typed_error(value):
    with pytest.raises(MalformedTimestampError, match="whole Unix seconds, got the fractional") as err:
        verify_webhook(BODY, {**HEADERS, "telnyx-timestamp": value}, KEY, now=T0)
    assert value in str(err.value) and isinstance(err.value, ValueError)


def test_a_folder_loads_the_verified_log_and_the_rejected_one_only_when_asked(tmp_path):
    import time as clock

    import requests

    from telnyx_audio.webhooks.receiver import WebhookReceiver

    good, forged = call_deliveries()[0], call_deliveries()[1]
    with WebhookReceiver(tmp_path / "hooks.jsonl", KEY) as rx:
        rx.start()
        now = int(clock.time())
        for raw, headers in [(body(good), sign_webhook(body(good), SEED, now)),
                             (body(forged), sign_webhook(body(forged), bytes(32), now)),
                             (form(TEXML_STREAM), {**sign_webhook(form(TEXML_STREAM), SEED, now), **FORM_TYPE})]:
            requests.post(rx.url, data=raw, headers={"Content-Type": "application/json", **headers}, timeout=10)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hooks.jsonl", "hooks.rejected.jsonl"]
    verified = load_webhooks(tmp_path)
    assert verified["event_type"].tolist() == ["texml.stream-started", "call.initiated"]  # by occurred_at
    assert verified["verified"].all() and verified.attrs["load_report"]["rejected"] == 0
    assert load_webhooks(str(tmp_path / "*.jsonl"))["event_type"].tolist() == verified["event_type"].tolist()
    everything = load_webhooks(tmp_path, include_rejected=True)
    assert sorted(everything["id"].dropna()) == ["e1", "e2"]
    refused = everything[everything["verified"] == False]  # noqa: E712
    assert refused["id"].tolist() == ["e2"] and "does not match" in refused["rejected_because"].item()
    # a rejected record reached some other way is still left out unless asked, and counted
    mixed = load_webhooks([tmp_path / "hooks.jsonl", tmp_path / "hooks.rejected.jsonl"])
    assert len(mixed) == 2 and mixed.attrs["load_report"]["rejected"] == 1


def test_an_empty_folder_is_named_in_the_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="no webhook logs"):
        load_webhooks(tmp_path)


def test_the_receiver_logs_the_type_and_id_of_a_flat_delivery(tmp_path):
    import time as clock

    import requests

    from telnyx_audio.webhooks.receiver import WebhookReceiver

    raw = body(flat("call.answered", "w-1", "2026-11-24T10:00:00.000000Z", {}))
    with WebhookReceiver(tmp_path / "hooks.jsonl", KEY) as rx:
        rx.start()
        r = requests.post(rx.url, data=raw, headers={"Content-Type": "application/json",
                                                     **sign_webhook(raw, SEED, int(clock.time()))}, timeout=10)
    assert r.status_code == 200
    record = json.loads((tmp_path / "hooks.jsonl").read_text())
    assert (record["event_type"], record["id"]) == ("call.answered", "w-1")


def test_asgi_style_headers_as_byte_pairs_verify():
    raw_headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in HEADERS.items()]
    assert verify_webhook(BODY, raw_headers + [(b"content-type", b"application/json")], KEY, now=T0)["data"]["id"]


@given(st.dictionaries(st.from_regex(r"[a-z][a-z_]{0,10}", fullmatch=True).filter(  # not the flat shape's own keys
    lambda k: k not in ("occurred_at", "created_at", "webhook_id")),
                       st.one_of(st.text(max_size=5), st.integers(), st.booleans()), max_size=6),
       st.sampled_from(["call.answered", "streaming.started", "call.something.new"]))
@settings(max_examples=40, deadline=None)
def test_any_payload_loads_the_same_in_the_flat_shape_as_in_the_envelope(payload, event_type):
    at = "2026-11-24T10:00:00.000000Z"
    a = load_webhooks([delivery(event_type, "e1", at, payload)])
    b = load_webhooks([flat(event_type, "e1", at, payload)])
    columns = [c for c in a.columns if not c.startswith("meta.")]
    pd.testing.assert_frame_equal(a[columns], b[columns])


@pytest.mark.parametrize("raw, reason", [
    (b'{"data": {"event_type": "call.hangup", "id": ' + b"9" * 5000 + b"}}", "Exceeds the limit"),
    (b"[" * 100000 + b"]" * 100000, "not JSON"),
])
def test_a_body_json_cannot_hold_is_a_typed_error_and_one_bad_line(raw, reason, tmp_path):
    with pytest.raises(MalformedPayloadError, match=reason):
        verify_webhook(raw, sign_webhook(raw, SEED, T0), KEY, now=T0)
    path = tmp_path / "hooks.jsonl"
    path.write_bytes(body(call_deliveries()[0]) + b"\n" + raw + b"\n" + body(call_deliveries()[1]) + b"\n")
    df = load_webhooks(path)
    assert df["id"].tolist() == ["e1", "e2"] and [b["line"] for b in df.attrs["load_report"]["bad"]] == [2]
