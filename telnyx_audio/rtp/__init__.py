"""RTP as a layer of its own, below every source that carries it (forks, packet captures).

Sans I/O: datagrams and their arrival times in, recordings and statistics out.

- :mod:`.packet`: one datagram or many (numpy columns) -> typed packets; payload-type maps,
  RFC 4733 telephone events, RFC 3389 comfort noise, sequence/timestamp extension, RFC 3550
  interarrival jitter.
- :mod:`.datagrams`: :class:`~telnyx_audio.rtp.datagrams.Records`, the datagrams of one call
  with their tracks and arrival times, as a source hands them over.
- :mod:`.sources`: each SSRC anchored on the receive clock, both tracks on one timeline.
- :mod:`.render`: payloads decoded into place, comfort noise filled.
- :mod:`.assemble`: all of it, into a :class:`~telnyx_audio.model.Capture` with its RTP
  statistics and DTMF digits.

The names of :mod:`.packet` are available here too (``rtp.parse_packet``).
"""

from __future__ import annotations

from telnyx_audio.rtp.packet import (
    REASONS,
    DTMF_EVENTS,
    MalformedPacket,
    PacketColumns,
    PayloadType,
    RtpPacket,
    STATIC_PAYLOAD_TYPES,
    TelephoneEvent,
    build_packet,
    comfort_noise_level,
    extend_sequence,
    extend_timestamp,
    interarrival_jitter,
    looks_like_telephone_event,
    parse_packet,
    parse_packets,
    parse_payload_type,
    parse_telephone_event,
    payload_type_map,
    validate_sequence,
)

__all__ = [
    "REASONS",
    "RtpPacket",
    "MalformedPacket",
    "PayloadType",
    "TelephoneEvent",
    "STATIC_PAYLOAD_TYPES",
    "DTMF_EVENTS",
    "parse_packet",
    "parse_packets",
    "PacketColumns",
    "build_packet",
    "parse_payload_type",
    "payload_type_map",
    "parse_telephone_event",
    "looks_like_telephone_event",
    "comfort_noise_level",
    "extend_sequence",
    "validate_sequence",
    "extend_timestamp",
    "interarrival_jitter",
]
