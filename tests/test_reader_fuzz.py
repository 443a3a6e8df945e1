"""Differential fuzz: the vectorized capture reader against a line-at-a-time json.loads reader.

Real media lines (Telnyx's shape, the capture server's wrapper) are re-written with the
mutations real producers make: JSON escapes anywhere (PHP's ``\\/``, ``\\u0041``), other
whitespace, other key orders, duplicate keys, numbers for strings, unicode, counters past
any range, byte-order marks and cut-off lines. Whatever the bytes, every frame must be placed
where ``json.loads`` says it belongs, and every bad line counted.
"""

import base64
import os
import random

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import SID, tone_frames
from reference_reader import read_reference
from telnyx_audio.read import read_captures
from telnyx_audio.streams.protocol import MediaFormat

FMT = MediaFormat("PCMU", 8000)
SPACES = [" ", "", "\t", "\r", "  ", "\n"]  # "\n" inside a line splits it: also a real mutation


def write_value(v, rng, mutate):
    if isinstance(v, list):  # an object as (key, value) pairs: duplicates and order kept
        sep_kv = rng.choice([": ", ":", " : "]) if mutate else ": "
        sep = rng.choice([", ", ",", " ,\t"]) if mutate else ", "
        pad = rng.choice(SPACES) if mutate and rng.random() < 0.2 else ""
        return "{" + pad + sep.join(write_str(k, rng, mutate) + sep_kv + write_value(x, rng, mutate) for k, x in v) + pad + "}"
    if isinstance(v, str):
        return write_str(v, rng, mutate)
    if v is None:
        return "null"
    return str(v).lower() if isinstance(v, bool) else repr(v)


def write_str(s, rng, mutate):
    out = []
    for ch in s:
        r = rng.random() if mutate else 1.0
        if ch == "/" and r < 0.5:
            out.append("\\/")  # PHP's json_encode default
        elif r < 0.02:
            out.append("\\u%04x" % ord(ch))
        elif ch in '"\\':
            out.append("\\" + ch)
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def media_pairs(frame, rng, mutate, stream_id):
    def counter(n):
        if not mutate or rng.random() > 0.1:
            return str(n)
        return rng.choice([n, float(n), -n, str(n) + " ", "0" + str(n), 2**53 + n, str(2**63 + n), 10**30, True,
                           "\u0663", str(n).encode().decode() + "\u00a0"])

    media = [("track", frame["track"] if not (mutate and rng.random() < 0.03) else
              rng.choice(["inbound_track", "outbound_track", "Inbound", "both", 7])),
             ("chunk", counter(frame["chunk"])), ("timestamp", counter(frame["timestamp"])),
             ("payload", base64.b64encode(frame["payload"]).decode())]
    msg = [("event", "media"), ("sequence_number", counter(frame["sequence_number"])), ("stream_id", stream_id),
           ("media", media)]
    if mutate:
        r = rng.random()
        if r < 0.1:
            rng.shuffle(media)
            rng.shuffle(msg)
        elif r < 0.2:  # a duplicate key: json.loads keeps the last
            target = rng.choice([msg, media])
            k, v = rng.choice(target)
            target.insert(rng.randrange(len(target) + 1), (k, v if rng.random() < 0.5 else "1"))
        elif r < 0.25:
            msg.append(("stream_id", rng.choice(["\u00e9t\u00e9", "other-stream", SID.lower()])))
        elif r < 0.3:
            media[3] = ("payload", media[3][1][:-4] + rng.choice(["====", "AB=C", "\u00e9AAA", "A\"AA", "AAA"]))
    if mutate and rng.random() < 0.15:
        msg = [("received_us", rng.choice([1732419600000000, "x", -1])), ("message", msg)]
    return msg


def byte_edit(line: bytes, rng) -> bytes:
    raw = bytearray(line)
    i = rng.randrange(len(raw) + 1)
    choice = rng.random()
    if choice < 0.4 and raw:
        raw[min(i, len(raw) - 1)] = rng.choice(b'0"\\ {},:\x0b\x00\xff\xc3A=/')
    elif choice < 0.7:
        raw[i:i] = rng.choice([b" ", b"\t", b"\\", b"\xef\xbb\xbf", b"\xa0", b"\x0c"])
    else:
        del raw[i : i + rng.randint(1, 8)]
    return bytes(raw)


@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 90), rate=st.floats(0.0, 0.6),
       two_streams=st.booleans(), block=st.sampled_from([1024, 2048, 1 << 20]))
@settings(max_examples=int(os.environ.get("TA_FUZZ_EXAMPLES", 300)), deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
def test_frames_are_placed_exactly_where_json_loads_puts_them(tmp_path, seed, n, rate, two_streams, block):
    rng = random.Random(seed)
    frames = tone_frames(n, seed=seed % 4)
    rng.shuffle(frames) if rng.random() < 0.3 else None
    lines = []
    if rng.random() < 0.2:
        lines.append("\ufeff" + '{"event": "connected", "version": "1.0.0"}')
    for f in frames:
        sid = SID if not two_streams or rng.random() < 0.5 else "second-stream"
        mutate = rng.random() < rate
        line = write_value(media_pairs(f, rng, mutate, sid), rng, mutate).encode()
        if mutate and rng.random() < 0.3:
            line = byte_edit(line, rng)
        lines.append(line.decode("utf-8", "surrogateescape") if isinstance(line, bytes) else line)
    data = b"\n".join(l.encode("utf-8", "surrogateescape") for l in lines)
    if rng.random() < 0.8:
        data += b"\n"
    elif rng.random() < 0.5:
        data = data[: -rng.randint(1, 30)]  # cut off while writing
    path = tmp_path / f"f{seed}.jsonl"
    path.write_bytes(data)
    try:
        caps = read_captures(path, media_format=FMT, block_size=block)
    except ValueError as exc:  # NotACaptureError: the reference must find nothing either
        refs = read_reference(path, FMT)
        assert all(r["n_media"] == 0 and not r["events"] for r in refs), exc
        return
    refs = read_reference(path, FMT)
    assert [c.stream_id for c in caps] == [r["stream_id"] for r in refs]
    for cap, ref in zip(caps, refs):
        assert cap.report.bad_lines == ref["bad_lines"], (cap.report.bad_examples, ref)
        assert cap.report.events.get("media", 0) == ref["n_media"]
        assert np.array_equal(cap.recording.audio, ref["recording"].audio)
        assert cap.recording.reports == ref["recording"].reports


def test_a_php_escaped_capture_keeps_every_frame(tmp_path):
    frames = tone_frames(200, tracks=("inbound",))
    rng = random.Random(1)
    text = "".join(write_value(media_pairs(f, rng, False, SID), rng, False).replace("/", "\\/") + "\n" for f in frames)
    path = tmp_path / "php.jsonl"
    path.write_text(text)
    [cap] = read_captures(path, media_format=FMT)
    assert cap.report.events["media"] == 200 and cap.report.bad_lines == 0
    assert cap.recording.reports["inbound"].frames_received == 200 and cap.recording.inbound.size == 200 * 160
