"""The fork receiver's finalising worker: one call's capture to WAVs and ``summary.json``,
in a process of its own under an address-space limit.

``python -m telnyx_audio.forks._finalizer`` reads one JSON job on stdin (``capture``,
``folder``, ``extra``) and writes one JSON line on stdout: ``{"ok": true, "summary": ...}``
or ``{"ok": false, "error": ...}``. The receiver (:mod:`._sessions`) starts one per call, at
most ``finalize_workers`` at once, and kills it past ``finalize_timeout_s``: a hostile or
huge call costs a worker's memory and time, never the receiver's.

A plain process with a fixed command line (as the capture server's finalising workers):
``multiprocessing`` children would re-import the parent's ``__main__``, and ``fork`` from
the receiver's threads is unsafe.
"""

from __future__ import annotations

import json
import os
import sys
import warnings
from pathlib import Path
from typing import Any

from telnyx_audio.forks._sessions import MEMORY_ENV


def finalize(capture: str, folder: str, extra: dict[str, Any] | None, *, redact_dtmf: bool = False) -> dict[str, Any]:
    """Read a fork capture and write its WAVs and summary (with ``extra``); the summary.

    With ``redact_dtmf`` the capture is first redacted in place
    (:func:`telnyx_audio.forks.redact.finalize_redacted`, which fails closed).
    """
    if redact_dtmf:
        from telnyx_audio.forks.redact import finalize_redacted

        return finalize_redacted(Path(capture), Path(folder), extra)
    from telnyx_audio.forks._sessions import write_outputs
    from telnyx_audio.forks.read import read_fork_capture

    return write_outputs(read_fork_capture(capture), Path(folder), extra)


def main() -> None:
    """Serve one job from stdin (see the module's docstring)."""
    limit = int(os.environ.get(MEMORY_ENV, "0") or 0)
    if limit > 0:
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    out = sys.stdout
    sys.stdout = sys.stderr  # nothing else may write to the reply channel
    job = json.loads(sys.stdin.readline())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            reply: dict[str, Any] = {"ok": True, "summary": finalize(job["capture"], job["folder"], job.get("extra"),
                                                               redact_dtmf=bool(job.get("redact_dtmf")))}
        except Exception as exc:  # noqa: BLE001 - the worker's boundary: every failure is the call's, reported
            reply = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
    reply["warnings"] = [str(w.message) for w in caught][:20]
    out.write(json.dumps(reply, default=str) + "\n")
    out.flush()


if __name__ == "__main__":  # pragma: no cover - run as a process
    main()
