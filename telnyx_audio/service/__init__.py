"""What the three servers share to run in production: TLS, metrics, health, allowlists,
structured logs and graceful drain.

The capture server (:mod:`telnyx_audio.streams.server`), the fork receiver
(:mod:`telnyx_audio.forks.receiver`) and the webhook receiver
(:mod:`telnyx_audio.webhooks.receiver`) each build these objects and call them at a few
clear points; none of them holds Telnyx logic, and none imports a source:

- :mod:`.tls`: server and client :class:`ssl.SSLContext` from PEM files;
- :mod:`.addresses`: ``allow`` CIDRs (and ``"telnyx"``, Telnyx's published ranges, kept with
  their source in ``telnyx_ranges.json``) and trusted reverse proxies (``X-Forwarded-For``);
- :mod:`.metrics`: each server's Prometheus registry and the metric names of issue #21;
- :mod:`.endpoint`: ``/metrics``, ``/healthz`` and ``/readyz`` on the metrics port;
- :mod:`.logs`: one JSON object per log line, secrets masked;
- :mod:`.drain`: the SIGTERM state machine (drain, then finalise; a second signal at once).

prometheus_client is imported by :mod:`.metrics` only, when a server is built.
"""

from __future__ import annotations

from telnyx_audio.service.addresses import TELNYX, AddressPolicy, telnyx_ranges
from telnyx_audio.service.drain import Drain
from telnyx_audio.service.logs import JsonFormatter, configure_logging
from telnyx_audio.service.tls import client_context, server_context

__all__ = ["AddressPolicy", "TELNYX", "telnyx_ranges", "Drain", "JsonFormatter", "configure_logging",
           "client_context", "server_context"]
