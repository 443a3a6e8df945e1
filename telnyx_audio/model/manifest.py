"""``redaction.json``: what was removed from a call and the fingerprints of what was kept.

Written beside every redacted output, by :func:`telnyx_audio.redact` and by the capture
server and fork receiver when they redact at capture time, so an auditor can check what was
removed and that nothing else changed:

- ``format``, ``tool`` (name and version), ``created_at`` (UTC);
- ``input``: path, kind (``websocket``, ``fork``, ``pcap``, ``wav``), size and SHA-256 of
  the capture as it was before redaction;
- ``request``: ``dtmf`` (tones and key events), the user's ``spans``, ``pad_s``;
- ``detector``: the DTMF detector's name and its settings (null when ``dtmf`` is false);
- ``streams``: per stream or call, its ids, format and length, ``keys`` (key events, each
  masked as ``*``), ``tones_found``, ``spans`` (tracks, start, end, reason: ``dtmf`` with the
  detector's evidence or ``span`` from the user), ``muted_spans`` (the same, one row per
  track), ``muted_applied`` (the sample ranges muted as applied: merged, and grown to whole
  frames for stateful codecs), ``muted_s`` per track and ``frames_replaced`` per track;
- ``outputs``: every file written (path relative to the manifest's folder) and its SHA-256.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import os
from pathlib import Path
from typing import Any, Iterable, Mapping

from telnyx_audio.model.redact import DETECTOR, DETECTOR_SETTINGS, MASK, Muting, Span

__all__ = ["MANIFEST_NAME", "MANIFEST_FORMAT", "PENDING_NAME", "sha256", "capture_ids", "stream_entry", "write_manifest",
           "write_redacted_call"]

#: The manifest written beside every redacted output.
MANIFEST_NAME = "redaction.json"
MANIFEST_FORMAT = "telnyx-audio-redaction/1"
#: The marker of a capture folder whose capture is not yet redacted (the capture server's
#: and the fork receiver's ``redact_dtmf``): made with the folder, removed once the redacted
#: capture is in place; a crash leaves it, and the next start redacts that folder.
PENDING_NAME = ".redaction-pending"


def sha256(path: str | os.PathLike[str]) -> str:
    """The SHA-256 of a file, hex.

    Examples
    --------
    >>> import pathlib, tempfile
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "x"
    >>> _ = p.write_bytes(b"abc")
    >>> sha256(p)[:16]
    'ba7816bf8f01cfea'
    """
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def capture_ids(capture: Any) -> dict[str, Any]:
    """What the manifest says of a call (a :class:`~telnyx_audio.model.Capture`): its ids,
    format, decoded rate and length."""
    fmt = capture.media_format
    rec = capture.recording
    return {"stream_id": capture.stream_id, "call_control_id": capture.call_control_id,
            "encoding": fmt.encoding if fmt else None, "sample_rate": fmt.sample_rate if fmt else None,
            "audio_sample_rate": rec.sample_rate, "duration_s": rec.duration_s}


def _version() -> str | None:
    """This package's version, from its installed metadata (the package root is a layer above)."""
    import importlib.metadata

    try:
        return importlib.metadata.version("telnyx-audio")
    except importlib.metadata.PackageNotFoundError:
        return None


def stream_entry(ids: Mapping[str, Any], spans: Iterable[Span], muting: Muting, *, keys: int, masked: int,
                 frames_replaced: Mapping[str, int] | None = None, folder: str = "", **more: Any) -> dict[str, Any]:
    """One stream's part of the manifest: ``ids`` (see :func:`capture_ids`), then what was muted.

    Examples
    --------
    >>> m = Muting.from_spans([Span(1, 2)], 8000, 80000)
    >>> e = stream_entry({"stream_id": "s"}, [Span(1, 2)], m, keys=3, masked=3)
    >>> e["dtmf"], e["muted_applied"][0], e["muted_s"]
    ('***', {'track': 'inbound', 'start_s': 1.0, 'end_s': 2.0}, {'inbound': 1.0, 'outbound': 1.0})
    """
    spans = list(spans)
    per_track = [{"track": t, "start_s": round(s.start_s, 6), "end_s": round(s.end_s, 6), "reason": s.reason,
                  **({"evidence": dict(s.evidence)} if s.evidence else {})} for s in spans for t in s.tracks]
    return {
        **ids,
        "folder": folder,
        "keys": keys,
        "dtmf": MASK * keys,
        "dtmf_events_masked": masked,
        "tones_found": sum(1 for s in spans if s.reason == "dtmf"),
        "spans": [s.as_dict() for s in spans],
        "muted_spans": sorted(per_track, key=lambda d: (d["start_s"], d["track"])),
        "muted_applied": muting.seconds(),
        "muted_s": muting.muted_s(),
        "frames_replaced": dict(frames_replaced or {}),
        **more,
    }


def write_manifest(folder: str | os.PathLike[str], *, src: str | os.PathLike[str], kind: str,
                   streams: list[dict[str, Any]], spans: Iterable[Span] = (), dtmf: bool = True,
                   pad_s: float = 0.25, settings: Mapping[str, float] | None = None,
                   now: _dt.datetime | None = None, input_sha256: str | None = None,
                   input_bytes: int | None = None) -> dict[str, Any]:
    """Write ``folder/redaction.json`` (atomically) and return it.

    ``outputs`` lists every file in ``folder`` and below (but the manifest and files being
    written, named ``.*.part``) with its SHA-256. ``input_sha256``/``input_bytes`` describe the
    input when it was redacted in place (default: the file at ``src`` now).
    """
    from telnyx_audio.model.wav import PARTIAL_SUFFIX, write_json_atomic

    folder = Path(folder)
    files = {p.relative_to(folder).as_posix(): sha256(p) for p in sorted(folder.rglob("*"))
             if p.is_file() and p.name != MANIFEST_NAME and not p.name.endswith(PARTIAL_SUFFIX)}
    when = (now or _dt.datetime.now(_dt.timezone.utc)).astimezone(_dt.timezone.utc)
    src = Path(src)
    manifest = {
        "format": MANIFEST_FORMAT,
        "tool": {"name": "telnyx-audio", "version": _version()},
        "created_at": when.isoformat().replace("+00:00", "Z"),
        "input": {"path": os.fspath(src), "kind": kind,
                  "sha256": input_sha256 if input_sha256 is not None else sha256(src),
                  "bytes": input_bytes if input_bytes is not None else src.stat().st_size},
        "request": {"dtmf": dtmf, "spans": [s.as_dict() for s in spans], "pad_s": pad_s},
        "detector": {"name": DETECTOR, "settings": dict(DETECTOR_SETTINGS if settings is None else settings)}
        if dtmf else None,
        "streams": streams,
        "outputs": [{"path": p, "sha256": h} for p, h in files.items()],
    }
    write_json_atomic(folder / MANIFEST_NAME, manifest)
    return manifest


def write_redacted_call(capture: Any, where: Path, entry: Mapping[str, Any],
                        extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """A redacted call's WAVs and ``summary.json``, the summary saying what was redacted
    (``redaction``: the manifest's name, keys masked, tones found, seconds muted)."""
    from telnyx_audio.model.wav import SUMMARY_NAME, write_call, write_json_atomic

    summary = write_call(capture, where)
    summary["redaction"] = {"manifest": MANIFEST_NAME, "keys": entry["keys"], "tones_found": entry["tones_found"],
                            "muted_s": entry["muted_s"]}
    summary.update(extra or {})
    write_json_atomic(where / SUMMARY_NAME, summary)
    return summary
