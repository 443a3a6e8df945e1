"""Muting stretches of a call and masking the keys pressed: what every source's redaction uses.

Callers type card numbers and PINs; a capture keeps them three ways: the key events
(a stream's ``dtmf`` messages, a fork's RFC 4733 packets, ``call.dtmf.received`` webhooks),
the tones in the audio, and the digits again in every summary and table made from it. These
primitives remove all three, below the sources, so that the capture server, the fork
receiver and :func:`telnyx_audio.redact` mute the same way:

- :func:`mask_digits` / :func:`mask_dtmf_message`: a digit becomes ``"*"`` (one per key, so
  the number of keys and their times stay; a masked message also says ``"redacted": true``
  so a real ``*`` key is not mistaken for a masked one);
- :func:`find_tones`: in-band DTMF found by :func:`telnyx_audio.analysis.detect_dtmf` with
  :data:`DETECTOR_SETTINGS` (more sensitive than the analysis defaults: a missed key is a
  leak, a muted breath is not), each tone widened by the guard band ``pad_s`` on both sides
  and muted on *both* tracks (a tone leaks into the other leg as echo);
- :class:`Muting`: the muted sample ranges of each track, merged, and where each frame
  meets them (:meth:`Muting.hits`);
- :func:`mute_frames`: the payloads to write instead. Stateless codecs (PCMU, PCMA, L16)
  have the muted samples replaced by the codec's silence, sample for sample; stateful ones
  (G.722, OPUS, AMR-WB) have every frame that meets a muted range replaced whole by a frame
  of silence of the same duration (:func:`telnyx_audio.codecs.silence.silent_payload`), so
  the decoder meets whole valid frames and stays in step, and the muted range grows to those
  frames' edges. An OPUS packet right after a muted run is replaced too when it carries
  in-band FEC (LBRR): that is a low-rate copy of the run's last frame;
- :func:`mute_audio`: the same ranges set to the codec's decoded silence in the audio, for
  the WAVs: outside them every sample stays as decoded from the original.

Nothing changes a call's duration or alignment: every frame keeps its counters, timestamps
and duration. A frame that the reader does not place (a duplicate, a frame outside every
plan) is muted with the frame it repeats, or whole when it repeats none: no payload is kept
that no check has looked at.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from telnyx_audio.model.events import TRACKS

__all__ = ["MASK", "DEFAULT_PAD_S", "DETECTOR", "DETECTOR_SETTINGS", "Span", "Muting", "mask_digits",
           "mask_dtmf_message", "mask_webhook", "mask_webhook_record", "as_span", "check_spans", "find_tones", "mute_audio",
           "mute_frames", "FrameEdit"]

#: What each key pressed becomes.
MASK = "*"
#: Guard band muted before and after each tone found (seconds).
DEFAULT_PAD_S = 0.25
#: The detector redaction runs (named in every manifest).
DETECTOR = "telnyx_audio.analysis.detect_dtmf"
#: Its settings for redaction: more sensitive than the analysis defaults (a missed key is a
#: leak, a muted breath is not). Chosen on calls made from data/speech/tune/ only (see
#: tests/dtmf_calls.py); scored on calls from data/speech/heldout/ by the tests.
DETECTOR_SETTINGS: dict[str, float] = {"min_s": 0.03, "min_level_dbfs": -50.0, "max_twist_db": 10.0,
                                       "max_reverse_twist_db": 8.0}

_SPAN_TEXT = re.compile(r"^\s*([0-9.eE+-]+?)\s*-\s*([0-9.eE+-]+)\s*(?::\s*(\w+)\s*)?$")


def mask_digits(digits: object) -> Any:
    """``"*"`` for every key in ``digits`` (a str); anything else is returned as it is.

    Examples
    --------
    >>> mask_digits("4111"), mask_digits(""), mask_digits(None)
    ('****', '', None)
    """
    return MASK * len(digits) if isinstance(digits, str) else digits


def mask_dtmf_message(msg: Any) -> bool:
    """Mask a stream's ``dtmf`` message (a dict, as parsed) in place; True if it changed.

    The digit becomes ``"*"`` and ``dtmf.redacted`` is set, so a masked key is not read as a
    real ``*``. A message already masked is left as it is (redaction is idempotent); a
    ``dtmf`` message whose digit is not even a string is masked all the same.

    Examples
    --------
    >>> m = {"event": "dtmf", "dtmf": {"digit": "7"}}
    >>> mask_dtmf_message(m), m["dtmf"]
    (True, {'digit': '*', 'redacted': True})
    >>> mask_dtmf_message(m)
    False
    """
    if not isinstance(msg, dict) or msg.get("event") != "dtmf":
        return False
    body = msg.get("dtmf")
    if not isinstance(body, dict):
        return False
    if body.get("redacted") is True and body.get("digit") in (MASK, None):
        return False
    digit = body.get("digit")
    body["digit"] = mask_digits(digit) if isinstance(digit, str) and digit else MASK
    body["redacted"] = True
    return True


#: Webhook payload fields that carry what a caller typed: ``call.dtmf.received``'s ``digit``,
#: ``call.gather.ended``'s ``digits`` (and TeXML's ``Digits``).
WEBHOOK_DIGIT_FIELDS = ("digit", "digits", "Digits")


def mask_webhook(obj: Any) -> bool:
    """Mask the typed digits of one webhook delivery (a dict, as parsed) in place; True if any.

    Every shape :func:`telnyx_audio.load_webhooks` reads: the envelope
    (``data.payload.digit``), the flat shape (``payload.digit``) and TeXML fields (``Digits``).

    Examples
    --------
    >>> hook = {"data": {"event_type": "call.dtmf.received", "payload": {"digit": "9"}}}
    >>> mask_webhook(hook), hook["data"]["payload"]["digit"]
    (True, '*')
    >>> mask_webhook({"data": {"event_type": "call.gather.ended", "payload": {"digits": "1234#"}}})
    True
    """
    if not isinstance(obj, dict):
        return False
    data = obj.get("data") if isinstance(obj.get("data"), dict) else obj
    changed = False
    for holder in (data, data.get("payload")):
        if not isinstance(holder, dict):
            continue
        for key in WEBHOOK_DIGIT_FIELDS:
            value = holder.get(key)
            if isinstance(value, str) and value and value != mask_digits(value):
                holder[key] = mask_digits(value)
                changed = True
    return changed


def mask_webhook_record(record: dict[str, Any], event: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Replace the body of a webhook receiver's log record by a masked, parsed copy, in place.

    ``body`` / ``body_b64`` (and a cut body's ``body_sha256``) go; ``body_redacted`` holds
    the delivery as parsed (``event``, else the body read as JSON) with its typed digits
    masked (:func:`mask_webhook`), and ``redacted`` is set. A body that cannot be read as JSON
    is dropped whole (only ``body_bytes`` stays). No hash of the body is kept: with every
    other field known, a hash would confirm a guess of the digits in a few tries. The
    signature can no longer be checked against the copy (the receiver checked it first).

    Examples
    --------
    >>> rec = {"verified": True, "body": '{"data": {"event_type": "call.dtmf.received", "payload": {"digit": "7"}}}'}
    >>> mask_webhook_record(rec)["body_redacted"]["data"]["payload"]["digit"], "body" in rec
    ('*', False)
    """
    import base64
    import copy
    import json

    raw: bytes | None = None
    if isinstance(record.get("body"), str):
        raw = record["body"].encode()
    elif isinstance(record.get("body_b64"), str):
        try:
            raw = base64.b64decode(record["body_b64"])
        except ValueError:
            raw = None
    whole = record.get("body_bytes", len(raw) if raw is not None else None)
    for key in ("body", "body_b64", "body_sha256"):
        record.pop(key, None)
    if event is None and raw is not None and not record.get("body_truncated"):
        try:
            event = json.loads(raw)
        except (ValueError, RecursionError):
            event = None
    if isinstance(event, Mapping):
        masked = copy.deepcopy(dict(event))
        mask_webhook(masked)
        record["body_redacted"] = masked
    record["body_bytes"] = whole
    record["redacted"] = True
    return record


@dataclass(frozen=True)
class Span:
    """A stretch to mute: seconds on the call's timeline, one track or both.

    Attributes
    ----------
    start_s, end_s : float
    track : str or None
        ``"inbound"``, ``"outbound"``, or None for both.
    reason : str
        ``"span"`` (given by the user) or ``"dtmf"`` (a tone found in the audio).
    evidence : dict
        For ``dtmf``: the track it was found on, the tone's own start and end, its level,
        and the masked digit; empty for a user's span.
    """

    start_s: float
    end_s: float
    track: str | None = None
    reason: str = "span"
    evidence: Mapping[str, Any] = field(default_factory=dict)

    @property
    def tracks(self) -> tuple[str, ...]:
        """The tracks it mutes."""
        return TRACKS if self.track is None else (self.track,)

    def as_dict(self) -> dict[str, Any]:
        """A JSON-able dict (the manifest's form)."""
        return {"tracks": list(self.tracks), "start_s": round(self.start_s, 6), "end_s": round(self.end_s, 6),
                "reason": self.reason, **({"evidence": dict(self.evidence)} if self.evidence else {})}


def as_span(value: Any) -> Span:
    """A :class:`Span` from a Span, ``"START-END[:TRACK]"`` or ``(start, end[, track])``.

    Raises
    ------
    ValueError
        Naming the value when it is none of these, or its times are negative, reversed or
        not numbers, or the track is not ``inbound``/``outbound``.

    Examples
    --------
    >>> as_span("12.5-20:inbound")
    Span(start_s=12.5, end_s=20.0, track='inbound', reason='span', evidence={})
    >>> as_span((1, 2)).tracks
    ('inbound', 'outbound')
    >>> as_span("5-3")
    Traceback (most recent call last):
    ...
    ValueError: span '5-3' ends before it starts: expected START-END with START < END (seconds)
    """
    if isinstance(value, Span):
        span, shown = value, repr(value)
    else:
        shown = repr(value)
        if isinstance(value, str):
            m = _SPAN_TEXT.match(value)
            if m is None:
                raise ValueError(f"span {shown} is not START-END[:TRACK] (seconds, e.g. 12.5-20 or 12.5-20:inbound)")
            start, end, track = m.group(1), m.group(2), m.group(3)
        elif isinstance(value, (tuple, list)) and len(value) in (2, 3):
            start, end = value[0], value[1]
            track = value[2] if len(value) == 3 else None
        else:
            raise ValueError(f"span {shown} is not START-END[:TRACK] nor (start, end[, track])")
        try:
            start_s, end_s = float(start), float(end)
        except (TypeError, ValueError):
            raise ValueError(f"span {shown}: start and end must be numbers of seconds") from None
        span = Span(start_s, end_s, track)
    if not (math.isfinite(span.start_s) and math.isfinite(span.end_s)):
        raise ValueError(f"span {shown}: start and end must be finite seconds")
    if span.start_s < 0:
        raise ValueError(f"span {shown} starts before the call (negative time): expected seconds from 0")
    if span.end_s <= span.start_s:
        raise ValueError(f"span {shown} ends before it starts: expected START-END with START < END (seconds)")
    if span.track is not None and span.track not in TRACKS:
        raise ValueError(f"span {shown}: unknown track {span.track!r}, expected 'inbound' or 'outbound'")
    return span


def check_spans(spans: Iterable[Any], duration_s: float, *, label: str = "the call") -> list[Span]:
    """The user's spans as :class:`Span` s, each checked against the call's length.

    Raises
    ------
    ValueError
        For a span :func:`as_span` refuses, or one that does not lie within the call.

    Examples
    --------
    >>> check_spans(["1-2", (3, 8)], 8.0)[1].end_s
    8.0
    >>> check_spans(["9-10"], 8.0)
    Traceback (most recent call last):
    ...
    ValueError: span '9-10' starts at 9 s, after the end of the call (8 s long)
    """
    out = []
    for value in spans:
        span = as_span(value)
        if isinstance(value, Span):  # shown as the user would have typed it
            value = f"{span.start_s:g}-{span.end_s:g}" + (f":{span.track}" if span.track else "")
        if span.start_s >= duration_s:
            raise ValueError(f"span {value!r} starts at {span.start_s:g} s, after the end of {label}"
                             f" ({duration_s:g} s long)")
        if span.end_s > duration_s + 1e-6:
            raise ValueError(f"span {value!r} ends at {span.end_s:g} s, after the end of {label}"
                             f" ({duration_s:g} s long): end it at {duration_s:g} at most")
        out.append(span)
    return out


def find_tones(audio: np.ndarray, sample_rate: int, *, pad_s: float = DEFAULT_PAD_S,
               settings: Mapping[str, float] | None = None,
               tracks: Sequence[str] = TRACKS) -> list[Span]:
    """In-band DTMF tones in a call's audio, as spans to mute on both tracks.

    Parameters
    ----------
    audio : np.ndarray of int16, shape (2, n)
        ``[inbound, outbound]``.
    sample_rate : int
    pad_s : float
        Guard band added before and after each tone, seconds.
    settings : dict, optional
        :func:`~telnyx_audio.analysis.detect_dtmf` keywords; :data:`DETECTOR_SETTINGS` by default.
    tracks : sequence of str
        The tracks to search (those that carried media).

    Returns
    -------
    list of Span
        Reason ``"dtmf"``, both tracks, in time order; the evidence keeps the tone's track,
        times and level, and ``"*"`` for its digit.

    Examples
    --------
    >>> sr = 8000
    >>> t = np.arange(800) / sr
    >>> tone = (8000 * (np.sin(2 * np.pi * 770 * t) + np.sin(2 * np.pi * 1336 * t))).astype(np.int16)
    >>> audio = np.zeros((2, 8000), np.int16); audio[0, 4000:4800] = tone
    >>> [(round(s.start_s, 2), round(s.end_s, 2), s.evidence["digit"]) for s in find_tones(audio, sr, pad_s=0.2)]
    [(0.29, 0.81, '*')]
    """
    from telnyx_audio.analysis.dtmf import detect_dtmf

    if pad_s < 0 or not math.isfinite(pad_s):
        raise ValueError(f"pad_s must be a non-negative number of seconds, got {pad_s!r}")
    options = dict(DETECTOR_SETTINGS if settings is None else settings)
    duration = audio.shape[-1] / sample_rate
    spans = []
    for name in tracks:
        found = detect_dtmf(audio[TRACKS.index(name)], sample_rate, **options)
        for start, end, level in zip(found["start_s"].tolist(), found["end_s"].tolist(), found["level_dbfs"].tolist()):
            spans.append(Span(max(start - pad_s, 0.0), min(end + pad_s, duration), None, "dtmf",
                              {"found_on": name, "tone_start_s": round(start, 4), "tone_end_s": round(end, 4),
                               "level_dbfs": round(level, 1), "digit": MASK}))
    return sorted(spans, key=lambda s: (s.start_s, s.end_s))


def _merge(ranges: np.ndarray) -> np.ndarray:
    """Sorted, disjoint ``[start, end)`` rows from any rows (touching ones joined)."""
    if ranges.size == 0:
        return np.zeros((0, 2), np.int64)
    ranges = ranges[np.argsort(ranges[:, 0], kind="stable")]
    reach = np.maximum.accumulate(ranges[:, 1])
    new = np.concatenate(([True], ranges[1:, 0] > reach[:-1]))
    starts = ranges[new, 0]
    ends = reach[np.concatenate((np.flatnonzero(new)[1:] - 1, [len(ranges) - 1]))]
    return np.stack([starts, ends], axis=1).astype(np.int64)


@dataclass(frozen=True)
class Muting:
    """Per track, the sample ranges muted: sorted, disjoint ``[start, end)`` rows.

    Attributes
    ----------
    sample_rate : int
    n_samples : int
        The call's length; no range reaches past it.
    ranges : tuple of np.ndarray of int64, shape (k, 2)
        ``[inbound, outbound]``.
    """

    sample_rate: int
    n_samples: int
    ranges: tuple[np.ndarray, np.ndarray]

    @classmethod
    def from_spans(cls, spans: Iterable[Span], sample_rate: int, n_samples: int) -> "Muting":
        """The samples of each span on each of its tracks (start rounded down, end up).

        Examples
        --------
        >>> m = Muting.from_spans([Span(0.5, 1.0), Span(0.9, 1.2, "inbound")], 100, 200)
        >>> m.ranges[0].tolist(), m.ranges[1].tolist()
        ([[50, 120]], [[50, 100]])
        """
        rows: list[list[tuple[int, int]]] = [[], []]
        for s in spans:
            lo = max(int(math.floor(s.start_s * sample_rate + 1e-9)), 0)
            hi = min(int(math.ceil(s.end_s * sample_rate - 1e-9)), n_samples)
            if hi > lo:
                for name in s.tracks:
                    rows[TRACKS.index(name)].append((lo, hi))
        return cls(int(sample_rate), int(n_samples),
                   tuple(_merge(np.array(r, np.int64).reshape(-1, 2)) for r in rows))  # type: ignore[arg-type]

    def widened(self, track: int, starts: np.ndarray, ends: np.ndarray) -> "Muting":
        """This muting with ``[starts, ends)`` added on ``track`` (frames replaced whole)."""
        extra = np.stack([np.asarray(starts, np.int64), np.minimum(np.asarray(ends, np.int64), self.n_samples)], 1)
        ranges = list(self.ranges)
        ranges[track] = _merge(np.concatenate([self.ranges[track], extra.reshape(-1, 2)]))
        return Muting(self.sample_rate, self.n_samples, tuple(ranges))  # type: ignore[arg-type]

    def hits(self, track: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
        """Which frames ``[lo, hi)`` on ``track`` (0/1) meet a muted range: bool, shape (m,)."""
        out = np.zeros(np.shape(lo), bool)
        for index in (0, 1):
            r = self.ranges[index]
            sel = np.flatnonzero(track == index)
            if sel.size == 0 or r.size == 0:
                continue
            # The first range ending after the frame's start: it meets the frame if it starts before its end.
            k = np.searchsorted(r[:, 1], lo[sel], side="right")
            ok = k < len(r)
            out[sel[ok]] = r[k[ok], 0] < hi[sel[ok]]
        return out

    def mask(self) -> np.ndarray:
        """Which samples are muted: bool, shape (2, n_samples)."""
        out = np.zeros((2, self.n_samples), bool)
        for index, r in enumerate(self.ranges):
            for a, b in r.tolist():
                out[index, a:b] = True
        return out

    def first_difference(self, a: np.ndarray, b: np.ndarray) -> int | None:
        """The first sample outside the muted ranges where two (2, n) arrays differ, or None.

        Examples
        --------
        >>> m = Muting.from_spans([Span(1, 2)], 1, 4)
        >>> a, b = np.zeros((2, 4), np.int16), np.zeros((2, 4), np.int16)
        >>> b[:, 1] = 5; m.first_difference(a, b) is None
        True
        >>> b[0, 3] = 1; m.first_difference(a, b)
        3
        """
        differ = (np.asarray(a) != np.asarray(b)) & ~self.mask()
        where = np.flatnonzero(differ.any(axis=0))
        return int(where[0]) if where.size else None

    @property
    def empty(self) -> bool:
        """Nothing muted."""
        return all(r.size == 0 for r in self.ranges)

    def seconds(self) -> list[dict[str, Any]]:
        """Each muted range as ``{"track", "start_s", "end_s"}``, in time order."""
        rows = [{"track": name, "start_s": round(int(a) / self.sample_rate, 6), "end_s": round(int(b) / self.sample_rate, 6)}
                for name, r in zip(TRACKS, self.ranges) for a, b in r.tolist()]
        return sorted(rows, key=lambda d: (d["start_s"], d["track"]))

    def muted_s(self) -> dict[str, float]:
        """Seconds muted per track."""
        return {name: float((r[:, 1] - r[:, 0]).sum()) / self.sample_rate for name, r in zip(TRACKS, self.ranges)}


def mute_audio(audio: np.ndarray, muting: Muting, value: int = 0) -> np.ndarray:
    """A copy of ``audio`` (2, n) with every muted range set to ``value`` (the codec's silence).

    Examples
    --------
    >>> a = np.ones((2, 6), np.int16)
    >>> mute_audio(a, Muting.from_spans([Span(2, 4, "outbound")], 1, 6)).tolist()
    [[1, 1, 1, 1, 1, 1], [1, 1, 0, 0, 1, 1]]
    """
    out = np.array(audio, copy=True)
    for index, r in enumerate(muting.ranges):
        for a, b in r.tolist():
            out[index, a:b] = value
    return out


@dataclass(frozen=True)
class FrameEdit:
    """What :func:`mute_frames` decided: the new payload of each frame it changed.

    Attributes
    ----------
    payloads : dict of int to bytes
        Frame index -> payload to write instead.
    muting : Muting
        The muting as applied (stateful codecs: grown to the replaced frames' edges).
    frames_replaced : dict of str to int
        Per track, frames whose payload changed (in part or whole).
    unplaced_replaced : int
        Frames the reader does not place (duplicates of nothing, outside every plan) that were
        replaced whole.
    """

    payloads: dict[int, bytes]
    muting: Muting
    frames_replaced: dict[str, int]
    unplaced_replaced: int = 0


def _keys(chunk: np.ndarray, timestamp: np.ndarray, seq: np.ndarray) -> np.ndarray:
    """Each frame's ordering key as the plan dedupes by it: chunk, else timestamp, else sequence number."""
    key = np.where(chunk >= 0, chunk, np.where(timestamp >= 0, timestamp, seq))
    kind = np.where(chunk >= 0, 0, np.where(timestamp >= 0, 1, 2))
    return key * 4 + kind


def mute_frames(encoding: str, sample_rate: int, payloads: Sequence[bytes | None], track: np.ndarray,
                dest: np.ndarray, samples: np.ndarray, muting: Muting, *,
                counters: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None) -> FrameEdit:
    """The payloads to write so that the muted ranges decode to silence.

    Parameters
    ----------
    encoding : str
        Canonical name (``PCMU PCMA L16 G722 OPUS AMR-WB``).
    sample_rate : int
        The rate Telnyx reported (OPUS packets are encoded at the rate they decode at).
    payloads : sequence of bytes or None
        Every frame's payload, in the order of the plan's frames (None: no usable payload).
    track : np.ndarray of int8, shape (m,)
    dest : np.ndarray of int64, shape (m,)
        Each frame's first sample on its track, -1 where the plan does not place it.
    samples : np.ndarray of int64, shape (m,)
        Each frame's length in samples at the decoded rate.
    muting : Muting
    counters : (chunk, timestamp, sequence_number), optional
        The frames' counters: a frame the plan does not place takes the place of the placed
        frame it repeats (same track and ordering key). Without them, or when it repeats
        none, it is replaced whole.

    Returns
    -------
    FrameEdit

    Raises
    ------
    CorruptPacketError, CodecUnavailableError
        When a frame's silence cannot be written (see
        :func:`~telnyx_audio.codecs.silence.silent_payload`): the caller fails closed.

    Examples
    --------
    >>> m = Muting.from_spans([Span(0.0015, 0.003)], 8000, 48)
    >>> e = mute_frames("PCMU", 8000, [bytes(range(16))] * 3, np.zeros(3, np.int8), np.array([0, 16, 32]),
    ...                 np.full(3, 16), m)
    >>> e.payloads[0].hex(), sorted(e.payloads), e.frames_replaced
    ('000102030405060708090a0bffffffff', [0, 1], {'inbound': 2, 'outbound': 0})
    """
    from telnyx_audio.codecs.registry import REGISTRY
    from telnyx_audio.codecs.silence import silent_payload

    info = REGISTRY[encoding]
    track = np.asarray(track, np.int64)
    dest = np.asarray(dest, np.int64)
    samples = np.maximum(np.asarray(samples, np.int64), 0)
    has = np.array([p is not None and len(p) > 0 for p in payloads], bool)
    where = dest.copy()
    unplaced = np.flatnonzero((dest < 0) & has)
    if unplaced.size and counters is not None:  # a repeat takes its original's place
        key = _keys(*(np.asarray(c, np.int64) for c in counters))
        placed = np.flatnonzero(dest >= 0)
        lookup = {(int(t), int(k)): int(d) for t, k, d in zip(track[placed], key[placed], dest[placed])}
        for i in unplaced.tolist():
            where[i] = lookup.get((int(track[i]), int(key[i])), -1)
    orphan = np.flatnonzero((where < 0) & has)  # placed nowhere, repeating nothing: replaced whole
    out: dict[int, bytes] = {}
    for i in orphan.tolist():
        out[i] = silent_payload(info.name, sample_rate, payloads[i])  # type: ignore[arg-type]
    ok = where >= 0
    hit = np.zeros(track.size, bool)
    hit[ok] = muting.hits(track[ok], where[ok], where[ok] + samples[ok])
    hit &= has
    if info.silence is not None:  # stateless: the muted samples only
        bps = len(info.silence)
        for i in np.flatnonzero(hit).tolist():
            data = bytearray(payloads[i])  # type: ignore[arg-type]
            lo = int(where[i])
            for a, b in muting.ranges[int(track[i])].tolist():
                s, e = max(a - lo, 0), min(b - lo, int(samples[i]))
                if e > s:
                    data[s * bps : e * bps] = info.silence * (e - s)
            if bytes(data) != payloads[i]:
                out[i] = bytes(data)
    else:  # stateful: whole frames, and the muted range grows to their edges
        if info.name == "OPUS":
            hit |= _fec_followers(hit, has, track, where, payloads)
        rows = np.flatnonzero(hit)
        for i in rows.tolist():
            new = silent_payload(info.name, sample_rate, payloads[i])  # type: ignore[arg-type]
            if new != payloads[i]:
                out[i] = new
        for index in (0, 1):
            sel = rows[track[rows] == index]
            if sel.size:
                muting = muting.widened(index, where[sel], where[sel] + samples[sel])
    replaced = {name: int(sum(1 for i in out if track[i] == index)) for index, name in enumerate(TRACKS)}
    return FrameEdit(out, muting, replaced, int(orphan.size))


def _fec_followers(hit: np.ndarray, has: np.ndarray, track: np.ndarray, where: np.ndarray,
                   payloads: Sequence[bytes | None]) -> np.ndarray:
    """OPUS packets right after a muted one (on the timeline) that carry in-band FEC (LBRR):
    a low-rate copy of the muted packet's audio."""
    from telnyx_audio.codecs.silence import opus_has_fec

    more = np.zeros(hit.size, bool)
    for index in (0, 1):
        sel = np.flatnonzero((track == index) & (where >= 0) & has)
        if sel.size == 0:
            continue
        sel = sel[np.argsort(where[sel], kind="stable")]
        after = sel[1:][hit[sel[:-1]] & ~hit[sel[1:]]]
        for i in after.tolist():
            more[i] = opus_has_fec(bytes(payloads[i]))  # type: ignore[arg-type]
    return more
