"""Packet captures read down to calls: file formats, link types, IP, TCP, SIP, RTP grouping.

Vectors are in tests/vectors/pcap (made by tests/vectors/make_pcap_vectors.py: SIPp calls
recorded by tcpdump/dumpcap, and captures built packet by packet); tshark is the oracle for
what the files hold.
"""

from __future__ import annotations

import gzip
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from telnyx_audio import rtp
from telnyx_audio.packets.calls import CallReader
from telnyx_audio.packets.pcapfile import PacketFile
from telnyx_audio.packets.sdp import parse_sdp
from telnyx_audio.packets.sip import SipStream, parse_sip

VEC = Path(__file__).parent / "vectors" / "pcap"
LINK_VECTORS = ("eth.pcap", "vlan.pcap", "qinq.pcap", "sll.pcap", "sll2.pcap", "raw.pcap", "null.pcap", "loop.pcap",
                "nsec_be.pcap", "eth.pcap.gz", "big_endian.pcapng", "two_interfaces.pcapng")


def calls_of(name: str, **kw):
    r = CallReader(VEC / name, **kw)
    return list(r), r


def tshark(*args: str) -> str:
    if shutil.which("tshark") is None:
        pytest.skip("tshark not installed: apt-get install tshark")
    return subprocess.run(["tshark", *args], capture_output=True, text=True, check=True).stdout


def payloads(call, track: int) -> list[bytes]:
    rows = np.flatnonzero(call.track == track)
    return [call.buf[call.offset[i] : call.offset[i] + call.length[i]].tobytes() for i in rows]


@pytest.mark.parametrize("name", LINK_VECTORS)
def test_every_link_type_and_file_format_gives_the_same_call(name):
    (ref,), _ = calls_of("eth.pcap")
    calls, reader = calls_of(name)
    assert not reader.problems.counts.keys() - {"simple packet blocks carry no timestamp: given the time of the packet before"}
    (call,) = calls
    assert call.dialog is not None and call.dialog.final_status == 200
    assert payloads(call, 0) == payloads(ref, 0) and payloads(call, 1) == payloads(ref, 1)
    # Arrival times to the file's resolution (the raw interface of two_interfaces is 123 ns late).
    late = 123 if name == "two_interfaces.pcapng" else 0
    for track in (0, 1):
        got = call.arrival_ns[call.track == track]
        want = ref.arrival_ns[ref.track == track] + (late if track == 1 else 0)
        assert np.abs(got - want).max() < 1000  # to the microsecond (2^-20 s ticks round)


@pytest.mark.parametrize("name", ["nsec_be.pcap", "two_interfaces.pcapng", "big_endian.pcapng", "sipp_tcp_call.pcapng.gz",
                                  "vlan.pcap", "sll2.pcap"])
def test_frame_times_and_lengths_agree_with_tshark(name, tmp_path):
    path = VEC / name
    if name.endswith(".gz"):
        path = tmp_path / name[:-3]
        path.write_bytes(gzip.decompress((VEC / name).read_bytes()))
    out = tshark("-r", str(path), "-T", "fields", "-e", "frame.time_epoch", "-e", "frame.len", "-e", "frame.cap_len")
    rows = [line.split("\t") for line in out.strip().splitlines()]
    want_ns = [int(r[0].replace(".", "").ljust(19, "0")[:19]) for r in rows]
    frames = list(PacketFile(path))
    got_ns = np.concatenate([f.ts_ns for f in frames]).tolist()
    got_len = np.concatenate([f.origlen for f in frames]).tolist()
    # tshark shows a simple packet block (no timestamp) at time 0; this reader gives it the
    # time of the packet before (and counts it): compare the others.
    assert [g for g, w in zip(got_ns, want_ns) if w] == [w for w in want_ns if w]
    assert got_len == [int(r[1]) for r in rows]


def test_sip_over_tcp_in_pieces_out_of_order_and_retransmitted_gives_the_whole_ladder():
    (tcp_call,), reader = calls_of("sip_tcp.pcap")
    (udp_call,), _ = calls_of("eth.pcap")
    assert not reader.problems
    assert [r.label for r in tcp_call.dialog.ladder] == [r.label for r in udp_call.dialog.ladder]
    assert [r.transport for r in tcp_call.dialog.ladder][0] == "TCP"
    assert payloads(tcp_call, 0) == payloads(udp_call, 0)


def test_a_fragmented_invite_is_reassembled_and_overlapping_fragments_are_counted():
    (call,), reader = calls_of("fragments.pcap")
    assert call.dialog.ladder[0].label == "INVITE" and call.dialog.ladder[0].sdp
    assert (call.track == 0).sum() == 20 and (call.track == 1).sum() == 20
    assert reader.problems.counts == {"overlapping IP fragments: the datagram is dropped": 1}
    # tshark reassembles the same INVITE (its SDP names the caller's port).
    out = tshark("-r", str(VEC / "fragments.pcap"), "-Y", "sip.Method == INVITE", "-T", "fields", "-e", "sdp.media.port")
    assert out.split() == ["40000"]


def test_ipv6_calls_are_read():
    (call,), reader = calls_of("ipv6.pcap")
    assert not reader.problems
    assert call.streams[0].src.startswith("2001:db8::")
    assert (call.track == 0).sum() == 20 and (call.track == 1).sum() == 20


def test_a_reinvite_moves_the_callee_port_and_codec_and_keeps_one_call():
    (call,), _ = calls_of("reinvite.pcap")
    d = call.dialog
    assert d.codec() == "PCMA/8000"
    assert {s.dport for s in call.streams if s.track == "inbound"} == {50000, 52000}
    cols = rtp.parse_packets(call.buf, call.offset, call.length)
    out_pts = set(cols.payload_type[call.track == 1].tolist())
    assert out_pts == {0, 8}
    assert d.facts()["hung_up_by"] == "caller" and d.facts()["ended_by"] == "BYE"


def test_rtcp_reports_join_their_call_with_loss_jitter_and_round_trip():
    (call,), _ = calls_of("reinvite.pcap")
    sr, rr = call.rtcp
    assert (sr.kind, rr.kind) == ("SR", "RR")
    block = rr.blocks[0]
    assert block.cumulative_lost == 2 and block.jitter == 37 and block.fraction_lost == pytest.approx(5 / 256)
    assert block.rtt_ms == pytest.approx(640 - 600 - 10, abs=0.01)


def test_cancel_and_busy_give_their_final_status_and_who_ended_the_call():
    calls, _ = calls_of("failures.pcap")
    facts = {c.key: c.dialog.facts() for c in calls}
    assert facts["cancel@test"]["final_status"] == 487 and facts["cancel@test"]["ended_by"] == "CANCEL"
    assert facts["cancel@test"]["hung_up_by"] == "caller"
    assert facts["busy@test"]["final_status"] == 486 and facts["busy@test"]["hung_up_by"] == "callee"


def test_rtp_without_sip_is_found_by_its_shape_and_dns_ntp_rtcp_are_never_calls():
    calls, reader = calls_of("fork_tcpdump.pcap")
    assert sorted(len(c) for c in calls) == [30, 30]
    assert all(c.dialog is None and not c.warnings for c in calls)
    assert reader.counts["not_rtp_flows"] == 0  # DNS/NTP never even judged: port 53 / not version 2


def test_pair_makes_the_fork_ports_one_call_rx_inbound_tx_outbound():
    (call,), _ = calls_of("fork_tcpdump.pcap", pair=(40000, 40002))
    by_port = {s.dport: s.track for s in call.streams}
    assert by_port == {40000: "inbound", 40002: "outbound"}
    assert len(call.rtcp) == 1


def test_the_two_directions_of_one_5_tuple_are_one_call_first_seen_inbound():
    (call,), _ = calls_of("two_way_no_sip.pcap")
    assert [(s.sport, s.track) for s in call.streams] == [(20000, "inbound"), (30000, "outbound")]


def test_the_sipp_calls_recorded_by_tcpdump_and_dumpcap_are_read_whole():
    for name in ("sipp_udp_call.pcap.gz", "sipp_tcp_call.pcapng.gz"):
        (call,), reader = calls_of(name)
        assert not reader.problems
        assert [r.label for r in call.dialog.ladder] == ["INVITE", "180 Ringing", "200 OK", "ACK", "BYE", "200 OK"]
        assert (call.track == 0).sum() == 246 and (call.track == 1).sum() == 246  # PCMA and RFC 2833, echoed


# -- bad input -----------------------------------------------------------------------------
def test_garbage_is_not_a_capture():
    with pytest.raises(ValueError, match="not a packet capture"):
        CallReader(VEC / "garbage.pcap")


@pytest.mark.parametrize("name, reason", [
    ("truncated.pcap", "the last record is cut short (truncated file): ignored"),
    ("garbage_after.pcap", "a pcap record header is corrupt: reading stopped there"),
    ("bad_block.pcapng", "a pcapng block has a wrong length: reading stopped there"),
    ("lying_ip.pcap", "IP header lies about its length: skipped"),
])
def test_broken_files_are_counted_problems_and_what_can_be_read_is_read(name, reason):
    calls, reader = calls_of(name)
    assert reason in reader.problems.counts
    assert calls and calls[0].key == "bad@test" and calls[0].dialog.ladder[0].label == "INVITE"


def test_sdp_and_rtp_problems_are_reported_with_their_reason():
    calls, reader = calls_of("sdp_problems.pcap")
    p = reader.problems.counts
    assert p["an SDP named ports that never carried RTP"] == 1
    assert p["RTP on ports no SDP named: read as calls of their own"] == 1
    assert p["SIP message cut short when the capture ends"] == 1
    assert any("has no audio" in w for c in calls for w in c.warnings)
    keys = [c.key for c in calls]
    assert "problems@test" in keys and "rtp-1" in keys


def test_a_truncated_gzip_stream_is_a_problem_not_an_error(tmp_path):
    blob = (VEC / "eth.pcap.gz").read_bytes()
    path = tmp_path / "cut.pcap.gz"
    path.write_bytes(blob[: len(blob) * 2 // 3])
    calls, = [list(r := CallReader(path))]
    assert any("gzip" in k for k in r.problems.counts)


def test_memory_holds_the_calls_in_progress_not_the_file(tmp_path):
    sys.path.insert(0, str(VEC.parent))
    import make_pcap_vectors as mk

    packets = []
    for k in range(60):
        packets += mk.basic_call(call_id=f"c{k}@test", start=mk.T0 + k * 2_000 * mk.MS, n=10)
    path = tmp_path / "many.pcap"
    mk.write_pcap(path, packets)
    reader = CallReader(path, chunk_bytes=1 << 14)
    most = 0
    n = 0
    for _call in reader:
        n += 1
        most = max(most, len(reader._stores))
    assert n == 60 and most <= 5  # the call in progress and those in their 2 s of grace


# -- the sans-I/O parts -------------------------------------------------------------------
def test_sip_compact_headers_and_folded_lines_are_read():
    m = parse_sip(b"INVITE sip:b@x SIP/2.0\r\ni: abc\r\nf: <sip:a@x>;tag=1\r\nt: <sip:b@x>\r\n"
                  b"Subject: one\r\n two\r\nCSeq: 4 INVITE\r\nl: 0\r\n\r\n")
    assert (m.call_id, m.from_tag, m.header("subject"), m.cseq) == ("abc", "1", "one two", (4, "INVITE"))


def test_a_sip_stream_that_never_ends_is_reported_and_resynchronised():
    s = SipStream()
    out = s.feed(b"INVITE sip:b@x SIP/2.0\r\nX: " + b"y" * 70000)
    assert out and "never ends" in out[0].reason
    good = b"BYE sip:b@x SIP/2.0\r\nCall-ID: q\r\nContent-Length: 0\r\n\r\n"
    out = s.feed(b"junk\r\n" + good)
    assert [type(m).__name__ for m in out] == ["BadSip", "SipMessage"] and out[1].method == "BYE"


def test_sdp_reads_amr_wb_parameters_ptime_and_direction():
    a = parse_sdp(b"v=0\r\nc=IN IP4 1.2.3.4\r\na=recvonly\r\nm=audio 4000 RTP/AVP 96\r\n"
                  b"a=rtpmap:96 AMR-WB/16000\r\na=fmtp:96 octet-align=1;mode-set=0,2\r\na=ptime:40\r\n").audio
    assert a.fmtp[96] == {"octet-align": "1", "mode-set": "0,2"} and a.ptime == 40 and a.direction == "recvonly"
    assert parse_sdp(b"v=0\r\nm=video 9 RTP/AVP 31\r\n").audio is None


def test_a_pcapng_block_count_of_frames_matches_tshark():
    out = tshark("-r", str(VEC / "two_interfaces.pcapng"), "-T", "fields", "-e", "frame.number")
    frames = sum(len(f) for f in PacketFile(VEC / "two_interfaces.pcapng"))
    assert frames == len(out.split())


def test_nanosecond_and_microsecond_pcap_headers_are_told_apart(tmp_path):
    rec = struct.pack("<IIII", 5, 7, 1, 1) + b"\x45"
    for magic, want in ((0xA1B2C3D4, 5_000_007_000), (0xA1B23C4D, 5_000_000_007)):
        p = tmp_path / f"{magic:x}.pcap"
        p.write_bytes(struct.pack("<IHHiIII", magic, 2, 4, 0, 0, 65535, 101) + rec)
        (batch,) = list(PacketFile(p))
        assert batch.ts_ns.tolist() == [want]


def test_a_file_named_pcap_without_a_magic_number_is_said_to_be_no_packet_capture():
    from telnyx_audio.errors import NotACaptureError
    from telnyx_audio.read import read_captures

    with pytest.raises(NotACaptureError, match=r"not a packet capture: it does not start with a pcap or pcapng magic"):
        read_captures(VEC / "garbage.pcap")


def test_the_statistics_only_path_counts_rtp_with_csrcs_and_header_extensions(tmp_path):
    # rtp_streams keeps only the 12 fixed header bytes; packets with a CSRC list or a header
    # extension (valid RTP, counted by tshark) must not turn into "malformed" there.
    from telnyx_audio.packets.read import read_pcap_captures, rtp_streams
    from telnyx_audio.packets.writer import PcapWriter, udp_packet

    path = tmp_path / "csrc.pcap"
    with PcapWriter(path) as w:
        for i in range(50):
            head = bytearray(rtp.build_packet(bytes(160), payload_type=0, sequence_number=i, timestamp=160 * i,
                                              ssrc=0x1234))
            extra = b""
            if i % 3 == 1:  # one CSRC
                head[0] |= 0x01
                extra = (0xABCD).to_bytes(4, "big")
            elif i % 3 == 2:  # a one-word header extension
                head[0] |= 0x10
                extra = b"\xbe\xde\x00\x01" + bytes(4)
            data = bytes(head[:12]) + extra + bytes(head[12:])
            w.packet(1_700_000_000 * 10**9 + i * 20_000_000, udp_packet("10.0.0.1", 40000, "10.0.0.2", 50000, data))
    (cap,) = read_pcap_captures(path)
    streams = rtp_streams(path)
    assert cap.report.rtp["inbound"].packets == 50
    assert streams["packets"].tolist() == [50] and streams["lost"].tolist() == [0]
