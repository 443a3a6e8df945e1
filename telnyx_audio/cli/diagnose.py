"""``telnyx-audio diagnose FILES... [--json] [--webhooks FILES] [--delay-ms MS]``: what went wrong on each call.

A readable report per call (the verdict, the E-model per track, each finding with its time
span), or with ``--json`` one JSON object per line and call: ``{"source", "severity",
"findings": [...], "quality": {track: {"r", "mos", "scale", "inputs", ...}}, "notes"}``.

Exit status: 0 when nothing above ``info`` was found in any call, 1 when a warning or a
problem was (or a file could not be read), 2 for bad arguments.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

__all__ = ["add_diagnose_parser", "run_diagnose"]

EXIT_OK, EXIT_FOUND, EXIT_USAGE = 0, 1, 2


def add_diagnose_parser(sub: Any) -> None:
    """Add the ``diagnose`` subcommand to the ``telnyx-audio`` parser's subparsers.

    Parameters
    ----------
    sub : argparse._SubParsersAction
        What ``ArgumentParser.add_subparsers`` returned.
    """
    p = sub.add_parser(
        "diagnose", help="what went wrong on each call: findings with time spans, E-model MOS per track",
        description="Diagnose each call of the capture files: one-way audio, echo, loss, jitter, choppy audio, "
        "clipping, levels, noise, codec mismatch, dead air, slow replies, DTMF mismatches; and the E-model "
        "(ITU-T G.107 / G.107.1) per track with each input's provenance. Exit status 0 when nothing above "
        "info was found, 1 when a warning or problem was (or a file could not be read), 2 for bad arguments.")
    p.add_argument("files", nargs="+", metavar="FILES", help="capture files (WebSocket JSONL, .jsonl.gz, fork .rtpcap, pcap/pcapng)")
    p.add_argument("--json", action="store_true", help="one JSON object per call and line instead of the report")
    p.add_argument("--webhooks", nargs="+", metavar="FILES", help="webhook logs: Telnyx's call_quality_stats beside ours")
    p.add_argument("--delay-ms", type=float, metavar="MS", help="the one-way (mouth-to-ear) delay, if known")
    p.set_defaults(func=run_diagnose)


def _fail(message: str) -> int:
    print(f"telnyx-audio: error: {message}", file=sys.stderr)
    return EXIT_USAGE


def run_diagnose(args: argparse.Namespace) -> int:
    """Run ``telnyx-audio diagnose``; returns the exit code."""
    from telnyx_audio.diagnosis import diagnose_captures
    from telnyx_audio.errors import TelnyxAudioError

    if args.delay_ms is not None and not args.delay_ms >= 0:
        return _fail(f"--delay-ms must be a delay in ms, 0 or more, got {args.delay_ms}")
    missing = [f for f in args.files if not os.path.isfile(f)]
    if missing:
        return _fail(f"no such file: {', '.join(repr(m) for m in missing)}")
    webhooks = None
    if args.webhooks:
        from telnyx_audio.webhooks import load_webhooks

        try:
            webhooks = load_webhooks(args.webhooks)
        except (OSError, ValueError) as exc:
            return _fail(f"--webhooks: {exc}")
    status = EXIT_OK
    for path in args.files:
        try:
            results = diagnose_captures(path, webhooks=webhooks, one_way_delay_ms=args.delay_ms)
        except (TelnyxAudioError, OSError, ValueError) as exc:
            print(f"{path}: error: {exc}", file=sys.stderr)
            status = EXIT_FOUND
            continue
        for d in results:
            try:
                print(json.dumps(d.to_dict(), allow_nan=False) if args.json else d.report(), flush=True)
            except BrokenPipeError:  # `| head`: the reader has gone, nothing more to say
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
                return EXIT_FOUND if status or d.severity != "info" else EXIT_OK
            if d.severity != "info":
                status = EXIT_FOUND
    return status
