"""The ``telnyx-audio`` command line.

Exit codes: 0 success; 1 when some input failed (the others are still processed);
2 for bad arguments; 3 when Telnyx answered with an error; 4 when Telnyx did not answer.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Sequence

__all__ = ["main"]

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_API, EXIT_NO_ANSWER = 0, 1, 2, 3, 4


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


def _call(args: argparse.Namespace) -> int:
    """stream / fork / transcription start|stop: one Call Control command."""
    from telnyx_audio import callcontrol as cc

    def maybe(value):
        return cc.Unchecked(value) if (args.unchecked and value is not None) else value

    try:
        client = cc.TelnyxClient(api_key=args.api_key, base_url=args.base_url)
        common = {"client_state": args.client_state, "command_id": args.command_id or True}
        if args.command == "stream" and args.action == "start":
            params = dict(_pair(p) for p in args.param or [])
            result = client.start_streaming(
                args.call_control_id, stream_url=args.url, stream_track=maybe(args.track),
                stream_codec=maybe(args.codec), stream_auth_token=args.auth_token,
                custom_parameters=params or None,
                stream_bidirectional_mode=maybe(args.bidirectional_mode),
                stream_bidirectional_codec=maybe(args.bidirectional_codec),
                stream_bidirectional_sampling_rate=maybe(args.bidirectional_sampling_rate),
                stream_bidirectional_target_legs=maybe(args.bidirectional_target_legs),
                enable_dialogflow=True if args.enable_dialogflow else None, **common)
        elif args.command == "stream":
            result = client.stop_streaming(args.call_control_id, stream_id=args.stream_id, **common)
        elif args.command == "fork" and args.action == "start":
            result = client.start_forking(args.call_control_id, rx=args.rx, tx=args.tx,
                                          stream_type=maybe(args.stream_type) or "decrypted", **common)
        elif args.command == "fork":
            result = client.stop_forking(args.call_control_id, stream_type=maybe(args.stream_type), **common)
        elif args.action == "start":
            config = json.loads(args.config) if args.config else {}
            if not isinstance(config, dict):
                raise ValueError("--config must be a JSON object")
            for key in ("language", "transcription_model"):
                if getattr(args, key, None):
                    config[key] = getattr(args, key)
            if args.interim_results:
                config["interim_results"] = True
            result = client.start_transcription(
                args.call_control_id, transcription_engine=maybe(args.engine),
                transcription_tracks=maybe(args.tracks), transcription_engine_config=config or None, **common)
        else:
            result = client.stop_transcription(args.call_control_id, **common)
    except (ValueError, TypeError) as exc:
        print(f"telnyx-audio: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except cc.TelnyxAPIError as exc:
        print(f"telnyx-audio: Telnyx error: {exc}", file=sys.stderr)
        return EXIT_API
    except cc.TelnyxConnectionError as exc:
        print(f"telnyx-audio: {exc}", file=sys.stderr)
        return EXIT_NO_ANSWER
    print(json.dumps({"result": result.result, "action": result.action, "call_control_id": result.call_control_id,
                      "command_id": result.command_id, "request_id": result.request_id}))
    return EXIT_OK


def _pair(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise ValueError(f"--param takes NAME=VALUE, got {text!r}")
    return name, value


def _api_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("call_control_id", metavar="CALL_CONTROL_ID")
    p.add_argument("--api-key", help="Telnyx API key (default $TELNYX_API_KEY; prefer the variable: arguments show in ps)")
    p.add_argument("--base-url", help="API base URL (default $TELNYX_BASE_URL, else https://api.telnyx.com/v2)")
    p.add_argument("--client-state", metavar="TEXT", help="text echoed (base64-encoded for you) in later webhooks")
    p.add_argument("--command-id", metavar="ID", help="idempotency key (default: a new UUID)")
    p.add_argument("--unchecked", action="store_true", help="send enum values as given, for values newer than this tool")
    p.set_defaults(func=_call)


def _add_call_control(sub) -> None:
    from telnyx_audio import callcontrol as cc

    def one_of(values) -> str:
        return "one of: " + ", ".join(str(v) for v in values)

    stream = sub.add_parser("stream", help="start or stop streaming a call's audio to a WebSocket")
    actions = stream.add_subparsers(dest="action", required=True, metavar="ACTION")
    p = actions.add_parser("start", help="streaming_start", description="Start streaming a call's media (streaming_start).")
    _api_options(p)
    p.add_argument("--url", metavar="WSS_URL", help="stream_url: wss:// URL Telnyx connects to")
    p.add_argument("--track", metavar="TRACK", help="stream_track, " + one_of(cc.STREAM_TRACKS) + " (Telnyx default inbound_track)")
    p.add_argument("--codec", metavar="CODEC", help="stream_codec, " + one_of(cc.STREAM_CODECS))
    p.add_argument("--auth-token", metavar="TOKEN", help="stream_auth_token (at most 4000 characters)")
    p.add_argument("--param", action="append", metavar="NAME=VALUE", help="custom parameter (repeat); arrives in start.custom_parameters")
    p.add_argument("--bidirectional-mode", metavar="MODE", help="stream_bidirectional_mode, " + one_of(cc.BIDIRECTIONAL_MODES))
    p.add_argument("--bidirectional-codec", metavar="CODEC", help="stream_bidirectional_codec (rtp mode only), " + one_of(cc.BIDIRECTIONAL_CODECS))
    p.add_argument("--bidirectional-sampling-rate", type=int, metavar="HZ",
                   help="stream_bidirectional_sampling_rate, " + one_of(cc.BIDIRECTIONAL_SAMPLING_RATES))
    p.add_argument("--bidirectional-target-legs", metavar="LEGS", help="stream_bidirectional_target_legs, " + one_of(cc.BIDIRECTIONAL_TARGET_LEGS))
    p.add_argument("--enable-dialogflow", action="store_true", help="enable_dialogflow")
    p = actions.add_parser("stop", help="streaming_stop", description="Stop streaming (streaming_stop).")
    _api_options(p)
    p.add_argument("--stream-id", metavar="UUID", help="the stream to stop (default: every stream of the call)")

    fork = sub.add_parser("fork", help="start or stop forking a call's RTP to UDP targets")
    actions = fork.add_subparsers(dest="action", required=True, metavar="ACTION")
    p = actions.add_parser("start", help="fork_start", description="Fork a call's RTP to UDP (fork_start). Replaces a WebSocket stream.")
    _api_options(p)
    p.add_argument("--rx", metavar="udp:IP:PORT", help="target for what the call's party sends")
    p.add_argument("--tx", metavar="udp:IP:PORT", help="target for what Telnyx sends to the party")
    p.add_argument("--stream-type", metavar="TYPE", help="stream_type, " + one_of(cc.FORK_START_STREAM_TYPES))
    p = actions.add_parser("stop", help="fork_stop", description="Stop forking (fork_stop).")
    _api_options(p)
    p.add_argument("--stream-type", metavar="TYPE", help="stream_type, " + one_of(cc.FORK_STOP_STREAM_TYPES)
                   + " (default decrypted, what forks start with; Telnyx's own default is raw)")

    tr = sub.add_parser("transcription", help="start or stop transcribing a call")
    actions = tr.add_subparsers(dest="action", required=True, metavar="ACTION")
    p = actions.add_parser("start", help="transcription_start", description="Start transcription (transcription_start); results arrive as call.transcription webhooks.")
    _api_options(p)
    p.add_argument("--engine", metavar="ENGINE", help="transcription_engine, " + one_of(cc.TRANSCRIPTION_ENGINES))
    p.add_argument("--tracks", metavar="TRACKS", help="transcription_tracks, " + one_of(cc.TRANSCRIPTION_TRACKS))
    p.add_argument("--language", help="transcription_engine_config.language (e.g. en)")
    p.add_argument("--transcription-model", metavar="MODEL", help="transcription_engine_config.transcription_model (Deepgram: "
                   + ", ".join(cc.DEEPGRAM_MODELS) + ")")
    p.add_argument("--interim-results", action="store_true", help="transcription_engine_config.interim_results")
    p.add_argument("--config", metavar="JSON", help="transcription_engine_config as a JSON object")
    p = actions.add_parser("stop", help="transcription_stop", description="Stop transcription (transcription_stop).")
    _api_options(p)


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
    _add_call_control(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
