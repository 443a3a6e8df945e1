"""A real Prometheus (Debian's ``prometheus``) scrapes the three servers' metrics ports; the
counters read back through its HTTP API equal what each server wrote to disk."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
import requests

from test_service import EXAMPLE, KEY, SEED, on_disk, finished
from tls_certs import make_certs
from telnyx_audio.forks.receiver import ForkReceiver
from telnyx_audio.forks.rtpcap import read_records
from telnyx_audio.simulators.fork import simulate_fork
from telnyx_audio.simulators.stream import simulate
from telnyx_audio.streams.server import CaptureServer
from telnyx_audio.webhooks import sign_webhook
from telnyx_audio.webhooks.receiver import WebhookReceiver
from webhook_fixtures import body, call_deliveries

PROMETHEUS = shutil.which("prometheus")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def target(url: str) -> str:
    """``host:port`` of a metrics URL."""
    return url.split("://", 1)[1].rstrip("/")


class Prometheus:
    """A Prometheus process scraping ``jobs`` ({name: (url, ca_file or None)}) every second."""

    def __init__(self, folder: Path, jobs: dict[str, tuple[str, Path | None]]):
        lines = ["global:", "  scrape_interval: 1s", "  scrape_timeout: 1s", "scrape_configs:"]
        for name, (url, ca) in jobs.items():
            lines += [f"  - job_name: {name}", f"    scheme: {url.split('://')[0]}"]
            if ca is not None:
                lines += ["    tls_config:", f"      ca_file: {ca}"]
            lines += ["    static_configs:", f"      - targets: ['{target(url)}']"]
        config = folder / "prometheus.yml"
        config.write_text("\n".join(lines) + "\n")
        self.url = f"http://127.0.0.1:{free_port()}/"
        self.log = (folder / "prometheus.log").open("w")
        self.proc = subprocess.Popen([PROMETHEUS, f"--config.file={config}", f"--storage.tsdb.path={folder / 'tsdb'}",
                                      f"--web.listen-address={target(self.url)}", "--log.level=warn"],
                                     stdout=self.log, stderr=subprocess.STDOUT)
        self.until(lambda: self._get("-/ready").status_code == 200, "Prometheus to be ready")

    def _get(self, path, **params):
        try:
            return requests.get(self.url + path, params=params, timeout=5)
        except requests.ConnectionError:
            if self.proc.poll() is not None:
                raise AssertionError(f"prometheus exited {self.proc.returncode}: "
                                     f"{Path(self.log.name).read_text()}") from None
            return requests.Response()

    def query(self, promql: str) -> dict[tuple, float]:
        """{labels (sorted, without job and instance): value} of an instant query."""
        answer = self._get("api/v1/query", query=promql).json()
        assert answer["status"] == "success", answer
        return {tuple(sorted((k, v) for k, v in r["metric"].items() if k not in ("job", "instance", "__name__"))):
                float(r["value"][1]) for r in answer["data"]["result"]}

    def until(self, predicate, what, timeout=60.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return
            time.sleep(0.25)
        raise AssertionError(f"timed out waiting for {what}")

    def close(self):
        self.proc.terminate()
        self.proc.wait(30)
        self.log.close()


def test_a_real_prometheus_reads_back_the_counts_each_server_wrote_to_disk(tmp_path):
    if PROMETHEUS is None:
        pytest.skip("prometheus not installed: apt-get install prometheus (Debian's package) to run this test")
    certs = make_certs(tmp_path / "certs")
    capture = CaptureServer(tmp_path / "calls", certfile=certs.cert, keyfile=certs.key, metrics_port=0).start()
    forks = ForkReceiver(tmp_path / "forks", allow=["127.0.0.1"], metrics_port=0).start()
    hooks = WebhookReceiver(tmp_path / "hooks.jsonl", KEY, metrics_port=0).start()
    prometheus = None
    try:
        # The capture server's metrics port speaks TLS too: Prometheus verifies it with our CA.
        assert capture.metrics_url.startswith("https://")
        prometheus = Prometheus(tmp_path, {"capture": (capture.metrics_url, certs.ca),
                                           "forks": (forks.metrics_url, None), "webhooks": (hooks.metrics_url, None)})
        prometheus.until(lambda: prometheus.query("count(up == 1)") == {(): 3.0}, "all three targets up")

        simulate(EXAMPLE, capture.url, cafile=certs.ca)
        simulate(EXAMPLE, capture.url, cafile=certs.ca, drop=0.1, seed=5)
        finished(capture, 2)
        call = forks.allocate("v3:prometheus")
        simulate_fork(np.zeros((2, 8000), np.int16), ("127.0.0.1", call.rx_port), ("127.0.0.1", call.tx_port))
        time.sleep(0.5)
        forks.finish(call)
        raw = body(call_deliveries()[0])
        headers = sign_webhook(raw, SEED, int(time.time()))
        assert requests.post(hooks.url, data=raw, headers=headers, timeout=10).status_code == 200
        assert requests.post(hooks.url, data=raw, headers=headers, timeout=10).status_code == 409  # a replay

        disk = on_disk(tmp_path / "calls")
        records = read_records(call.capture_path)
        expected = {
            'telnyx_audio_media_messages_total{job="capture"}': {(("track", t),): float(disk[t][0]) for t in disk},
            'telnyx_audio_media_bytes_total{job="capture"}': {(("track", t),): float(disk[t][1]) for t in disk},
            'telnyx_audio_streams_total{job="capture"}': {(): 2.0},
            'telnyx_audio_finalize_seconds_count{job="capture"}': {(): 2.0},
            'telnyx_audio_streams_active{job="capture"}': {(): 0.0},
            'telnyx_audio_media_messages_total{job="forks"}': {
                (("track", t),): float((records.track == i).sum()) for i, t in enumerate(("inbound", "outbound"))},
            'telnyx_audio_webhooks_total{job="webhooks"}': {
                (("result", "verified"),): 1.0, (("result", "replayed"),): 1.0, (("result", "rejected"),): 0.0},
        }
        seen: dict = {}

        def all_counted() -> bool:
            seen.update({q: prometheus.query(q) for q in expected})
            return seen == expected

        try:
            prometheus.until(all_counted, "Prometheus to hold every count")
        except AssertionError:
            assert seen == expected  # shows which series differ
    finally:
        if prometheus is not None:
            prometheus.close()
        hooks.stop()
        forks.stop()
        capture.stop()
    assert disk["inbound"][0] > 0 and disk["outbound"][0] > 0 and records.track.size > 0
