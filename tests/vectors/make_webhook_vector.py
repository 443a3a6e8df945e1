"""Write tests/vectors/webhook.json: a Telnyx-style delivery signed with a fixed key.

The signature is made with the `cryptography` package (OpenSSL's Ed25519), independent of
PyNaCl (libsodium), which telnyx_audio verifies with. Run: python tests/vectors/make_webhook_vector.py
"""

import base64
import json
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

SEED = bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")  # RFC 8032 test 1
TIMESTAMP = 1764000000
BODY = json.dumps({
    "data": {
        "event_type": "streaming.started",
        "id": "0ccc7b54-4df3-4bca-a65a-3da1ecc777f0",
        "occurred_at": "2025-11-24T16:00:00.000000Z",
        "payload": {
            "call_control_id": "v3:MdI91X4lWFEs7IgbBEOT9M4AigoY08M0WWZFISt1Yw2axZ_IiE4pqg",
            "call_leg_id": "428c31b6-7af4-4bcb-b7f5-5013ef9657c1",
            "call_session_id": "428c31b6-7af4-4bcb-b7f5-5013ef9657c1",
            "client_state": "aGF2ZSBhIG5pY2UgZGF5ID1d",
            "connection_id": "7267xxxxxxxxxxxxxx",
            "stream_url": "wss://www.example.com/websocket",
        },
        "record_type": "event",
    },
    "meta": {"attempt": 1, "delivered_to": "https://example.com/webhooks"},
}, separators=(",", ":"))

key = Ed25519PrivateKey.from_private_bytes(SEED)
public = key.public_key()
signature = key.sign(str(TIMESTAMP).encode() + b"|" + BODY.encode())
vector = {
    "source": "cryptography (OpenSSL) Ed25519, see make_webhook_vector.py",
    "seed_hex": SEED.hex(),
    "public_key_b64": base64.b64encode(public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)).decode(),
    "public_key_pem": public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode(),
    "timestamp": TIMESTAMP,
    "body": BODY,
    "signature_b64": base64.b64encode(signature).decode(),
}
out = Path(__file__).with_name("webhook.json")
out.write_text(json.dumps(vector, indent=1) + "\n")
print(f"wrote {out}")
