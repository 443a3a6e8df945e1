"""An independent, line-at-a-time reading of capture files: the oracle for the fast reader.

Every line goes through ``json.loads`` and the protocol's message parser, one by one, with
none of the reader's machinery (no layouts, no blocks, no offsets): what the capture reader
must agree with, frame for frame.
"""

from __future__ import annotations

import gzip
import json

import numpy as np

from telnyx_audio.streams.protocol import Connected, Malformed, Media, Start, parse_object
from telnyx_audio.model import FrameTable, plan, render

LIMIT = 2**53 - 1


def _message(raw: bytes):
    """(event, bad frame or None) of one line, or None for a blank line."""
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    if not raw.strip(b" \t\r\n"):
        return None
    try:
        obj = json.loads(raw.decode("utf-8", "replace"))
    except (ValueError, RecursionError):
        return Malformed("json", ""), None
    if isinstance(obj, dict) and "received_us" in obj and "event" not in obj:
        if "message" in obj:
            obj = obj["message"]
        elif isinstance(obj.get("raw"), str):
            try:
                obj = json.loads(obj["raw"])
            except (ValueError, RecursionError):
                return Malformed("json", ""), None
        else:
            return Malformed("wrapper", ""), None
    event = parse_object(obj)
    if _too_big(event):
        event = Malformed("range", "")
    if isinstance(event, Malformed) and isinstance(obj, dict) and obj.get("event") == "media":
        media = obj.get("media")
        if isinstance(media, dict) and "payload" in media:
            bare = parse_object({**obj, "media": {**media, "payload": ""}})
            if isinstance(bare, Media) and not _too_big(bare):
                return event, bare
    return event, None


def _too_big(event) -> bool:
    values = [getattr(event, k, None) for k in ("chunk", "timestamp", "sequence_number")]
    if any(v is not None and v > LIMIT for v in values):
        return True
    fmt = getattr(event, "media_format", None) if isinstance(event, Start) else None
    return fmt is not None and not 1000 <= fmt.sample_rate <= 192_000


def read_reference(path, media_format=None):
    """Per stream, in order of first appearance: a dict with ``stream_id``, ``recording``,
    ``bad_lines``, ``events`` (counts by kind, media included)."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    items = []  # (line, stream_id or None, kind, event, bad frame)
    for n, raw in enumerate(data.split(b"\n")[: data.count(b"\n") + (not data.endswith(b"\n"))], 1):
        got = _message(raw)
        if got is None:
            continue
        event, frame = got
        sid = getattr(frame or event, "stream_id", None)
        items.append((n, sid, event, frame))
    order = []
    for _, sid, _, _ in items:
        if sid is not None and sid not in order:
            order.append(sid)
    named = [(n, sid) for n, sid, _, _ in items if sid is not None]
    streams = {sid: {"frames": [], "bad": [], "events": [], "start": None} for sid in order or [None]}
    for n, sid, event, frame in items:
        if sid is None and order:
            before = [s for m, s in named if m < n]
            after = [s for m, s in named if m > n]
            if isinstance(event, Connected) and after:
                sid = after[0]
            else:
                sid = before[-1] if before else named[0][1]
        s = streams[sid if order else None]
        if frame is not None:
            s["bad"].append(n)
            s["frames"].append((frame, True))
        elif isinstance(event, Malformed):
            s["bad"].append(n)
        elif isinstance(event, Media):
            s["frames"].append((event, False))
        else:
            s["events"].append(event)
            if isinstance(event, Start) and s["start"] is None:
                s["start"] = event
    out = []
    for sid, s in streams.items():
        fmt = media_format or (s["start"].media_format if s["start"] else None)
        media = [m for m, _ in s["frames"]]
        table, raw = FrameTable.from_media(media)
        bad = np.array([b for _, b in s["frames"]], bool)
        table = FrameTable(table.track, table.chunk, table.timestamp, table.sequence_number,
                           np.where(bad, -1, table.nbytes))
        rec = render(plan(table, fmt.encoding, fmt.sample_rate), table, raw) if fmt else None
        counts = {}
        for e in s["events"]:
            kind = {"StreamError": "error"}.get(type(e).__name__, type(e).__name__.lower())
            counts[kind] = counts.get(kind, 0) + 1
        out.append({"stream_id": sid, "recording": rec, "bad_lines": len(s["bad"]), "n_media": len(media),
                    "events": counts})
    return out
