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
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
