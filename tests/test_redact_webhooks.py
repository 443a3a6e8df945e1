"""Typed digits in webhooks (#20): ``load_webhooks(..., mask_dtmf=True)`` and the receiver's
``redact_dtmf``, with a real HTTP server on 127.0.0.1 and real Ed25519 signatures."""

from __future__ import annotations

import copy
import json
import time
from pathlib import Path

import requests

from telnyx_audio.webhooks import load_webhooks, sign_webhook
from telnyx_audio.webhooks.receiver import WebhookReceiver
from webhook_fixtures import body, call_deliveries, delivery, flat

VECTOR = json.loads((Path(__file__).parent / "vectors" / "webhook.json").read_text())
SEED = bytes.fromhex(VECTOR["seed_hex"])
KEY = VECTOR["public_key_b64"]


def typed():
    return [*call_deliveries(),
            delivery("call.gather.ended", "g1", "2026-11-24T10:00:08.000000Z", {"digits": "4111#", "status": "valid"}),
            flat("call.dtmf.received", "h1", "2026-11-24T10:00:06.500000Z", {"digit": "9"}),
            {"AccountSid": "a", "CallSid": "v3:texml", "Timestamp": "2026-11-24T10:00:09Z", "Digits": "1234"}]


def test_load_webhooks_masks_every_typed_digit_and_leaves_the_callers_dicts_alone():
    hooks = typed()
    before = copy.deepcopy(hooks)
    df = load_webhooks(hooks, mask_dtmf=True)
    assert df.loc[df["id"] == "e5", "digit"].tolist() == ["*"]
    assert df.loc[df["id"] == "h1", "digit"].tolist() == ["*"]
    assert df.loc[df["id"] == "g1", "digits"].tolist() == ["*****"]
    assert df.loc[df["call_control_id"] == "v3:texml", "Digits"].tolist() == ["****"]
    assert df.attrs["load_report"]["dtmf_masked"] == 4 and len(df) == len(hooks)
    assert hooks == before
    clear = load_webhooks(hooks)  # the default keeps them (and says nothing of masking)
    assert clear.loc[clear["id"] == "g1", "digits"].tolist() == ["4111#"]
    assert "dtmf_masked" not in clear.attrs["load_report"]


def post(rx, raw, timestamp=None):
    headers = sign_webhook(raw, SEED, int(time.time()) if timestamp is None else timestamp)
    return requests.post(rx.url, data=raw, headers={"Content-Type": "application/json", **headers}, timeout=10)


def test_a_redacting_receiver_stores_masked_deliveries_and_the_verification_result(tmp_path):
    hooks = typed()[:-1]
    with WebhookReceiver(tmp_path / "hooks.jsonl", KEY, redact_dtmf=True) as rx:
        for hook in hooks:
            assert post(rx, body(hook)).status_code == 200
        dtmf = body(hooks[4])
        assert post(rx, dtmf).status_code == 409  # a replay: rejected, and masked there too
        assert post(rx, dtmf, timestamp=int(time.time()) - 900).status_code == 401
    for log in ("hooks.jsonl", "hooks.rejected.jsonl"):
        text = (tmp_path / log).read_text()
        compact = text.replace(" ", "")
        assert '"digit":"5"' not in compact and '"digit":"9"' not in compact and "4111" not in text
        assert '\\"digit\\"' not in compact  # nor in a body kept as text
        assert "body_sha256" not in text
    records = [json.loads(line) for line in (tmp_path / "hooks.jsonl").read_text().splitlines()]
    assert all(r["verified"] is True and r["redacted"] is True and "body" not in r for r in records)
    assert all(r["headers"]["telnyx-signature-ed25519"] for r in records)
    rejected = [json.loads(line) for line in (tmp_path / "hooks.rejected.jsonl").read_text().splitlines()]
    assert [r["status"] for r in rejected] == [409, 401]
    assert rejected[0]["body_redacted"]["data"]["payload"]["digit"] == "*"
    df = load_webhooks(tmp_path / "hooks.jsonl")
    assert len(df) == len(hooks) and df["verified"].all()
    assert df.loc[df["id"] == "e5", "digit"].tolist() == ["*"] and df.loc[df["id"] == "g1", "digits"].tolist() == ["*****"]
    assert df.loc[df["id"] == "e4", "transcription_data.transcript"].tolist() == ["hello there"]


def test_a_receiver_without_redaction_keeps_the_raw_body_for_re_verification(tmp_path):
    raw = body(typed()[4])
    with WebhookReceiver(tmp_path / "hooks.jsonl", KEY) as rx:
        assert post(rx, raw).status_code == 200
    [record] = [json.loads(line) for line in (tmp_path / "hooks.jsonl").read_text().splitlines()]
    assert record["body"].encode() == raw and "redacted" not in record
