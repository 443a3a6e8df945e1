"""The production settings every server takes, built once: :class:`Service`.

A server hands its keywords (``certfile``, ``keyfile``, ``allow``, ``trusted_proxies``,
``metrics_host``, ``metrics_port``, ``drain_timeout_s``, ``min_free_bytes``) to
:class:`Service`, which checks them and holds the TLS context, the address policy, the
drain state and, once the server runs, the metrics endpoint.
"""

from __future__ import annotations

import logging
import os
import ssl
from pathlib import Path
from typing import Callable, Iterable

from telnyx_audio.service.addresses import AddressPolicy
from telnyx_audio.service.drain import Drain
from telnyx_audio.service.endpoint import DEFAULT_MIN_FREE_BYTES, HealthEndpoint, storage_problem
from telnyx_audio.service.tls import server_context, tls_pair

__all__ = ["Service", "DEFAULT_MIN_FREE_BYTES"]

log = logging.getLogger("telnyx_audio.service")


class Service:
    """TLS, allowlist, drain and the metrics endpoint of one server.

    Parameters
    ----------
    out : str or Path
        The folder the server writes to (``/readyz`` checks it).
    certfile, keyfile : str, optional
        Serve TLS (``wss://``, ``https://``; the metrics endpoint too).
    allow : iterable of str, optional
        CIDRs, addresses or ``"telnyx"`` allowed to connect (default: every address).
    trusted_proxies : iterable of str, optional
        Reverse proxies whose ``X-Forwarded-For`` names the client.
    metrics_host, metrics_port : str, int, optional
        Where ``/metrics``, ``/healthz`` and ``/readyz`` listen (``metrics_port=None``: no
        endpoint; 0: a free port).
    drain_timeout_s : float
        How long open calls run on after SIGTERM (0: finalise at once).
    min_free_bytes : int
        ``/readyz`` fails below this much free disk.

    Examples
    --------
    >>> import tempfile
    >>> s = Service(tempfile.mkdtemp(), allow=["10.0.0.0/8"], drain_timeout_s=5)
    >>> s.tls is None, s.policy.allowed("10.9.8.7"), s.ready() is None
    (True, True, True)
    >>> _ = s.drain.signal(); s.ready()
    'draining'
    """

    def __init__(self, out: str | os.PathLike[str], *, certfile: str | os.PathLike[str] | None = None,
                 keyfile: str | os.PathLike[str] | None = None, allow: Iterable[str] | str | None = None,
                 trusted_proxies: Iterable[str] | str | None = None, metrics_host: str = "127.0.0.1",
                 metrics_port: int | None = None, drain_timeout_s: float = 0.0,
                 min_free_bytes: int = DEFAULT_MIN_FREE_BYTES) -> None:
        if metrics_port is not None and not (isinstance(metrics_port, int) and 0 <= metrics_port <= 65535):
            raise ValueError(f"metrics_port must be a port number 0-65535, got {metrics_port!r}")
        if not isinstance(min_free_bytes, int) or isinstance(min_free_bytes, bool) or min_free_bytes < 0:
            raise ValueError(f"min_free_bytes must be a number of bytes >= 0, got {min_free_bytes!r}")
        pair = tls_pair(certfile, keyfile)
        self.tls: ssl.SSLContext | None = server_context(*pair) if pair else None
        self.policy = AddressPolicy(allow, trusted_proxies=trusted_proxies)
        self.drain = Drain(drain_timeout_s)
        self.out = Path(out)
        self.metrics_host, self.metrics_port = metrics_host, metrics_port
        self.min_free_bytes = min_free_bytes
        self.endpoint: HealthEndpoint | None = None

    @property
    def scheme(self) -> str:
        """``"s"`` with TLS, else ``""`` (for ``ws`` + scheme, ``http`` + scheme)."""
        return "s" if self.tls is not None else ""

    def ready(self) -> str | None:
        """None while calls are accepted; else why not (draining, storage)."""
        if self.drain.draining:
            return "draining"
        return storage_problem(self.out, self.min_free_bytes)

    def start_endpoint(self, render: Callable[[], bytes], live: Callable[[], bool]) -> HealthEndpoint | None:
        """Open the metrics endpoint (when ``metrics_port`` is set); returns it."""
        if self.metrics_port is None or self.endpoint is not None:
            return self.endpoint
        self.endpoint = HealthEndpoint(render, live, self.ready, host=self.metrics_host, port=self.metrics_port,
                                       ssl_context=self.tls).start()
        log.info("metrics and health on %smetrics, /healthz, /readyz", self.endpoint.url,
                 extra={"event": "metrics_listening", "figures": {"port": self.endpoint.port}})
        return self.endpoint

    def stop_endpoint(self) -> None:
        """Close the metrics endpoint."""
        if self.endpoint is not None:
            self.endpoint.stop()
            self.endpoint = None
