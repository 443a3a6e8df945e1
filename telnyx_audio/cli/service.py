"""The production options every server command shares (``capture``, ``fork capture``,
``webhooks serve``): TLS, metrics and health, allowlists, JSON logs, graceful drain.

Kept apart from :mod:`telnyx_audio.cli`, which adds them to each server's parser.
"""

from __future__ import annotations

import argparse
import os
from typing import Any, Callable

__all__ = ["add_service_options", "service_kwargs", "start_logging", "on_sigterm"]

_LOG_LEVELS = ("debug", "info", "warning", "error")


def add_service_options(p: argparse.ArgumentParser, *, tls: bool = True, allow: bool = True,
                        log_level: bool = False, proxy: bool = True) -> None:
    """Add ``--certfile --keyfile --metrics-port --metrics-host --allow --trusted-proxy
    --log-format --drain-timeout --min-free-bytes`` to a server's parser."""
    g = p.add_argument_group("production", "TLS, metrics and health, allowlists, JSON logs, graceful drain")
    if tls:
        g.add_argument("--certfile", metavar="PEM", help="serve TLS (wss://, https://) with this certificate chain"
                       " (the metrics port too)")
        g.add_argument("--keyfile", metavar="PEM", help="the certificate's private key (default: in --certfile)")
    else:
        g.add_argument("--certfile", metavar="PEM", help="serve the metrics and health port over HTTPS"
                       " (forked RTP itself is plain UDP, as Telnyx sends it)")
        g.add_argument("--keyfile", metavar="PEM", help="the certificate's private key (default: in --certfile)")
    g.add_argument("--metrics-port", type=int, metavar="PORT",
                   help="serve /metrics (Prometheus), /healthz and /readyz on this port (0: a free one)")
    g.add_argument("--metrics-host", default="127.0.0.1", metavar="HOST",
                   help="address of the metrics port (default 127.0.0.1)")
    if allow:
        g.add_argument("--allow", action="append", metavar="CIDR",
                       help="accept only these addresses (repeat); 'telnyx' = Telnyx's published ranges;"
                       " others are refused, counted and logged")
    if proxy:
        g.add_argument("--trusted-proxy", action="append", metavar="CIDR",
                       help="a reverse proxy (repeat) whose X-Forwarded-For names the client")
    g.add_argument("--log-format", choices=("text", "json"), default="text",
                   help="console log lines on stderr: text, or one JSON object per line (default text)")
    if log_level:
        g.add_argument("--log-level", choices=_LOG_LEVELS, default="info", help="console log level (default info)")
    g.add_argument("--drain-timeout", type=float, default=0.0, metavar="S",
                   help="on SIGTERM stop accepting, let open calls run up to S seconds, then finalise them;"
                   " a second SIGTERM finalises at once (default 0: at once)")
    g.add_argument("--min-free-bytes", type=int, default=1 << 30, metavar="B",
                   help="/readyz fails when the output disk has less free (default 1 GiB)")


def service_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    """The servers' keywords from the options."""
    return {"certfile": args.certfile, "keyfile": args.keyfile, "metrics_port": args.metrics_port,
            "metrics_host": args.metrics_host, "allow": getattr(args, "allow", None),
            "trusted_proxies": getattr(args, "trusted_proxy", None), "drain_timeout_s": args.drain_timeout,
            "min_free_bytes": args.min_free_bytes}


def start_logging(args: argparse.Namespace, *, secrets: tuple[str | None, ...] = ()) -> None:
    """Route the servers' log lines to stderr, as text or JSON, with ``secrets`` masked."""
    from telnyx_audio.service.logs import configure_logging

    configure_logging(level=args.log_level, fmt=args.log_format, secrets=secrets)


def on_sigterm(loop: Any, drain: Callable[[], None]) -> None:
    """SIGTERM and SIGINT drain the server (a second one stops it at once)."""
    import signal

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, drain)


def env_token(args: argparse.Namespace) -> str | None:
    """The stream auth token: ``--auth-token``, else ``$TELNYX_STREAM_AUTH_TOKEN``."""
    return getattr(args, "auth_token", None) or os.environ.get("TELNYX_STREAM_AUTH_TOKEN")


def service_argv(args: argparse.Namespace, worker: int) -> list[str]:
    """The options again, for the ``--workers`` children (worker ``n`` serves metrics on PORT+n)."""
    argv: list[str] = ["--log-format", args.log_format, "--drain-timeout", str(args.drain_timeout),
                       "--min-free-bytes", str(args.min_free_bytes), "--metrics-host", args.metrics_host]
    if args.certfile:
        argv += ["--certfile", args.certfile] + (["--keyfile", args.keyfile] if args.keyfile else [])
    if args.metrics_port is not None:
        argv += ["--metrics-port", str(args.metrics_port + worker if args.metrics_port else 0)]
    for cidr in getattr(args, "allow", None) or []:
        argv += ["--allow", cidr]
    for cidr in args.trusted_proxy or []:
        argv += ["--trusted-proxy", cidr]
    return argv
