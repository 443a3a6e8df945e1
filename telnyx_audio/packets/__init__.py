"""Packet captures (pcap, pcapng): a source beside WebSocket streams and forks.

Reads the files VoIP engineers already have -- classic pcap and pcapng, plain or gzip --
down through the link layer, IPv4/IPv6 (fragments reassembled), UDP and TCP (SIP segments
reassembled), to SIP dialogs with their SDP and the RTP datagrams of each call, handed on
with their arrival times to :mod:`telnyx_audio.rtp`.
"""

from __future__ import annotations
