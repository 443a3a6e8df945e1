"""Telnyx webhooks: verify Ed25519 signatures, and load deliveries into pandas.

Telnyx signs each delivery with Ed25519 over ``telnyx-timestamp + b"|" + body``, the body as
the exact bytes sent. The signature (base64 of 64 bytes) is in ``telnyx-signature-ed25519``,
the Unix-seconds timestamp in ``telnyx-timestamp``. Verify the raw bytes you received, never
a decoded-and-re-encoded copy.

:func:`verify_webhook` checks one delivery; :func:`sign_webhook` makes one (tests, the
simulator); :func:`load_webhooks` turns many into a DataFrame, and :func:`transcripts` and
:func:`call_timeline` are views of it. The receiver (:mod:`telnyx_audio.receiver`) is a real
HTTP server built on these.
"""

from __future__ import annotations

import base64
import binascii
import glob
import json
import os
import re
import time
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from telnyx_audio.errors import (
    InvalidSignatureError,
    MalformedKeyError,
    MalformedPayloadError,
    MalformedSignatureError,
    MalformedTimestampError,
    MissingHeaderError,
    TimestampToleranceError,
)

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

__all__ = [
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "load_public_key",
    "decode_client_state",
    "verify_webhook",
    "sign_webhook",
    "load_webhooks",
    "transcripts",
    "call_timeline",
]

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
        Base64 of the raw 32-byte key (as the Telnyx portal shows it), the raw 32 bytes,
        base64 of the SPKI DER (44 bytes), the DER itself, or a PEM ``PUBLIC KEY`` block.

    Raises
    ------
    MalformedKeyError
        Naming what was found instead.

    Examples
    --------
    >>> len(load_public_key("11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="))
    32
    """
    raw = key.encode("ascii", "replace") if isinstance(key, str) else bytes(key)
    pem = _PEM.search(raw)
    if pem:
        try:
            raw = _b64(b"".join(pem.group(1).split()))
        except ValueError as exc:
            raise MalformedKeyError(f"PEM public key body is not base64: {exc}") from None
    elif isinstance(key, str) or len(raw) not in (32, 44):  # text, or bytes that are not a raw key
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


def _header(headers: Mapping[str, str] | Iterable[tuple[str, str]], name: str) -> str:
    items = headers.items() if isinstance(headers, Mapping) else headers
    for key, value in items:
        if key.lower() == name:
            return value.decode("latin-1") if isinstance(value, bytes) else str(value)
    raise MissingHeaderError(name)


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
        Telnyx's SDK). ``None`` skips the check, to re-verify archived deliveries offline.
    now : float, optional
        Unix seconds to compare against; the clock when not given.

    Returns
    -------
    dict
        The delivery's JSON (``{"data": {...}, "meta": {...}}``).

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
        skew = int((time.time() if now is None else now) - int(timestamp_text))
        if abs(skew) > tolerance_s:
            raise TimestampToleranceError(skew, tolerance_s)
    try:
        event = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise MalformedPayloadError(f"signed body is not JSON: {exc}") from None
    if not isinstance(event, dict):
        raise MalformedPayloadError(f"signed body must be a JSON object, got {type(event).__name__}")
    return event


def sign_webhook(body: bytes, private_key: str | bytes, timestamp: int) -> dict[str, str]:
    """Sign a body as Telnyx does; returns the two headers.

    Parameters
    ----------
    body : bytes
    private_key : str or bytes
        The 32-byte Ed25519 seed, raw or base64.
    timestamp : int
        Unix seconds to sign with.

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


# --- loading ----------------------------------------------------------------------------------

_CORE = ["event_type", "id", "occurred_at", "call_control_id", "call_leg_id", "call_session_id",
         "connection_id", "client_state", "client_state_decoded"]


def decode_client_state(value: object) -> str | None:
    """The text of a ``client_state`` as webhooks echo it (base64), or None if it is not.

    The inverse of :func:`telnyx_audio.callcontrol.encode_client_state` (a dict comes back
    as its JSON text: ``json.loads`` it).

    >>> decode_client_state("aGF2ZSBhIG5pY2UgZGF5ID1d")
    'have a nice day =]'
    """
    if not isinstance(value, str) or not value:
        return None
    try:
        return base64.b64decode(value, validate=True).decode("utf-8")
    except (binascii.Error, ValueError, UnicodeDecodeError):
        return None


def _flatten(obj: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in obj.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            flat.update(_flatten(value, name + "."))
        else:
            flat[name] = value
    return flat


def _numeric(value: Any) -> Any:
    """Telnyx sends call_quality_stats numbers as strings: make them numbers."""
    if isinstance(value, str):
        try:
            return int(value) if re.fullmatch(r"[+-]?\d+", value) else float(value)
        except ValueError:
            return value
    return value


def _row(envelope: Mapping[str, Any], extra: Mapping[str, Any]) -> dict[str, Any] | None:
    data = envelope.get("data", envelope)
    if not isinstance(data, Mapping) or "event_type" not in data:
        return None
    payload = data.get("payload") if isinstance(data.get("payload"), Mapping) else {}
    row: dict[str, Any] = {
        "event_type": data.get("event_type"),
        "id": data.get("id"),
        "occurred_at": data.get("occurred_at"),
    }
    for key in _CORE[3:8]:
        row[key] = payload.get(key)
    row["client_state_decoded"] = decode_client_state(row["client_state"])
    for key, value in _flatten({k: v for k, v in payload.items() if k not in _CORE}).items():
        row[key] = _numeric(value) if key.startswith("call_quality_stats.") else value
    row["record_type"] = data.get("record_type")
    meta = envelope.get("meta")
    if isinstance(meta, Mapping):
        row["meta.attempt"] = meta.get("attempt")
        row["meta.delivered_to"] = meta.get("delivered_to")
    row.update(extra)
    return row


def _records(source: Any) -> Iterable[tuple[str, int, Any]]:
    """Yield (where, line, item) for every delivery in the source, bad ones included."""
    if isinstance(source, (str, os.PathLike)) and not (isinstance(source, str) and source.lstrip().startswith("{")):
        paths = sorted(glob.glob(os.fspath(source))) if any(c in os.fspath(source) for c in "*?[") else [os.fspath(source)]
        if not paths:
            raise FileNotFoundError(f"no webhook files match {os.fspath(source)!r}")
        for path in paths:
            with open(path, "rb") as f:
                for number, line in enumerate(f, 1):
                    if line.strip():
                        yield path, number, line
        return
    if isinstance(source, (bytes, bytearray, str, Mapping)):
        yield "<input>", 1, source
        return
    for index, item in enumerate(source, 1):
        if isinstance(item, (str, os.PathLike)) and not (isinstance(item, str) and item.lstrip().startswith("{")):
            yield from _records(item)
        else:
            yield "<input>", index, item


def _parse_item(item: Any) -> tuple[dict[str, Any] | None, dict[str, Any], str | None]:
    """One delivery as (envelope, extra columns, error)."""
    if isinstance(item, (bytes, bytearray, str)):
        try:
            item = json.loads(item)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            return None, {}, f"not JSON: {exc}"
    if not isinstance(item, Mapping):
        return None, {}, f"a delivery is a JSON object, got {type(item).__name__}"
    extra: dict[str, Any] = {}
    if "body" in item or "body_b64" in item:  # a receiver log record: the body as received
        extra = {"received_at": item.get("received_at"), "verified": item.get("verified")}
        body = item.get("body")
        if body is None:
            try:
                body = base64.b64decode(item["body_b64"])
            except (binascii.Error, ValueError, TypeError) as exc:
                return None, {}, f"body_b64 is not base64: {exc}"
        try:
            item = json.loads(body)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            return None, {}, f"logged body is not JSON: {exc}"
        if not isinstance(item, Mapping):
            return None, {}, "logged body is not a JSON object"
    return dict(item), extra, None


def load_webhooks(source: Any) -> "pd.DataFrame":
    """Load Telnyx webhook deliveries into a DataFrame, one row per event.

    Parameters
    ----------
    source : path, glob, list of paths, or iterable of dicts / raw bodies
        JSONL files (the receiver's logs, or one Telnyx delivery per line), a glob such as
        ``"hooks/*.jsonl"``, or deliveries already in memory: dicts (the envelope, or a
        receiver log record) or raw bodies (``bytes``/``str``).

    Returns
    -------
    pandas.DataFrame
        Columns ``event_type``, ``id``, ``occurred_at`` (UTC datetime), ``call_control_id``,
        ``call_leg_id``, ``call_session_id``, ``connection_id``, ``client_state`` and
        ``client_state_decoded``, then the flattened payload (``a.b`` for nested fields;
        ``call_quality_stats`` numbers as numbers). Sorted by ``occurred_at``. A delivery
        retried by Telnyx (same ``id``) is one row. ``df.attrs["load_report"]`` holds the
        counts and the lines that could not be read, with their reasons (never fatal).

    Examples
    --------
    >>> df = load_webhooks([{"data": {"event_type": "call.hangup", "id": "1",
    ...     "occurred_at": "2026-01-01T00:00:00Z", "payload": {"call_control_id": "v3:x"}}}])
    >>> df.loc[0, "event_type"], str(df.loc[0, "occurred_at"])
    ('call.hangup', '2026-01-01 00:00:00+00:00')
    """
    import pandas as pd

    rows: list[dict[str, Any]] = []
    bad: list[dict[str, Any]] = []
    seen: set[Any] = set()
    duplicates = 0
    for where, line, item in _records(source):
        envelope, extra, error = _parse_item(item)
        row = _row(envelope, extra) if envelope is not None else None
        if row is None:
            bad.append({"source": where, "line": line, "reason": error or "no data.event_type: not a Telnyx webhook"})
            continue
        if row["id"] is not None:
            if row["id"] in seen:
                duplicates += 1
                continue
            seen.add(row["id"])
        rows.append(row)
    df = pd.DataFrame(rows)
    for column in _CORE:
        if column not in df.columns:
            df[column] = pd.Series(dtype="object")
    df["occurred_at"] = pd.to_datetime(df["occurred_at"], utc=True, errors="coerce", format="ISO8601")
    if "received_at" in df.columns:
        df["received_at"] = pd.to_datetime(df["received_at"], utc=True, errors="coerce", format="ISO8601")
    df = df[_CORE + [c for c in df.columns if c not in _CORE]]
    df = df.sort_values("occurred_at", kind="stable", na_position="last").reset_index(drop=True)
    df.attrs["load_report"] = {"rows": len(df), "duplicates": duplicates, "bad": bad}
    return df


def _seconds_since_first(df: "pd.DataFrame", key: str) -> "pd.Series":
    first = df.groupby(key, dropna=False)["occurred_at"].transform("min")
    return (df["occurred_at"] - first).dt.total_seconds()


def transcripts(df: "pd.DataFrame") -> "pd.DataFrame":
    """The ``call.transcription`` events of :func:`load_webhooks`' frame, final and interim.

    Returns
    -------
    pandas.DataFrame
        ``call_control_id``, ``occurred_at``, ``t_s`` (seconds since the call's first event in
        ``df``), ``track``, ``is_final``, ``confidence`` (NaN where Telnyx sent null) and
        ``transcript``, in time order.
    """
    import pandas as pd

    t_s = _seconds_since_first(df, "call_control_id") if len(df) else pd.Series(dtype=float)
    sel = df["event_type"] == "call.transcription"
    out = pd.DataFrame({
        "call_control_id": df.loc[sel, "call_control_id"],
        "occurred_at": df.loc[sel, "occurred_at"],
        "t_s": t_s[sel],
        "track": df.loc[sel].get("transcription_data.transcription_track", pd.Series("inbound", index=df.index[sel])),
        "is_final": df.loc[sel].get("transcription_data.is_final", pd.Series(dtype=object)),
        "confidence": pd.to_numeric(df.loc[sel].get("transcription_data.confidence", pd.Series(dtype=float)), errors="coerce"),
        "transcript": df.loc[sel].get("transcription_data.transcript", pd.Series(dtype=object)),
    })
    out["track"] = out["track"].fillna("inbound")
    return out.sort_values("occurred_at", kind="stable").reset_index(drop=True)


def call_timeline(df: "pd.DataFrame") -> "pd.DataFrame":
    """Per call, its events in order with seconds since the call's first event.

    Returns
    -------
    pandas.DataFrame
        ``call_control_id``, ``t_s``, ``occurred_at``, ``event_type``, ``id``, then the rest
        of ``df``'s columns; sorted by call, then time.
    """
    out = df.copy()
    out.insert(1, "t_s", _seconds_since_first(out, "call_control_id") if len(out) else [])
    front = ["call_control_id", "t_s", "occurred_at", "event_type", "id"]
    out = out[front + [c for c in out.columns if c not in front]]
    return out.sort_values(["call_control_id", "occurred_at"], kind="stable").reset_index(drop=True)
