"""Make data/example_call.jsonl (an 8-second two-party call as Telnyx streams it) and
data/example_webhooks.jsonl (the same call's webhook deliveries, as the receiver logs them).

Run from the repository root: ``python data/make_example.py``. The output is deterministic.

The two parties are real people: the agent (outbound) is Allison Smith's recorded telephone
prompts and the caller (inbound) is CMU ARCTIC speaker awb, both from the held-out set in
data/speech/heldout/ (sources and licences in data/speech/SOURCES.md; the call is under CC BY-SA
3.0 as the prompts are). What is in it, so the demo and notebooks have something real to find:

- ``connected``, ``start`` (PCMU, 8 kHz, custom_parameters), then 50 media frames a second per
  track, each 20 ms of G.711 mu-law, with Telnyx's field names and string counters;
- the caller and the agent take turns, with silence between turns (a low noise floor):
  agent "thank you for your patience" (0.3-1.7 s), caller "and you always want to see it"
  (2.4-3.9 s), agent "one moment please" (3.5-4.8 s, starting before the caller ends), and the
  caller cuts in with "in the superlative degree" (4.4-5.9 s): two overlaps;
- the caller presses 1 and 5 (6.3 s and 6.9 s): in-band DTMF tones and Telnyx ``dtmf`` events;
- the network's habits: a few frames arrive late (reordered), two arrive twice, and three
  inbound frames never arrive (a 60 ms gap at 3.00 s, inside the caller's first turn);
- ``stop``.

The webhooks (call.initiated ... call.hangup, transcriptions of what each party says, DTMF, one
retried delivery) are signed with a demo key whose public half is in data/example_webhooks.pub,
so they can be re-verified offline with ``verify_webhook(..., tolerance_s=None)``.
"""

from __future__ import annotations

import base64
import json
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

import telnyx_audio as ta

HERE = Path(__file__).resolve().parent
SPEECH = HERE / "speech" / "heldout"
SR = 8000
FRAME = 160  # 20 ms
SECONDS = 8
STREAM_ID = "7f2b7c0e-9a41-4f3e-b1c5-2f0c9e5d8a61"
CALL_CONTROL_ID = "v3:u5OAKGEPT3Dx8SZSSDRWEMdNH2OripQhO"
DTMF = {"1": (697, 1209), "5": (770, 1336)}
DIGITS = [(6.3, "1"), (6.9, "5")]  # (start s, digit): 120 ms tones on the caller's track

# The script: (track, where the cut starts in the call (s), file under heldout/, (from, to) s in
# the file or None for all of it, what is said, when that speech ends in the call (s)).
# The ARCTIC sentence is cut at its one pause, between "see it" and "in" (1.91 s in the file).
TURNS = [
    ("outbound", 0.25, "allison/queue-thankyou.flac", None, "thank you for your patience", 1.7),
    ("inbound", 2.0, "awb/arctic_a0007.flac", (0.0, 1.91), "and you always want to see it", 3.9),
    ("outbound", 3.45, "allison/one-moment-please.flac", None, "one moment please", 4.8),
    ("inbound", 4.4, "awb/arctic_a0007.flac", (1.91, 3.7), "in the superlative degree", 6.0),
]
LEVEL_DBFS = {"outbound": -20.0, "inbound": -22.0}  # active speech level (RMS over loud frames)
NOISE_DBFS = -60.0


def utterance(name: str, span: tuple[float, float] | None, rate: int, level_dbfs: float) -> np.ndarray:
    """One recording (or a cut of it) at ``rate``, scaled to ``level_dbfs`` of active speech; float."""
    import soundfile
    from scipy.signal import resample_poly

    x, sr = soundfile.read(SPEECH / name, dtype="float64")
    if span is not None:
        x = x[int(span[0] * sr) : int(span[1] * sr)]
    fade = np.minimum(1.0, np.minimum(np.arange(x.size), np.arange(x.size)[::-1]) / (0.01 * sr))
    x = x * fade
    if rate != sr:
        x = resample_poly(x, rate, sr)
    frame = rate // 100
    power = np.mean(x[: x.size // frame * frame].reshape(-1, frame) ** 2, axis=1)
    active = power[power > power.max() * 1e-3]  # frames within 30 dB of the loudest
    return x * 10 ** (level_dbfs / 20) / np.sqrt(active.mean())


def dtmf_tone(digit: str, rate: int) -> np.ndarray:
    t = np.arange(int(0.12 * rate)) / rate
    low, high = DTMF[digit]
    return 0.25 * (np.sin(2 * np.pi * low * t) + np.sin(2 * np.pi * high * t))


def parties(rate: int = SR) -> np.ndarray:
    """The call's two clean tracks, ``[inbound, outbound]`` on axis 0, int16 at ``rate``, shape (2, SECONDS * rate)."""
    rng = np.random.default_rng(0)
    tracks = {name: rng.normal(0, 10 ** (NOISE_DBFS / 20), SECONDS * rate) for name in ("inbound", "outbound")}

    def put(track: str, t0: float, sound: np.ndarray) -> None:
        i = int(round(t0 * rate))
        tracks[track][i : i + sound.size] += sound[: tracks[track].size - i]

    for track, t0, name, span, _, _ in TURNS:
        put(track, t0, utterance(name, span, rate, LEVEL_DBFS[track]))
    for start, digit in DIGITS:
        put("inbound", start, dtmf_tone(digit, rate))
    return np.stack([np.clip(np.round(tracks[k] * 32767), -32768, 32767).astype(np.int16) for k in ("inbound", "outbound")])


def build() -> dict[str, np.ndarray]:
    audio = parties(SR)
    return {"inbound": audio[0], "outbound": audio[1]}


def messages() -> list[dict]:
    audio = build()
    payload = {name: ta.encode(pcm, "PCMU") for name, pcm in audio.items()}
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
    pressed = {int(start * 50) + 4: digit for start, digit in DIGITS}  # Telnyx reports a digit ~80 ms in
    for f in frames:
        msgs.append({"event": "media", "media": f})
        if f["track"] == "inbound" and f["chunk"] in pressed:
            digit = pressed[f["chunk"]]
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
        (3.2, "call.transcription", tr("and you always", False, None, "inbound")),  # a partial, then the final
        *[(end, "call.transcription", tr(text, True, conf, track))
          for (track, _, _, _, text, end), conf in zip(TURNS, (0.94, 0.89, 0.91, 0.87))],
        (6.42, "call.dtmf.received", {"digit": "1"}),
        (7.02, "call.dtmf.received", {"digit": "5"}),
        (8.0, "streaming.stopped", {"stream_url": "wss://example.com/stream"}),
        (8.2, "call.hangup", {"hangup_cause": "normal_clearing", "hangup_source": "caller", "sip_hangup_cause": "200",
                              "call_quality_stats": {"inbound": {"jitter_max_variance": "2.74", "jitter_packet_count": "0",
                                                                 "mos": "4.41", "packet_count": "400", "skip_packet_count": "3"},
                                                     "outbound": {"packet_count": "400", "skip_packet_count": "0"}}}),
    ]
    records = []
    for n, (dt, kind, payload) in enumerate(sorted(events, key=lambda e: e[0])):
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
            headers = {"content-type": "application/json", **ta.sign_webhook(body.encode(), DEMO_SEED, signed_at)}
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
