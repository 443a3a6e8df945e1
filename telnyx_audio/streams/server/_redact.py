"""Redaction at capture time (``CaptureServer(..., redact_dtmf=True)``, ``telnyx-audio capture
--redact-dtmf``): what callers type never stays on disk past the end of the call.

The policy
----------
**Key events are masked before they are written.** A ``dtmf`` message reaches
``messages.jsonl`` with its digit already ``"*"`` (and ``"redacted": true``), its time kept:
the digit is never on disk, not even for a moment.

**Tones in the audio are muted by rewriting the log when the stream is finalised**, not by
holding frames back. The log is written as frames arrive, as without redaction; when the
stream stops (or disconnects, or the server shuts down), the finalising worker reads the
whole call, finds the tones on both tracks, writes a redacted copy of the log beside it,
reads the copy back and checks it (the original's audio outside the muted stretches, no
tone left), renames it over the original, and only then writes the WAVs, ``summary.json``
(``"dtmf": "****"``) and ``redaction.json``. Why a rewrite rather than a hold-back of
frames before they are written:

- the detector sees the whole call, both tracks at once: a tone's echo on the other leg,
  a press that starts before the guard band a hold-back would allow, and the same detector
  settings as :func:`telnyx_audio.redact` (one code path, one manifest, checked the same
  way); a hold-back must decide on a few hundred milliseconds and cannot re-check;
- the receive path stays as it is: one write per message, no decoding of stateful codecs
  in the server's event loop, and nothing of a call held in memory that a crash would lose
  (a hold-back loses its buffer in a crash; a rewrite loses nothing).

**What sits unredacted on disk, and for how long**: the in-band tones (never the digits of
key events) in ``messages.jsonl``, from the moment each frame arrives until the stream is
finalised: the call's length plus the finalising (seconds; at most ``finalize_timeout_s``).
That is while the call is in progress, before the card or PIN has been used: PCI DSS
forbids keeping sensitive authentication data *after* authorisation, and these logs never
outlive the call unredacted.

**A crash between the call and its finalising** (the server killed, the machine down)
leaves that stream's folder with its unredacted ``messages.jsonl`` and a marker file,
``.redaction-pending``, created with the folder and removed only when the redacted log is in
place. The next start of the capture server with ``redact_dtmf`` finalises every folder
under its output root that still has the marker, redacting it, before anything else; and
``telnyx-audio redact`` can clean such a folder by hand. A crash *during* the rewrite leaves
the original log (the copy is written under a temporary name, removed or never renamed)
and the marker: the same recovery applies.

**Never the unredacted log after finalising**: if the log cannot be redacted safely (a
stream whose audio cannot be decoded, a frame whose silence cannot be written, a tone still
heard after muting), or finalising fails or runs out of time, the unredacted log is
*deleted*, no WAV is written, and ``summary.json`` says why. Failing closed loses that
call's recording; keeping it would keep what the caller typed.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from telnyx_audio.model.manifest import PENDING_NAME
from telnyx_audio.streams.server._host import LOG_NAME

__all__ = ["PENDING_NAME", "RedactedLog", "redact_log", "pending_folders", "mark_pending", "is_pending",
           "discard_unredacted"]


@dataclass
class RedactedLog:
    """A stream folder's log once redacted in place: the calls and their manifest entries."""

    captures: list[Any]
    entries: list[dict[str, Any]]
    input_sha256: str
    input_bytes: int

    def summary_part(self, n: int) -> dict[str, Any]:
        """What stream ``n``'s summary says of its redaction."""
        e = self.entries[n]
        return {"redaction": {"manifest": "redaction.json", "keys": e["keys"], "tones_found": e["tones_found"],
                              "muted_s": e["muted_s"]}}

    def write_manifest(self, folder: Path) -> None:
        """``redaction.json`` in the stream folder (the input described as it was before)."""
        from telnyx_audio.model.manifest import write_manifest

        write_manifest(folder, src=folder / LOG_NAME, kind="websocket", streams=self.entries,
                       input_sha256=self.input_sha256, input_bytes=self.input_bytes)


def mark_pending(folder: Path) -> None:
    """Mark a new stream folder as holding a log not yet redacted."""
    (folder / PENDING_NAME).touch()


def is_pending(folder: Path) -> bool:
    """Whether ``folder`` holds a log not yet redacted."""
    return (folder / PENDING_NAME).exists() and (folder / LOG_NAME).exists()


def pending_folders(root: Path) -> list[Path]:
    """Stream folders under ``root`` (one level) whose log was never redacted (a crash)."""
    return sorted(p.parent for p in Path(root).glob(f"*/{PENDING_NAME}") if (p.parent / LOG_NAME).exists())


def discard_unredacted(folder: Path, reason: str) -> str:
    """Delete a log that could not be redacted (fail closed); returns the error to report."""
    (folder / LOG_NAME).unlink(missing_ok=True)
    (folder / PENDING_NAME).unlink(missing_ok=True)
    return f"{reason + '; ' if reason else ''}the unredacted log was deleted (redact_dtmf fails closed)"


def redact_log(folder: Path, stream_names: list[str] | None = None) -> RedactedLog:
    """Redact ``folder/messages.jsonl`` in place (see the module's docstring).

    Raises
    ------
    RedactionError, CaptureError
        When the log cannot be redacted; it is then deleted (fail closed) and the error says so.
    """
    from telnyx_audio.errors import RedactionError, TelnyxAudioError
    from telnyx_audio.model.manifest import capture_ids, sha256, stream_entry
    from telnyx_audio.streams.redact import redact_stream_log

    log = folder / LOG_NAME
    input_sha, input_bytes = sha256(log), log.stat().st_size
    try:
        done = redact_stream_log(log, log)
    except (TelnyxAudioError, ValueError, OSError) as exc:
        raise RedactionError(discard_unredacted(folder, f"cannot redact the log: {exc}"), os.fspath(log)) from exc
    (folder / PENDING_NAME).unlink(missing_ok=True)  # the redacted log is in place
    entries = [stream_entry(capture_ids(s.capture), s.spans, s.muting, keys=s.keys, masked=s.dtmf_masked,
                            frames_replaced=s.frames_replaced, undecodable_payloads_emptied=s.undecodable_emptied)
               for s in done.streams]
    return RedactedLog([s.capture for s in done.streams], entries, input_sha, input_bytes)

