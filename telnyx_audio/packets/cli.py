"""The packet-capture parts of the ``telnyx-audio`` command line.

``decode --pair RX_PORT,TX_PORT`` and ``decode --swap-tracks`` (:func:`add_decode_options`),
and ``telnyx-audio export-pcap FORK.rtpcap OUT.pcap`` (:func:`add_parser`): a fork capture
written as a pcap file Wireshark and tshark open (UDP to the receiver's ports, arrival times
kept). :mod:`telnyx_audio.cli` only registers them; reading a fork capture is handed in by
it (a source never imports another).
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import sys
from typing import Any, Callable

import numpy as np

__all__ = ["add_decode_options", "add_parser", "parse_pair", "export_pcap"]

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
#: Where exported datagrams come from: TEST-NET-1 (RFC 5737), as no sender address is recorded.
SENDER = "192.0.2.1"


def parse_pair(text: str) -> tuple[int, int]:
    """``RX_PORT,TX_PORT`` as two ports.

    Examples
    --------
    >>> parse_pair("40000,40002")
    (40000, 40002)
    """
    parts = str(text).replace(":", ",").split(",")
    try:
        rx, tx = (int(p) for p in parts)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected RX_PORT,TX_PORT (two UDP ports, e.g. 40000,40002), got {text!r}")
    if not (0 < rx < 65536 and 0 < tx < 65536) or rx == tx:
        raise argparse.ArgumentTypeError(f"expected two different UDP ports 1-65535, got {text!r}")
    return rx, tx


def add_decode_options(dec: argparse.ArgumentParser) -> None:
    """Add ``--pair`` and ``--swap-tracks`` to the ``decode`` subcommand."""
    dec.add_argument("--pair", type=parse_pair, metavar="RX_PORT,TX_PORT",
                     help="packet captures of a Telnyx fork (tcpdump at the receiver): RTP to RX_PORT is the "
                     "inbound track, to TX_PORT the outbound one, of one call")
    dec.add_argument("--swap-tracks", action="store_true",
                     help="packet captures: swap inbound and outbound (inbound is otherwise what the INVITE's "
                     "sender sent, or without SIP the first RTP stream seen)")


def export_pcap(records: Any, out: str | os.PathLike[str], *, sender: str = SENDER) -> int:
    """Write a fork capture's datagrams as a pcap file; returns the number of packets.

    Each datagram becomes a UDP packet from ``sender`` to the receiver's address (its
    ``host``, 127.0.0.1 when it listened on every address) on its track's port (``rx_port``
    for inbound, ``tx_port`` for outbound), at its arrival time, over Ethernet.

    Parameters
    ----------
    records : telnyx_audio.rtp.datagrams.Records
        A fork capture's datagrams (:func:`telnyx_audio.forks.rtpcap.read_records`).
    out : str or PathLike
        The pcap file to write (replaced if it exists).
    sender : str
        Source address of the packets.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from telnyx_audio.rtp.datagrams import Records
    >>> recs = Records.from_datagrams([0, 1], [1_000_000, 1_020_000], [b"\\x80" * 20, b"\\x80" * 20],
    ...                               {"rx_port": 40000, "tx_port": 40001})
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "fork.pcap"
    >>> export_pcap(recs, out)
    2
    """
    from telnyx_audio.packets.writer import PcapWriter, udp_packet

    meta = records.meta
    host = str(meta.get("host") or "127.0.0.1")
    try:
        ip = ipaddress.ip_address(host)
        if ip.is_unspecified:
            host = "127.0.0.1" if ip.version == 4 else "::1"
    except ValueError:
        host = "127.0.0.1"
    if ":" in host and ":" not in sender:
        sender = "2001:db8::1"
    ports = (int(meta.get("rx_port") or 40000), int(meta.get("tx_port") or 40001))
    src_ports = (30000, 30002)
    order = np.argsort(records.received_us, kind="stable")
    with PcapWriter(out) as w:
        for i in order.tolist():
            t = int(records.track[i])
            data = records.buf[records.offset[i] : records.offset[i] + records.length[i]].tobytes()
            w.packet(int(records.received_us[i]) * 1000, udp_packet(sender, src_ports[t], host, ports[t], data))
    return int(order.size)


def add_parser(sub: Any, *, read_fork_records: Callable[[str], Any]) -> None:
    """Add ``export-pcap`` to the ``telnyx-audio`` parser's subparsers.

    Parameters
    ----------
    sub : argparse._SubParsersAction
    read_fork_records : callable
        ``path -> Records`` of a fork capture (the CLI hands in the fork source's reader).
    """
    p = sub.add_parser(
        "export-pcap", help="write a fork capture (.rtpcap) as a pcap file for Wireshark",
        description="Each datagram of FORK.rtpcap becomes a UDP packet (from 192.0.2.1 to the receiver's "
        "address, on its rx or tx port) at its arrival time, in OUT.pcap: Wireshark and tshark open it and "
        "give the same RTP statistics (decode the ports as RTP: -d udp.port==PORT,rtp). Read it back with "
        "telnyx-audio decode --pair RX_PORT,TX_PORT.")
    p.add_argument("capture", metavar="FORK.rtpcap", help="a fork receiver's capture")
    p.add_argument("out", metavar="OUT.pcap", help="the pcap file to write")
    p.set_defaults(func=lambda args: _export(args, read_fork_records))


def _export(args: argparse.Namespace, read_fork_records: Callable[[str], Any]) -> int:
    try:
        records = read_fork_records(args.capture)
    except (OSError, ValueError) as exc:
        print(f"{args.capture}: error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    try:
        n = export_pcap(records, args.out)
    except OSError as exc:
        print(f"{args.out}: error: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_FAILED
    meta = records.meta
    print(f"{args.capture} -> {args.out}: {n} packets (rx port {meta.get('rx_port')}, tx port {meta.get('tx_port')})")
    return EXIT_OK
