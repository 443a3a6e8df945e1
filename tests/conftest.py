"""Shared helpers: Telnyx media-stream messages in the layouts real logs have."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import numpy as np
import pytest

from telnyx_audio import codecs

SID = "32DE0DEA-53CB-4B21-89A4-9E1819C043BC"
LAYOUTS = ("telnyx", "compact", "sorted", "wrapped", "crlf", "numbers")


def tone_frames(n_frames: int, *, tracks=("inbound", "outbound"), encoding="PCMU",
                sample_rate=8000, frame_ms=20, seed=0) -> list[dict]:
    """In-order frames of a two-party call: each track a different noisy tone."""
    rng = np.random.default_rng(seed)
    per = sample_rate * frame_ms // 1000
    frames = []
    for t_index, track in enumerate(tracks):
        t = np.arange(n_frames * per) / sample_rate
        pcm = (8000 * np.sin(2 * np.pi * (300 + 200 * t_index) * t) + rng.normal(0, 300, t.size))
        payload = codecs.encode(np.clip(pcm, -32768, 32767).astype(np.int16), encoding)
        bps = codecs.bytes_per_sample(encoding)
        for i in range(n_frames):
            frames.append({"track": track, "chunk": i + 1, "timestamp": i * frame_ms,
                           "payload": payload[i * per * bps : (i + 1) * per * bps]})
    frames.sort(key=lambda f: (f["chunk"], f["track"] != "inbound"))
    for seq, f in enumerate(frames, start=2):
        f["sequence_number"] = seq
    return frames


def media_obj(frame: dict, *, numbers: bool = False, stream_id: str = SID) -> dict:
    conv = (lambda v: v) if numbers else str
    media = {"track": frame["track"]}
    for key in ("chunk", "timestamp"):
        if frame.get(key) is not None:
            media[key] = conv(frame[key])
    media["payload"] = base64.b64encode(frame["payload"]).decode()
    msg = {"event": "media"}
    if frame.get("sequence_number") is not None:
        msg["sequence_number"] = conv(frame["sequence_number"])
    msg["stream_id"] = stream_id
    msg["media"] = media
    return msg


def start_obj(encoding="PCMU", sample_rate=8000, stream_id=SID) -> dict:
    return {"event": "start", "sequence_number": "1", "stream_id": stream_id,
            "start": {"call_control_id": "v2:ctl", "call_session_id": "sess-1", "from": "+1", "to": "+2",
                      "custom_parameters": {"customer_id": "c-1"}, "client_state": None,
                      "media_format": {"encoding": encoding, "sample_rate": sample_rate, "channels": 1}}}


def dump(obj: dict, layout: str, n: int = 0) -> str:
    if layout == "compact":
        return json.dumps(obj, separators=(",", ":"))
    if layout == "sorted":
        return json.dumps(obj, sort_keys=True)
    if layout == "wrapped":
        return json.dumps({"received_us": 1732419600000000 + 20000 * n, "message": obj}, separators=(",", ":"))
    return json.dumps(obj)


def capture_lines(frames: list[dict], *, layout="telnyx", encoding="PCMU", sample_rate=8000,
                  start=True, stop=True) -> list[str]:
    lines = []
    if start:
        lines.append(dump({"event": "connected", "version": "1.0.0"}, layout))
        lines.append(dump(start_obj(encoding, sample_rate), layout))
    for n, frame in enumerate(frames):
        lines.append(dump(media_obj(frame, numbers=layout == "numbers"), layout, n))
    if stop:
        lines.append(dump({"event": "stop", "sequence_number": "99", "stream_id": SID, "stop": {}}, layout))
    return lines


def write_capture(path: Path, lines: list[str], layout: str = "telnyx") -> Path:
    newline = "\r\n" if layout == "crlf" else "\n"
    Path(path).write_bytes((newline.join(lines) + newline).encode())
    return Path(path)


def expected_tracks(frames: list[dict], encoding="PCMU") -> dict[str, np.ndarray]:
    """Per track, the audio of the frames joined in chunk order (an in-order oracle)."""
    out = {}
    for track in ("inbound", "outbound"):
        mine = sorted((f for f in frames if f["track"] == track), key=lambda f: f["chunk"])
        if mine:
            out[track] = codecs.decode(b"".join(f["payload"] for f in mine), encoding)
    return out


@pytest.fixture
def tmp_capture(tmp_path):
    def make(frames, name="call.jsonl", layout="telnyx", **kw):
        return write_capture(tmp_path / name, capture_lines(frames, layout=layout, **kw), layout)
    return make
