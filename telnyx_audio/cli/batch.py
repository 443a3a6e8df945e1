"""``telnyx-audio batch``: many captures into DIR/calls.parquet, DIR/segments.parquet and WAVs."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from telnyx_audio.cli._args import positive_int

__all__ = ["add_batch_parser"]

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def add_batch_parser(sub: Any) -> None:
    """Add the ``batch`` subcommand to the ``telnyx-audio`` parser's subparsers.

    Parameters
    ----------
    sub : argparse._SubParsersAction
        What ``ArgumentParser.add_subparsers`` returned.
    """
    p = sub.add_parser(
        "batch", help="decode and analyse many captures into DIR/calls.parquet (every core, or Dask)",
        description="For each capture: WAVs and summary.json in DIR/<name>/ (as decode writes them), "
        "and its rows in DIR/calls.parquet (one per call) and DIR/segments.parquet (speech, turns, "
        "overlaps, silences, DTMF). A bad file is a row with its error (exit code 1). Re-running on "
        "the same DIR skips calls done from the same file (path, size and time) with the same options.")
    p.add_argument("inputs", nargs="+", metavar="FILES_OR_GLOBS", help="capture files, folders or globs ('caps/**/*.jsonl')")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder (created)")
    p.add_argument("--jobs", type=positive_int, metavar="N", help="worker processes (default: every core)")
    p.add_argument("--scheduler", metavar="ADDRESS", help="run on this Dask scheduler (tcp://host:port) instead")
    p.add_argument("--no-wav", action="store_true", help="write the tables only, no per-call WAVs")
    p.add_argument("--no-analysis", action="store_true", help="decode only: no talk/latency/level columns, no segments")
    p.add_argument("--webhooks", nargs="+", metavar="FILES", help="webhook logs to join on the call ids")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--file-timeout", type=float, default=600.0, metavar="SECONDS",
                   help="time limit of one file; past it the file is an error row (default: 600; 0: none)")
    p.set_defaults(func=run_batch)


def _fail(message: str) -> int:
    print(f"telnyx-audio: error: {message}", file=sys.stderr)
    return EXIT_USAGE


def run_batch(args: argparse.Namespace) -> int:
    """Run ``telnyx-audio batch``; returns the exit code."""
    from telnyx_audio.errors import TelnyxAudioError

    from telnyx_audio.fleet.run import batch, expand_inputs

    if args.jobs is not None and args.jobs < 1:
        return _fail(f"--jobs must be at least 1, got {args.jobs}")
    if not args.file_timeout >= 0:
        return _fail(f"--file-timeout must be a number of seconds (0: no limit), got {args.file_timeout}")
    try:
        expand_inputs(args.inputs)
    except ValueError as exc:
        return _fail(str(exc))
    webhooks = None
    if args.webhooks:
        from telnyx_audio.webhooks import load_webhooks

        try:
            webhooks = load_webhooks(args.webhooks)
        except (OSError, ValueError) as exc:
            return _fail(f"--webhooks: {exc}")
    client = None
    if args.scheduler:
        try:
            from distributed import Client
        except ImportError:
            return _fail("--scheduler needs Dask: pip install 'telnyx-audio[dask]'")
        try:
            client = Client(args.scheduler, timeout="5s")
        except (OSError, TimeoutError, ValueError) as exc:
            return _fail(f"cannot connect to the Dask scheduler at {args.scheduler!r}: {exc}")
    try:
        result = batch(args.inputs, args.out, jobs=args.jobs, client=client, analyze=not args.no_analysis,
                       wav=not args.no_wav, webhooks=webhooks, progress=not args.no_progress,
                       file_timeout_s=args.file_timeout or None)
    except (ValueError, TypeError) as exc:
        return _fail(str(exc))
    except OSError as exc:  # the output folder cannot be written
        print(f"telnyx-audio batch: error: --out {args.out}: {exc.strerror or exc}"
              f"{f' ({exc.filename})' if exc.filename and str(exc.filename) != args.out else ''}", file=sys.stderr)
        return EXIT_USAGE
    except TelnyxAudioError as exc:
        print(f"telnyx-audio: error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    finally:
        if client is not None:
            client.close()
    for row in result.errors.itertuples():
        print(f"{row.path}: error: {row.error}", file=sys.stderr)
    calls = result.calls
    ok = int((calls["error"] == "").sum())
    print(f"batch: {len(calls)} calls, {ok} ok, {len(result.errors)} failed, {result.skipped} skipped"
          f" (already done) -> {result.out}/calls.parquet, segments.parquet ({len(result.segments)} segments)"
          f" in {result.elapsed_s:.1f} s")
    return EXIT_FAILED if len(result.errors) else EXIT_OK
