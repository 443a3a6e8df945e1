"""The webhook receiver as a real HTTP server on 127.0.0.1, driven with requests."""

import base64
import json
import os
import signal
import subprocess
import sys
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


@pytest.fixture
def rx(tmp_path):
    receiver = WebhookReceiver(tmp_path / "hooks.jsonl", KEY, max_body=4096).start()
    yield receiver
    receiver.stop()


def lines(path):
    return [json.loads(l) for l in Path(path).read_text().splitlines()] if Path(path).exists() else []


def post(rx, raw, headers, timeout=10):
    return requests.post(rx.url, data=raw, headers={"Content-Type": "application/json", **headers}, timeout=timeout)


def test_a_valid_delivery_is_answered_200_after_it_is_on_disk(rx):
    raw = body(call_deliveries()[0])
    r = post(rx, raw, sign_webhook(raw, SEED, int(time.time())))
    assert r.status_code == 200 and r.json()["ok"]
    [record] = lines(rx.verified_log.path)
    assert record["body"].encode() == raw and record["verified"] and record["event_type"] == "call.initiated"
    assert record["headers"]["telnyx-timestamp"] and record["remote"] == "127.0.0.1"
    assert lines(rx.rejected_log.path) == []


def test_a_forged_delivery_is_refused_and_kept_out_of_the_verified_log(rx):
    raw = body(call_deliveries()[1])
    forged = sign_webhook(raw, bytes(32), int(time.time()))  # someone else's key
    r = post(rx, raw, forged)
    assert r.status_code == 401 and "does not match" in r.json()["message"]
    tampered = sign_webhook(raw, SEED, int(time.time()))
    assert post(rx, raw.replace(b"wss://x", b"wss://y"), tampered).status_code == 401
    assert lines(rx.verified_log.path) == []
    assert [r["status"] for r in lines(rx.rejected_log.path)] == [401, 401]


def test_an_old_delivery_replayed_is_refused(rx):
    raw = body(call_deliveries()[2])
    r = post(rx, raw, sign_webhook(raw, SEED, int(time.time()) - 600))
    assert r.status_code == 401 and "outside the tolerance" in r.json()["message"]
    assert lines(rx.verified_log.path) == []


def test_a_fresh_delivery_replayed_is_refused_the_second_time(rx):
    raw = body(call_deliveries()[3])
    headers = sign_webhook(raw, SEED, int(time.time()))
    assert post(rx, raw, headers).status_code == 200
    again = post(rx, raw, headers)
    assert again.status_code == 409 and "replay" in again.json()["message"]
    assert len(lines(rx.verified_log.path)) == 1 and len(lines(rx.rejected_log.path)) == 1


def test_an_oversized_delivery_is_refused_unread(rx):
    raw = b'{"data": {"x": "' + b"a" * 10000 + b'"}}'
    r = post(rx, raw, sign_webhook(raw, SEED, int(time.time())))
    assert r.status_code == 413 and "exceeds the limit of 4096" in r.json()["message"]
    [record] = lines(rx.rejected_log.path)
    assert "body" not in record and lines(rx.verified_log.path) == []


def test_malformed_deliveries_get_400_and_the_reason(rx):
    raw = body(call_deliveries()[0])
    assert post(rx, raw, {}).status_code == 400
    headers = sign_webhook(raw, SEED, int(time.time()))
    assert post(rx, raw, {**headers, "telnyx-timestamp": "soon"}).status_code == 400
    binary = b"\xff\xfe not json"
    r = post(rx, binary, sign_webhook(binary, SEED, int(time.time())))
    assert r.status_code == 400 and "not JSON" in r.json()["message"]
    rejected = lines(rx.rejected_log.path)
    assert base64.b64decode(rejected[-1]["body_b64"]) == binary
    assert [r["status"] for r in rejected] == [400, 400, 400]


def test_get_answers_health_and_counts_are_kept(rx):
    assert requests.get(rx.url + "healthz", timeout=5).status_code == 200
    raw = body(call_deliveries()[0])
    post(rx, raw, sign_webhook(raw, SEED, int(time.time())))
    post(rx, raw, {})
    assert rx.counts == {"verified": 1, "rejected": 1} and "verified=1" in repr(rx)


def test_the_verified_log_loads_into_a_frame(rx):
    for d in call_deliveries():
        raw = body(d)
        assert post(rx, raw, sign_webhook(raw, SEED, int(time.time()))).status_code == 200
    df = load_webhooks(rx.verified_log.path)
    assert len(df) == len(call_deliveries()) and df["verified"].all() and "received_at" in df.columns


def test_a_bad_key_is_refused_before_listening(tmp_path):
    with pytest.raises(ValueError, match="32"):
        WebhookReceiver(tmp_path / "x.jsonl", "c2hvcnQ=")


def test_the_command_line_server_verifies_and_stops_cleanly_on_sigterm(tmp_path):
    out = tmp_path / "events.jsonl"
    cli = Path(sys.executable).parent / "telnyx-audio"
    proc = subprocess.Popen([str(cli), "webhooks", "serve", "--port", "0", "--out", str(out), "--public-key", KEY],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        first = proc.stdout.readline()
        url = first.split("listening on ")[1].split(":", 2)
        url = "http:" + url[1] + ":" + url[2].split("/")[0] + "/"
        raw = body(call_deliveries()[0])
        r = requests.post(url, data=raw, headers=sign_webhook(raw, SEED, int(time.time())), timeout=10)
        assert r.status_code == 200
        proc.send_signal(signal.SIGTERM)
        stdout, stderr = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0 and "1 verified" in stdout
    assert "INFO telnyx_audio.receiver: verified call.initiated e1 from 127.0.0.1" in stderr  # --log-level info
    assert len(lines(out)) == 1 and (tmp_path / "events.rejected.jsonl").exists()


def test_the_command_line_needs_a_public_key(tmp_path):
    cli = Path(sys.executable).parent / "telnyx-audio"
    env = {k: v for k, v in os.environ.items() if k != "TELNYX_PUBLIC_KEY"}
    out = subprocess.run([str(cli), "webhooks", "serve", "--out", str(tmp_path / "e.jsonl")],
                         capture_output=True, text=True, env=env, timeout=30)
    assert out.returncode == 2 and "TELNYX_PUBLIC_KEY" in out.stderr
