"""Packet captures carry every codec the toolkit decodes, digits, comfort noise and early media,
and go through batch like any capture.

Captures are built here packet by packet (tests/vectors/make_pcap_vectors.py's helpers) with a
SIP dialog whose SDP names the codec; the expected audio is the same payloads through the
codec's own decoder in order (as tests/test_fork.py checks forks). SIPp's RFC 2833 captures
(Debian's sip-tester) give real digits.
"""

from __future__ import annotations

import base64
import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

from telnyx_audio import rtp
from telnyx_audio.packets.read import read_pcap_captures
from telnyx_audio.packets.writer import PcapWriter, udp_packet

VEC = Path(__file__).parent / "vectors" / "pcap"
WIDEBAND = Path(__file__).parent / "vectors" / "wideband"
SIPP = Path("/usr/share/sip-tester")
sys.path.insert(0, str(VEC.parent))
import make_pcap_vectors as mk  # noqa: E402

A, B = mk.CALLER, mk.CALLEE


def _sdp(ip: str, port: int, pt: int, rtpmap: str, fmtp: str = "") -> bytes:
    lines = f"a=rtpmap:{pt} {rtpmap}\r\n" if rtpmap else ""
    lines += f"a=fmtp:{pt} {fmtp}\r\n" if fmtp else ""
    return (f"v=0\r\no=- 1 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\nm=audio {port} RTP/AVP {pt}\r\n"
            f"{lines}a=sendrecv\r\n").encode()


def _call(path: Path, payloads: list[bytes], pt: int, rtpmap: str, fmtp: str = "", *, step: int = 160,
          early: int = 0) -> None:
    """INVITE (caller's SDP), [183 with the callee's SDP and ``early`` callee packets], 200 OK,
    ACK, then ``payloads`` from the caller to the callee's port, then BYE."""
    cid = "codec@test"
    t0 = mk.T0
    ms = mk.MS
    pkts = [(t0, udp_packet(A, 5060, B, 5060, mk.sip(f"INVITE sip:bob@{B} SIP/2.0", cid, "1 INVITE",
                                                      body=_sdp(A, 40000, pt, rtpmap, fmtp), to_tag=False)))]
    answer = _sdp(B, 50000, pt, rtpmap, fmtp)
    if early:
        pkts.append((t0 + 10 * ms, udp_packet(B, 5060, A, 5060, mk.sip("SIP/2.0 183 Session Progress", cid,
                                                                        "1 INVITE", body=answer))))
        ring = mk.tone(160 * early, 425.0)  # a ring-back tone from the callee before the answer
        for i in range(early):
            pkt = rtp.build_packet(ring[160 * i : 160 * (i + 1)], payload_type=0, sequence_number=7000 + i,
                                   timestamp=160 * i, ssrc=0xEA21)
            pkts.append((t0 + 20 * ms + 20 * ms * i, udp_packet(B, 50000, A, 40000, pkt)))
    start = t0 + 30 * ms + 20 * ms * early
    pkts += [(start, udp_packet(B, 5060, A, 5060, mk.sip("SIP/2.0 200 OK", cid, "1 INVITE", body=answer))),
             (start + ms, udp_packet(A, 5060, B, 5060, mk.sip(f"ACK sip:bob@{B} SIP/2.0", cid, "1 ACK")))]
    for i, p in enumerate(payloads):
        pkt = rtp.build_packet(p, payload_type=pt, sequence_number=100 + i, timestamp=5000 + step * i, ssrc=0xC0DEC)
        pkts.append((start + 10 * ms + 20 * ms * i, udp_packet(A, 40000, B, 50000, pkt)))
    end = start + 20 * ms * (len(payloads) + 2)
    pkts.append((end, udp_packet(A, 5060, B, 5060, mk.sip(f"BYE sip:bob@{B} SIP/2.0", cid, "2 BYE"))))
    with PcapWriter(path) as w:
        for ts, frame in sorted(pkts, key=lambda x: x[0]):
            w.packet(ts, frame)


def _tone(rate: int, seconds: float = 0.5) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    return (8000 * np.sin(2 * np.pi * 440 * t)).astype(np.int16)


def _amrwb_payloads(packing: str) -> list[bytes]:
    from telnyx_audio.codecs import amrwb

    v = json.loads((WIDEBAND / "amrwb_mode8.json").read_text())
    frames = [base64.b64decode(f) for f in v["storage_frames"]]
    return [amrwb.pack([f], packing) for f in frames]


def _payloads(codec: str) -> tuple[list[bytes], int]:
    from telnyx_audio.codecs import encode_payloads

    if codec.startswith("AMR-WB"):
        return _amrwb_payloads("octet-aligned" if codec.endswith("octet") else "bandwidth-efficient"), 320
    rate = {"G722": 16000, "OPUS": 48000, "L16": 16000}.get(codec, 8000)
    pcm = _tone(rate)
    if codec == "L16":
        from telnyx_audio.codecs.g711 import encode

        data = encode(pcm, "L16")
        return [data[i : i + 640] for i in range(0, len(data), 640)], 320
    target = {"G722": 16000, "OPUS": 16000}.get(codec, 8000)
    step = {"G722": 160, "OPUS": 960}.get(codec, 160)  # G.722's RTP clock is 8 kHz; Opus's 48 kHz
    return encode_payloads(pcm, rate, codec, target_rate=target), step


# (codec, payload type, rtpmap, fmtp, recording's encoding and rate)
CODECS = [
    ("PCMU", 0, "", "", "PCMU", 8000),  # static types: known without an rtpmap
    ("PCMA", 8, "", "", "PCMA", 8000),
    ("G722", 9, "G722/8000", "", "G722", 16000),
    ("L16", 97, "L16/16000", "", "L16", 16000),
    ("OPUS", 111, "opus/48000/2", "useinbandfec=1", "OPUS", 48000),
    ("AMR-WB-octet", 96, "AMR-WB/16000", "octet-align=1; mode-set=8", "AMR-WB", 16000),
    ("AMR-WB-be", 98, "AMR-WB/16000", "mode-set=8", "AMR-WB", 16000),
]


@pytest.mark.parametrize(("codec", "pt", "rtpmap", "fmtp", "encoding", "rate"), CODECS, ids=[c[0] for c in CODECS])
def test_every_codec_the_sdp_names_decodes_as_its_payloads_do(tmp_path, codec, pt, rtpmap, fmtp, encoding, rate):
    from telnyx_audio.codecs import REGISTRY

    payloads, step = _payloads(codec)
    path = tmp_path / f"{codec}.pcap"
    _call(path, payloads, pt, rtpmap, fmtp, step=step)
    (cap,) = read_pcap_captures(path)
    rec = cap.recording
    assert (rec.encoding, rec.sample_rate) == (encoding, rate), cap.report.warnings
    assert cap.report.rtp["inbound"].packets == len(payloads) and cap.error is None
    if REGISTRY[encoding].stateful:
        decoder = REGISTRY[encoding].decoder_factory(rate)
        expected = np.concatenate([decoder.decode(p) for p in payloads])
    else:
        expected = np.concatenate([REGISTRY[encoding].stateless_decode(p) for p in payloads])
    got = rec.audio[0]
    start = int(np.flatnonzero(got)[0])
    lead = int(np.flatnonzero(expected)[0])
    np.testing.assert_array_equal(got[start - lead : start - lead + expected.size], expected)


def test_early_media_before_the_answer_is_on_the_timeline_before_the_call_audio(tmp_path):
    payloads = [mk.tone(160, 440.0)] * 25
    path = tmp_path / "early.pcap"
    _call(path, payloads, 0, "PCMU/8000", early=10)
    (cap,) = read_pcap_captures(path)
    inbound, outbound = cap.recording.audio
    assert cap.report.rtp["outbound"].packets == 10  # the callee's ring-back, sent before its 200 OK
    assert cap.report.rtp["inbound"].packets == 25
    first_out, first_in = int(np.flatnonzero(outbound)[0]), int(np.flatnonzero(inbound)[0])
    # The ring-back starts 10 ms after the 183, the caller's audio 10 x 20 ms + 20 ms later.
    assert abs((first_in - first_out) / 8000 - 0.220) < 0.002


@pytest.mark.parametrize("digit", ["0", "5", "9", "star", "pound"])
def test_sipp_rfc_2833_captures_give_their_digit(digit):
    path = SIPP / f"dtmf_2833_{digit}.pcap"
    if not path.exists():
        pytest.skip("sip-tester not installed (its RFC 2833 captures): apt-get install sip-tester")
    (cap,) = read_pcap_captures(path)
    digits = [d.digit for d in cap.report.dtmf_events]
    assert digits == [{"star": "*", "pound": "#"}.get(digit, digit)]


def test_comfort_noise_packets_are_counted_and_never_decoded_as_audio():
    (cap,) = [c for c in read_pcap_captures(VEC / "impaired.pcap") if c.report.rtp]
    stats = [s for s in cap.report.rtp.values() if s.comfort_noise_packets]
    assert stats and stats[0].payload_types.get("13") == stats[0].comfort_noise_packets


def test_batch_reads_a_folder_of_packet_captures_one_row_per_call(tmp_path):
    from telnyx_audio.fleet import batch

    src = tmp_path / "pcaps"
    src.mkdir()
    shutil.copy(VEC / "failures.pcap", src / "failures.pcap")
    shutil.copy(VEC / "sipp_udp_call.pcap.gz", src / "sipp.pcap.gz")
    expected = len(read_pcap_captures(src / "failures.pcap")) + 1
    result = batch(str(src / "*.pcap*"), tmp_path / "out", jobs=1, analyze=False, progress=False)
    calls = result.calls
    assert len(calls) == expected
    assert (calls["error"].fillna("") == "").all() and set(calls["source_kind"]) == {"pcap"}
    assert calls["path"].str.endswith("sipp.pcap.gz").sum() == 1


def test_analysis_and_plots_take_a_packet_capture_like_any_other():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from telnyx_audio import analyze_call, plot_call

    (cap,) = read_pcap_captures(VEC / "sipp_udp_call.pcap.gz")
    analysis = analyze_call(cap)
    assert analysis.talk.loc["inbound", "talk_s"] > 5.0  # SIPp's PCMA recording: 7 s of speech-like audio
    drawn = plot_call(cap)
    assert len(drawn["axes"]) == 2
    plt.close(drawn["figure"])


def test_snapped_packets_and_frames_that_are_not_ip_are_counted_and_the_call_is_read(tmp_path):
    from telnyx_audio.packets.calls import CallReader
    from telnyx_audio.packets.writer import ethernet

    packets = mk.basic_call(n=20)
    rtp_rows = [i for i, (_, ip) in enumerate(packets) if len(ip) == 20 + 8 + 12 + 160]
    cut_payload, cut_header = rtp_rows[3], rtp_rows[5]
    path = tmp_path / "snapped.pcap"
    with PcapWriter(path) as w:
        arp = bytes(6) + bytes.fromhex("020000000001") + b"\x08\x06" + bytes(28)
        w.frame(mk.T0 - 1, arp)
        for i, (ts, ip) in enumerate(packets):
            frame = ethernet(ip)
            if i == cut_payload:  # a snap length of 68: headers whole, the payload cut
                w.frame(ts, frame[:68], origlen=len(frame))
            elif i == cut_header:  # cut inside the IP header
                w.frame(ts, frame[:24], origlen=len(frame))
            else:
                w.frame(ts, frame)
    reader = CallReader(path)
    (call,) = list(reader)
    p = reader.problems.counts
    assert p["frames that are not IP (ARP, LLDP, ...): skipped"] == 1
    assert p["packets cut short by the snap length: header kept, payload incomplete"] == 1
    assert p["packets cut short by the snap length: skipped"] == 1
    assert call.key == "call-1@test" and len(call) == 2 * 20 - 1 and int(call.truncated.sum()) == 1
    (cap,) = read_pcap_captures(path)
    assert sum(s.packets for s in cap.report.rtp.values()) == 2 * 20 - 1
    assert set(cap.report.file_problems) == set(p)
