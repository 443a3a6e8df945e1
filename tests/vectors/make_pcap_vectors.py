"""Write tests/vectors/pcap/: packet captures with known contents for the packet-capture source.

Two kinds:

- **Recorded** (``sipp_*``): real SIPp calls over loopback recorded by tcpdump / dumpcap,
  made only when run with ``--record`` (needs ``sipp``, ``tcpdump``, ``dumpcap``; root or
  capture rights on ``lo``): ``sipp_udp_call.pcap.gz`` (SIPp's ``uac_pcap`` scenario: its
  real PCMA call in 30 ms packets and an RFC 2833 digit, echoed back by ``uas -rtp_echo``;
  gzip-compressed by this script) and ``sipp_tcp_call.pcapng.gz`` (the same call with SIP
  over TCP, recorded by dumpcap as pcapng).
- **Built** here, packet by packet with :mod:`telnyx_audio.packets.writer` and a small
  pcapng writer below, for what a capture from the field may hold but SIPp does not make:
  every link type, VLAN tags, IPv6, IPv4 fragments, SIP over TCP in pieces, re-INVITEs,
  RTCP, CANCEL and failures, forks without SIP, and broken files. tshark is the oracle the
  tests hold them to; these builders only make the bytes.

Run from the repository root (the built vectors are deterministic):

    .venv/bin/python tests/vectors/make_pcap_vectors.py            # built vectors
    .venv/bin/python tests/vectors/make_pcap_vectors.py --record   # and the SIPp recordings
"""

from __future__ import annotations

import gzip
import os
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from telnyx_audio import codecs, rtp  # noqa: E402
from telnyx_audio.packets.writer import (  # noqa: E402
    PcapWriter,
    ethernet,
    ipv4_fragments,
    tcp_packet,
    udp_packet,
)

OUT = Path(__file__).resolve().parent / "pcap"
T0 = 1_700_000_000_000_000_000
CALLER, CALLEE = "10.0.0.1", "10.0.0.2"
MS = 1_000_000


# -- SIP and SDP text ------------------------------------------------------------------
def sdp(ip: str, port: int, formats: str = "0 101", extra: str = "", ptime: int = 20) -> bytes:
    ver = "IP6" if ":" in ip else "IP4"
    maps = {"0": "a=rtpmap:0 PCMU/8000\r\n", "8": "a=rtpmap:8 PCMA/8000\r\n",
            "101": "a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\n",
            "96": "a=rtpmap:96 AMR-WB/16000\r\na=fmtp:96 octet-align=1; mode-set=2\r\n"}
    lines = "".join(maps[f] for f in formats.split() if f in maps)
    return (f"v=0\r\no=- 1 1 IN {ver} {ip}\r\ns=-\r\nc=IN {ver} {ip}\r\nt=0 0\r\n"
            f"m=audio {port} RTP/AVP {formats}\r\n{lines}a=ptime:{ptime}\r\n{extra}a=sendrecv\r\n").encode()


def sip(start: str, call_id: str, cseq: str, *, body: bytes = b"", to_tag: bool = True, a: str = CALLER,
        b: str = CALLEE, extra: str = "") -> bytes:
    head = (f"{start}\r\nVia: SIP/2.0/UDP {a}:5060;branch=z9hG4bK-{cseq.split()[0]}\r\n"
            f"From: \"Alice\" <sip:alice@{a}>;tag=alice1\r\n"
            f"To: <sip:bob@{b}>{';tag=bob1' if to_tag else ''}\r\nCall-ID: {call_id}\r\nCSeq: {cseq}\r\n"
            f"Contact: <sip:alice@{a}>\r\nMax-Forwards: 70\r\n{extra}")
    if body:
        head += "Content-Type: application/sdp\r\n"
    return (head + f"Content-Length: {len(body)}\r\n\r\n").encode() + body


def tone(n_samples: int, freq: float, encoding: str = "PCMU", rate: int = 8000) -> bytes:
    t = np.arange(n_samples) / rate
    pcm = (8000 * np.sin(2 * np.pi * freq * t)).astype(np.int16)
    return codecs.encode(pcm, encoding)


def rtp_stream(src: str, sport: int, dst: str, dport: int, n: int, start_ns: int, *, pt: int = 0, ssrc: int = 0x1111,
               seq0: int = 100, ts0: int = 1000, freq: float = 440.0, encoding: str = "PCMU",
               jitter_ns: int = 0, seed: int = 0) -> list[tuple[int, bytes]]:
    audio = tone(160 * n, freq, encoding)
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        pkt = rtp.build_packet(audio[160 * i : 160 * (i + 1)], payload_type=pt, sequence_number=seq0 + i,
                               timestamp=ts0 + 160 * i, ssrc=ssrc, marker=i == 0)
        jit = int(rng.integers(0, jitter_ns)) if jitter_ns else 0
        out.append((start_ns + i * 20 * MS + jit, udp_packet(src, sport, dst, dport, pkt)))
    return out


def basic_call(*, a: str = CALLER, b: str = CALLEE, call_id: str = "call-1@test", n: int = 20, start: int = T0,
               a_port: int = 40000, b_port: int = 50000, formats: str = "0 101") -> list[tuple[int, bytes]]:
    """A whole call: INVITE/200/ACK with SDP, ``n`` PCMU packets each way, BYE from the callee."""
    p = [
        (start, udp_packet(a, 5060, b, 5060, sip(f"INVITE sip:bob@{b} SIP/2.0", call_id, "1 INVITE",
                                                 body=sdp(a, a_port, formats), to_tag=False, a=a, b=b))),
        (start + 10 * MS, udp_packet(b, 5060, a, 5060, sip("SIP/2.0 180 Ringing", call_id, "1 INVITE", a=a, b=b))),
        (start + 50 * MS, udp_packet(b, 5060, a, 5060, sip("SIP/2.0 200 OK", call_id, "1 INVITE",
                                                           body=sdp(b, b_port, formats), a=a, b=b))),
        (start + 60 * MS, udp_packet(a, 5060, b, 5060, sip(f"ACK sip:bob@{b} SIP/2.0", call_id, "1 ACK", a=a, b=b))),
    ]
    p += rtp_stream(a, a_port, b, b_port, n, start + 100 * MS, ssrc=0xA0A0A0A0, freq=440, seed=1, jitter_ns=900_000)
    p += rtp_stream(b, b_port, a, a_port, n, start + 105 * MS, ssrc=0xB0B0B0B0, freq=660, seq0=60000, seed=2,
                    jitter_ns=900_000)
    end = start + 100 * MS + n * 20 * MS + 30 * MS
    bye = sip(f"BYE sip:alice@{a} SIP/2.0", call_id, "1 BYE", a=a, b=b).replace(
        b"From: \"Alice\" <sip:alice@" + a.encode() + b">;tag=alice1", b"From: <sip:bob@" + b.encode() + b">;tag=bob1"
    ).replace(b"To: <sip:bob@" + b.encode() + b">;tag=bob1", b"To: \"Alice\" <sip:alice@" + a.encode() + b">;tag=alice1")
    p += [(end, udp_packet(b, 5060, a, 5060, bye)),
          (end + 5 * MS, udp_packet(a, 5060, b, 5060, sip("SIP/2.0 200 OK", call_id, "1 BYE", a=a, b=b)))]
    return sorted(p, key=lambda x: x[0])


# -- link layers -----------------------------------------------------------------------
def sll(ip: bytes) -> bytes:
    proto = 0x0800 if ip[0] >> 4 == 4 else 0x86DD
    return struct.pack("!HHH8sH", 0, 1, 6, bytes.fromhex("020000000001") + b"\0\0", proto) + ip


def sll2(ip: bytes) -> bytes:
    proto = 0x0800 if ip[0] >> 4 == 4 else 0x86DD
    return struct.pack("!HHIHBBB8s", proto, 0, 1, 1, 0, 6, 0, bytes.fromhex("020000000001") + b"\0\0")[:20] + ip


def null_le(ip: bytes) -> bytes:
    return struct.pack("<I", 2 if ip[0] >> 4 == 4 else 30) + ip


def loop_be(ip: bytes) -> bytes:
    return struct.pack(">I", 2 if ip[0] >> 4 == 4 else 24) + ip


def write_pcap(path: Path, packets: list[tuple[int, bytes]], *, linktype: int = 1, frame=ethernet, **kw) -> None:
    with PcapWriter(path, linktype=linktype, **kw) as w:
        for ts, ip in packets:
            w.frame(ts, frame(ip))


# -- pcapng ----------------------------------------------------------------------------
def _block(kind: int, body: bytes, order: str = "<") -> bytes:
    body += b"\0" * (-len(body) % 4)
    n = len(body) + 12
    return struct.pack(order + "II", kind, n) + body + struct.pack(order + "I", n)


def pcapng(path: Path, interfaces: list[tuple[int, int | None]], packets: list[tuple[int, int, bytes]], *,
           simple: list[bytes] = (), order: str = "<") -> None:
    """Interfaces: (linktype, tsresol byte or None); packets: (iface, ts_ns, frame) as EPBs;
    ``simple``: frames written as SPBs after the first EPB."""
    out = _block(0x0A0D0D0A, struct.pack(order + "IHHq", 0x1A2B3C4D, 1, 0, -1), order)
    res = []
    for linktype, tsresol in interfaces:
        opts = b""
        if tsresol is not None:
            opts = struct.pack(order + "HH", 9, 1) + bytes([tsresol]) + b"\0\0\0" + struct.pack(order + "HH", 0, 0)
        out += _block(1, struct.pack(order + "HHI", linktype, 0, 262144) + opts, order)
        res.append(tsresol)
    for k, (iface, ts_ns, frame) in enumerate(packets):
        r = res[iface]
        if r is None or r == 6:
            ticks = ts_ns // 1000
        elif r == 9:
            ticks = ts_ns
        elif r & 0x80:
            ticks = ts_ns * (1 << (r & 0x7F)) // 1_000_000_000
        else:
            ticks = ts_ns // 10 ** (9 - r)
        out += _block(6, struct.pack(order + "IIIII", iface, ticks >> 32, ticks & 0xFFFFFFFF, len(frame), len(frame))
                      + frame, order)
        if k == 0:
            for s in simple:
                out += _block(3, struct.pack(order + "I", len(s)) + s, order)
    path.write_bytes(out)


# -- the built vectors -----------------------------------------------------------------
def build_linktypes() -> None:
    call = basic_call()
    write_pcap(OUT / "eth.pcap", call)
    write_pcap(OUT / "vlan.pcap", call, frame=lambda ip: ethernet(ip, vlans=(100,)))
    write_pcap(OUT / "qinq.pcap", call, frame=lambda ip: ethernet(ip, vlans=(10, 20)))
    write_pcap(OUT / "sll.pcap", call, linktype=113, frame=sll)
    write_pcap(OUT / "sll2.pcap", call, linktype=276, frame=sll2)
    write_pcap(OUT / "raw.pcap", call, linktype=101, frame=lambda ip: ip)
    write_pcap(OUT / "null.pcap", call, linktype=0, frame=null_le)
    write_pcap(OUT / "loop.pcap", call, linktype=108, frame=loop_be)
    write_pcap(OUT / "nsec_be.pcap", call, nanosecond=True, byteorder=">")
    write_pcap(OUT / "ipv6.pcap", basic_call(a="2001:db8::1", b="2001:db8::2", call_id="v6@test"))
    with gzip.GzipFile(OUT / "eth.pcap.gz", "wb", mtime=0) as g:
        g.write((OUT / "eth.pcap").read_bytes())


def build_pcapng() -> None:
    call = basic_call(call_id="ng@test")
    packets = []
    for ts, ip in call:
        # Caller's packets on an Ethernet interface (microseconds), callee's on a raw one
        # (nanoseconds): two interfaces, two resolutions.
        from_caller = ip[12:16] == socket.inet_aton(CALLER)
        packets.append((0, ts, ethernet(ip)) if from_caller else (1, ts + 123, ip))
    stray = udp_packet("10.9.9.9", 9, "10.9.9.8", 9, b"simple block")
    pcapng(OUT / "two_interfaces.pcapng", [(1, None), (101, 9)], packets, simple=[ethernet(stray)])
    pcapng(OUT / "big_endian.pcapng", [(1, 0x80 | 20)], [(0, ts, ethernet(ip)) for ts, ip in call], order=">")


def build_fragments() -> None:
    big = sdp(CALLER, 40000, "0 101", extra="".join(f"a=x-padding-{i}:{'p' * 60}\r\n" for i in range(30)))
    call = basic_call(call_id="frag@test")
    invite = udp_packet(CALLER, 5060, CALLEE, 5060, sip(f"INVITE sip:bob@{CALLEE} SIP/2.0", "frag@test", "1 INVITE",
                                                        body=big, to_tag=False), ident=0x4242)
    frags = ipv4_fragments(invite, 576)
    out = []
    for ts, ip in call:
        if b"INVITE sip:" in ip:
            # Fragments out of order: the last first.
            out += [(ts + k, f) for k, f in enumerate(reversed(frags))]
        else:
            out.append((ts, ip))
    # A datagram whose fragments overlap (RFC 5722: dropped) after the call.
    bad = udp_packet(CALLER, 7000, CALLEE, 7002, b"o" * 400, ident=0x5151)
    f = ipv4_fragments(bad, 148)  # 128 bytes of data a fragment
    overlap = bytearray(f[1])
    struct.pack_into("!H", overlap, 6, 0x2000 | 8)  # claims to start at byte 64, inside the first
    out += [(out[-1][0] + MS, f[0]), (out[-1][0] + 2 * MS, bytes(overlap)), (out[-1][0] + 3 * MS, f[2])]
    write_pcap(OUT / "fragments.pcap", out)


def build_sip_tcp() -> None:
    call = basic_call(call_id="tcp@test")
    out: list[tuple[int, bytes]] = []
    seq = {CALLER: 1000, CALLEE: 9000}
    for ts, ip in call:
        if b"SIP/2.0" not in ip[28:60] and b"SIP/2.0\r\n" not in ip[28:120]:
            out.append((ts, ip))
            continue
        src = socket.inet_ntoa(ip[12:16])
        dst = socket.inet_ntoa(ip[16:20])
        msg = ip[28:]
        s = seq[src]
        if msg.startswith(b"INVITE"):
            a, b, c = msg[:100], msg[100:300], msg[300:]
            out += [(ts, tcp_packet(src, 5060, dst, 5060, a, seq=s)),
                    (ts + 1, tcp_packet(src, 5060, dst, 5060, c, seq=s + 300)),  # early: out of order
                    (ts + 2, tcp_packet(src, 5060, dst, 5060, b, seq=s + 100)),
                    (ts + 3, tcp_packet(src, 5060, dst, 5060, b[:50], seq=s + 100))]  # a retransmission
        elif msg.startswith(b"SIP/2.0 200 OK") and b"INVITE" in msg:
            out.append((ts, tcp_packet(src, 5060, dst, 5060, msg + b"\r\n\r\n", seq=s)))  # with a keep-alive
            msg = msg + b"\r\n\r\n"
        else:
            out.append((ts, tcp_packet(src, 5060, dst, 5060, msg, seq=s)))
        seq[src] = s + len(msg)
    write_pcap(OUT / "sip_tcp.pcap", sorted(out, key=lambda x: x[0]))


def build_reinvite() -> None:
    cid = "reinvite@test"
    p = [(T0, udp_packet(CALLER, 5060, CALLEE, 5060, sip(f"INVITE sip:bob@{CALLEE} SIP/2.0", cid, "1 INVITE",
                                                         body=sdp(CALLER, 40000, "0 8 101"), to_tag=False))),
         (T0 + 50 * MS, udp_packet(CALLEE, 5060, CALLER, 5060, sip("SIP/2.0 200 OK", cid, "1 INVITE",
                                                                    body=sdp(CALLEE, 50000, "0 101")))),
         (T0 + 60 * MS, udp_packet(CALLER, 5060, CALLEE, 5060, sip(f"ACK sip:bob@{CALLEE} SIP/2.0", cid, "1 ACK")))]
    p += rtp_stream(CALLER, 40000, CALLEE, 50000, 25, T0 + 100 * MS, ssrc=0xA1, seed=3)
    p += rtp_stream(CALLEE, 50000, CALLER, 40000, 25, T0 + 100 * MS, ssrc=0xB1, freq=660, seed=4)
    # RTCP on port + 1: an SR from the callee, an RR from the caller answering it 30 ms later.
    sr = struct.pack("!BBHIIIIII", 0x80, 200, 6, 0xB1, 0x12345678, 0x9ABC0000, 4000, 25, 4000)
    rr = struct.pack("!BBHI", 0x81, 201, 7, 0xA1) + struct.pack("!IIIIII", 0xB1, (5 << 24) | 2, 60024, 37,
                                                              0x56789ABC, 655)  # DLSR 10 ms
    p += [(T0 + 600 * MS, udp_packet(CALLEE, 50001, CALLER, 40001, sr)),
          (T0 + 640 * MS, udp_packet(CALLER, 40001, CALLEE, 50001, rr))]
    # The callee moves its port and switches to PCMA (a re-INVITE from the callee).
    t1 = T0 + 700 * MS
    reinv = sip(f"INVITE sip:alice@{CALLER} SIP/2.0", cid, "2 INVITE", body=sdp(CALLEE, 52000, "8 101"))
    reinv = reinv.replace(b"From: \"Alice\" <sip:alice@10.0.0.1>;tag=alice1", b"From: <sip:bob@10.0.0.2>;tag=bob1")
    reinv = reinv.replace(b"To: <sip:bob@10.0.0.2>;tag=bob1", b"To: \"Alice\" <sip:alice@10.0.0.1>;tag=alice1")
    p += [(t1, udp_packet(CALLEE, 5060, CALLER, 5060, reinv)),
          (t1 + 20 * MS, udp_packet(CALLER, 5060, CALLEE, 5060, sip("SIP/2.0 200 OK", cid, "2 INVITE",
                                                                    body=sdp(CALLER, 40000, "8 101")).replace(
              b"From: \"Alice\" <sip:alice@10.0.0.1>;tag=alice1", b"From: <sip:bob@10.0.0.2>;tag=bob1").replace(
              b"To: <sip:bob@10.0.0.2>;tag=bob1", b"To: \"Alice\" <sip:alice@10.0.0.1>;tag=alice1")))]
    p += rtp_stream(CALLER, 40000, CALLEE, 52000, 25, t1 + 100 * MS, pt=8, encoding="PCMA", ssrc=0xA1, seq0=125,
                    ts0=1000 + 160 * 25 + 800, seed=5)
    p += rtp_stream(CALLEE, 52000, CALLER, 40000, 25, t1 + 100 * MS, pt=8, encoding="PCMA", ssrc=0xB2, freq=660,
                    seed=6)
    end = t1 + 700 * MS
    p += [(end, udp_packet(CALLER, 5060, CALLEE, 5060, sip(f"BYE sip:bob@{CALLEE} SIP/2.0", cid, "3 BYE"))),
          (end + 5 * MS, udp_packet(CALLEE, 5060, CALLER, 5060, sip("SIP/2.0 200 OK", cid, "3 BYE")))]
    write_pcap(OUT / "reinvite.pcap", sorted(p, key=lambda x: x[0]))


def build_failures() -> None:
    p = []
    for k, (cid, final) in enumerate((("cancel@test", "cancel"), ("busy@test", "486 Busy Here"))):
        t = T0 + k * 1000 * MS
        p += [(t, udp_packet(CALLER, 5060, CALLEE, 5060, sip(f"INVITE sip:bob@{CALLEE} SIP/2.0", cid, "1 INVITE",
                                                             body=sdp(CALLER, 40000 + 2 * k), to_tag=False))),
              (t + 10 * MS, udp_packet(CALLEE, 5060, CALLER, 5060, sip("SIP/2.0 180 Ringing", cid, "1 INVITE")))]
        if final == "cancel":
            p += [(t + 300 * MS, udp_packet(CALLER, 5060, CALLEE, 5060, sip(f"CANCEL sip:bob@{CALLEE} SIP/2.0", cid,
                                                                             "1 CANCEL", to_tag=False))),
                  (t + 310 * MS, udp_packet(CALLEE, 5060, CALLER, 5060, sip("SIP/2.0 200 OK", cid, "1 CANCEL"))),
                  (t + 320 * MS, udp_packet(CALLEE, 5060, CALLER, 5060, sip("SIP/2.0 487 Request Terminated", cid,
                                                                             "1 INVITE")))]
        else:
            p += [(t + 300 * MS, udp_packet(CALLEE, 5060, CALLER, 5060, sip(f"SIP/2.0 {final}", cid, "1 INVITE")))]
        p += [(t + 330 * MS, udp_packet(CALLER, 5060, CALLEE, 5060, sip(f"ACK sip:bob@{CALLEE} SIP/2.0", cid,
                                                                         "1 ACK")))]
    write_pcap(OUT / "failures.pcap", p)


def build_forks() -> None:
    """A tcpdump at a fork receiver: Telnyx sends rx to port 40000 and tx to 40002; with DNS,
    NTP and RTCP around it, none of which is a call."""
    telnyx, me = "192.0.2.10", "198.51.100.7"
    p = rtp_stream(telnyx, 31000, me, 40000, 30, T0, ssrc=0xCAFE0001, freq=440, seed=7, jitter_ns=2 * MS)
    p += rtp_stream(telnyx, 31002, me, 40002, 30, T0 + 7 * MS, ssrc=0xCAFE0002, freq=880, seed=8, jitter_ns=2 * MS)
    dns = bytes.fromhex("abcd81800001000100000000") + b"\x07example\x03com\x00\x00\x01\x00\x01"
    for k in range(10):  # DNS answers that start like RTP version 2 (0xab >> 6 == 2)
        p.append((T0 + k * 50 * MS + 3, udp_packet("192.0.2.53", 53, me, 33333, dns)))
    ntp = bytes([0x24, 2, 6, 0xE9]) + bytes(44)
    p += [(T0 + k * 100 * MS + 5, udp_packet("192.0.2.123", 123, me, 123, ntp)) for k in range(5)]
    rr = struct.pack("!BBHI", 0x81, 201, 7, 0x99) + struct.pack("!IIIIII", 0xCAFE0001, 0, 130, 12, 0, 0)
    p.append((T0 + 500 * MS, udp_packet(me, 40001, telnyx, 31001, rr)))
    write_pcap(OUT / "fork_tcpdump.pcap", sorted(p, key=lambda x: x[0]))
    # Both directions of one 5-tuple and no SIP: one call of two tracks.
    a, b = "203.0.113.1", "203.0.113.2"
    q = rtp_stream(a, 20000, b, 30000, 30, T0, ssrc=1, seed=9) + rtp_stream(b, 30000, a, 20000, 30, T0 + 3 * MS,
                                                                               ssrc=2, freq=660, seed=10)
    write_pcap(OUT / "two_way_no_sip.pcap", sorted(q, key=lambda x: x[0]))


def build_impaired() -> None:
    """RTP without SIP whose sequence numbers wrap, with a loss, a duplicate, a reordered pair,
    a marker mid-stream, a comfort-noise packet and a timestamp that runs back: Wireshark's
    statistics on every rule."""
    a, b = "203.0.113.5", "203.0.113.6"
    base = rtp_stream(a, 21000, b, 31000, 60, T0, ssrc=0x5EED, seq0=65520, ts0=4294960000, seed=14,
                      jitter_ns=3 * MS)
    p = list(base)
    del p[10]  # lost
    p.insert(20, (p[19][0] + 100_000, p[19][1]))  # duplicated
    p[30], p[31] = (p[30][0], p[31][1]), (p[31][0], p[30][1])  # reordered
    ts, ip = p[40]
    b1 = bytearray(ip)
    b1[28 + 1] |= 0x80  # marker
    p[40] = (ts, bytes(b1))
    ts, ip = p[45]
    cn = bytearray(ip[:28 + 12]) + b"\x40"
    cn[28 + 1] = 13
    struct.pack_into("!H", cn, 2, len(cn))
    struct.pack_into("!H", cn, 24, len(cn) - 20)
    p[45] = (ts, bytes(cn))
    ts, ip = p[50]
    back = bytearray(ip)
    struct.pack_into("!I", back, 28 + 4, (struct.unpack_from("!I", back, 28 + 4)[0] - 4000) & 0xFFFFFFFF)
    p[50] = (ts, bytes(back))
    write_pcap(OUT / "impaired.pcap", p)


def build_bad() -> None:
    call = basic_call(call_id="bad@test")
    write_pcap(OUT / "eth.tmp", call)
    whole = (OUT / "eth.tmp").read_bytes()
    (OUT / "eth.tmp").unlink()
    (OUT / "truncated.pcap").write_bytes(whole[: len(whole) - 37])  # the last record torn
    (OUT / "garbage.pcap").write_bytes(os.urandom(0) + bytes(np.random.default_rng(11).integers(0, 256, 3000,
                                                                                                 dtype=np.uint8)))
    # A valid header, some records, then garbage where the next record header should be.
    at = 24
    for _ in range(8):  # eight whole records, then a record header of garbage
        at += 16 + struct.unpack_from("<I", whole, at + 8)[0]
    (OUT / "garbage_after.pcap").write_bytes(whole[:at] + b"\xff" * 64 + whole[at:])
    # pcapng: a block whose trailing length disagrees with its leading one.
    pcapng(OUT / "bad_block.pcapng", [(1, None)], [(0, ts, ethernet(ip)) for ts, ip in call])
    ng = bytearray((OUT / "bad_block.pcapng").read_bytes())
    # Find the 10th EPB and break its trailing length.
    at, seen = 0, 0
    while at < len(ng):
        kind, n = struct.unpack_from("<II", ng, at)
        if kind == 6:
            seen += 1
            if seen == 10:
                struct.pack_into("<I", ng, at + n - 4, n + 4)
                break
        at += n
    (OUT / "bad_block.pcapng").write_bytes(bytes(ng))
    # IP headers that lie about their length, among a good call.
    lying = []
    for k, (ts, ip) in enumerate(call):
        if k in (10, 11):
            ip = ip[:2] + struct.pack("!H", len(ip) + 500) + ip[4:]
        lying.append((ts, ip))
    write_pcap(OUT / "lying_ip.pcap", lying)
    # A SIP message over TCP whose Content-Length is never satisfied (the capture ends first),
    # an SDP with no audio, an SDP port that never carries RTP, and RTP on ports no SDP named.
    cid = "problems@test"
    p = [(T0, udp_packet(CALLER, 5060, CALLEE, 5060, sip(f"INVITE sip:bob@{CALLEE} SIP/2.0", cid, "1 INVITE",
                                                         body=sdp(CALLER, 40000), to_tag=False))),
         (T0 + 50 * MS, udp_packet(CALLEE, 5060, CALLER, 5060, sip("SIP/2.0 200 OK", cid, "1 INVITE",
                                                                    body=sdp(CALLEE, 50000)))),
         (T0 + 60 * MS, udp_packet(CALLER, 5060, CALLEE, 5060, sip(f"ACK sip:bob@{CALLEE} SIP/2.0", cid, "1 ACK")))]
    p += rtp_stream(CALLER, 40000, CALLEE, 50000, 20, T0 + 100 * MS, ssrc=0xAA, seed=12)  # callee never sends
    p += rtp_stream("10.7.7.7", 7000, "10.8.8.8", 8000, 20, T0 + 100 * MS, ssrc=0x77, seed=13)  # no SDP named it
    novideo = (b"v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\n"
               b"m=video 9000 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n")
    p += [(T0 + 200 * MS, udp_packet(CALLER, 5060, CALLEE, 5060, sip(f"INVITE sip:bob@{CALLEE} SIP/2.0", "video@test",
                                                                     "1 INVITE", body=novideo, to_tag=False)))]
    never = sip(f"INVITE sip:bob@{CALLEE} SIP/2.0", "never@test", "1 INVITE", body=sdp(CALLER, 44000),
                to_tag=False).replace(b"Content-Length: ", b"Content-Length: 9")
    p += [(T0 + 300 * MS, tcp_packet(CALLER, 5070, CALLEE, 5060, never, seq=1))]
    end = T0 + 600 * MS
    p += [(end, udp_packet(CALLER, 5060, CALLEE, 5060, sip(f"BYE sip:bob@{CALLEE} SIP/2.0", cid, "2 BYE"))),
          (end + 5 * MS, udp_packet(CALLEE, 5060, CALLER, 5060, sip("SIP/2.0 200 OK", cid, "2 BYE")))]
    write_pcap(OUT / "sdp_problems.pcap", sorted(p, key=lambda x: x[0]))


# -- the recorded vectors ----------------------------------------------------------------
def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def record_sipp_call(out: Path, *, transport: str = "u1", recorder: str = "tcpdump", timeout_s: float = 30.0) -> None:
    """One SIPp call (``uac_pcap`` against ``uas -rtp_echo``) over 127.0.0.1, recorded.

    Raises ``RuntimeError`` if SIPp fails; the capture is written to ``out``.
    """
    work = Path(tempfile.mkdtemp())
    try:
        (work / "pcap").mkdir()
        for name in ("g711a.pcap", "dtmf_2833_1.pcap"):
            (work / "pcap" / name).symlink_to(Path("/usr/share/sip-tester") / name)
        for scen in ("uac_pcap", "uas"):
            text = subprocess.run(["sipp", "-sd", scen], capture_output=True, text=True).stdout
            (work / f"{scen}.xml").write_text(text)
        sip_a, sip_b, media_a, media_b = (free_udp_port() for _ in range(4))
        media_a &= ~1
        media_b = media_a + 100 if media_a + 100 < 65000 else media_a - 100
        filt = f"host 127.0.0.1 and (port {sip_a} or port {sip_b} or portrange {media_a}-{media_a + 3}" \
               f" or portrange {media_b}-{media_b + 3})"
        cap = work / "cap"
        if recorder == "tcpdump":
            rec = subprocess.Popen(["tcpdump", "-i", "lo", "-U", "-w", str(cap), filt], stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL)
        else:
            rec = subprocess.Popen(["dumpcap", "-q", "-i", "lo", "-f", filt, "-w", str(cap)],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(1.0)
        uas = subprocess.Popen(["sipp", "-sf", str(work / "uas.xml"), "-i", "127.0.0.1", "-p", str(sip_b),
                                "-mp", str(media_b), "-rtp_echo", "-m", "1", "-t", transport, "-nostdin"],
                               cwd=work, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.5)
        uac = subprocess.run(["sipp", "-sf", str(work / "uac_pcap.xml"), "-i", "127.0.0.1", "-p", str(sip_a),
                              "-mp", str(media_a), f"127.0.0.1:{sip_b}", "-m", "1", "-t", transport, "-nostdin",
                              "-timeout", str(int(timeout_s)), "-timeout_error"],
                             cwd=work, capture_output=True, text=True, timeout=timeout_s + 10)
        time.sleep(1.0)
        uas.terminate()
        uas.wait(5)
        rec.terminate()
        rec.wait(5)
        if uac.returncode != 0:
            raise RuntimeError(f"sipp uac failed ({uac.returncode}): {uac.stdout[-500:]}")
        shutil.copy(cap, out)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    OUT.mkdir(exist_ok=True)
    build_linktypes()
    build_pcapng()
    build_fragments()
    build_sip_tcp()
    build_reinvite()
    build_failures()
    build_forks()
    build_impaired()
    build_bad()
    if "--record" in sys.argv:
        raw = OUT / "sipp_udp_call.pcap"
        record_sipp_call(raw)
        with gzip.GzipFile(OUT / "sipp_udp_call.pcap.gz", "wb", mtime=0) as g:
            g.write(raw.read_bytes())
        raw.unlink()
        raw = OUT / "sipp_tcp_call.pcapng"
        record_sipp_call(raw, transport="t1", recorder="dumpcap")
        with gzip.GzipFile(OUT / "sipp_tcp_call.pcapng.gz", "wb", mtime=0) as g:
            g.write(raw.read_bytes())
        raw.unlink()
    print("\n".join(sorted(p.name for p in OUT.iterdir())))


if __name__ == "__main__":
    main()
