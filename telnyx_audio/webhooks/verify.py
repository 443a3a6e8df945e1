"""Verify and sign Telnyx webhook deliveries, and read their bodies (JSON or TeXML forms).

Telnyx signs ``telnyx-timestamp + b"|" + body`` with Ed25519; see :mod:`telnyx_audio.webhooks`.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
import time
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import parse_qsl

from telnyx_audio.errors import (
    InvalidSignatureError,
    MalformedKeyError,
    MalformedPayloadError,
    MalformedSignatureError,
    MalformedTimestampError,
    MissingHeaderError,
    TimestampToleranceError,
)

__all__ = ["SIGNATURE_HEADER", "TIMESTAMP_HEADER", "DEFAULT_TOLERANCE_S", "load_public_key", "parse_webhook_body",
           "verify_webhook", "sign_webhook"]

SIGNATURE_HEADER = "telnyx-signature-ed25519"
TIMESTAMP_HEADER = "telnyx-timestamp"
DEFAULT_TOLERANCE_S = 300
# SubjectPublicKeyInfo DER prefix for an Ed25519 key (RFC 8410 section 4): 12 bytes + 32-byte key.
_SPKI_PREFIX = bytes.fromhex("302a300506032b6570032100")
_PEM = re.compile(rb"-----BEGIN PUBLIC KEY-----(.+?)-----END PUBLIC KEY-----", re.S)


def _b64(text: str | bytes) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError(str(exc)) from None


def load_public_key(key: str | bytes) -> bytes:
    """Normalise a Telnyx public key to its raw 32 bytes.

    Parameters
    ----------
    key : str or bytes
        Base64 of the raw 32-byte key (as the Telnyx portal shows it; as ``str`` or as
        ``bytes``, a trailing newline allowed), the raw 32 bytes, base64 of the SPKI DER,
        the DER itself (44 bytes), or a PEM ``PUBLIC KEY`` block.

    Returns
    -------
    bytes
        The raw 32-byte key.

    Raises
    ------
    MalformedKeyError
        Naming what was found instead.

    Examples
    --------
    >>> len(load_public_key("11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="))
    32
    >>> load_public_key(b"11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=\\n")[:4].hex()
    'd75a9801'
    """
    if not isinstance(key, (str, bytes, bytearray, memoryview)):
        raise TypeError(f"a public key is str or bytes, got {type(key).__name__}")
    raw = key.encode("ascii", "replace") if isinstance(key, str) else bytes(key)
    pem = _PEM.search(raw)
    if pem:
        try:
            raw = _b64(b"".join(pem.group(1).split()))
        except ValueError as exc:
            raise MalformedKeyError(f"PEM public key body is not base64: {exc}") from None
    elif isinstance(key, str) or not (len(raw) == 32 or raw.startswith(_SPKI_PREFIX) and len(raw) == 44):
        # Text, or bytes that are not a raw key or DER: base64 (as the SDK's tests pass it,
        # e.g. os.environb["TELNYX_PUBLIC_KEY"]), with or without a trailing newline.
        try:
            raw = _b64(raw.strip())
        except ValueError:
            got = f"{len(raw)} characters that are not base64" if isinstance(key, str) else f"{len(raw)} bytes"
            raise MalformedKeyError(
                "an Ed25519 public key is 32 raw bytes, or base64 of them (as in the Telnyx portal),"
                f" SPKI DER or PEM; got {got}"
            ) from None
    if len(raw) == 44 and raw.startswith(_SPKI_PREFIX):
        raw = raw[len(_SPKI_PREFIX) :]
    if len(raw) != 32:
        raise MalformedKeyError(f"an Ed25519 public key is 32 bytes, got {len(raw)}")
    return raw


def _header(headers: Mapping[str, str] | Iterable[tuple[str, str]], name: str, required: bool = True) -> str | None:
    items = headers.items() if isinstance(headers, Mapping) else headers
    for key, value in items:
        key = key.decode("latin-1") if isinstance(key, bytes) else str(key)
        if key.lower() == name:
            return value.decode("latin-1") if isinstance(value, bytes) else str(value)
    if required:
        raise MissingHeaderError(name)
    return None


_FORM = "application/x-www-form-urlencoded"
_FORM_KEY = re.compile(r"[A-Za-z][A-Za-z0-9_.\[\]-]*")


def _form(text: str) -> dict[str, Any]:
    """A form body as a dict: one value as ``str``, a repeated field as a list of them."""
    fields: dict[str, Any] = {}
    for key, value in parse_qsl(text, keep_blank_values=True, strict_parsing=True):
        if key in fields:
            fields[key] = (fields[key] if isinstance(fields[key], list) else [fields[key]]) + [value]
        else:
            fields[key] = value
    return fields


def parse_webhook_body(body: bytes | str, content_type: str | None = None) -> dict[str, Any]:
    """The fields of one delivery's body: JSON, or a TeXML callback's form encoding.

    Parameters
    ----------
    body : bytes or str
        The body as received.
    content_type : str, optional
        The ``Content-Type`` header. ``application/x-www-form-urlencoded`` (TeXML callbacks)
        is read as a form; anything else as JSON. Without it, a body that is not JSON but is
        a well-formed form of named fields is read as a form.

    Returns
    -------
    dict
        The JSON object, or the form's fields (PascalCase as TeXML sends them; values are
        text, a repeated field a list).

    Raises
    ------
    MalformedPayloadError
        When the body is neither (a ``ValueError``).

    Examples
    --------
    >>> parse_webhook_body(b"CallSid=v3%3Aabc&CallStatus=in-progress", _FORM)
    {'CallSid': 'v3:abc', 'CallStatus': 'in-progress'}
    >>> parse_webhook_body('{"data": {"event_type": "call.hangup"}}')["data"]["event_type"]
    'call.hangup'
    """
    mime = (content_type or "").split(";", 1)[0].strip().lower()
    try:
        text = body if isinstance(body, str) else bytes(body).decode("utf-8")
    except UnicodeDecodeError as exc:
        kind = "form-encoded" if mime == _FORM else "JSON"
        raise MalformedPayloadError(f"body is not {kind}: it is not UTF-8 text ({exc})") from None
    if mime == _FORM:
        try:
            return _form(text)
        except ValueError as exc:
            raise MalformedPayloadError(f"form-encoded body is malformed: {exc}") from None
    try:
        event = json.loads(text)
    except (ValueError, RecursionError) as exc:  # also a number past 4,300 digits, or nesting too deep
        if not mime and "=" in text:
            try:
                fields = _form(text.strip())
            except ValueError:
                fields = {}
            if fields and all(_FORM_KEY.fullmatch(k) for k in fields):
                return fields
        raise MalformedPayloadError(f"body is not JSON: {exc or 'nested too deeply'}"[:300]) from None
    if not isinstance(event, dict):
        raise MalformedPayloadError(f"body must be a JSON object, got {type(event).__name__}")
    return event


def verify_webhook(
    body: bytes,
    headers: Mapping[str, str] | Iterable[tuple[str, str]],
    public_key: str | bytes,
    *,
    tolerance_s: float | None = DEFAULT_TOLERANCE_S,
    now: float | None = None,
) -> dict[str, Any]:
    """Verify one Telnyx webhook delivery and return its parsed JSON.

    Parameters
    ----------
    body : bytes
        The request body exactly as received (not decoded, not re-serialised).
    headers : mapping or iterable of (name, value)
        The request headers; names are matched case-insensitively.
    public_key : str or bytes
        The account's public key (see :func:`load_public_key` for the accepted forms).
    tolerance_s : float or None
        How far the signed timestamp may be from ``now``, either way (300 s, inclusive, as
        Telnyx's SDK). As in the SDK, whole seconds of the clock are compared
        (``floor(now)``), so a timestamp 300.5 s ahead is refused. ``None`` skips the check,
        to re-verify archived deliveries offline.
    now : float, optional
        Unix seconds to compare against; the clock when not given.

    Returns
    -------
    dict
        The delivery's fields (see :func:`parse_webhook_body`): its JSON (the
        ``{"data": {...}, "meta": {...}}`` envelope, or the flat shape), or a TeXML
        callback's form fields when ``Content-Type`` says ``application/x-www-form-urlencoded``.

    Raises
    ------
    MissingHeaderError, MalformedTimestampError, TimestampToleranceError, MalformedKeyError,
    MalformedSignatureError, InvalidSignatureError, MalformedPayloadError
        All :class:`~telnyx_audio.errors.WebhookVerificationError` (a ``ValueError``).

    Examples
    --------
    >>> seed = bytes(range(32))
    >>> body = b'{"data": {"event_type": "call.hangup"}}'
    >>> headers = sign_webhook(body, seed, timestamp=1700000000)
    >>> from nacl.signing import SigningKey
    >>> key = bytes(SigningKey(seed).verify_key)
    >>> verify_webhook(body, headers, key, now=1700000100)["data"]["event_type"]
    'call.hangup'
    """
    if isinstance(body, str):
        raise TypeError("body must be the raw bytes received, not str (decoding can change them)")
    body = bytes(body)
    signature_text = _header(headers, SIGNATURE_HEADER)
    timestamp_text = _header(headers, TIMESTAMP_HEADER).strip()
    if re.fullmatch(r"\d{1,12}\.\d*", timestamp_text):
        raise MalformedTimestampError(
            f"telnyx-timestamp must be whole Unix seconds, got the fractional {timestamp_text[:40]!r}"
            " (Telnyx signs an integer; the signature covers the header's exact text)")
    if not re.fullmatch(r"\d{1,12}", timestamp_text):
        raise MalformedTimestampError(f"telnyx-timestamp must be Unix seconds, got {timestamp_text[:40]!r}")
    raw_key = load_public_key(public_key)
    try:
        signature = _b64(signature_text.strip())
    except ValueError as exc:
        raise MalformedSignatureError(f"telnyx-signature-ed25519 is not base64: {exc}") from None
    if len(signature) != 64:
        raise MalformedSignatureError(f"an Ed25519 signature is 64 bytes, got {len(signature)}")

    from nacl.exceptions import BadSignatureError
    from nacl.signing import VerifyKey

    try:
        VerifyKey(raw_key).verify(timestamp_text.encode() + b"|" + body, signature)
    except BadSignatureError:
        raise InvalidSignatureError("signature does not match the body and timestamp") from None
    if tolerance_s is not None:
        # Whole seconds of the clock, as Telnyx's SDK (int(time.time())): 300.5 s ahead is 301.
        skew = math.floor(time.time() if now is None else now) - int(timestamp_text)
        if abs(skew) > tolerance_s:
            raise TimestampToleranceError(skew, tolerance_s)
    try:
        return parse_webhook_body(body, _header(headers, "content-type", required=False))
    except MalformedPayloadError as exc:
        raise MalformedPayloadError(f"signed {exc}") from None


def sign_webhook(body: bytes, private_key: str | bytes, timestamp: int) -> dict[str, str]:
    """Sign a body as Telnyx does; returns the two headers.

    Parameters
    ----------
    body : bytes
        The body to sign, exactly as it will be sent.
    private_key : str or bytes
        The 32-byte Ed25519 seed, raw or base64.
    timestamp : int
        Unix seconds to sign with.

    Returns
    -------
    dict of str to str
        ``telnyx-signature-ed25519`` (base64) and ``telnyx-timestamp``, as Telnyx sends them.

    Examples
    --------
    >>> sorted(sign_webhook(b"{}", bytes(32), 1))
    ['telnyx-signature-ed25519', 'telnyx-timestamp']
    """
    from nacl.signing import SigningKey

    seed = private_key if isinstance(private_key, bytes) and len(private_key) == 32 else _b64(private_key)
    if len(seed) != 32:
        raise ValueError(f"an Ed25519 private key (seed) is 32 bytes, got {len(seed)}")
    if isinstance(timestamp, bool) or not isinstance(timestamp, int) or timestamp < 0:
        raise ValueError(f"timestamp must be Unix seconds as a non-negative int, got {timestamp!r}")
    signed = SigningKey(seed).sign(str(timestamp).encode() + b"|" + bytes(body))
    return {SIGNATURE_HEADER: base64.b64encode(signed.signature).decode(), TIMESTAMP_HEADER: str(timestamp)}
