"""The ``telnyx-audio`` command line.

Exit codes: 0 success; 1 when some input failed (the others are still processed);
2 for bad arguments; 3 when Telnyx answered with an error; 4 when Telnyx did not answer.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
import typing
from typing import Sequence

from telnyx_audio._util.paths import capture_stem, claim_name, safe_name, stream_folders
from telnyx_audio.cli._args import (existing_file, non_negative_float, port_number, positive_float, positive_int,
                                    probability, sample_rate)

__all__ = ["main"]

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_API, EXIT_NO_ANSWER = 0, 1, 2, 3, 4


class _Parser(argparse.ArgumentParser):
    """An argument parser whose mistakes are one line (the command, the flag and the value,
    and where to read more), exit code 2."""

    def error(self, message: str) -> "typing.NoReturn":  # type: ignore[override]
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _is_loopback(host: str) -> bool:
    import ipaddress

    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:  # a host name: it may well be reachable from elsewhere
        return False


def _describe(capture) -> str:
    rec = capture.recording
    parts = [r.describe() for r in rec.reports.values()]
    fmt = capture.media_format
    rate = f"{rec.sample_rate} Hz" + (f" (reported {fmt.sample_rate})" if fmt.sample_rate != rec.sample_rate else "")
    return (
        f"{rec.duration_s:.2f} s {fmt.encoding} {rate}; "
        + ("; ".join(parts) or "no media")
        + f"; bad lines {capture.report.bad_lines}"
    )


# telnyx_audio.streams.server.LOG_NAME, not imported: the server's dependencies would slow decode's start.
_SERVER_LOG = "messages.jsonl"


def _decode_names(path: Path, captures: list, used: set[str]) -> list[str]:
    """Output folder (relative to --out) of each stream of one capture file: the file's name
    without its suffixes, as ``telnyx-audio batch`` names it (a fork receiver's
    ``<call>/fork.rtpcap`` is named by its folder, a capture server log,
    ``<stream id>/messages.jsonl``, by its stream id), then ``<name>/<stream id>`` when the
    file holds several streams."""
    stem = capture_stem(path)
    if path.name in (_SERVER_LOG, _SERVER_LOG + ".gz") and len(captures) == 1 and captures[0].stream_id:
        stem = captures[0].stream_id
    name = claim_name(safe_name(stem, "capture"), used)
    return [f"{name}/{sub}" if sub else name for sub in stream_folders([c.stream_id for c in captures])]


def _decode(args: argparse.Namespace) -> int:
    from telnyx_audio.model.format import as_media_format
    from telnyx_audio.read import read_captures
    from telnyx_audio.errors import TelnyxAudioError
    from telnyx_audio.model.wav import write_call

    try:
        given = _given_format(args.encoding, args.sample_rate)
        given = as_media_format(given)
    except ValueError as exc:
        print(f"telnyx-audio: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    out_root = Path(args.out)
    used: set[str] = set()
    status = EXIT_OK
    for path in args.captures:
        try:
            captures = read_captures(path, media_format=given, pair=args.pair, swap_tracks=args.swap_tracks)
            names = _decode_names(Path(path), captures, used)
        except (TelnyxAudioError, OSError, ValueError, RuntimeError, MemoryError) as exc:
            print(f"{path}: error: {exc}", file=sys.stderr)
            status = EXIT_FAILED
            continue
        problems = next((c.report.file_problems for c in captures if getattr(c.report, "file_problems", None)), {})
        for reason, found in problems.items():  # a packet capture with unreadable parts: its calls are still written
            print(f"{path}: problem: {reason}: {found['count']}", file=sys.stderr)
            status = EXIT_FAILED
        for capture, name in zip(captures, names):
            label = path if len(captures) == 1 else f"{path} [{capture.stream_id}]"
            for warning in capture.report.warnings:
                print(f"{label}: warning: {warning}", file=sys.stderr)
            dest = out_root / name
            if args.strict and capture.report.warnings:
                print(f"{label}: error: --strict and {len(capture.report.warnings)} warnings: nothing written",
                      file=sys.stderr)
                status = EXIT_FAILED
                continue
            try:
                summary = write_call(capture, dest)
            except (TelnyxAudioError, OSError, RuntimeError) as exc:
                print(f"{label}: error: {exc}", file=sys.stderr)
                status = EXIT_FAILED
                continue
            if summary.get("error"):
                print(f"{label}: error: {summary['error']} (summary written to {dest}/)", file=sys.stderr)
                status = EXIT_FAILED
                continue
            print(f"{label} -> {dest}/: {_describe(capture)}")
    return status


def _given_format(encoding: str | None, sample_rate: int | None) -> dict | None:
    """--encoding/--sample-rate as a media_format dict (None when neither is given)."""
    if encoding is None and sample_rate is None:
        return None
    if encoding is None:
        raise ValueError("--sample-rate needs --encoding")
    if sample_rate is None:
        from telnyx_audio.codecs import REGISTRY, normalize_encoding

        sample_rate = REGISTRY[normalize_encoding(encoding)].audio_rate
        for param in encoding.split(";")[1:]:  # a MIME parameter: audio/L16;rate=16000
            key, _, value = param.partition("=")
            if key.strip().lower() == "rate" and value.strip().isdigit():
                sample_rate = int(value.strip())
        if sample_rate is None:
            raise ValueError(f"--encoding {encoding} needs --sample-rate")
    return {"encoding": encoding, "sample_rate": sample_rate}


def _interrupt(signum: int, frame: object) -> None:
    """SIGTERM ends a server the way Ctrl-C does."""
    raise KeyboardInterrupt


_LOG_LEVELS = ("debug", "info", "warning", "error")


def _log_to_console(level: str) -> None:
    """Route the servers' ``telnyx_audio.*`` log lines to stderr at ``level`` (--log-level)."""
    import logging

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger("telnyx_audio")
    root.addHandler(handler)
    root.setLevel(level.upper())


def _webhooks_serve(args: argparse.Namespace) -> int:
    import signal

    from telnyx_audio.webhooks.receiver import WebhookReceiver

    key = args.public_key or os.environ.get("TELNYX_PUBLIC_KEY")
    if not key:
        print("telnyx-audio: error: --public-key or TELNYX_PUBLIC_KEY is required", file=sys.stderr)
        return EXIT_USAGE
    from telnyx_audio.cli.service import service_kwargs, start_logging

    try:
        rx = WebhookReceiver(args.out, key, redact_dtmf=args.redact_dtmf, host=args.host, port=args.port,
                             rejected=args.rejected,
                             max_body=args.max_body, tolerance_s=args.tolerance, read_timeout_s=args.read_timeout,
                             max_connections=args.max_connections, **service_kwargs(args))
    except ValueError as exc:  # a malformed key included
        flag = "--public-key" if args.public_key else "$TELNYX_PUBLIC_KEY"
        print(f"telnyx-audio webhooks serve: error: {flag}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as exc:
        if exc.filename is not None:  # a log file cannot be opened
            rejected = bool(args.rejected) and os.fspath(args.rejected).startswith(os.fspath(exc.filename))
            flag, value = ("--rejected", args.rejected) if rejected else ("--out", args.out)
            print(f"telnyx-audio webhooks serve: error: {flag} {value}: {exc.strerror or exc} ({exc.filename})",
                  file=sys.stderr)
            return EXIT_USAGE
        print(f"telnyx-audio: error: cannot listen on {args.host}:{args.port}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_FAILED
    start_logging(args)
    rx.start()
    for sig in (signal.SIGINT, signal.SIGTERM):  # the first drains, a second stops at once
        signal.signal(sig, lambda signum, frame: rx.request_drain())
    metrics = f"; metrics on {rx.metrics_url}metrics" if rx.metrics_url else ""
    print(f"listening on {rx.url}: verified -> {rx.verified_log.path}, rejected -> {rx.rejected_log.path}{metrics}",
          flush=True)
    while not rx.wait_stopped(0.5):
        pass
    print(f"stopped: {rx.counts['verified']} verified, {rx.counts['rejected']} rejected", flush=True)
    return EXIT_OK


def _call(args: argparse.Namespace) -> int:
    """stream / fork / transcription start|stop: one Call Control command; warnings on stderr."""
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        code = _send(args)
    for warning in caught:  # e.g. an enum value newer than this version, sent as is
        print(f"telnyx-audio: warning: {warning.message}", file=sys.stderr)
    return code


def _send(args: argparse.Namespace) -> int:
    """Build the client and send the command ``args`` describe."""
    from telnyx_audio import callcontrol as cc

    def maybe(value):
        return cc.Unchecked(value) if (args.unchecked and value is not None) else value

    if not (args.api_key or os.environ.get("TELNYX_API_KEY")):
        print(f"telnyx-audio {args.command} {args.action}: error: no Telnyx API key: set $TELNYX_API_KEY (or give"
              f" --api-key, which ps shows)", file=sys.stderr)
        return EXIT_USAGE
    if args.command == "fork" and args.action == "start" and not (args.rx or args.tx):
        print("telnyx-audio fork start: error: give --rx udp:IP:PORT, --tx udp:IP:PORT or both (where the fork's RTP goes)",
              file=sys.stderr)
        return EXIT_USAGE
    try:
        client = cc.TelnyxClient(api_key=args.api_key or None, base_url=args.base_url)
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
            try:
                config = json.loads(args.config) if args.config else {}
            except ValueError as exc:
                raise ValueError(f"--config must be a JSON object, got {args.config!r}: {exc}") from None
            if not isinstance(config, dict):
                raise ValueError(f"--config must be a JSON object, got {args.config!r}")
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
    p.add_argument("--unchecked", action="store_true", help="send enum values as given, unchecked and without a warning (values unknown to this version are otherwise sent with a warning, or refused with \"did you mean\" when close to a known one)")
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

    fork = sub.add_parser("fork", help="fork a call's RTP to UDP targets; receive or simulate a fork")
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
    from telnyx_audio.cli.fork import add_fork_commands

    add_fork_commands(actions)  # fork capture, fork simulate

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


def _capture_limits(args: argparse.Namespace) -> list[str]:
    """The capture server's limits as options, for the --workers children."""
    return ["--max-connections", str(args.max_connections), "--max-connections-per-address",
            str(args.max_connections_per_address), "--auth-timeout", str(args.auth_timeout), "--start-timeout",
            str(args.start_timeout), "--finalize-workers", str(args.finalize_workers), "--finalize-timeout",
            str(args.finalize_timeout), *(["--redact-dtmf"] if args.redact_dtmf else [])]


def _capture(args: argparse.Namespace) -> int:
    import asyncio
    import signal
    import subprocess

    if args.workers < 1:
        print(f"telnyx-audio: error: --workers must be at least 1, got {args.workers}", file=sys.stderr)
        return EXIT_USAGE
    if args.auth_token is not None and not args.auth_token.strip():
        print("telnyx-audio: error: --auth-token is empty (an unset variable?): give the token Telnyx will present,"
              " or --no-auth for a server that takes any stream", file=sys.stderr)
        return EXIT_USAGE
    token = args.auth_token or os.environ.get("TELNYX_STREAM_AUTH_TOKEN") or None
    if token and args.no_auth:
        print("telnyx-audio: error: --no-auth and an auth token (--auth-token or $TELNYX_STREAM_AUTH_TOKEN):"
              " give one or the other", file=sys.stderr)
        return EXIT_USAGE
    if not token and not args.no_auth and not _is_loopback(args.host):
        print(f"telnyx-audio: error: --host {args.host} without an auth token would take streams from anyone who"
              f" can reach it: give --auth-token (or $TELNYX_STREAM_AUTH_TOKEN), or --no-auth to mean it",
              file=sys.stderr)
        return EXIT_USAGE
    if args.workers > 1:
        if args.port == 0:
            print("telnyx-audio: error: --workers needs a fixed --port (the workers share it)", file=sys.stderr)
            return EXIT_USAGE
        from telnyx_audio.cli.service import service_argv

        cmd = [sys.executable, "-m", "telnyx_audio", "capture", "--host", args.host, "--port", str(args.port),
               "--out", args.out, "--workers", "1", "--reuse-port", "--max-message-bytes", str(args.max_message_bytes),
               "--log-level", args.log_level, *_capture_limits(args), *(["--no-auth"] if args.no_auth else [])]
        # one file per worker: FILE.<n>; one metrics port per worker: PORT+n
        cmd_for = [cmd + (["--stats", f"{args.stats}.{n}"] if args.stats else []) + service_argv(args, n)
                   for n in range(args.workers)]
        env = dict(os.environ)
        if token:
            env["TELNYX_STREAM_AUTH_TOKEN"] = token  # not on the command line, where ps shows it
        children = [subprocess.Popen(c, env=env) for c in cmd_for]
        print(f"capture: {args.workers} workers on ws://{args.host}:{args.port}/ -> {args.out}", flush=True)

        def forward(signum: int, frame: object) -> None:
            for child in children:
                if child.poll() is None:
                    child.send_signal(signum)

        signal.signal(signal.SIGINT, forward)
        signal.signal(signal.SIGTERM, forward)
        codes = [child.wait() for child in children]
        return EXIT_OK if all(c == 0 for c in codes) else EXIT_FAILED

    from telnyx_audio.cli.service import on_sigterm, service_kwargs, start_logging
    from telnyx_audio.streams.server import CaptureServer

    start_logging(args, secrets=(token,))
    try:
        server = CaptureServer(args.out, host=args.host, port=args.port, auth_token=token,
                               max_message_bytes=args.max_message_bytes, reuse_port=args.reuse_port,
                               redact_dtmf=args.redact_dtmf,
                               max_connections=args.max_connections,
                               max_connections_per_address=args.max_connections_per_address,
                               auth_timeout_s=args.auth_timeout, start_timeout_s=args.start_timeout,
                               finalize_workers=args.finalize_workers, finalize_timeout_s=args.finalize_timeout,
                               **service_kwargs(args))
    except ValueError as exc:
        print(f"telnyx-audio: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as exc:  # the output folder cannot be made, a certificate cannot be loaded
        named = os.fspath(exc.filename) if exc.filename is not None else None
        flag, value = next(((f, v) for f, v in (("--certfile", args.certfile), ("--keyfile", args.keyfile))
                            if v and named == os.fspath(v)), ("--out", args.out))
        if flag == "--out" and named is None and args.certfile:  # ssl's own errors name no file
            flag, value = "--certfile", args.certfile
        print(f"telnyx-audio capture: error: {flag} {value}: {exc.strerror or exc}"
              f"{f' ({named})' if named and named != value else ''}", file=sys.stderr)
        return EXIT_USAGE

    async def run() -> None:
        on_sigterm(asyncio.get_running_loop(), server.request_drain)
        task = asyncio.ensure_future(server.serve_async())
        while not server.listening and not task.done():
            await asyncio.sleep(0.01)
        if not task.done():
            auth = " (auth token required)" if token else " (no auth token: any stream is taken)"
            scheme = "wss" if args.certfile else "ws"
            metrics = f"; metrics on {server.metrics_url}metrics" if server.metrics_url else ""
            print(f"capture: listening on {scheme}://{args.host}:{server.port}/{auth} -> {server.out}{metrics}",
                  flush=True)
        await task

    try:
        asyncio.run(run())
    except OSError as exc:
        print(f"telnyx-audio: error: cannot listen on {args.host}:{args.port}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_FAILED
    done = server.streams
    if args.stats:
        Path(args.stats).write_text(json.dumps(server.stats(), indent=2) + "\n")
    failed = [i for i in done if i.state == "error"]
    print(f"capture: stopped; {len(done)} streams, {len(failed)} with errors", flush=True)
    for info in done:
        print(f"  {info.folder}: {info.state} ({info.ended_by}), {sum(info.frames.values())} frames,"
              f" {info.seconds_captured:.1f} s{'; ' + info.error if info.error else ''}", flush=True)
    return EXIT_OK


def _simulate(args: argparse.Namespace) -> int:
    from websockets.exceptions import WebSocketException

    from telnyx_audio.errors import TelnyxAudioError
    from telnyx_audio.simulators.stream import simulate

    if not args.url.lower().startswith(("ws://", "wss://")):
        print(f"telnyx-audio simulate: error: argument URL: expected ws://HOST:PORT/... or wss://..., got {args.url!r}",
              file=sys.stderr)
        return EXIT_USAGE
    try:
        report = simulate(args.source, args.url, codec=args.codec, sample_rate=args.sample_rate,
                          tracks=args.tracks, realtime=args.realtime,
                          shuffle=args.shuffle, drop=args.drop, duplicate=args.duplicate,
                          disconnect_after=args.disconnect_after, auth_token=args.auth_token,
                          token_in=args.token_in, seed=args.seed, cafile=args.cafile)
    except OSError as exc:  # before ValueError: a certificate that does not verify is both
        print(f"telnyx-audio: cannot stream to {args.url}: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except (ValueError, TypeError) as exc:
        print(f"telnyx-audio: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except (TelnyxAudioError, RuntimeError) as exc:  # soundfile's LibsndfileError is a RuntimeError
        print(f"telnyx-audio simulate: error: argument AUDIO_OR_CAPTURE: {args.source!r} is neither a WAV nor a"
              f" capture that can be read: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as exc:
        print(f"telnyx-audio: cannot stream to {args.url}: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except WebSocketException as exc:  # refused at the upgrade (401), closed (1008)...
        print(f"telnyx-audio: stream refused: {exc}", file=sys.stderr)
        return EXIT_FAILED
    out = {k: v for k, v in vars(report).items() if k != "audio_received"}
    out["audio_received_bytes"] = len(report.audio_received)
    print(json.dumps(out))
    return EXIT_OK


def build_parser(decode_only: bool = False) -> argparse.ArgumentParser:
    """The argument parser of ``telnyx-audio`` (subcommands included; only ``decode`` when
    ``decode_only``, which spares decode the other commands' imports)."""
    parser = _Parser(prog="telnyx-audio", description="Capture, decode and analyse Telnyx call audio.")
    from telnyx_audio import __version__

    parser.add_argument("--version", action="version", version=f"telnyx-audio {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    dec = sub.add_parser(
        "decode",
        help="decode capture files (JSONL of Telnyx messages, fork .rtpcap, pcap/pcapng) to WAV and summary.json",
        description="For each stream of each capture, write inbound.wav and/or outbound.wav (the "
        "tracks that carried media), stereo.wav (left inbound, right outbound; a missing track is "
        "silent) and summary.json into OUT/<capture name>/ (OUT/<capture name>/<stream id>/ when a "
        "file holds several streams). Warnings (guesses, surprises) go to stderr and the summary. "
        "A bad file is reported and the others are still decoded (exit code 1).",
    )
    dec.add_argument("captures", nargs="+", metavar="CAPTURE", help="capture files: JSONL (.gz too), fork .rtpcap,"
                     " pcap or pcapng (.gz too; one output folder per call)")
    dec.add_argument("--out", required=True, metavar="DIR", help="output folder (created)")
    dec.add_argument("--encoding", metavar="ENC", help="media format of logs without start (PCMU, PCMA, L16...);"
                     " overrides start's with a warning")
    dec.add_argument("--sample-rate", type=sample_rate, metavar="HZ", help="with --encoding (default: the codec's usual rate)")
    dec.add_argument("--strict", action="store_true", help="any warning fails the capture (exit code 1)")
    from telnyx_audio.packets.cli import add_decode_options

    add_decode_options(dec)
    dec.set_defaults(func=_decode)
    if decode_only:
        return parser

    hooks = sub.add_parser("webhooks", help="receive and verify Telnyx webhooks")
    hooks_sub = hooks.add_subparsers(dest="webhooks_command", required=True, metavar="ACTION")
    serve = hooks_sub.add_parser(
        "serve",
        help="run an HTTP server that verifies deliveries (Ed25519) and appends them to JSONL",
        description="Valid deliveries are answered 200 after they are on disk in --out; the "
        "rest are answered 4xx and logged to --rejected. Stop with Ctrl-C or SIGTERM.",
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=port_number, default=8080, help="port (default 8080; 0 picks a free one)")
    serve.add_argument("--out", required=True, metavar="EVENTS.jsonl", help="verified deliveries, appended")
    serve.add_argument("--public-key", metavar="KEY", help="Telnyx public key (base64, PEM...); default $TELNYX_PUBLIC_KEY")
    serve.add_argument("--redact-dtmf", action="store_true",
                       help="store each delivery parsed with typed digits masked, and its verification result,"
                       " instead of the raw body (which then cannot be re-verified; see docs/privacy.md)")
    serve.add_argument("--rejected", metavar="FILE", help="rejected deliveries (default: <out>.rejected.jsonl)")
    serve.add_argument("--max-body", type=positive_int, default=1 << 20, metavar="BYTES", help="largest body accepted (default 1 MiB)")
    serve.add_argument("--tolerance", type=positive_float, default=300, metavar="S", help="signing-time skew allowed (default 300 s)")
    serve.add_argument("--read-timeout", type=positive_float, default=10.0, metavar="S",
                       help="time for a whole request to arrive (default 10 s)")
    serve.add_argument("--max-connections", type=positive_int, default=64, metavar="N",
                       help="connections served at once; more get 503 (default 64)")
    serve.add_argument("--log-level", choices=_LOG_LEVELS, default="info",
                       help="console log lines on stderr: each delivery and refusal (default info)")
    from telnyx_audio.cli.service import add_service_options

    add_service_options(serve)
    serve.set_defaults(func=_webhooks_serve)
    cap = sub.add_parser(
        "capture", help="run the capture server: record live Telnyx media streams to disk",
        description="One folder per stream under --out: messages.jsonl as it arrives, then WAVs and "
        "summary.json on stop or disconnect. SIGINT/SIGTERM finalise every open stream.")
    cap.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    cap.add_argument("--port", type=port_number, default=8765, help="port (default 8765; 0 picks a free one)")
    cap.add_argument("--out", required=True, metavar="DIR", help="output root (created)")
    cap.add_argument("--auth-token", metavar="T", help="require this stream_auth_token (default $TELNYX_STREAM_AUTH_TOKEN);"
                     " a --host other than loopback needs one, or --no-auth")
    cap.add_argument("--no-auth", action="store_true", help="take streams without a token (needed to listen on a"
                     " non-loopback --host without one)")
    cap.add_argument("--workers", type=positive_int, default=1, metavar="N", help="processes sharing the port (SO_REUSEPORT)")
    cap.add_argument("--max-message-bytes", type=positive_int, default=1 << 20, metavar="B", help="refuse larger messages (default 1 MiB)")
    cap.add_argument("--stats", metavar="FILE", help="at shutdown, write message counts and receipt-to-disk latency (JSON)")
    cap.add_argument("--max-connections", type=positive_int, default=1000, metavar="N",
                     help="connections held at once; more get HTTP 503 (default 1000)")
    cap.add_argument("--max-connections-per-address", type=positive_int, default=200, metavar="N",
                     help="connections held at once from one address (default 200)")
    cap.add_argument("--auth-timeout", type=positive_float, default=10.0, metavar="S",
                     help="time to complete the upgrade, and then to present the token (default 10 s)")
    cap.add_argument("--start-timeout", type=positive_float, default=30.0, metavar="S",
                     help="time from connecting until the start message (default 30 s)")
    cap.add_argument("--finalize-workers", type=positive_int, default=2, metavar="N",
                     help="processes writing WAVs and summaries (default 2)")
    cap.add_argument("--finalize-timeout", type=positive_float, default=300.0, metavar="S",
                     help="time limit of one stream's WAVs and summary (default 300 s)")
    cap.add_argument("--log-level", choices=_LOG_LEVELS, default="info",
                     help="console log lines on stderr: stream start, end, refusals, errors, a periodic line"
                     " (default info)")
    cap.add_argument("--redact-dtmf", action="store_true",
                     help="keep no typed digits: dtmf messages logged masked ('*'), tones muted in the log when"
                     " each stream is finalised, redaction.json beside it (see docs/privacy.md)")
    cap.add_argument("--reuse-port", action="store_true", help=argparse.SUPPRESS)
    from telnyx_audio.cli.service import add_service_options

    add_service_options(cap)
    cap.set_defaults(func=_capture)

    sim = sub.add_parser(
        "simulate", help="play a WAV or capture into a stream URL exactly as Telnyx would",
        description="Our fake Telnyx: connected, start, media per track (20 ms), dtmf, stop.")
    sim.add_argument("source", metavar="AUDIO_OR_CAPTURE", type=existing_file, help="a WAV (mono: inbound; stereo: L inbound, R outbound) or a capture .jsonl")
    sim.add_argument("url", metavar="URL", help="ws://HOST:PORT/...")
    sim.add_argument("--codec", default="PCMU", help="PCMU, PCMA, L16, G722 or OPUS, any case or MIME name"
                     " (default PCMU; AMR-WB needs an encoder PyAV's FFmpeg lacks)")
    sim.add_argument("--sample-rate", type=sample_rate, metavar="HZ", help="the rate start.media_format reports (default"
                     " 8000 for G.711, else 16000; G722 is 16 kHz audio even when 8000 is reported)")
    sim.add_argument("--tracks", default="both", help="inbound, outbound or both (default both)")
    sim.add_argument("--realtime", action="store_true", help="pace frames at 20 ms as a live call")
    sim.add_argument("--shuffle", action="store_true", help="reorder frames locally, as networks do")
    sim.add_argument("--drop", type=probability, default=0.0, metavar="P", help="lose each frame with probability P")
    sim.add_argument("--duplicate", type=probability, default=0.0, metavar="P", help="send each frame twice with probability P")
    sim.add_argument("--disconnect-after", type=non_negative_float, metavar="S", help="vanish after S seconds of audio, without stop")
    sim.add_argument("--auth-token", metavar="T", help="stream auth token to present")
    sim.add_argument("--token-in", default="header", choices=["header", "bearer", "connected", "path"],
                     help="where to present it (default header)")
    sim.add_argument("--seed", type=int, default=0, help="seed for the faults (default 0)")
    sim.add_argument("--cafile", metavar="PEM", help="for a wss:// URL: trust these certificate authorities"
                     " (a private CA) instead of the system's")
    sim.set_defaults(func=_simulate)
    from telnyx_audio.redaction.cli import add_redact_parser

    add_redact_parser(sub)
    _add_call_control(sub)
    from telnyx_audio.cli.batch import add_batch_parser
    from telnyx_audio.packets.cli import add_parser as add_packets_parser

    add_batch_parser(sub)
    from telnyx_audio.cli.diagnose import add_diagnose_parser

    add_diagnose_parser(sub)
    add_packets_parser(sub, read_fork_records=_fork_records)
    return parser


def _fork_records(path: str):
    """A fork capture's datagrams (for ``export-pcap``, which lives with the packet source)."""
    from telnyx_audio.forks.rtpcap import read_records

    return read_records(path)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(decode_only=argv[:1] == ["decode"])
    _name_leaves(parser)
    args, extra = parser.parse_known_args(argv)
    if extra:  # said by the subcommand that was given them, with its usage, not the top level's
        getattr(args, "_parser", parser).error(f"unrecognized arguments: {' '.join(extra)}")
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        return 130
    except (OSError, RuntimeError, ValueError, TypeError, LookupError, ArithmeticError, ImportError) as exc:
        # A failure no command foresaw: one line, not a traceback (TELNYX_AUDIO_DEBUG=1 shows it).
        if os.environ.get("TELNYX_AUDIO_DEBUG"):
            raise
        print(f"telnyx-audio {args.command}: error: {type(exc).__name__}: {exc}"
              " (TELNYX_AUDIO_DEBUG=1 shows the traceback)", file=sys.stderr)
        return EXIT_FAILED


def _name_leaves(parser: argparse.ArgumentParser) -> None:
    """Give every subcommand's parser its own name in the parsed arguments (``_parser``)."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in dict.fromkeys(action.choices.values()):
                sub.set_defaults(_parser=sub)
                _name_leaves(sub)


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
