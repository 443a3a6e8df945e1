"""Make data/example_call.jsonl (an 8-second two-party call as Telnyx streams it) and
data/example_webhooks.jsonl (the same call's webhook deliveries, as the receiver logs them).

Run from the repository root: ``python data/make_example.py``. The output is deterministic.

What is in it, so the demo and notebooks have something real to find:

- ``connected``, ``start`` (PCMU, 8 kHz, custom_parameters), then 50 media frames a second per
  track, each 20 ms of G.711 mu-law, with Telnyx's field names and string counters;
- the caller (inbound) and the agent (outbound) take turns, with one overlap where the
  caller cuts in, and silence between turns;
- the caller presses 1 and 5: in-band DTMF tones and Telnyx ``dtmf`` events;
- the network's habits: a few frames arrive late (reordered), two arrive twice, and three
  inbound frames never arrive (a 60 ms gap);
- ``stop``.

The webhooks (call.initiated ... call.hangup, transcriptions, DTMF, one retried delivery) are
signed with a demo key whose public half is in data/example_webhooks.pub, so they can be
re-verified offline with ``verify_webhook(..., tolerance_s=None)``.
"""

from __future__ import annotations

import base64
import json
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from telnyx_audio import codecs

SR = 8000
FRAME = 160  # 20 ms
SECONDS = 8
STREAM_ID = "7f2b7c0e-9a41-4f3e-b1c5-2f0c9e5d8a61"
CALL_CONTROL_ID = "v3:u5OAKGEPT3Dx8SZSSDRWEMdNH2OripQhO"
DTMF = {"1": (697, 1209), "5": (770, 1336)}


def voice(t0: float, t1: float, f0: float, seed: int) -> np.ndarray:
    """Speech-like sound: a gliding voiced tone with harmonics under a syllable envelope."""
    rng = np.random.default_rng(seed)
    n = int((t1 - t0) * SR)
    t = np.arange(n) / SR
    pitch = f0 * (1 + 0.08 * np.sin(2 * np.pi * 0.7 * t))
    phase = 2 * np.pi * np.cumsum(pitch) / SR
    sound = sum(np.sin(k * phase) / k for k in range(1, 9))
    syllables = 0.55 + 0.45 * np.sin(2 * np.pi * 4 * t) ** 2
    fade = np.minimum(1, np.minimum(t, t[::-1]) / 0.03)
    return 0.3 * sound * syllables * fade + rng.normal(0, 0.004, n)


def build() -> dict[str, np.ndarray]:
    tracks = {name: np.random.default_rng(i).normal(0, 0.002, SR * SECONDS) for i, name in enumerate(("inbound", "outbound"))}

    def put(track: str, t0: float, sound: np.ndarray) -> None:
        i = int(t0 * SR)
        tracks[track][i : i + sound.size] += sound

    put("outbound", 0.3, voice(0.3, 2.1, 180, 1))  # agent greets
    put("inbound", 2.6, voice(2.6, 4.4, 120, 2))  # caller answers
    put("outbound", 4.1, voice(4.1, 5.4, 175, 3))  # agent starts before the caller ends
    put("inbound", 5.0, voice(5.0, 5.8, 125, 4))  # caller cuts in: overlap 5.0-5.4
    for digit, start in (("1", 6.3), ("5", 6.9)):
        t = np.arange(int(0.12 * SR)) / SR
        low, high = DTMF[digit]
        put("inbound", start, 0.25 * (np.sin(2 * np.pi * low * t) + np.sin(2 * np.pi * high * t)))
    return {k: np.clip(v * 32767, -32768, 32767).astype(np.int16) for k, v in tracks.items()}


def messages() -> list[dict]:
    audio = build()
    payload = {name: codecs.encode(pcm, "PCMU") for name, pcm in audio.items()}
    frames = []
    for chunk in range(1, SECONDS * SR // FRAME + 1):
        for name in ("inbound", "outbound"):
            raw = payload[name][(chunk - 1) * FRAME : chunk * FRAME]
            frames.append({"track": name, "chunk": chunk, "timestamp": (chunk - 1) * 20,
                           "payload": base64.b64encode(raw).decode()})
    # The network: three inbound frames lost, two delivered twice, a few late.
    lost = {("inbound", 151), ("inbound", 152), ("inbound", 153)}
    frames = [f for f in frames if (f["track"], f["chunk"]) not in lost]
    frames.insert(300, dict(frames[290]))
    frames.insert(520, dict(frames[515]))
    for i in (100, 101, 240, 600):
        frames[i], frames[i + 3] = frames[i + 3], frames[i]

    msgs: list[dict] = [{"event": "connected", "version": "1.0.0"}]
    msgs.append({"event": "start", "start": {
        "user_id": "3E6F995F-85F7-4705-9741-53B116D28237",
        "call_control_id": CALL_CONTROL_ID,
        "call_session_id": "428c31b6-7af4-4bcb-b7f5-5013ef9657c1",
        "from": "+13122010094", "to": "+13122123456",
        "tags": ["example"], "client_state": "ZXhhbXBsZQ==",
        "custom_parameters": {"customer_id": "customer_123", "campaign": "demo"},
        "media_format": {"encoding": "PCMU", "sample_rate": SR, "channels": 1}}})
    for f in frames:
        msgs.append({"event": "media", "media": f})
        if f["track"] == "inbound" and f["chunk"] in (int(6.3 * 50) + 4, int(6.9 * 50) + 4):
            digit = "1" if f["chunk"] < 6.6 * 50 else "5"
            msgs.append({"event": "dtmf", "occurred_at": f"2026-11-24T10:00:0{int(f['chunk'] / 50)}.000000Z",
                         "dtmf": {"digit": digit}})
    msgs.append({"event": "stop", "stop": {"user_id": "3E6F995F-85F7-4705-9741-53B116D28237",
                                           "call_control_id": CALL_CONTROL_ID}})
    # Telnyx's key order: event, sequence_number, stream_id, then the event's object.
    out = []
    for seq, m in enumerate(msgs):
        ordered = {"event": m["event"]}
        if m["event"] != "connected":
            ordered["sequence_number"] = str(seq)
            ordered["stream_id"] = STREAM_ID
        for key, value in m.items():
            if key != "event":
                if key == "media":
                    value = {"track": value["track"], "chunk": str(value["chunk"]),
                             "timestamp": str(value["timestamp"]), "payload": value["payload"]}
                ordered[key] = value
        out.append(ordered)
    return out


DEMO_SEED = bytes.fromhex("4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb")  # RFC 8032 test 2
T_START = 1795514400  # 2026-11-24T10:00:00Z: the stream's first frame


def webhooks() -> list[dict]:
    from telnyx_audio.webhooks import sign_webhook

    base = {"call_control_id": CALL_CONTROL_ID, "call_leg_id": "428c31b6-7af4-4bcb-b7f5-5013ef9657c1",
            "call_session_id": "428c31b6-7af4-4bcb-b7f5-5013ef9657c1", "client_state": "ZXhhbXBsZQ==",
            "connection_id": "1684641123236054244"}

    def tr(text, final, conf, track):
        return {"transcription_data": {"transcript": text, "is_final": final, "confidence": conf,
                                       "transcription_track": track}}

    events = [
        (-2.0, "call.initiated", {"direction": "incoming", "from": "+13122010094", "to": "+13122123456", "state": "parked"}),
        (-0.5, "call.answered", {"from": "+13122010094", "to": "+13122123456"}),
        (0.0, "streaming.started", {"stream_url": "wss://example.com/stream"}),
        (2.1, "call.transcription", tr("thank you for calling how can I help", True, 0.94, "outbound")),
        (3.5, "call.transcription", tr("I would like to", False, None, "inbound")),
        (4.4, "call.transcription", tr("I would like to check my order", True, 0.89, "inbound")),
        (5.4, "call.transcription", tr("sure can you enter your code", True, 0.91, "outbound")),
        (6.42, "call.dtmf.received", {"digit": "1"}),
        (7.02, "call.dtmf.received", {"digit": "5"}),
        (8.0, "streaming.stopped", {"stream_url": "wss://example.com/stream"}),
        (8.2, "call.hangup", {"hangup_cause": "normal_clearing", "hangup_source": "caller", "sip_hangup_cause": "200",
                              "call_quality_stats": {"inbound": {"jitter_max_variance": "2.74", "jitter_packet_count": "0",
                                                                 "mos": "4.41", "packet_count": "400", "skip_packet_count": "3"},
                                                     "outbound": {"packet_count": "400", "skip_packet_count": "0"}}}),
    ]
    records = []
    for n, (dt, kind, payload) in enumerate(events):
        when = T_START + dt
        stamp = datetime.fromtimestamp(when, timezone.utc)
        envelope = {"data": {"event_type": kind, "id": f"5e1b2c7a-0000-4000-8000-{n:012d}",
                             "occurred_at": stamp.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
                             "payload": {**base, **payload}, "record_type": "event"},
                    "meta": {"attempt": 1, "delivered_to": "https://example.com/webhooks"}}
        deliveries = [envelope]
        if kind == "streaming.stopped":  # Telnyx retried this one
            deliveries.append({**envelope, "meta": {**envelope["meta"], "attempt": 2}})
        for k, env in enumerate(deliveries):
            body = json.dumps(env, separators=(",", ":"))
            signed_at = int(when) + 1 + 30 * k
            headers = {"content-type": "application/json", **sign_webhook(body.encode(), DEMO_SEED, signed_at)}
            records.append({"received_at": datetime.fromtimestamp(signed_at + 0.05, timezone.utc).isoformat(),
                            "remote": "192.0.2.10", "path": "/webhooks", "headers": headers, "body": body,
                            "verified": True, "error": None, "event_type": kind, "id": env["data"]["id"]})
    return records


def main() -> None:
    from nacl.signing import SigningKey

    here = Path(__file__).parent
    path = here / "example_call.jsonl"
    path.write_text("".join(json.dumps(m) + "\n" for m in messages()))
    print(f"wrote {path} ({path.stat().st_size} bytes)")
    hooks = here / "example_webhooks.jsonl"
    hooks.write_text("".join(json.dumps(r) + "\n" for r in webhooks()))
    (here / "example_webhooks.pub").write_text(base64.b64encode(bytes(SigningKey(DEMO_SEED).verify_key)).decode() + "\n")
    print(f"wrote {hooks} and example_webhooks.pub")


if __name__ == "__main__":
    main()
