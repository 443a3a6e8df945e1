"""The ``telnyx-audio`` command line.

Exit codes: 0 success; 1 when some input failed (the others are still processed);
2 for bad arguments.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Sequence

__all__ = ["main"]

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def _safe_name(text: str, fallback: str = "capture") -> str:
    """A folder name from untrusted text: no separators, no dot-only names, bounded length."""
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._")[:120]
    return name or fallback


def _describe(summary: dict) -> str:
    parts = []
    for name, t in summary["track_reports"].items():
        parts.append(
            f"{name} {t['frames_received']}/{t['frames_expected']} frames,"
            f" {t['n_gaps']} gaps ({t['gap_ms']:.0f} ms), {t['duplicates']} dup, {t['reordered']} reordered"
        )
    fmt = summary["media_format"]
    return (
        f"{summary['duration_s']:.2f} s {fmt['encoding']} {fmt['sample_rate']} Hz; "
        + ("; ".join(parts) or "no media")
        + f"; bad lines {summary['bad_lines']}"
    )


def _decode(args: argparse.Namespace) -> int:
    from telnyx_audio.capture import read_capture
    from telnyx_audio.errors import TelnyxAudioError
    from telnyx_audio.wav import write_wavs

    out_root = Path(args.out)
    used: set[str] = set()
    status = EXIT_OK
    for path in args.captures:
        stem = base = _safe_name(Path(path).stem)
        n = 1
        while stem in used:
            n += 1
            stem = f"{base}-{n}"
        used.add(stem)
        try:
            capture = read_capture(path)
            dest = out_root / stem
            files = write_wavs(capture.recording, dest)
            summary = capture.summary()
            summary["files"] = {k: v.name for k, v in files.items()}
            (dest / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
        except (TelnyxAudioError, OSError) as exc:
            print(f"{path}: error: {exc}", file=sys.stderr)
            status = EXIT_FAILED
            continue
        print(f"{path} -> {dest}/: {_describe(summary)}")
    return status


def _interrupt(signum: int, frame: object) -> None:
    """SIGTERM ends a server the way Ctrl-C does."""
    raise KeyboardInterrupt


def _webhooks_serve(args: argparse.Namespace) -> int:
    import os
    import signal

    from telnyx_audio.errors import MalformedKeyError
    from telnyx_audio.receiver import WebhookReceiver

    key = args.public_key or os.environ.get("TELNYX_PUBLIC_KEY")
    if not key:
        print("telnyx-audio: error: --public-key or TELNYX_PUBLIC_KEY is required", file=sys.stderr)
        return EXIT_USAGE
    try:
        rx = WebhookReceiver(args.out, key, host=args.host, port=args.port, rejected=args.rejected,
                             max_body=args.max_body, tolerance_s=args.tolerance)
    except (MalformedKeyError, ValueError) as exc:
        print(f"telnyx-audio: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as exc:
        print(f"telnyx-audio: error: cannot listen on {args.host}:{args.port}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_FAILED
    signal.signal(signal.SIGTERM, _interrupt)
    print(f"listening on {rx.url}: verified -> {rx.verified_log.path}, rejected -> {rx.rejected_log.path}", flush=True)
    try:
        rx.serve_forever()
    except KeyboardInterrupt:
        pass
    print(f"stopped: {rx.counts['verified']} verified, {rx.counts['rejected']} rejected", flush=True)
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``telnyx-audio`` (subcommands included)."""
    parser = argparse.ArgumentParser(
        prog="telnyx-audio", description="Capture, decode and analyse Telnyx call audio."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    dec = sub.add_parser(
        "decode",
        help="decode capture files (JSONL of Telnyx messages) to WAV and summary.json",
        description="Write inbound.wav, outbound.wav, stereo.wav (left inbound, right outbound) "
        "and summary.json for each capture into OUT/<capture name>/. A bad file is reported "
        "and the others are still decoded (exit code 1).",
    )
    dec.add_argument("captures", nargs="+", metavar="CAPTURE.jsonl", help="capture files")
    dec.add_argument("--out", required=True, metavar="DIR", help="output folder (created)")
    dec.set_defaults(func=_decode)

    hooks = sub.add_parser("webhooks", help="receive and verify Telnyx webhooks")
    hooks_sub = hooks.add_subparsers(dest="webhooks_command", required=True, metavar="ACTION")
    serve = hooks_sub.add_parser(
        "serve",
        help="run an HTTP server that verifies deliveries (Ed25519) and appends them to JSONL",
        description="Valid deliveries are answered 200 after they are on disk in --out; the "
        "rest are answered 4xx and logged to --rejected. Stop with Ctrl-C or SIGTERM.",
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8080, help="port (default 8080; 0 picks a free one)")
    serve.add_argument("--out", required=True, metavar="EVENTS.jsonl", help="verified deliveries, appended")
    serve.add_argument("--public-key", metavar="KEY", help="Telnyx public key (base64, PEM...); default $TELNYX_PUBLIC_KEY")
    serve.add_argument("--rejected", metavar="FILE", help="rejected deliveries (default: <out>.rejected.jsonl)")
    serve.add_argument("--max-body", type=int, default=1 << 20, metavar="BYTES", help="largest body accepted (default 1 MiB)")
    serve.add_argument("--tolerance", type=float, default=300, metavar="S", help="signing-time skew allowed (default 300 s)")
    serve.set_defaults(func=_webhooks_serve)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
