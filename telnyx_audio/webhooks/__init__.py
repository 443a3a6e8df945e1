"""Telnyx webhooks: verify Ed25519 signatures, and load deliveries into pandas.

Telnyx signs each delivery with Ed25519 over ``telnyx-timestamp + b"|" + body``, the body as
the exact bytes sent. The signature (base64 of 64 bytes) is in ``telnyx-signature-ed25519``,
the Unix-seconds timestamp in ``telnyx-timestamp``. Verify the raw bytes you received, never
a decoded-and-re-encoded copy.

Every delivery form Telnyx's documents show is read: the ``{"data": ..., "meta": ...}``
envelope, the flat shape without ``data`` (``event_type``, ``created_at``, ``webhook_id``,
``payload.occurred_at`` at the top; loaded into the same columns), and TeXML callbacks,
form-encoded (``application/x-www-form-urlencoded``) with PascalCase fields, signed the same
way and verified on the raw form body.

:func:`verify_webhook` checks one delivery; :func:`sign_webhook` makes one (tests, the
simulator); :func:`load_webhooks` turns many into a DataFrame, and :func:`transcripts` and
:func:`call_timeline` are views of it. The receiver (:mod:`telnyx_audio.webhooks.receiver`) is a real
HTTP server built on these. The package holds two modules: :mod:`~telnyx_audio.webhooks.verify`
(keys, signatures, bodies) and :mod:`~telnyx_audio.webhooks.load` (DataFrames and views).
"""

from __future__ import annotations

from telnyx_audio.webhooks.load import call_timeline, decode_client_state, load_webhooks, transcripts
from telnyx_audio.webhooks.verify import (
    DEFAULT_TOLERANCE_S,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    load_public_key,
    parse_webhook_body,
    sign_webhook,
    verify_webhook,
)

__all__ = [
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "DEFAULT_TOLERANCE_S",
    "load_public_key",
    "decode_client_state",
    "parse_webhook_body",
    "verify_webhook",
    "sign_webhook",
    "load_webhooks",
    "transcripts",
    "call_timeline",
]
