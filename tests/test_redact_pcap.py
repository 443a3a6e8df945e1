"""Redacting packet captures (pcap): the file itself, frame for frame, with its calls' tones muted.

The captures are built packet by packet (telnyx_audio.packets.writer) from the DTMF test calls
of tests/dtmf_calls.py: two SIP calls in one file, RTP with real UDP checksums, SIP INFO keys.
The oracles are others' tools: multimon-ng hears every digit before and none after, tshark
reads the redacted file without a checksum or malformed-packet complaint.
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import dtmf_calls as dc
from telnyx_audio import read_captures, redact
from telnyx_audio.errors import RedactionError
from telnyx_audio.packets.writer import PcapWriter, ethernet, ip_packet, ipv4_fragments

ROOT = Path(__file__).resolve().parents[1]
T0 = 1_795_514_400_000_000_000
MS = 1_000_000
#: encoding -> (payload type, SDP rtpmap, RTP clock ticks per 20 ms)
FORMATS = {"PCMU": (0, "PCMU/8000", 160), "G722": (9, "G722/8000", 160), "OPUS": (111, "opus/48000/2", 960)}


def need_multimon():
    if not dc.have_multimon():
        pytest.skip("multimon-ng not installed: it is the independent DTMF detector (apt-get install multimon-ng)")


def need_tshark():
    if shutil.which("tshark") is None:
        pytest.skip("tshark not installed: it is the oracle for what the file holds (apt-get install tshark)")


@pytest.fixture(scope="module")
def call():
    return dc.make_call("heldout")


def _csum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF or 0xFFFF


def udp(src: str, sport: int, dst: str, dport: int, payload: bytes) -> bytes:
    """An IPv4 packet holding a UDP datagram with its checksum computed (RFC 768)."""
    import ipaddress

    n = 8 + len(payload)
    pseudo = ipaddress.ip_address(src).packed + ipaddress.ip_address(dst).packed + struct.pack("!BBH", 0, 17, n)
    head = struct.pack("!HHHH", sport, dport, n, 0)
    c = _csum(pseudo + head + payload)
    return ip_packet(src, dst, 17, struct.pack("!HHHH", sport, dport, n, c) + payload)


def sip(start: str, call_id: str, cseq: str, *, body: bytes = b"", ctype: str = "application/sdp") -> bytes:
    head = (f"{start}\r\nVia: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK-{cseq.split()[0]}{call_id[:4]}\r\n"
            f"From: <sip:alice@10.0.0.1>;tag=a1\r\nTo: <sip:bob@10.0.0.2>;tag=b1\r\nCall-ID: {call_id}\r\n"
            f"CSeq: {cseq}\r\nContact: <sip:alice@10.0.0.1>\r\nMax-Forwards: 70\r\n")
    if body:
        head += f"Content-Type: {ctype}\r\n"
    return (head + f"Content-Length: {len(body)}\r\n\r\n").encode() + body


def sdp(ip: str, port: int, encoding: str, formats: dict | None = None) -> bytes:
    pt, name, _ = (formats or FORMATS)[encoding]
    return (f"v=0\r\no=- 1 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\nm=audio {port} RTP/AVP {pt} 101\r\n"
            f"a=rtpmap:{pt} {name}\r\na=rtpmap:101 telephone-event/8000\r\na=ptime:20\r\na=sendrecv\r\n").encode()


def build_pcap(call, encoding: str, path: Path, *, calls: int = 2, fragment_at_s: float | None = None,
               formats: dict | None = None, per: list | None = None) -> dict:
    """Write ``calls`` SIP calls carrying ``call`` (each 1.5 s after the one before, interleaved)
    with real UDP checksums and a SIP INFO ``Signal=`` per key in the first call; returns
    where each frame lies in the file and what it is."""
    from telnyx_audio import rtp

    pt, _, step = (formats or FORMATS)[encoding]
    per = per if per is not None else dc.payloads(call, encoding)
    n = min(len(p) for p in per)
    a, b = "10.0.0.1", "10.0.0.2"
    packets: list[tuple[int, int, str, int]] = []  # (time, order, kind, ip bytes)
    for c in range(calls):
        cid, t0, ap, bp = f"redact-{c}@test", T0 + c * 1500 * MS, 40000 + 2 * c, 50000 + 2 * c
        msgs = [(0, a, b, sip("INVITE sip:bob@10.0.0.2 SIP/2.0", cid, "1 INVITE", body=sdp(a, ap, encoding, formats))),
                (40, b, a, sip("SIP/2.0 200 OK", cid, "1 INVITE", body=sdp(b, bp, encoding, formats))),
                (50, a, b, sip("ACK sip:bob@10.0.0.2 SIP/2.0", cid, "1 ACK"))]
        if c == 0:
            for k, p in enumerate(call.presses):
                body = f"Signal={p.digit}\r\nDuration={int(p.duration_s * 1000)}\r\n".encode()
                msgs.append((int((100 + p.start_s * 1000)), a, b, sip("INFO sip:bob@10.0.0.2 SIP/2.0", cid,
                                                                      f"{k + 2} INFO", body=body,
                                                                      ctype="application/dtmf-relay")))
        end = 100 + n * 20 + 50
        msgs += [(end, a, b, sip("BYE sip:bob@10.0.0.2 SIP/2.0", cid, "99 BYE")),
                 (end + 5, b, a, sip("SIP/2.0 200 OK", cid, "99 BYE"))]
        for ms, s, d, m in msgs:
            packets.append((t0 + ms * MS, 0, "sip", udp(s, 5060, d, 5060, m)))
        for t, (s, d, sp, dp) in enumerate(((a, b, ap, bp), (b, a, bp, ap))):
            for i in range(n):
                pkt = rtp.build_packet(per[t][i], payload_type=pt, sequence_number=(1000 * (t + 1) + i) & 0xFFFF,
                                       timestamp=5000 + step * i, ssrc=0x10000 * (c + 1) + t, marker=i == 0)
                when = t0 + (100 + 20 * i) * MS + t * 3 * MS
                ip = udp(s, sp, d, dp, pkt)
                if fragment_at_s is not None and c == 0 and t == 0 and i == int(fragment_at_s * 50):
                    for k, piece in enumerate(ipv4_fragments(ip, 120)):
                        packets.append((when + k, 1, "fragment", piece))
                else:
                    packets.append((when, 1, "rtp", ip))
    packets.sort(key=lambda p: (p[0], p[1]))
    frames = []
    with PcapWriter(path, nanosecond=True) as w:
        at = 24
        for when, _, kind, ip in packets:
            frame = ethernet(ip)
            w.frame(when, frame)
            frames.append({"start": at + 16, "length": len(frame), "kind": kind})
            at += 16 + len(frame)
    return {"frames": frames}


def changeable(layout: dict) -> np.ndarray:
    """Byte places of the file that redaction may change: RTP byte 0 (its P bit) and payload,
    SIP INFO bodies, and the UDP checksums of those frames (Ethernet 14 + IPv4 20 + UDP 8)."""
    spots = []
    for f in layout["frames"]:
        udp_at = f["start"] + 14 + 20
        if f["kind"] == "rtp":
            spots += [np.arange(udp_at + 6, udp_at + 8), np.array([udp_at + 8]),
                      np.arange(udp_at + 8 + 12, f["start"] + f["length"])]
        elif f["kind"] == "sip":
            spots += [np.arange(udp_at + 6, udp_at + 8), np.arange(udp_at + 8, f["start"] + f["length"])]
    return np.concatenate(spots)


def heard(recording) -> list[str]:
    return [dc.multimon(x, recording.sample_rate) for x in (recording.inbound, recording.outbound)]


@pytest.mark.parametrize("encoding", ("PCMU", "G722", "OPUS"))
def test_multimon_ng_hears_every_digit_in_every_call_before_and_none_after(call, tmp_path, encoding):
    need_multimon()
    src = tmp_path / "calls.pcap"
    build_pcap(call, encoding, src)
    before = read_captures(src)
    assert len(before) == 2
    for cap in before:
        assert set(call.digits) <= set(heard(cap.recording)[0])
    result = redact(src, out=tmp_path / "out")
    assert result.kind == "pcap" and result.capture.name == "calls.pcap"
    assert result.capture.stat().st_size == src.stat().st_size
    after = read_captures(result.capture)
    assert [c.stream_id for c in after] == [c.stream_id for c in before]
    for cap, old in zip(after, before):
        assert heard(cap.recording) == ["", ""]
        assert cap.recording.audio.shape == old.recording.audio.shape
    m = json.loads(result.manifest.read_text())
    assert m["input"]["kind"] == "pcap" and len(m["streams"]) == 2
    for entry in m["streams"]:
        folder = result.folder / entry["folder"]
        for name in ("inbound.wav", "outbound.wav"):
            import soundfile

            x, sr = soundfile.read(folder / name, dtype="int16")
            assert dc.multimon(x, sr) == ""
    assert m["streams"][0]["sip_info_keys_masked"] == sum(p.digit != "*" for p in call.presses)  # "*" stays


def test_audio_outside_the_muted_spans_is_bit_identical_and_only_payload_bytes_change(call, tmp_path):
    src = tmp_path / "calls.pcap"
    layout = build_pcap(call, "PCMU", src)
    result = redact(src, out=tmp_path / "out")
    a = np.frombuffer(src.read_bytes(), np.uint8)
    b = np.frombuffer(result.capture.read_bytes(), np.uint8)
    assert a.size == b.size
    diff = np.flatnonzero(a != b)
    assert diff.size > 0 and np.isin(diff, changeable(layout)).all()
    before, after = read_captures(src), read_captures(result.capture)
    for old, new, entry in zip(before, after, result.streams):
        rate = new.recording.sample_rate
        mask = np.zeros(old.recording.audio.shape, bool)
        for r in entry["muted_applied"]:
            t = ("inbound", "outbound").index(r["track"])
            mask[t, int(round(r["start_s"] * rate)) : int(round(r["end_s"] * rate))] = True
        assert mask.any() and np.array_equal(old.recording.audio[~mask], new.recording.audio[~mask])


def test_sip_info_keys_are_masked_and_the_messages_keep_their_length(call, tmp_path):
    src = tmp_path / "calls.pcap"
    build_pcap(call, "PCMU", src)
    result = redact(src, out=tmp_path / "out")
    data = result.capture.read_bytes()
    assert data.count(b"Signal=*\r\n") == len(call.presses)
    assert not any(f"Signal={d}\r\n".encode() in data for d in set(call.digits) - {"*"})


def test_tshark_reads_the_redacted_capture_without_a_checksum_or_malformed_complaint(call, tmp_path):
    need_tshark()
    src = tmp_path / "calls.pcap"
    build_pcap(call, "OPUS", src)  # Opus: shorter silence packets, padded to size
    result = redact(src, out=tmp_path / "out")

    def check(path: Path) -> tuple[int, str]:
        out = subprocess.run(["tshark", "-r", str(path), "-o", "udp.check_checksum:TRUE", "-d", "udp.port==40000,rtp",
                              "-d", "udp.port==50000,rtp", "-T", "fields", "-e", "udp.checksum.status",
                              "-Y", "udp.checksum.status == 0 || _ws.malformed || _ws.expert.severity >= error"],
                             capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr
        frames = subprocess.run(["tshark", "-r", str(path), "-T", "fields", "-e", "frame.number"],
                                capture_output=True, text=True, timeout=120).stdout.split()
        return len(frames), out.stdout.strip()

    n_before, bad_before = check(src)
    n_after, bad_after = check(result.capture)
    assert bad_before == "" and bad_after == "" and n_after == n_before
    # the oracle can fail: a wrong checksum is flagged
    broken = tmp_path / "broken.pcap"
    data = bytearray(result.capture.read_bytes())
    first = 24 + 16 + 14 + 20 + 6  # the first frame's UDP checksum
    data[first] ^= 0x55
    broken.write_bytes(bytes(data))
    assert check(broken)[1] != ""


@pytest.mark.parametrize("encoding", ("PCMU", "G722", "OPUS"))
def test_redacting_a_redacted_capture_changes_nothing(call, tmp_path, encoding):
    src = tmp_path / "calls.pcap"
    build_pcap(call, encoding, src)
    once = redact(src, out=tmp_path / "once")
    twice = redact(once.capture, out=tmp_path / "twice")
    assert twice.capture.read_bytes() == once.capture.read_bytes()
    assert (tmp_path / "twice" / "redaction.json").exists()


def test_rfc_4733_events_of_a_sipp_call_are_masked(tmp_path):
    src = Path("/usr/share/sip-tester/dtmf_2833_5.pcap")
    if not src.exists():
        pytest.skip("sip-tester's pcaps not installed (apt-get install sip-tester)")
    before = read_captures(src)[0]
    assert [e.digit for e in before.events if type(e).__name__ == "Dtmf"] == ["5"]
    result = redact(src, out=tmp_path / "out")
    after = read_captures(result.capture)[0]
    assert [e.digit for e in after.events if type(e).__name__ == "Dtmf"] == ["*"]
    assert result.streams[0]["telephone_event_packets_masked"] > 0


def test_a_fragmented_datagram_in_a_muted_span_fails_closed(call, tmp_path):
    src = tmp_path / "calls.pcap"
    build_pcap(call, "PCMU", src, calls=1, fragment_at_s=3.02)  # inside the first press
    with pytest.raises(RedactionError, match="does not lie whole in one frame"):
        redact(src, out=tmp_path / "out")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["calls.pcap"]


def test_a_gzip_capture_gives_a_gzip_copy_holding_the_same_redaction(call, tmp_path):
    import gzip

    src = tmp_path / "calls.pcap"
    build_pcap(call, "PCMU", src, calls=1)
    gz = tmp_path / "calls.pcap.gz"
    gz.write_bytes(gzip.compress(src.read_bytes()))
    plain = redact(src, out=tmp_path / "plain")
    packed = redact(gz, out=tmp_path / "packed")
    assert packed.capture.name == "calls.pcap.gz"
    assert gzip.decompress(packed.capture.read_bytes()) == plain.capture.read_bytes()


def cli(*args):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-c", "import sys; from telnyx_audio.cli import main; sys.exit(main())",
                           *map(str, args)], capture_output=True, text=True, timeout=300, env=env, cwd=ROOT)


def test_the_redact_command_redacts_a_pcap_and_refuses_bad_spans_with_exit_2(call, tmp_path):
    src = tmp_path / "x.pcap"
    build_pcap(call, "PCMU", src)
    out = cli("redact", src, "--out", tmp_path / "out", "--dtmf")
    assert out.returncode == 0, out.stderr
    assert "Traceback" not in out.stderr and "redact-0@test" in out.stdout
    assert (tmp_path / "out" / "x" / "x.pcap").stat().st_size == src.stat().st_size
    for span, words in (("9-3", "ends before it starts"), ("20-21", "after the end of")):
        bad = cli("redact", src, "--out", tmp_path / "bad", "--span", span)
        assert bad.returncode == 2 and words in bad.stderr and "Traceback" not in bad.stderr, bad.stderr
        assert not (tmp_path / "bad").exists()


@pytest.mark.parametrize("name", ("two_interfaces.pcapng", "big_endian.pcapng", "vlan.pcap"))
def test_a_pcapng_or_tagged_capture_keeps_every_byte_but_the_muted_payloads(tmp_path, name):
    need_tshark()
    src = ROOT / "tests" / "vectors" / "pcap" / name
    result = redact(src, dtmf=False, spans=["0.1-0.2"], out=tmp_path / "out")
    a, b = src.read_bytes(), result.capture.read_bytes()
    assert len(a) == len(b) and a != b
    assert sum(result.streams[0]["frames_replaced"].values()) > 0
    fields = ["-T", "fields", "-e", "frame.time_epoch", "-e", "frame.len", "-e", "ip.src", "-e", "udp.length"]
    same = [subprocess.run(["tshark", "-r", str(p), *fields], capture_output=True, text=True, timeout=120).stdout
            for p in (src, result.capture)]
    assert same[0] == same[1] and same[0]
    again = redact(result.capture, dtmf=False, spans=["0.1-0.2"], out=tmp_path / "again")
    assert again.capture.read_bytes() == b


def test_a_call_in_a_codec_nothing_here_decodes_fails_closed_and_nothing_is_written(call, tmp_path):
    src = tmp_path / "calls.pcap"
    # the bytes do not matter: the SDP says payload type 97 is Speex
    build_pcap(call, "SPEEX", src, calls=1, formats={"SPEEX": (97, "speex/8000", 160)}, per=dc.payloads(call, "PCMU"))
    with pytest.raises(RedactionError, match="none of its RTP packets can be decoded as audio.*speex"):
        redact(src, out=tmp_path / "out")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["calls.pcap"]
