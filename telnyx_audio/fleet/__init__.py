"""Batch at scale: many captured calls into one tidy table, on every core or a Dask cluster.

:func:`batch` maps one pure per-call function (:func:`telnyx_audio.fleet.work.run_task`:
read, write WAVs, analyse, flatten) over files with an executor (processes or Dask) and
gathers the small rows it returns into pandas tables. It holds no decoding logic of its own.

The call table's columns are documented in :mod:`telnyx_audio.model.schema`
(:data:`CALL_COLUMNS`); the command line is ``telnyx-audio batch``.
"""

from __future__ import annotations

from telnyx_audio.fleet.run import BatchResult, batch, expand_inputs
from telnyx_audio.model.schema import CALL_COLUMNS, SEGMENT_COLUMNS, calls_frame, capture_row, segments_frame

__all__ = ["batch", "BatchResult", "expand_inputs", "CALL_COLUMNS", "SEGMENT_COLUMNS", "capture_row",
           "calls_frame", "segments_frame"]
