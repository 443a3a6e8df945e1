"""The webhook receiver under hostile clients, on 127.0.0.1: replays, slow drips, floods, duplicated headers."""

import base64
import hashlib
import http.client
import json
import logging
import socket
import threading
import time
from pathlib import Path

import pytest
import requests

from telnyx_audio.webhooks.receiver import WebhookReceiver
from telnyx_audio.webhooks import load_webhooks, sign_webhook
from webhook_fixtures import body, call_deliveries

VECTOR = json.loads((Path(__file__).parent / "vectors" / "webhook.json").read_text())
SEED = bytes.fromhex(VECTOR["seed_hex"])
KEY = VECTOR["public_key_b64"]
B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"


def lines(path):
    return [json.loads(l) for l in Path(path).read_text().splitlines()] if Path(path).exists() else []


def post(url, raw, headers):
    return requests.post(url, data=raw, headers={"Content-Type": "application/json", **headers}, timeout=10)


def spellings(signature):
    """The 16 base64 texts of one 64-byte signature: ``X==`` keeps 2 bits of X, 4 are spare."""
    assert len(signature) == 88 and signature.endswith("==")
    kept = B64.index(signature[85]) & 0b110000
    return [signature[:85] + B64[kept | spare] + "==" for spare in range(16)]


def test_every_base64_spelling_of_an_accepted_signature_is_a_replay(tmp_path):
    raw = body(call_deliveries()[0])
    headers = sign_webhook(raw, SEED, int(time.time()))
    texts = spellings(headers["telnyx-signature-ed25519"])
    assert len(set(texts)) == 16 and len({base64.b64decode(t) for t in texts}) == 1
    with WebhookReceiver(tmp_path / "hooks.jsonl", KEY) as rx:
        codes = [post(rx.url, raw, {**headers, "telnyx-signature-ed25519": t}).status_code for t in texts]
    assert codes.count(200) == 1 and codes.count(409) == 15
    assert len(lines(tmp_path / "hooks.jsonl")) == 1


def test_a_replay_after_a_restart_is_refused_and_old_deliveries_are_forgotten(tmp_path):
    now = int(time.time())
    fresh, old = body(call_deliveries()[1]), body(call_deliveries()[2])
    fresh_headers = sign_webhook(fresh, SEED, now)
    with WebhookReceiver(tmp_path / "hooks.jsonl", KEY) as rx:
        assert post(rx.url, fresh, fresh_headers).status_code == 200
    # an earlier run accepted this one 20 minutes ago: its timestamp is long out of the window
    record = {**lines(tmp_path / "hooks.jsonl")[0], "received_at": "2000-01-01T00:00:00+00:00"}
    with open(tmp_path / "hooks.jsonl", "r+") as f:
        text = f.read()
        f.seek(0)
        f.write(json.dumps(record) + "\n" + text)
    with WebhookReceiver(tmp_path / "hooks.jsonl", KEY) as rx:
        assert rx.remembered == 1
        again = post(rx.url, fresh, fresh_headers)
        other = post(rx.url, old, sign_webhook(old, SEED, now))
    assert again.status_code == 409 and "replay" in again.json()["message"] and other.status_code == 200
    assert len(lines(tmp_path / "hooks.jsonl")) == 3


def test_a_signature_is_remembered_until_its_timestamp_leaves_the_window(tmp_path):
    raw = body(call_deliveries()[3])
    time.sleep(1.05 - time.time() % 1)  # just past a second boundary: the margins below are whole
    now = time.time()
    ahead = sign_webhook(raw, SEED, int(now) + 2)  # as far in the future as a 2 s tolerance allows
    with WebhookReceiver(tmp_path / "hooks.jsonl", KEY, tolerance_s=2) as rx:
        assert post(rx.url, raw, ahead).status_code == 200
        # acceptable until int(now) + 5; a memory of "2 tolerances after receipt" forgets it at now + 4
        while time.time() < now + 4.3:
            time.sleep(0.05)
        late = post(rx.url, raw, ahead)
    assert late.status_code == 409


def drip(port, stop):
    """A client that sends its request one byte at a time, slowly."""
    sock = socket.create_connection(("127.0.0.1", port))
    request = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n" + b"{" * 100
    try:
        for byte in request:
            if stop.is_set():
                break
            sock.sendall(bytes([byte]))
            time.sleep(0.2)
    except OSError:  # closed by the server: what we wanted
        return True
    finally:
        sock.close()
    return False


def test_slow_drips_are_cut_at_the_deadline_and_threads_stay_bounded(tmp_path):
    rx = WebhookReceiver(tmp_path / "hooks.jsonl", KEY, read_timeout_s=1.0, max_connections=8).start()
    port = int(rx.url.rsplit(":", 1)[1].strip("/"))
    baseline = threading.active_count()
    stop, results = threading.Event(), []
    attackers = [threading.Thread(target=lambda: results.append(drip(port, stop))) for _ in range(30)]
    try:
        for t in attackers:
            t.start()
        time.sleep(0.5)
        peak = threading.active_count() - baseline - len(attackers)
        time.sleep(2.5)  # past the deadline: each drip has been cut
        raw = body(call_deliveries()[4])
        ok = post(rx.url, raw, sign_webhook(raw, SEED, int(time.time())))
    finally:
        stop.set()
        for t in attackers:
            t.join(30)
        rx.stop()
    assert peak <= 8, f"{peak} server threads for 30 slow clients"
    assert results.count(True) == 30  # every one was closed by the server, none sent its request
    assert ok.status_code == 200


def test_silent_connections_past_the_cap_are_answered_503_at_once(tmp_path, caplog):
    caplog.set_level(logging.WARNING, logger="telnyx_audio.receiver")
    with WebhookReceiver(tmp_path / "hooks.jsonl", KEY, read_timeout_s=1.0, max_connections=4) as rx:
        port = int(rx.url.rsplit(":", 1)[1].strip("/"))
        silent = [socket.create_connection(("127.0.0.1", port)) for _ in range(4)]
        time.sleep(0.2)
        t0 = time.monotonic()
        busy = requests.get(rx.url + "healthz", timeout=5)
        waited = time.monotonic() - t0
        time.sleep(1.2)  # their deadline: the slots are free again
        raw = body(call_deliveries()[5])
        ok = post(rx.url, raw, sign_webhook(raw, SEED, int(time.time())))
        for s in silent:
            s.settimeout(1)
            assert s.recv(100) == b""  # closed by the server
            s.close()
    assert busy.status_code == 503 and waited < 1.0 and ok.status_code == 200
    assert "refused 127.0.0.1: 503 4 connections open" in caplog.text


@pytest.mark.parametrize("name", ["telnyx-signature-ed25519", "telnyx-timestamp", "Content-Length"])
def test_a_duplicated_security_header_is_refused_400(tmp_path, name):
    raw = body(call_deliveries()[6])
    now = int(time.time())
    signed = sign_webhook(raw, SEED, now)
    headers = {**signed, "Content-Length": str(len(raw)), "Content-Type": "application/json"}
    second = {"telnyx-signature-ed25519": sign_webhook(raw, bytes(32), now)["telnyx-signature-ed25519"],
              "telnyx-timestamp": str(now - 1), "Content-Length": str(len(raw))}[name]
    with WebhookReceiver(tmp_path / "hooks.jsonl", KEY) as rx:
        conn = http.client.HTTPConnection("127.0.0.1", int(rx.url.rsplit(":", 1)[1].strip("/")), timeout=10)
        conn.putrequest("POST", "/")
        for key, value in headers.items():
            conn.putheader(key, value)
        conn.putheader(name, second)  # the same header again
        conn.endheaders(raw)
        answer = conn.getresponse()
        message = json.loads(answer.read())["message"]
        conn.close()
    assert answer.status == 400 and f"{name.lower()} header is given 2 times" in message
    assert lines(tmp_path / "hooks.jsonl") == []


def test_unsigned_large_bodies_cannot_fill_the_disk_through_the_rejected_log(tmp_path, caplog):
    raw = json.dumps({"data": {"event_type": "call.hangup", "id": "x", "pad": "é" * 400_000}}, ensure_ascii=False).encode()  # 800 KB
    forged = sign_webhook(raw, bytes(32), int(time.time()))  # signed with another key: 401
    with caplog.at_level(logging.WARNING, logger="telnyx_audio.receiver"):
        with WebhookReceiver(tmp_path / "hooks.jsonl", KEY, max_rejected_bytes=40_000) as rx:
            codes = [post(rx.url, raw, forged).status_code for _ in range(12)]
    assert codes == [401] * 12
    rejected = tmp_path / "hooks.rejected.jsonl"
    records = lines(rejected)
    assert rejected.stat().st_size <= 40_000 and len(records) >= 5
    assert rx.rejected_unlogged == 12 - len(records) and rx.counts["rejected"] == 12
    first = records[0]
    assert first["body_truncated"] and first["body_bytes"] == len(raw)
    assert first["body_sha256"] == hashlib.sha256(raw).hexdigest() and raw.startswith(first["body"].encode())
    assert 4000 <= len(first["body"].encode()) <= 4096
    assert caplog.text.count("further records are counted, not written") == 1
    df = load_webhooks(rejected, include_rejected=True)  # a cut body is reported, never parsed as a delivery
    assert len(df) == 0 and "kept only part of this refused body" in df.attrs["load_report"]["bad"][0]["reason"]
    assert load_webhooks(rejected).attrs["load_report"]["rejected"] == len(records)


def test_the_rejected_log_takes_at_most_its_rate_of_refusals(tmp_path):
    raw = body(call_deliveries()[0])
    with WebhookReceiver(tmp_path / "hooks.jsonl", KEY, max_rejected_per_s=5) as rx:
        started = time.monotonic()
        codes = [post(rx.url, raw, {}).status_code for _ in range(20)]
        seconds = int(time.monotonic() - started) + 1
    assert codes == [400] * 20 and rx.counts["rejected"] == 20
    written = len(lines(tmp_path / "hooks.rejected.jsonl"))
    assert written <= 5 * (seconds + 1) and written + rx.rejected_unlogged == 20 and rx.rejected_unlogged > 0
    assert lines(tmp_path / "hooks.rejected.jsonl")[0]["body"] == raw.decode()  # a small body stays whole


def raw_post(url, head_lines, data=b""):
    """One request written byte by byte (no client library tidies its headers); the status."""
    host, port = url.split("//")[1].split("/")[0].split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(b"POST /hooks HTTP/1.1\r\nHost: x\r\n" + b"".join(h + b"\r\n" for h in head_lines) + b"\r\n" + data)
        answer = b""
        while b"\r\n\r\n" not in answer:
            chunk = sock.recv(65536)
            if not chunk:
                break
            answer += chunk
    return int(answer.split(b" ", 2)[1]) if answer else None


@pytest.mark.parametrize("length", ["\u00b2".encode("latin-1"), b"9" * 5000, b"\xd9\xa3", b"+5", b"0x10"])
def test_a_content_length_that_is_not_ascii_digits_is_answered_400_and_logged(tmp_path, length, caplog):
    with caplog.at_level(logging.WARNING):
        with WebhookReceiver(tmp_path / "hooks.jsonl", KEY) as rx:
            status = raw_post(rx.url, [b"Content-Length: " + length], b"{}")
            assert rx.counts["rejected"] == 1
    assert status == 400
    record = lines(tmp_path / "hooks.rejected.jsonl")[0]
    assert record["status"] == 400 and "ASCII digits" in record["error"]
    assert "Traceback" not in caplog.text


def test_refused_requests_with_huge_header_names_and_paths_stay_small_in_the_rejected_log(tmp_path):
    name = b"X-" + b"n" * 60_000
    with WebhookReceiver(tmp_path / "hooks.jsonl", KEY) as rx:
        host, port = rx.url.split("//")[1].split("/")[0].split(":")
        statuses = []
        for i in range(12):
            with socket.create_connection((host, int(port)), timeout=10) as sock:
                heads = b"".join(name + b"%d: v\r\n" % k for k in range(20))
                sock.sendall(b"POST /" + b"p" * 60_000 + b" HTTP/1.1\r\nHost: x\r\n" + heads + b"Content-Length: 2\r\n\r\n{}")
                statuses.append(int(sock.recv(65536).split(b" ", 2)[1]))
    assert statuses == [400] * 12
    records = lines(tmp_path / "hooks.rejected.jsonl")
    assert len(records) == 12 and rx.rejected_unlogged == 0
    assert (tmp_path / "hooks.rejected.jsonl").stat().st_size < 12 * 40_000
    assert all(len(k) <= 128 for k in records[0]["headers"]) and len(records[0]["path"]) <= 1024
    assert records[0]["path_truncated"] == 60_001
