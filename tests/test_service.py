"""Production service on all three servers: TLS with real verifying clients, metrics that equal
what is on disk, health and readiness, allowlists and trusted proxies, JSON logs, drain."""

from __future__ import annotations

import asyncio
import base64
import json
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from conftest import media_obj, start_obj, tone_frames
from tls_certs import make_certs
from telnyx_audio.forks.receiver import ForkReceiver
from telnyx_audio.forks.rtpcap import read_records
from telnyx_audio.service import AddressPolicy, client_context, telnyx_ranges
from telnyx_audio.service.addresses import telnyx_ranges_source
from telnyx_audio.simulators.fork import simulate_fork
from telnyx_audio.simulators.stream import simulate
from telnyx_audio.streams.server import CaptureServer
from telnyx_audio.webhooks import sign_webhook
from telnyx_audio.webhooks.receiver import WebhookReceiver
from webhook_fixtures import body, call_deliveries

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "data" / "example_call.jsonl"
CLI = [sys.executable, "-m", "telnyx_audio"]  # this checkout's package (cwd = ROOT), not an installed one
VECTOR = json.loads((Path(__file__).parent / "vectors" / "webhook.json").read_text())
SEED = bytes.fromhex(VECTOR["seed_hex"])
KEY = VECTOR["public_key_b64"]


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    return make_certs(tmp_path_factory.mktemp("certs"))


def wait_for(predicate, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    raise AssertionError("timed out waiting")


def finished(srv, n=1):
    wait_for(lambda: len(srv.streams) >= n and all(i.state in ("done", "error") for i in srv.streams))
    return srv.streams


def scrape(url, verify=True):
    """{(name, ((label, value), ...)): value} from a /metrics page."""
    text = requests.get(url + "metrics", timeout=10, verify=verify).text
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def on_disk(out: Path) -> dict:
    """Media messages and their payload bytes per track, counted in every messages.jsonl."""
    counts = {"inbound": [0, 0], "outbound": [0, 0]}
    for log in out.glob("*/messages.jsonl"):
        for line in log.read_text().splitlines():
            msg = json.loads(line).get("message")
            if isinstance(msg, dict) and msg.get("event") == "media":
                track = msg["media"].get("track", "inbound")
                counts[track][0] += 1
                counts[track][1] += len(base64.b64decode(msg["media"]["payload"]))
    return counts


# --- TLS ------------------------------------------------------------------------------------

def test_the_capture_server_speaks_wss_to_the_simulator_verifying_a_private_ca(tmp_path, certs):
    with CaptureServer(tmp_path / "out", certfile=certs.cert, keyfile=certs.key) as srv:
        assert srv.url.startswith("wss://127.0.0.1:")
        report = simulate(EXAMPLE, srv.url, cafile=certs.ca)
        [info] = finished(srv)
    assert info.state == "done" and report.close_code == 1000 and sum(info.frames.values()) == report.media_sent


def test_a_client_that_does_not_trust_the_ca_is_refused_by_its_own_verification(tmp_path, certs):
    with CaptureServer(tmp_path / "out", certfile=certs.combined) as srv:
        with pytest.raises(ssl.SSLCertVerificationError):
            simulate(EXAMPLE, srv.url)  # the system's CAs do not know ours
        async def plain_websockets():
            async with connect(srv.url, ssl=client_context(certs.ca), compression=None) as ws:
                await ws.send(json.dumps(start_obj()))
                await ws.send(json.dumps({"event": "stop", "stream_id": start_obj()["stream_id"]}))
        asyncio.run(plain_websockets())
        [info] = finished(srv)
    assert info.state == "done" and info.ended_by == "stop"


def test_the_simulator_command_streams_over_wss_with_cafile(tmp_path, certs):
    with CaptureServer(tmp_path / "out", certfile=certs.cert, keyfile=certs.key) as srv:
        out = subprocess.run([*CLI, "simulate", str(EXAMPLE), srv.url, "--cafile", str(certs.ca)],
                             capture_output=True, text=True, timeout=120, cwd=ROOT)
        assert out.returncode == 0, out.stderr
        refused = subprocess.run([*CLI, "simulate", str(EXAMPLE), srv.url], capture_output=True, text=True, cwd=ROOT,
                                 timeout=120)
        [info] = finished(srv)
    assert json.loads(out.stdout)["close_code"] == 1000 and info.state == "done"
    assert refused.returncode == 1 and "CERTIFICATE_VERIFY_FAILED" in refused.stderr and "Traceback" not in refused.stderr


def test_the_webhook_receiver_serves_https_to_requests_verifying_the_ca(tmp_path, certs):
    rx = WebhookReceiver(tmp_path / "hooks.jsonl", KEY, certfile=certs.cert, keyfile=certs.key, metrics_port=0).start()
    try:
        raw = body(call_deliveries()[0])
        assert rx.url.startswith("https://")
        r = requests.post(rx.url, data=raw, headers=sign_webhook(raw, SEED, int(time.time())), timeout=10,
                          verify=str(certs.ca))
        assert r.status_code == 200
        with pytest.raises(requests.exceptions.SSLError):
            requests.post(rx.url, data=raw, timeout=10)  # not trusting our CA
        assert rx.metrics_url.startswith("https://")
        metrics = scrape(rx.metrics_url, verify=str(certs.ca))  # the metrics port speaks TLS too
    finally:
        rx.stop()
    assert metrics[("telnyx_audio_webhooks_total", (("result", "verified"),))] == 1
    assert metrics[("telnyx_audio_refusals_total", (("reason", "tls"),))] == 1  # the client that hung up


def test_a_mismatched_key_is_a_clear_error_naming_the_file(tmp_path, certs):
    other = make_certs(tmp_path / "other")
    with pytest.raises(ValueError, match="server.pem"):
        CaptureServer(tmp_path / "out", certfile=certs.cert, keyfile=other.key)


# --- metrics equal what is on disk ------------------------------------------------------------

def test_capture_metrics_equal_the_messages_written_to_disk(tmp_path):
    with CaptureServer(tmp_path / "out", metrics_port=0) as srv:
        simulate(EXAMPLE, srv.url)
        simulate(EXAMPLE, srv.url, drop=0.1, duplicate=0.1, seed=3)
        simulate(EXAMPLE, srv.url, tracks="inbound", disconnect_after=2.0)
        finished(srv, 3)
        metrics = scrape(srv.metrics_url)
    disk = on_disk(tmp_path / "out")
    for track in ("inbound", "outbound"):
        assert metrics[("telnyx_audio_media_messages_total", (("track", track),))] == disk[track][0] > 0
        assert metrics[("telnyx_audio_media_bytes_total", (("track", track),))] == disk[track][1]
    assert metrics[("telnyx_audio_streams_total", ())] == 3 and metrics[("telnyx_audio_streams_active", ())] == 0
    assert metrics[("telnyx_audio_finalize_seconds_count", ())] == 3 and metrics[("telnyx_audio_finalize_queue", ())] == 0
    assert metrics[("telnyx_audio_write_errors_total", ())] == 0


def test_fork_metrics_equal_the_datagrams_written_and_count_the_dropped(tmp_path):
    with ForkReceiver(tmp_path / "out", allow=["127.0.0.1"], metrics_port=0) as receiver:
        call = receiver.allocate("v3:metrics")
        sent = simulate_fork(np.zeros((2, 8000), np.int16), ("127.0.0.1", call.rx_port), ("127.0.0.1", call.tx_port),
                             dtmf=[(0.2, "7")])
        stranger = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        stranger.bind(("127.0.0.2", 0))  # loopback, but not allowed
        for _ in range(5):
            stranger.sendto(b"\x80" + bytes(171), ("127.0.0.1", call.rx_port))
        stranger.close()
        wait_for(lambda: sum(call.packets) == sent.packets_sent and receiver.dropped == 5)
        receiver.finish(call)
        metrics = scrape(receiver.metrics_url)
    records = read_records(call.capture_path)
    for index, track in enumerate(("inbound", "outbound")):
        mine = records.track == index
        assert metrics[("telnyx_audio_media_messages_total", (("track", track),))] == int(mine.sum()) > 0
        assert metrics[("telnyx_audio_media_bytes_total", (("track", track),))] == int(records.length[mine].sum())
    assert metrics[("telnyx_audio_fork_dropped_total", (("reason", "not_allowed"),))] == 5
    assert metrics[("telnyx_audio_fork_datagrams_total", (("track", "inbound"),))] == int((records.track == 0).sum()) + 5
    assert metrics[("telnyx_audio_streams_total", ())] == 1 and metrics[("telnyx_audio_finalize_seconds_count", ())] == 1


def test_webhook_metrics_equal_the_records_of_each_log(tmp_path):
    rx = WebhookReceiver(tmp_path / "hooks.jsonl", KEY, metrics_port=0).start()
    try:
        now = int(time.time())
        for delivery in call_deliveries()[:3]:
            raw = body(delivery)
            headers = sign_webhook(raw, SEED, now)
            requests.post(rx.url, data=raw, headers=headers, timeout=10)
            requests.post(rx.url, data=raw, headers=headers, timeout=10)  # a replay
        raw = body(call_deliveries()[4])
        requests.post(rx.url, data=raw + b" ", headers=sign_webhook(raw, SEED, now), timeout=10)  # forged
        metrics = scrape(rx.metrics_url)
    finally:
        rx.stop()
    verified = rx.verified_log.path.read_text().splitlines()
    rejected = [json.loads(l) for l in rx.rejected_log.path.read_text().splitlines()]
    assert metrics[("telnyx_audio_webhooks_total", (("result", "verified"),))] == len(verified) == 3
    assert metrics[("telnyx_audio_webhooks_total", (("result", "replayed"),))] == sum(r["status"] == 409 for r in rejected) == 3
    assert metrics[("telnyx_audio_webhooks_total", (("result", "rejected"),))] == sum(r["status"] != 409 for r in rejected) == 1


# --- health and readiness ---------------------------------------------------------------------

def test_readyz_fails_when_the_output_folder_cannot_be_written_or_the_disk_is_nearly_full(tmp_path):
    with CaptureServer(tmp_path / "out", metrics_port=0) as srv:
        url = srv.metrics_url
        assert requests.get(url + "healthz", timeout=5).status_code == 200
        assert requests.get(url + "readyz", timeout=5).status_code == 200
        shutil.rmtree(tmp_path / "out")
        r = requests.get(url + "readyz", timeout=5)
        assert r.status_code == 503 and "not writable" in r.text
        (tmp_path / "out").mkdir()
        assert requests.get(url + "readyz", timeout=5).status_code == 200
    with CaptureServer(tmp_path / "full", metrics_port=0, min_free_bytes=1 << 62) as srv:
        r = requests.get(srv.metrics_url + "readyz", timeout=5)
        assert r.status_code == 503 and r.text.startswith("disk nearly full")
        assert requests.get(srv.metrics_url + "healthz", timeout=5).status_code == 200


def test_healthz_fails_while_the_event_loop_is_blocked(tmp_path):
    with CaptureServer(tmp_path / "out", metrics_port=0) as srv:
        srv._loop.call_soon_threadsafe(time.sleep, 3.0)  # a stuck loop
        time.sleep(0.2)
        assert requests.get(srv.metrics_url + "healthz", timeout=10).status_code == 503
        time.sleep(3.0)
        assert requests.get(srv.metrics_url + "healthz", timeout=10).status_code == 200


# --- allowlists and trusted proxies -----------------------------------------------------------

def test_telnyx_ranges_are_kept_with_their_source_and_date():
    source = telnyx_ranges_source()
    assert source["source"].startswith("https://developers.telnyx.com/") and source["retrieved"] == "2026-12-07"
    assert len(telnyx_ranges()) == 8 and "185.246.41.16/29" in telnyx_ranges()
    policy = AddressPolicy(["telnyx"])
    assert policy.allowed("185.246.41.20") and policy.allowed("::ffff:103.115.244.9")
    assert not policy.allowed("185.246.41.24") and not policy.allowed("not an address")
    with pytest.raises(ValueError, match="'telnix'"):
        AddressPolicy(["telnix"])


def test_x_forwarded_for_is_believed_only_from_a_trusted_proxy_and_read_from_the_right():
    policy = AddressPolicy(trusted_proxies=["127.0.0.0/8", "10.0.0.0/8"])
    assert policy.client("127.0.0.1", ["203.0.113.5"]) == "203.0.113.5"
    assert policy.client("127.0.0.1", ["6.6.6.6, 203.0.113.5, 10.1.1.1"]) == "203.0.113.5"  # forged first hop ignored
    assert policy.client("127.0.0.1", ["6.6.6.6", "203.0.113.5"]) == "203.0.113.5"  # two headers, in order
    assert policy.client("198.51.100.9", ["203.0.113.5"]) == "198.51.100.9"  # not a proxy: header ignored
    assert policy.client("127.0.0.1", ["junk"]) == "127.0.0.1"


def test_the_capture_server_refuses_addresses_outside_allow_with_403_and_counts_them(tmp_path):
    with CaptureServer(tmp_path / "out", allow=["192.0.2.0/24"], metrics_port=0) as srv:
        with pytest.raises(InvalidStatus) as refused:
            simulate(EXAMPLE, srv.url)
        assert refused.value.response.status_code == 403
        metrics = scrape(srv.metrics_url)
    assert metrics[("telnyx_audio_refusals_total", (("reason", "not_allowed"),))] == 1
    assert not list((tmp_path / "out").iterdir())


def test_behind_a_trusted_proxy_the_forwarded_client_is_checked_and_recorded(tmp_path):
    with CaptureServer(tmp_path / "out", allow=["192.0.2.0/24"], trusted_proxies=["127.0.0.1"]) as srv:
        async def through_proxy(forwarded):
            headers = {"X-Forwarded-For": forwarded}
            async with connect(srv.url, additional_headers=headers, compression=None) as ws:
                start = start_obj()
                start["stream_id"] = "via-proxy"
                await ws.send(json.dumps(start))
                await ws.send(json.dumps({"event": "stop", "stream_id": "via-proxy"}))
        asyncio.run(through_proxy("198.51.100.1, 192.0.2.7"))
        with pytest.raises(InvalidStatus) as refused:
            asyncio.run(through_proxy("192.0.2.7, 198.51.100.1"))
        [info] = finished(srv)
    assert refused.value.response.status_code == 403
    assert info.peer == "192.0.2.7"
    assert json.loads((info.folder / "summary.json").read_text())["capture_server"]["peer"] == "192.0.2.7"


def test_a_client_cannot_forge_its_address_without_a_trusted_proxy(tmp_path):
    with CaptureServer(tmp_path / "out", allow=["192.0.2.0/24"]) as srv:
        async def forged():
            async with connect(srv.url, additional_headers={"X-Forwarded-For": "192.0.2.7"}):
                pass
        with pytest.raises(InvalidStatus):
            asyncio.run(forged())


def test_the_webhook_receiver_allows_and_refuses_by_address_and_through_a_proxy(tmp_path):
    raw = body(call_deliveries()[0])
    rx = WebhookReceiver(tmp_path / "a.jsonl", KEY, allow=["192.0.2.0/24"], metrics_port=0).start()
    try:
        r = requests.post(rx.url, data=raw, headers=sign_webhook(raw, SEED, int(time.time())), timeout=10)
        assert r.status_code == 403
        assert scrape(rx.metrics_url)[("telnyx_audio_refusals_total", (("reason", "not_allowed"),))] == 1
    finally:
        rx.stop()
    rx = WebhookReceiver(tmp_path / "b.jsonl", KEY, allow=["192.0.2.0/24"], trusted_proxies=["127.0.0.1"]).start()
    try:
        ok = requests.post(rx.url, data=raw, headers={**sign_webhook(raw, SEED, int(time.time())),
                                                      "X-Forwarded-For": "192.0.2.9"}, timeout=10)
        no = requests.post(rx.url, data=raw, headers={**sign_webhook(raw, SEED, int(time.time()) - 1),
                                                      "X-Forwarded-For": "198.51.100.1"}, timeout=10)
    finally:
        rx.stop()
    assert ok.status_code == 200 and no.status_code == 403
    [record] = [json.loads(l) for l in (tmp_path / "b.jsonl").read_text().splitlines()]
    assert record["remote"] == "192.0.2.9" and record["proxy"] == "127.0.0.1"


# --- the command line: JSON logs, drain ---------------------------------------------------------

class Cli:
    """A server command in a subprocess; ``lines`` are its stdout lines as they come."""

    def __init__(self, *args, wait_for_text="listening"):
        self.proc = subprocess.Popen([*CLI, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                     cwd=ROOT)
        self.first = self.proc.stdout.readline()
        assert wait_for_text in self.first, self.first + self.proc.stderr.read()

    def word_after(self, prefix):
        return self.first.split(prefix, 1)[1].split()[0].rstrip(";")

    def finish(self, timeout=60):
        out, err = self.proc.communicate(timeout=timeout)
        return self.proc.returncode, self.first + out, err


def test_json_logs_are_one_object_per_line_with_the_call_fields_and_never_the_token(tmp_path):
    token = "tok-" + "s3cr3t" * 5
    srv = Cli("capture", "--port", "0", "--out", str(tmp_path / "out"), "--auth-token", token, "--log-format", "json")
    url = srv.word_after("listening on ")
    simulate(EXAMPLE, url, auth_token=token, token_in="connected")
    with pytest.raises(InvalidStatus):
        simulate(EXAMPLE, url, auth_token=token + "x")  # refused: the near-miss must not be logged either
    time.sleep(1.0)
    srv.proc.send_signal(signal.SIGTERM)
    code, out, err = srv.finish()
    assert code == 0 and token not in err and token not in out
    records = [json.loads(line) for line in err.splitlines()]  # every line is one JSON object
    started = next(r for r in records if r["event"] == "stream_started")
    ended = next(r for r in records if r["event"] == "stream_ended")
    refused = next(r for r in records if r["event"] == "refused")
    assert started["call_control_id"] and started["stream_id"] == ended["stream_id"] and started["peer"] == "127.0.0.1"
    assert ended["figures"]["frames"]["inbound"] == 400 and ended["figures"]["ended_by"] == "stop"
    assert refused["peer"] == "127.0.0.1" and refused["reason"] == "auth" and refused["level"] == "warning"
    assert all(set(r) >= {"time", "level", "event", "message"} for r in records)


async def _open_stream(url, stream_id, n_frames):
    ws = await connect(url, compression=None)
    start = start_obj()
    start["stream_id"] = stream_id
    await ws.send(json.dumps(start))
    for f in tone_frames(n_frames):
        await ws.send(json.dumps(media_obj(f, stream_id=stream_id)))
    return ws


def test_sigterm_drains_open_calls_to_their_end_and_refuses_new_ones(tmp_path):
    srv = Cli("capture", "--port", "0", "--out", str(tmp_path / "out"), "--metrics-port", "0", "--drain-timeout", "30")
    url = srv.word_after("listening on ")
    metrics = srv.word_after("metrics on ").removesuffix("metrics")

    async def scenario():
        calls = [await _open_stream(url, f"call-{n}", 20) for n in range(2)]
        await asyncio.sleep(0.3)
        srv.proc.send_signal(signal.SIGTERM)
        await asyncio.sleep(0.5)
        ready = await asyncio.to_thread(requests.get, metrics + "readyz", timeout=5)
        with pytest.raises(OSError):  # the port is closed: no new call
            await connect(url, open_timeout=2)
        return ready, calls

    async def run():
        ready, calls = await scenario()
        for n, ws in enumerate(calls):  # the open calls go on after SIGTERM, then end as calls do
            for f in tone_frames(40)[40:]:
                await ws.send(json.dumps(media_obj(f, stream_id=f"call-{n}")))
            await ws.send(json.dumps({"event": "stop", "stream_id": f"call-{n}"}))
            await ws.wait_closed()
        return ready

    ready = asyncio.run(run())
    code, out, err = srv.finish()
    assert ready.status_code == 503 and ready.text.strip() == "draining"
    assert code == 0 and "2 streams, 0 with errors" in out
    for n in range(2):
        summary = json.loads((tmp_path / "out" / f"call-{n}" / "summary.json").read_text())
        assert summary["capture_server"]["ended_by"] == "stop"  # it ran to its end
        assert summary["track_reports"]["inbound"]["frames_received"] == 40  # 20 before SIGTERM, 20 after


def test_a_second_sigterm_finalises_at_once_and_keeps_every_frame(tmp_path):
    srv = Cli("capture", "--port", "0", "--out", str(tmp_path / "out"), "--drain-timeout", "600")
    url = srv.word_after("listening on ")

    async def run():
        ws = await _open_stream(url, "held", 50)
        await asyncio.sleep(0.3)
        srv.proc.send_signal(signal.SIGTERM)
        await asyncio.sleep(0.3)
        began = time.monotonic()
        srv.proc.send_signal(signal.SIGTERM)
        await ws.wait_closed()
        return time.monotonic() - began

    took = asyncio.run(run())
    code, out, err = srv.finish()
    assert code == 0 and took < 10
    summary = json.loads((tmp_path / "out" / "held" / "summary.json").read_text())
    assert summary["capture_server"]["ended_by"] == "shutdown"
    assert summary["track_reports"]["inbound"]["frames_received"] == 50


def test_the_drain_timeout_ends_calls_that_do_not_end(tmp_path):
    srv = Cli("capture", "--port", "0", "--out", str(tmp_path / "out"), "--drain-timeout", "1")
    url = srv.word_after("listening on ")

    async def run():
        ws = await _open_stream(url, "long", 30)
        await asyncio.sleep(0.3)
        began = time.monotonic()
        srv.proc.send_signal(signal.SIGTERM)
        await ws.wait_closed()
        return time.monotonic() - began

    took = asyncio.run(run())
    code, out, err = srv.finish()
    assert code == 0 and 0.9 < took < 10
    summary = json.loads((tmp_path / "out" / "long" / "summary.json").read_text())
    assert summary["capture_server"]["ended_by"] == "shutdown" and summary["track_reports"]["inbound"]["frames_received"] == 30


def test_a_draining_fork_receiver_keeps_its_open_call_and_opens_no_new_one(tmp_path):
    receiver = ForkReceiver(tmp_path / "out", ports="41000-41003", listen_all=True, idle_timeout=0.5,
                            drain_timeout_s=30).start()
    try:
        (rx1, tx1), (rx2, _) = receiver.pairs
        sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        packet = b"\x80\x00" + bytes(170)
        sender.sendto(packet, ("127.0.0.1", rx1))
        wait_for(lambda: len(receiver.sessions) == 1)
        receiver.drain(timeout=0)
        wait_for(lambda: receiver.draining)
        for _ in range(3):
            sender.sendto(packet, ("127.0.0.1", rx1))  # the open call still lands
            sender.sendto(packet, ("127.0.0.1", rx2))  # a new call does not
        sender.close()
        receiver._thread.join(20)  # it stops once the open call has gone idle
        assert not receiver._thread.is_alive()
    finally:
        receiver.stop()
    [session] = receiver.sessions
    assert session.packets == [4, 0] and session.state == "done"
    assert receiver._dropped_by == {("draining", 0): 3}


def test_webhooks_serve_drains_on_sigterm_and_exits(tmp_path):
    srv = Cli("webhooks", "serve", "--port", "0", "--out", str(tmp_path / "h.jsonl"), "--public-key", KEY,
              "--metrics-port", "0", "--drain-timeout", "5", "--log-format", "json")
    url = srv.word_after("listening on ").rstrip(":")
    raw = body(call_deliveries()[0])
    assert requests.post(url, data=raw, headers=sign_webhook(raw, SEED, int(time.time())), timeout=10).status_code == 200
    srv.proc.send_signal(signal.SIGTERM)
    code, out, err = srv.finish(timeout=30)
    assert code == 0 and "1 verified" in out
    events = [json.loads(line)["event"] for line in err.splitlines()]
    assert "webhook_verified" in events and "drain_started" in events
    with pytest.raises(requests.ConnectionError):
        requests.post(url, data=raw, timeout=5)


def test_fork_capture_drains_on_sigterm_keeping_the_open_call_and_opening_none(tmp_path):
    srv = Cli("fork", "capture", "--ports", "41100-41103", "--out", str(tmp_path / "out"), "--idle-timeout", "1",
              "--metrics-port", "0", "--drain-timeout", "30", "--log-format", "json")
    metrics = srv.word_after("metrics on ").removesuffix("metrics")
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    packet = b"\x80\x00" + bytes(170)
    try:
        sender.sendto(packet, ("127.0.0.1", 41100))
        wait_for(lambda: scrape(metrics)[("telnyx_audio_streams_active", ())] == 1)
        srv.proc.send_signal(signal.SIGTERM)
        wait_for(lambda: requests.get(metrics + "readyz", timeout=5).status_code == 503)
        for _ in range(3):
            sender.sendto(packet, ("127.0.0.1", 41100))  # the open call still lands
            sender.sendto(packet, ("127.0.0.1", 41102))  # a new call does not
        wait_for(lambda: scrape(metrics)[("telnyx_audio_fork_dropped_total", (("reason", "draining"),))] == 3)
    finally:
        sender.close()
    code, out, err = srv.finish()  # it exits once the open call has been idle for 1 s
    assert code == 0 and "1 calls, 4 datagrams written" in out, out
    [folder] = list((tmp_path / "out").iterdir())
    assert len(read_records(folder / "fork.rtpcap").track) == 4 and (folder / "summary.json").exists()
    assert "drain_started" in [json.loads(line)["event"] for line in err.splitlines()]


def test_an_address_outside_allow_is_logged_with_its_peer_and_reason(tmp_path):
    srv = Cli("capture", "--port", "0", "--out", str(tmp_path / "out"), "--allow", "192.0.2.0/24",
              "--log-format", "json")
    url = srv.word_after("listening on ")
    with pytest.raises(InvalidStatus):
        simulate(EXAMPLE, url)
    srv.proc.send_signal(signal.SIGTERM)
    code, out, err = srv.finish()
    [refused] = [r for r in map(json.loads, err.splitlines()) if r["event"] == "refused"]
    assert code == 0 and refused["peer"] == "127.0.0.1" and refused["reason"] == "not_allowed"
    assert refused["level"] == "warning"
