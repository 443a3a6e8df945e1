"""Telnyx-shaped webhook deliveries for the tests."""

import json

CALL = "v3:MdI91X4lWFEs7IgbBEOT9M4AigoY08M0WWZFISt1Yw2axZ_IiE4pqg"
OTHER = "v3:other-call-000000000000000000000000000000000000000"


def delivery(event_type, id_, at, payload, *, call=CALL, attempt=1):
    base = {"call_control_id": call, "call_leg_id": "leg-" + call[-4:], "call_session_id": "sess-" + call[-4:],
            "client_state": "aGF2ZSBhIG5pY2UgZGF5ID1d", "connection_id": "7267000000000000001"}
    return {"data": {"event_type": event_type, "id": id_, "occurred_at": at, "payload": {**base, **payload},
                     "record_type": "event"},
            "meta": {"attempt": attempt, "delivered_to": "https://example.com/hooks"}}


def call_deliveries():
    return [
        delivery("call.initiated", "e1", "2026-11-24T10:00:00.000000Z", {"direction": "incoming", "state": "parked"}),
        delivery("streaming.started", "e2", "2026-11-24T10:00:01.500000Z", {"stream_url": "wss://x/stream"}),
        delivery("call.transcription", "e3", "2026-11-24T10:00:04.000000Z",
                 {"transcription_data": {"transcript": "hello", "is_final": False, "confidence": None}}),
        delivery("call.transcription", "e4", "2026-11-24T10:00:05.250000Z",
                 {"transcription_data": {"transcript": "hello there", "is_final": True, "confidence": 0.93,
                                         "transcription_track": "outbound"}}),
        delivery("call.dtmf.received", "e5", "2026-11-24T10:00:06.000000Z", {"digit": "5"}),
        delivery("call.something.new", "e6", "2026-11-24T10:00:07.000000Z", {"novel": {"field": 1}}),
        delivery("call.hangup", "e7", "2026-11-24T10:00:09.000000Z", {
            "hangup_cause": "normal_clearing", "sip_hangup_cause": "200",
            "call_quality_stats": {"inbound": {"jitter_max_variance": "2.74", "mos": "4.50", "packet_count": "591"},
                                   "outbound": {"packet_count": "0", "skip_packet_count": "0"}}}),
        delivery("call.initiated", "f1", "2026-11-24T10:00:03.000000Z", {"direction": "outgoing"}, call=OTHER),
    ]


def body(obj):
    return json.dumps(obj, separators=(",", ":")).encode()


def flat(event_type, id_, at, payload, *, call=CALL):
    """The same event in the flat shape of Telnyx's voice API fundamentals page (no data wrapper)."""
    base = {"call_control_id": call, "call_leg_id": "leg-" + call[-4:], "call_session_id": "sess-" + call[-4:],
            "client_state": "aGF2ZSBhIG5pY2UgZGF5ID1d", "connection_id": "7267000000000000001"}
    return {"event_type": event_type, "created_at": "2026-11-24T10:59:59.000000Z", "webhook_id": id_,
            "record_type": "event", "payload": {**base, **payload, "occurred_at": at}}


# TexmlCallAnsweredWebhook as Telnyx's callback reference shows it (sent form-encoded).
TEXML_ANSWERED = {
    "AccountSid": "f5586561-8ff0-4291-a51b-c7dfe4139ff9",
    "CallInitiatedAt": "2024-01-15T10:30:26.028Z",
    "CallSid": "v3:9X2vxPDFY2RHSJ1EdMS0RHRksMTg7ldNxdjWbVr9zBjbGjGsSe-aiQ",
    "CallSidLegacy": "v3:9X2vxPDFY2RHSJ1EdMS0RHRksMTg7ldNxdjWbVr9zBjbGjGsSe-aiQ",
    "CallStatus": "in-progress",
    "CallbackSource": "call-progress-events",
    "ConnectionId": "1234567890",
    "From": "+35319605860",
    "SequenceNumber": "2",
    "Timestamp": "2024-01-15T10:30:00Z",
    "To": "+13129457420",
    "CallDuration": "15",
    "Codec": "PCMU",
    "SamplingRate": "8000",
}
# TexmlStreamWebhook, likewise.
TEXML_STREAM = {
    "AccountSid": "f5586561-8ff0-4291-a51b-c7dfe4139ff9",
    "CallSid": "v3:9X2vxPDFY2RHSJ1EdMS0RHRksMTg7ldNxdjWbVr9zBjbGjGsSe-aiQ",
    "CallSidLegacy": "v3:9X2vxPDFY2RHSJ1EdMS0RHRksMTg7ldNxdjWbVr9zBjbGjGsSe-aiQ",
    "StreamEvent": "stream-started",
    "StreamName": "my_stream",
    "StreamSid": "stream-abc123",
    "Timestamp": "2024-01-15T10:30:01Z",
}


def form(fields):
    from urllib.parse import urlencode
    return urlencode(fields).encode()
