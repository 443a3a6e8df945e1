"""``telnyx-audio fork capture`` and ``telnyx-audio fork simulate``: the fork's command line.

Kept apart from :mod:`telnyx_audio.cli`, which only adds these actions under ``fork``.
"""

from __future__ import annotations

import argparse
import json
import sys

__all__ = ["add_fork_commands"]

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def add_fork_commands(actions: "argparse._SubParsersAction") -> None:
    """Add the ``capture`` and ``simulate`` actions to the ``fork`` subcommand's parsers."""
    from telnyx_audio.cli._args import (existing_file, non_negative_float, port_number, positive_float, positive_int,
                                        probability)
    p = actions.add_parser(
        "capture", help="receive a fork's RTP and write WAVs and summary.json",
        description="Receive the RTP a fork sends (rx: the party's audio, inbound; tx: Telnyx's, outbound). "
        "Every datagram is written as it arrives to OUT/<call>/fork.rtpcap; on SIGINT/SIGTERM or after "
        "--idle-timeout seconds without packets, inbound.wav, outbound.wav, stereo.wav and summary.json "
        "(DTMF digits, RTP statistics) are written beside it.")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1; 0.0.0.0 for Telnyx)")
    p.add_argument("--rx-port", type=port_number, metavar="P", help="port for rx (the call's inbound audio)")
    p.add_argument("--tx-port", type=port_number, metavar="Q", help="port for tx (the call's outbound audio)")
    p.add_argument("--ports", metavar="LOW-HIGH", help="listen on every pair of this range (LOW/LOW+1, ...): one call per pair")
    p.add_argument("--out", required=True, metavar="DIR", help="output root (created)")
    p.add_argument("--idle-timeout", type=positive_float, metavar="S",
                   help="finish a call after S seconds without packets (with --rx-port/--tx-port: then exit)")
    p.add_argument("--allow", action="append", metavar="CIDR",
                   help="accept datagrams only from here (repeat); others are counted and dropped")
    p.add_argument("--redact-dtmf", action="store_true",
                   help="keep no typed digits: each call's capture is redacted in place when it ends (tones muted,"
                   " RFC 4733 events masked), redaction.json beside it (see docs/privacy.md)")
    p.add_argument("--payload-type", action="append", metavar="PT=ENCODING/CLOCK",
                   help="a dynamic payload type, e.g. 96=OPUS/48000 or 101=telephone-event/8000 (repeat)")
    from telnyx_audio.cli.service import add_service_options

    add_service_options(p, tls=False, allow=False, log_level=True, proxy=False)
    p.set_defaults(func=_capture)

    p = actions.add_parser(
        "simulate", help="play a WAV or capture as a fork: RTP to two UDP ports",
        description="Our fake Telnyx for forks: the inbound track as RTP to --rx, outbound to --tx, "
        "with optional loss, reordering, duplication, an SSRC change and RFC 4733 DTMF.")
    p.add_argument("source", metavar="AUDIO_OR_CAPTURE", type=existing_file, help="a WAV (mono: inbound; stereo: L inbound, R outbound) or a capture")
    p.add_argument("--rx", metavar="HOST:PORT", help="where the inbound track goes")
    p.add_argument("--tx", metavar="HOST:PORT", help="where the outbound track goes")
    p.add_argument("--codec", default="PCMU", help="PCMU, PCMA, G722, L16 or OPUS (default PCMU)")
    p.add_argument("--packet-ms", type=positive_int, default=20, metavar="MS", help="audio per packet (default 20)")
    p.add_argument("--realtime", action="store_true", help="pace packets as a live call (default: --speed times faster)")
    p.add_argument("--speed", type=positive_float, default=20.0, help="how much faster than real time when not --realtime (default 20)")
    p.add_argument("--drop", type=probability, default=0.0, metavar="P", help="lose each packet with probability P")
    p.add_argument("--reorder", type=probability, default=0.0, metavar="P", help="swap each packet with a later one with probability P")
    p.add_argument("--duplicate", type=probability, default=0.0, metavar="P", help="send each packet twice with probability P")
    p.add_argument("--ssrc-change-at", type=non_negative_float, metavar="S", help="continue under a new SSRC from S seconds on")
    p.add_argument("--dtmf", action="append", metavar="T:DIGIT", help="press DIGIT at T seconds on the rx side (repeat)")
    p.add_argument("--seed", type=int, default=0, help="seed for the faults (default 0)")
    p.set_defaults(func=_simulate)


def _address(text: str | None, name: str) -> tuple[str, int] | None:
    if text is None:
        return None
    host, sep, port = text.removeprefix("udp:").rpartition(":")
    if not sep or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ValueError(f"--{name} must be HOST:PORT (port 1-65535), got {text!r}")
    return host.strip("[]") or "127.0.0.1", int(port)


def _simulate(args: argparse.Namespace) -> int:
    from telnyx_audio.errors import CaptureError, TelnyxAudioError, UnsupportedEncodingError
    from telnyx_audio.simulators.fork import simulate_fork

    try:
        dtmf = []
        for item in args.dtmf or []:
            when, sep, digit = item.partition(":")
            try:
                dtmf.append((float(when), digit))
            except ValueError:
                sep = ""
            if not sep:
                raise ValueError(f"--dtmf takes T:DIGIT (e.g. 1.5:5), got {item!r}")
        rx, tx = _address(args.rx, "rx"), _address(args.tx, "tx")
        if rx is None and tx is None:
            raise ValueError("give --rx HOST:PORT, --tx HOST:PORT or both (where the inbound and outbound tracks go)")
        kwargs = dict(codec=args.codec, packet_ms=args.packet_ms, realtime=args.realtime, speed=args.speed,
                      drop=args.drop, reorder=args.reorder, duplicate=args.duplicate,
                      ssrc_change_at=args.ssrc_change_at, seed=args.seed)
        if dtmf:
            kwargs["dtmf"] = dtmf
        report = simulate_fork(args.source, rx, tx, **kwargs)
    except (TelnyxAudioError, OSError) as exc:  # the source cannot be read, or sending failed
        if isinstance(exc, UnsupportedEncodingError):
            print(f"telnyx-audio: error: {exc}", file=sys.stderr)
            return EXIT_USAGE
        if isinstance(exc, CaptureError):
            print(f"telnyx-audio fork simulate: error: argument AUDIO_OR_CAPTURE: {exc}", file=sys.stderr)
            return EXIT_USAGE
        print(f"telnyx-audio: cannot simulate the fork: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except (ValueError, TypeError) as exc:
        print(f"telnyx-audio: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    print(json.dumps(vars(report)))
    return EXIT_OK


def _capture(args: argparse.Namespace) -> int:
    import asyncio
    import signal

    from telnyx_audio.forks.receiver import ForkReceiver

    if args.ports and (args.rx_port is not None or args.tx_port is not None):
        print("telnyx-audio: error: give --rx-port/--tx-port or --ports, not both", file=sys.stderr)
        return EXIT_USAGE
    if not args.ports and (args.rx_port is None or args.tx_port is None):
        print("telnyx-audio: error: give --rx-port and --tx-port, or --ports LOW-HIGH", file=sys.stderr)
        return EXIT_USAGE
    from telnyx_audio.cli.service import start_logging

    start_logging(args)
    try:
        receiver = ForkReceiver(args.out, redact_dtmf=args.redact_dtmf, host=args.host, rx_port=args.rx_port,
                                tx_port=args.tx_port,
                                ports=args.ports, listen_all=bool(args.ports), idle_timeout=args.idle_timeout,
                                allow=args.allow, payload_types=args.payload_type, certfile=args.certfile,
                                keyfile=args.keyfile, metrics_host=args.metrics_host, metrics_port=args.metrics_port,
                                drain_timeout_s=args.drain_timeout, min_free_bytes=args.min_free_bytes)
    except ValueError as exc:
        print(f"telnyx-audio: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as exc:
        print(f"telnyx-audio fork capture: error: --out {args.out}: cannot use it: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_USAGE

    async def run() -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):  # the first drains, a second stops at once
            loop.add_signal_handler(sig, receiver.request_drain)
        task = asyncio.ensure_future(receiver.serve_async(until_idle=not args.ports))
        while not receiver.listening and not task.done():
            await asyncio.sleep(0.01)
        if not task.done():
            pairs = receiver.pairs
            where = (f"rx udp:{args.host}:{pairs[0][0]} tx udp:{args.host}:{pairs[0][1]}" if len(pairs) == 1
                     else f"{len(pairs)} pairs udp:{args.host}:{pairs[0][0]}-{pairs[-1][1]}")
            allowed = f" (allowed: {', '.join(args.allow)})" if args.allow else ""
            metrics = f"; metrics on {receiver.metrics_url}metrics" if receiver.metrics_url else ""
            print(f"fork capture: listening {where}{allowed} -> {receiver.out}{metrics}", flush=True)
        await task

    try:
        asyncio.run(run())
    except OSError as exc:
        print(f"telnyx-audio: error: cannot listen on {args.host}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_FAILED
    failed = [s for s in receiver.sessions if s.state == "error"]
    print(f"fork capture: stopped; {len(receiver.sessions)} calls, {receiver.datagrams} datagrams written,"
          f" {receiver.dropped} dropped (not allowed), {len(failed)} with errors", flush=True)
    for s in receiver.sessions:
        line = f"  {s.folder}: {s.state}, rx {s.packets[0]} / tx {s.packets[1]} datagrams"
        if s.summary:
            rtp = s.summary.get("rtp", {})
            line += f", {s.summary.get('duration_s', 0):.1f} s, dtmf {s.summary.get('dtmf', '')!r}"
            line += "".join(f"; {k}: {v.get('missing', v['lost'])} packets never arrived, jitter {v['jitter_ms']:.1f} ms"
                            for k, v in rtp.items())
        if s.error:
            line += f"; {s.error}"
        print(line, flush=True)
    return EXIT_FAILED if failed else EXIT_OK
