"""Redacting a fork capture (``.rtpcap``): the same file with its RTP redacted, checked by
reading it back before it is kept.

The datagrams are redacted by :func:`telnyx_audio.rtp.redact.redact_records` (tones and RFC
4733 events muted on both tracks, events masked as ``*``, chosen spans muted); the copy keeps
every record's track and arrival time and the header's metadata, with ``"redacted": true``
added. It is written under a temporary name, read back (the same length, the original's
audio outside the muted ranges, no tone or readable key left) and only then renamed into
place, over the source itself when ``dest`` is the source.
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path
from typing import Any, Iterable, Mapping

from telnyx_audio.errors import CaptureError
from telnyx_audio.forks.rtpcap import ForkCaptureWriter, read_records
from telnyx_audio.model.redact import DEFAULT_PAD_S
from telnyx_audio.rtp.assemble import capture_from_records
from telnyx_audio.rtp.redact import RecordsRedaction, check_redacted, redact_records

__all__ = ["redact_fork_capture", "finalize_redacted", "mark_pending", "recover_pending"]


def redact_fork_capture(
    src: str | os.PathLike[str],
    dest: str | os.PathLike[str],
    *,
    dtmf: bool = True,
    spans: Iterable[Any] = (),
    pad_s: float = DEFAULT_PAD_S,
    settings: Mapping[str, float] | None = None,
    media_format: Any = None,
    payload_types: Any = None,
) -> RecordsRedaction:
    """Write a redacted copy of a fork capture (see the module's docstring).

    Parameters
    ----------
    src, dest : str or PathLike
        The fork capture and where its copy goes (may be ``src``: replaced by a rename).
    dtmf, spans, pad_s, settings, media_format, payload_types
        As for :func:`telnyx_audio.rtp.redact.redact_records`.

    Returns
    -------
    RecordsRedaction
        Its capture's ``path`` is ``dest``.

    Raises
    ------
    CaptureError
        ``src`` is not a fork capture or cannot be read.
    ValueError, RedactionError
        As for :func:`~telnyx_audio.rtp.redact.redact_records`; nothing is written.

    Examples
    --------
    >>> import pathlib, tempfile
    >>> import numpy as np
    >>> from telnyx_audio.simulators.fork import fork_packets
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> packets, _ = fork_packets(np.zeros((2, 8000), np.int16), dtmf=[(0.4, "7")])
    >>> with ForkCaptureWriter(folder / "fork.rtpcap", {"rx_port": 4}) as w:
    ...     for p in packets:
    ...         w.write(p.track, p.data, int(p.due_s * 1e6))
    >>> done = redact_fork_capture(folder / "fork.rtpcap", folder / "clean.rtpcap")
    >>> done.keys, done.capture.summary()["dtmf"], done.event_packets_masked
    (1, '*', 10)
    """
    where = os.fspath(src)
    try:
        records = read_records(src)
    except OSError as exc:
        raise CaptureError(f"cannot read capture {where!r}: {exc.strerror or exc}") from exc
    except ValueError as exc:
        raise CaptureError(str(exc)) from exc
    done = redact_records(records, path=src, dtmf=dtmf, spans=spans, pad_s=pad_s, settings=settings,
                          media_format=media_format, payload_types=payload_types)
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.part")
    tmp.unlink(missing_ok=True)
    meta = dict(records.meta)
    meta["redacted"] = True
    try:
        with ForkCaptureWriter(tmp, meta) as w:
            for data, track, when in zip(done.datagrams, records.track.tolist(), records.received_us.tolist()):
                w.write(int(track), data, int(when))
        _fsync(tmp)
        back = capture_from_records(read_records(tmp), path=dest, media_format=media_format,
                                    payload_types=payload_types)
        check_redacted(done, back, dtmf=dtmf, settings=settings, path=where)
        if not back.recording.encoding or not _stateful(back.recording.encoding):
            # G.711/L16: the WAVs are the redacted copy's own decode (gaps inside a muted
            # stretch stay as the reader fills them), equal to the original's outside it.
            done = replace(done, capture=replace(done.capture, recording=back.recording))
        os.replace(tmp, dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return replace(done, capture=replace(done.capture, path=os.fspath(dest)), original=None)


# --- at capture time (ForkReceiver(..., redact_dtmf=True)) --------------------------------

def mark_pending(folder: Path) -> None:
    """Mark a new call folder as holding a capture not yet redacted."""
    from telnyx_audio.model.manifest import PENDING_NAME

    (folder / PENDING_NAME).touch()


def finalize_redacted(capture_path: Path, folder: Path, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Redact a call's fork capture in place, then write its WAVs, ``summary.json`` and
    ``redaction.json``; returns the summary.

    The capture is rewritten (tones and RFC 4733 events muted on both tracks, events masked)
    under a temporary name, checked, and renamed over the original before anything else is
    written. If it cannot be redacted, the unredacted capture is deleted, a summary saying
    why is written, and :class:`~telnyx_audio.errors.RedactionError` raised (fail closed).
    """
    from telnyx_audio.errors import RedactionError, TelnyxAudioError
    from telnyx_audio.model.manifest import (
        PENDING_NAME,
        capture_ids,
        sha256,
        stream_entry,
        write_manifest,
        write_redacted_call,
    )
    from telnyx_audio.model.wav import write_json_atomic

    input_sha, input_bytes = sha256(capture_path), capture_path.stat().st_size
    try:
        s = redact_fork_capture(capture_path, capture_path)
    except BaseException as exc:
        capture_path.unlink(missing_ok=True)
        (folder / PENDING_NAME).unlink(missing_ok=True)
        reason = (f"cannot redact the capture: {exc}; the unredacted capture was deleted"
                  " (redact_dtmf fails closed)")
        try:
            write_json_atomic(folder / "summary.json", {"error": reason, "files": {}, **(extra or {})})
        except OSError:
            pass
        if isinstance(exc, (TelnyxAudioError, ValueError, OSError)):
            raise RedactionError(reason, os.fspath(capture_path)) from exc
        raise
    (folder / PENDING_NAME).unlink(missing_ok=True)  # the redacted capture is in place
    entry = stream_entry(capture_ids(s.capture), s.spans, s.muting, keys=s.keys, masked=s.events_masked,
                         frames_replaced=s.packets_replaced, telephone_event_packets_masked=s.event_packets_masked)
    summary = write_redacted_call(s.capture, folder, entry, extra)
    write_manifest(folder, src=capture_path, kind="fork", streams=[entry], input_sha256=input_sha,
                   input_bytes=input_bytes)
    return summary


def recover_pending(root: Path, capture_name: str) -> list[Path]:
    """Redact every call folder under ``root`` whose capture a crash left unredacted;
    returns those folders (each redacted, or its capture deleted when it could not be)."""
    from telnyx_audio.errors import TelnyxAudioError
    from telnyx_audio.model.manifest import PENDING_NAME

    done = []
    for marker in sorted(Path(root).glob(f"*/{PENDING_NAME}")):
        folder = marker.parent
        if not (folder / capture_name).exists():
            marker.unlink(missing_ok=True)
            continue
        try:
            finalize_redacted(folder / capture_name, folder, {"receiver": {"ended_by": "recovered after a crash"}})
        except TelnyxAudioError:
            pass  # its summary says why; nothing unredacted is left
        done.append(folder)
    return done


def _stateful(encoding: str) -> bool:
    from telnyx_audio.codecs import codec_info

    return codec_info(encoding).stateful


def _fsync(path: Path) -> None:
    """Flush a written file to the disk before it is renamed into place."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
