"""``telnyx-audio redact``: redacted copies of captures, with WAVs, summaries and manifests."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

__all__ = ["add_redact_parser", "run_redact"]

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def add_redact_parser(sub: Any) -> None:
    """Add the ``redact`` subcommand to the ``telnyx-audio`` parser's subparsers.

    Parameters
    ----------
    sub : argparse._SubParsersAction
        What ``ArgumentParser.add_subparsers`` returned.
    """
    p = sub.add_parser(
        "redact", help="write redacted copies of captures: DTMF tones and chosen spans muted, digits masked",
        description="For each capture (WebSocket JSONL, fork .rtpcap, pcap/pcapng, WAV), write into OUT/<name>/ a redacted "
        "copy of the capture itself (same name), its WAVs and summary.json, and redaction.json (what was muted, "
        "why, the detector's settings, SHA-256 of input and outputs). DTMF tones are muted on both tracks with "
        "a guard band; key events keep their time with the digit masked as '*'. Without --dtmf or --span, "
        "--dtmf is implied. A capture that cannot be redacted safely is reported and nothing is written for "
        "it (exit code 1; 2 for a bad option or a span outside the call).")
    p.add_argument("captures", nargs="+", metavar="FILES", help="capture files (.jsonl, .gz, .rtpcap, .pcap, .pcapng, .wav)")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder (created)")
    p.add_argument("--dtmf", action="store_true", help="find DTMF tones and mute them; mask key events")
    p.add_argument("--span", action="append", default=[], metavar="START-END[:TRACK]",
                   help="also mute this stretch (seconds; TRACK inbound or outbound, default both); repeatable")
    p.add_argument("--pad", type=float, default=0.25, metavar="SECONDS",
                   help="guard band muted before and after each tone (default 0.25)")
    p.add_argument("--encoding", metavar="ENC", help="media format of logs without start (PCMU, PCMA, L16...)")
    p.add_argument("--sample-rate", type=int, metavar="HZ", help="with --encoding")
    p.set_defaults(func=run_redact)


def _error(message: str) -> None:
    print(f"telnyx-audio: error: {message}", file=sys.stderr)


def run_redact(args: argparse.Namespace) -> int:
    """Run ``telnyx-audio redact``; returns the exit code."""
    from telnyx_audio._util.paths import capture_stem, claim_name, safe_name
    from telnyx_audio.errors import TelnyxAudioError
    from telnyx_audio.model.redact import as_span
    from telnyx_audio.redaction.core import redact

    try:
        spans = [as_span(s) for s in args.span]
    except ValueError as exc:
        _error(str(exc))
        return EXIT_USAGE
    if not 0 <= args.pad < 60:
        _error(f"--pad must be from 0 to 60 seconds, got {args.pad:g}")
        return EXIT_USAGE
    media_format = None
    if args.encoding is not None or args.sample_rate is not None:
        if args.encoding is None:
            _error("--sample-rate needs --encoding")
            return EXIT_USAGE
        from telnyx_audio.codecs import REGISTRY, normalize_encoding

        try:
            info = REGISTRY[normalize_encoding(args.encoding)]
        except ValueError as exc:
            _error(str(exc))
            return EXIT_USAGE
        rate = args.sample_rate or info.audio_rate
        if rate is None:
            _error(f"--encoding {args.encoding} needs --sample-rate")
            return EXIT_USAGE
        media_format = {"encoding": info.name, "sample_rate": rate}
    dtmf = args.dtmf or not spans
    out = Path(args.out)
    used: set[str] = set()
    status = EXIT_OK
    for path in args.captures:
        name = claim_name(safe_name(capture_stem(path), "capture"), used)
        try:
            result = redact(path, dtmf=dtmf, spans=spans, pad_s=args.pad, out=out / name, media_format=media_format)
        except (TelnyxAudioError, OSError) as exc:
            print(f"{path}: error: {getattr(exc, 'strerror', None) or exc}", file=sys.stderr)
            status = max(status, EXIT_FAILED)
            continue
        except ValueError as exc:  # the caller's mistake (a span outside the call): usage, nothing written
            print(f"{path}: error: {exc}", file=sys.stderr)
            status = EXIT_USAGE
            continue
        for s in result.streams:
            label = path if len(result.streams) == 1 else f"{path} [{s.get('stream_id')}]"
            muted = max(s["muted_s"].values(), default=0.0)
            print(f"{label} -> {result.folder}/: {len(s['spans'])} spans muted ({s['tones_found']} tones,"
                  f" {muted:.2f} s), {s['keys']} keys masked")
    return status
