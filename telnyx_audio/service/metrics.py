"""Each server's Prometheus metrics, in a registry of its own (prometheus_client).

The names (issue #21) are the same on every server that has the thing they count:

=============================================  ==========================================
``telnyx_audio_streams_active``                calls being received now (gauge)
``telnyx_audio_streams_total``                 calls started (a stream's ``start``; a fork session)
``telnyx_audio_media_messages_total{track}``   media written to disk: ``media`` messages; fork datagrams
``telnyx_audio_media_bytes_total{track}``      their codec bytes (a stream's decoded payloads; a fork's
                                               datagrams, RTP headers included)
``telnyx_audio_refusals_total{reason}``        connections or requests refused
``telnyx_audio_write_errors_total``            writes the disk refused
``telnyx_audio_finalize_seconds``              time to write a call's WAVs and summary (histogram)
``telnyx_audio_finalize_queue``                calls waiting to be finalised (gauge)
``telnyx_audio_fork_datagrams_total{track}``   fork datagrams received (written or dropped)
``telnyx_audio_fork_dropped_total{reason}``    fork datagrams not written (``not_allowed``,
                                               ``draining``, ``write_error``, ``stranger``,
                                               ``over_limit``)
``telnyx_audio_webhooks_total{result}``        webhook deliveries: ``verified``, ``rejected``,
                                               ``replayed``
``telnyx_audio_draining``                      1 while the server drains (gauge)
=============================================  ==========================================

The counters move only after what they count is on disk, so they equal what was written.
A fork receiver's counts are read off its own counters when Prometheus scrapes (nothing is
added to its per-datagram path).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Iterator, Mapping

if TYPE_CHECKING:  # pragma: no cover
    from prometheus_client import CollectorRegistry

__all__ = ["StreamMetrics", "ForkMetrics", "WebhookMetrics", "FINALIZE_BUCKETS", "TRACKS"]

PREFIX = "telnyx_audio_"
TRACKS = ("inbound", "outbound")
FINALIZE_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, float("inf"))
REFUSAL_REASONS = ("not_allowed", "busy", "per_address", "auth", "timeout", "oversize", "prestart", "draining",
                   "malformed", "tls")


def _prometheus() -> Any:
    try:
        import prometheus_client
    except ImportError as exc:  # a core dependency: only a broken install lacks it
        raise ImportError("metrics need prometheus_client: pip install prometheus-client") from exc
    return prometheus_client


class _Base:
    """A registry and the gauges every server has."""

    def __init__(self) -> None:
        pc = _prometheus()
        self._pc = pc
        self.registry: CollectorRegistry = pc.CollectorRegistry(auto_describe=True)
        self._draining = pc.Gauge(PREFIX + "draining", "1 while the server drains after SIGTERM",
                                  registry=self.registry)

    def set_draining(self, draining: bool) -> None:
        """Show the drain state."""
        self._draining.set(1 if draining else 0)

    def render(self) -> bytes:
        """The registry in Prometheus's text format (what ``/metrics`` answers)."""
        return self._pc.generate_latest(self.registry)

    def value(self, name: str, labels: Mapping[str, str] | None = None) -> float | None:
        """One sample's value, by its full name (``..._total``), for tests and reports."""
        return self.registry.get_sample_value(name, dict(labels or {}))

    def _refusals(self) -> None:
        self._refused = self._pc.Counter(PREFIX + "refusals", "Connections or requests refused, by reason",
                                         ["reason"], registry=self.registry)
        self._refused_by = {r: self._refused.labels(reason=r) for r in REFUSAL_REASONS}

    def refused(self, reason: str) -> None:
        """Count one refusal (``reason``: one of ``REFUSAL_REASONS``; others count as given)."""
        child = self._refused_by.get(reason)
        if child is None:
            child = self._refused.labels(reason=reason)
        child.inc()


class StreamMetrics(_Base):
    """The capture server's metrics.

    Parameters
    ----------
    active : callable
        Returns the streams being received now (read at each scrape).
    queue : callable
        Returns the streams waiting to be finalised.

    Examples
    --------
    >>> m = StreamMetrics(active=lambda: 2, queue=lambda: 0)
    >>> m.media("inbound", 160); m.media("inbound", 160)
    >>> m.value("telnyx_audio_media_messages_total", {"track": "inbound"}), m.value("telnyx_audio_streams_active")
    (2.0, 2.0)
    """

    def __init__(self, *, active: Callable[[], float], queue: Callable[[], float]) -> None:
        super().__init__()
        pc, reg = self._pc, self.registry
        pc.Gauge(PREFIX + "streams_active", "Streams being received now", registry=reg).set_function(active)
        pc.Gauge(PREFIX + "finalize_queue", "Streams waiting to be finalised", registry=reg).set_function(queue)
        self._streams = pc.Counter(PREFIX + "streams", "Streams started (their start message received)",
                                   registry=reg)
        messages = pc.Counter(PREFIX + "media_messages", "Media messages written to disk, by track", ["track"],
                              registry=reg)
        octets = pc.Counter(PREFIX + "media_bytes", "Codec bytes of the media written to disk, by track", ["track"],
                            registry=reg)
        self._messages = {t: messages.labels(track=t) for t in TRACKS}
        self._bytes = {t: octets.labels(track=t) for t in TRACKS}
        for t in TRACKS:  # both tracks present from the start, at 0
            self._messages[t].inc(0)
            self._bytes[t].inc(0)
        self._write_errors = pc.Counter(PREFIX + "write_errors", "Writes the disk refused", registry=reg)
        self._finalize = pc.Histogram(PREFIX + "finalize_seconds", "Time to write a stream's WAVs and summary",
                                      buckets=FINALIZE_BUCKETS, registry=reg)
        self._refusals()

    def media(self, track: str, n_bytes: int) -> None:
        """One media message of ``n_bytes`` codec bytes is on disk."""
        self._messages[track].inc()
        self._bytes[track].inc(n_bytes)

    def stream_started(self) -> None:
        """A stream's ``start`` arrived."""
        self._streams.inc()

    def write_error(self) -> None:
        """The disk refused a write."""
        self._write_errors.inc()

    def finalized(self, seconds: float) -> None:
        """A stream's finalising took ``seconds``."""
        self._finalize.observe(seconds)


class _Sampled:
    """A counter family read off the server's own counters at each scrape."""

    def __init__(self, name: str, doc: str, labels: tuple[str, ...], read: Callable[[], Mapping[tuple, float]]) -> None:
        self.name, self.doc, self.labels, self.read = name, doc, labels, read

    def describe(self) -> Iterator[Any]:
        from prometheus_client.core import CounterMetricFamily

        yield CounterMetricFamily(self.name, self.doc, labels=self.labels)

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import CounterMetricFamily

        family = CounterMetricFamily(self.name, self.doc, labels=self.labels)
        for key, value in self.read().items():
            family.add_metric(list(key), value)
        yield family


class ForkMetrics(_Base):
    """The fork receiver's metrics; the counts are read off the receiver at each scrape.

    Parameters
    ----------
    sample : callable
        Returns a dict: ``streams`` (sessions opened), ``active`` (receiving now), ``queue``
        (waiting to be finalised), ``written`` and ``bytes`` (per track name), ``dropped``
        (per ``(reason, track)``), ``write_errors``.

    Examples
    --------
    >>> counts = {"streams": 1, "active": 1, "queue": 0, "written": {"inbound": 5, "outbound": 4},
    ...           "bytes": {"inbound": 860, "outbound": 688}, "dropped": {("not_allowed", "inbound"): 2},
    ...           "write_errors": 0}
    >>> m = ForkMetrics(sample=lambda: counts)
    >>> m.value("telnyx_audio_fork_datagrams_total", {"track": "inbound"})
    7.0
    """

    def __init__(self, *, sample: Callable[[], dict[str, Any]]) -> None:
        super().__init__()
        pc, reg = self._pc, self.registry
        self._sample = sample
        pc.Gauge(PREFIX + "streams_active", "Fork sessions receiving now", registry=reg).set_function(
            lambda: sample()["active"])
        pc.Gauge(PREFIX + "finalize_queue", "Fork sessions waiting to be finalised", registry=reg).set_function(
            lambda: sample()["queue"])
        self._finalize = pc.Histogram(PREFIX + "finalize_seconds", "Time to write a fork session's WAVs and summary",
                                      buckets=FINALIZE_BUCKETS, registry=reg)

        def per_track(key: str) -> Callable[[], dict[tuple, float]]:
            return lambda: {(t,): float(sample()[key].get(t, 0)) for t in TRACKS}

        def received() -> dict[tuple, float]:
            s = sample()
            return {(t,): float(s["written"].get(t, 0) + sum(n for (_, tr), n in s["dropped"].items() if tr == t))
                    for t in TRACKS}

        def dropped() -> dict[tuple, float]:
            out: dict[tuple, float] = {}
            for (reason, _), n in sample()["dropped"].items():
                out[(reason,)] = out.get((reason,), 0.0) + n
            return out

        for collector in (
            _Sampled(PREFIX + "streams", "Fork sessions opened", (), lambda: {(): float(sample()["streams"])}),
            _Sampled(PREFIX + "media_messages", "Fork datagrams written to disk, by track", ("track",),
                     per_track("written")),
            _Sampled(PREFIX + "media_bytes", "Bytes of the fork datagrams written to disk, by track", ("track",),
                     per_track("bytes")),
            _Sampled(PREFIX + "fork_datagrams", "Fork datagrams received (written or dropped), by track", ("track",),
                     received),
            _Sampled(PREFIX + "fork_dropped", "Fork datagrams not written, by reason", ("reason",), dropped),
            _Sampled(PREFIX + "write_errors", "Writes the disk refused", (),
                     lambda: {(): float(sample()["write_errors"])}),
        ):
            reg.register(collector)  # type: ignore[arg-type]

    def finalized(self, seconds: float) -> None:
        """A session's finalising took ``seconds``."""
        self._finalize.observe(seconds)


class WebhookMetrics(_Base):
    """The webhook receiver's metrics.

    Examples
    --------
    >>> m = WebhookMetrics()
    >>> m.webhook("verified"); m.webhook("replayed")
    >>> m.value("telnyx_audio_webhooks_total", {"result": "replayed"})
    1.0
    """

    RESULTS = ("verified", "rejected", "replayed")

    def __init__(self) -> None:
        super().__init__()
        pc, reg = self._pc, self.registry
        hooks = pc.Counter(PREFIX + "webhooks", "Webhook deliveries, by result", ["result"], registry=reg)
        self._hooks = {r: hooks.labels(result=r) for r in self.RESULTS}
        for child in self._hooks.values():
            child.inc(0)
        self._write_errors = pc.Counter(PREFIX + "write_errors", "Writes the disk refused", registry=reg)
        self._refusals()

    def webhook(self, result: str) -> None:
        """Count one delivery: ``verified``, ``rejected`` or ``replayed``."""
        self._hooks[result].inc()

    def write_error(self) -> None:
        """The disk refused a write."""
        self._write_errors.inc()
