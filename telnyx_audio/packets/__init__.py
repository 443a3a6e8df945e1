"""Packet captures (pcap, pcapng): a source beside WebSocket streams and forks.

Reads the files VoIP engineers already have -- classic pcap and pcapng, plain or gzip --
down through the link layer, IPv4/IPv6 (fragments reassembled), UDP and TCP (SIP segments
reassembled), to SIP dialogs with their SDP and the RTP datagrams of each call, handed on
with their arrival times to :mod:`telnyx_audio.rtp`.

The public names: :func:`~telnyx_audio.packets.read.read_pcap_captures` and
:func:`~telnyx_audio.packets.read.iter_pcap_captures` (one Capture per call; also through
:func:`telnyx_audio.read_captures`), :func:`~telnyx_audio.packets.ladder.sip_ladder` and
:func:`~telnyx_audio.packets.ladder.plot_ladder`; :class:`~telnyx_audio.packets.calls.CallReader`
for the calls' datagrams before decoding.
"""

from __future__ import annotations
