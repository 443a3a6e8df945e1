"""RTP parsing (RFC 3550), payload types, RFC 4733 events, RFC 3389 comfort noise.

Every packet here is written out byte by byte from the RFC layouts, with the record it must
give, so the parser is checked against the standard rather than against our own builder.
"""

from __future__ import annotations

import numpy as np
import pytest

from telnyx_audio import rtp
from telnyx_audio.rtp import MalformedPacket, RtpPacket, parse_packet


def packet(hex_text: str) -> bytes:
    return bytes.fromhex(hex_text.replace(" ", ""))


# V=2 P=0 X=0 CC=0 | M=0 PT=0 | seq 0x1234 | ts 0x00000640 | SSRC 0xDEADBEEF | 4 bytes of PCMU
PLAIN = packet("80 00 1234 00000640 deadbeef ff7f0080")


def test_a_plain_pcmu_packet_gives_every_header_field():
    assert parse_packet(PLAIN) == RtpPacket(
        payload_type=0, sequence_number=0x1234, timestamp=0x640, ssrc=0xDEADBEEF, marker=False,
        csrcs=(), extension_profile=None, padding=0, payload=bytes.fromhex("ff7f0080"),
    )


def test_the_marker_bit_and_a_dynamic_payload_type_are_read():
    # M=1, PT=96 -> second byte 0x80 | 0x60 = 0xE0
    p = parse_packet(packet("80 e0 0001 00000000 00000001 aa"))
    assert (p.marker, p.payload_type, p.payload) == (True, 96, b"\xaa")


def test_padding_is_stripped_using_the_count_in_the_last_byte():
    # P=1 (0xA0); payload "0102", then 3 bytes of padding whose last byte says 3
    p = parse_packet(packet("a0 08 0002 000000a0 00000002 0102 0000 03"))
    assert (p.payload_type, p.payload, p.padding) == (8, b"\x01\x02", 3)


def test_csrcs_are_listed_and_skipped_before_the_payload():
    # CC=2 (0x82): two 32-bit CSRC identifiers
    p = parse_packet(packet("82 00 0003 00000140 00000003 11111111 22222222 d5d5"))
    assert p.csrcs == (0x11111111, 0x22222222)
    assert p.payload == b"\xd5\xd5"


def test_a_one_byte_form_header_extension_is_skipped():
    # X=1 (0x90); RFC 8285 one-byte form: profile 0xBEDE, length 1 word:
    # element id 1 len 0 (1 byte of data: 0x55), then 2 bytes of padding
    p = parse_packet(packet("90 00 0004 000001e0 00000004 bede 0001 10 55 00 00 7f7f"))
    assert (p.extension_profile, p.payload) == (0xBEDE, b"\x7f\x7f")


def test_a_two_byte_form_header_extension_is_skipped():
    # RFC 8285 two-byte form: profile 0x1000 (appbits 0), length 2 words:
    # id 1, len 3, 3 bytes data, then 3 bytes padding
    p = parse_packet(packet("90 00 0005 00000280 00000005 1000 0002 01 03 aabbcc 000000 0102"))
    assert (p.extension_profile, p.payload) == (0x1000, b"\x01\x02")


def test_csrcs_extension_and_padding_together_leave_just_the_payload():
    p = parse_packet(packet("b1 80 0006 00000320 00000006 0000000a bede 0001 10 55 0000 ab cd 0002"))
    assert p.csrcs == (10,)
    assert p.marker and p.payload == b"\xab\xcd" and p.padding == 2


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "shorter than the 12-byte RTP header"),
        (packet("80 00 0001 00000000 000000"), "shorter than the 12-byte RTP header"),
        (packet("40 00 0001 00000000 00000001 ff"), "RTP version is not 2"),
        (packet("83 00 0001 00000000 00000001 11111111"), "CSRC list runs past the end of the datagram"),
        (packet("90 00 0001 00000000 00000001 bede"), "header extension runs past the end of the datagram"),
        (packet("90 00 0001 00000000 00000001 bede 0004 00000000"), "header extension runs past the end of the datagram"),
        (packet("a0 00 0001 00000000 00000001 ff 00"), "padding count is zero or longer than the payload"),
        (packet("a0 00 0001 00000000 00000001 ff 09"), "padding count is zero or longer than the payload"),
        (packet("80 c8 0006 00000000 00000001 00000000"), "RTCP packet (payload type 72-79 with marker, RFC 5761), not RTP media"),
    ],
)
def test_a_malformed_datagram_becomes_a_record_with_its_reason(data, reason):
    got = parse_packet(data)
    assert got == MalformedPacket(reason, data)


def test_many_datagrams_in_one_buffer_parse_like_one_at_a_time():
    datagrams = [PLAIN, b"junk", packet("b1 80 0006 00000320 00000006 0000000a bede 0001 10 55 0000 ab cd 0002"),
                 packet("a0 00 0001 00000000 00000001 ff 09")]
    buf = np.frombuffer(b"".join(datagrams), np.uint8)
    lengths = np.array([len(d) for d in datagrams])
    cols = rtp.parse_packets(buf, np.cumsum(lengths) - lengths, lengths)
    for i, d in enumerate(datagrams):
        one = parse_packet(d)
        if isinstance(one, MalformedPacket):
            assert rtp.REASONS[cols.reason[i]] == one.reason
        else:
            start = int(cols.payload_offset[i])
            assert buf[start : start + int(cols.payload_length[i])].tobytes() == one.payload
            assert (int(cols.sequence_number[i]), int(cols.timestamp[i]), int(cols.ssrc[i])) == (
                one.sequence_number, one.timestamp, one.ssrc)


def test_build_packet_writes_what_parse_packet_reads():
    data = rtp.build_packet(b"\x01\x02\x03", payload_type=9, sequence_number=70000, timestamp=2**32 + 5, ssrc=7,
                            marker=True, csrcs=(1, 2), extension=(0xBEDE, b"\x10\x99"), padding=4)
    p = parse_packet(data)
    assert (p.payload_type, p.sequence_number, p.timestamp, p.ssrc, p.marker, p.csrcs, p.payload, p.padding) == (
        9, 70000 & 0xFFFF, 5, 7, True, (1, 2), b"\x01\x02\x03", 4)


def test_sequence_numbers_are_extended_across_the_wrap_at_65535():
    seq = np.array([65533, 65534, 65535, 0, 1, 2])
    assert rtp.extend_sequence(seq).tolist() == [65533, 65534, 65535, 65536, 65537, 65538]


def test_a_packet_reordered_across_the_wrap_lands_before_it():
    assert rtp.extend_sequence(np.array([65535, 1, 0, 65534, 2])).tolist() == [65535, 65537, 65536, 65534, 65538]


def test_timestamps_are_extended_past_two_to_the_32():
    ts = np.array([2**32 - 320, 2**32 - 160, 0, 160])
    assert rtp.extend_timestamp(ts).tolist() == [2**32 - 320, 2**32 - 160, 2**32, 2**32 + 160]


def test_static_payload_types_are_those_of_rfc_3551():
    m = rtp.payload_type_map()
    assert (m[0].encoding, m[8].encoding, m[9].encoding, m[13].encoding) == ("PCMU", "PCMA", "G722", "CN")
    assert m[9].clock_rate == 8000  # G.722's RTP clock, although its audio is 16 kHz


def test_a_user_map_names_dynamic_payload_types():
    m = rtp.payload_type_map(["96=OPUS/48000", "97=audio/AMR-WB/16000", "101=telephone-event/8000", "98=l16/16000"])
    assert (str(m[96]), str(m[97]), str(m[101]), str(m[98])) == (
        "OPUS/48000", "AMR-WB/16000", "telephone-event/8000", "L16/16000")


@pytest.mark.parametrize("spec", ["96", "96=", "x=OPUS/48000", "200=OPUS/48000", "96=OPUS/fast", "96=OPUS/48000/2"])
def test_a_bad_payload_type_spec_is_refused_naming_it(spec):
    with pytest.raises(ValueError, match="payload type"):
        rtp.parse_payload_type(spec)


def test_an_unknown_encoding_in_a_payload_type_spec_names_the_known_ones():
    with pytest.raises(ValueError, match="speex.*PCMU"):
        rtp.parse_payload_type("96=speex/8000")


def test_an_rfc_4733_end_packet_is_read_with_its_digit_volume_and_duration():
    # event 11 ('#'), E=1 R=0 volume 7, duration 0x0640 (1600 ticks = 200 ms at 8 kHz)
    e = rtp.parse_telephone_event(packet("0b 87 0640"))
    assert (e.digit, e.end, e.volume, e.duration) == ("#", True, 7, 1600)


def test_a_payload_with_the_reserved_bit_set_is_no_telephone_event():
    assert rtp.parse_telephone_event(packet("01 40 00a0")) is None
    assert rtp.parse_telephone_event(b"\x01\x00") is None


def test_telephone_event_is_recognised_by_its_shape_and_audio_is_not():
    events = np.array([[5, 10, 0, 160], [5, 10, 1, 64], [5, 138, 1, 64]], np.uint8)
    assert rtp.looks_like_telephone_event(events, np.array([4, 4, 4]))
    pcmu = np.frombuffer(bytes(range(200, 212)), np.uint8).reshape(3, 4)
    assert not rtp.looks_like_telephone_event(pcmu, np.array([4, 4, 4]))
    assert not rtp.looks_like_telephone_event(events, np.array([4, 160, 4]))


def test_the_comfort_noise_level_is_the_first_byte_in_minus_dbov():
    assert rtp.comfort_noise_level(packet("40 8a 91")) == 64
    assert rtp.comfort_noise_level(b"") is None


def test_jitter_follows_the_rfc_3550_recursion():
    arrival = np.array([0, 170, 320, 500, 640], float)
    ts = np.array([0, 160, 320, 480, 640])
    j, expected = 0.0, [0.0]
    for i in range(1, 5):  # the RFC's own loop, as the oracle
        d = (arrival[i] - arrival[i - 1]) - (ts[i] - ts[i - 1])
        j += (abs(d) - j) / 16
        expected.append(j)
    np.testing.assert_allclose(rtp.interarrival_jitter(arrival, ts), expected)


@pytest.mark.parametrize("seq, kept, refused", [
    ([65534, 65535, 1, 0, 2], [65534, 65535, 65537, 65536, 65538], 0),  # wrap and reorder: as extend_sequence
    ([10, 11, 30011, 12, 13], [10, 11, 12, 13], 1),  # one stray number far ahead
    ([10, 11, 12, 13, 5000, 14], [10, 11, 12, 13, 14], 1),  # further than MAX_DROPOUT ahead
    ([500, 501, 502, 450, 503], [500, 501, 502, 450, 503], 0),  # late by less than MAX_MISORDER
    ([500, 501, 502, 300, 503], [500, 501, 502, 503], 1),  # late by more: stray
    ([40000, 10, 11, 12], [40001, 40002, 40003], 1),  # a stray first packet (A.1 probation)
    ([10, 11, 30000, 30001, 30002], [10, 11, 12, 13, 14], 0),  # a restart: the jump is followed
    ([10, 11, 30000, 12, 30001, 13], [10, 11, 13, 12, 14], 1),  # A.1: its next number even later; then 13 strays
])
def test_sequence_validation_refuses_stray_numbers_as_rfc_3550_appendix_a1_does(seq, kept, refused):
    ext, valid = rtp.validate_sequence(np.array(seq))
    assert ext[valid].tolist() == kept and int((~valid).sum()) == refused
