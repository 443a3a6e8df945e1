"""Forks: receive the RTP ``fork_start`` sends, and turn it into the same recordings.

- :mod:`~telnyx_audio.fork.capturefile`: the fork-capture file (every datagram as received).
- :mod:`~telnyx_audio.fork.assemble`: packets -> :class:`~telnyx_audio.capture.Capture`
  (audio on one timeline, DTMF digits, RTP statistics); :func:`read_fork_captures`.
- :mod:`~telnyx_audio.fork.receiver`: the asyncio UDP receiver and its port-pair allocator.
- :mod:`~telnyx_audio.fork.simulator`: our fake Telnyx for forks (RTP to two UDP ports).

The wire format itself is parsed by :mod:`telnyx_audio.rtp` (sans-I/O). Names load on first
use, so the command line and ``is_fork_capture`` stay cheap.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "DtmfDigit": "assemble",
    "ForkCaptureReport": "assemble",
    "RtpStats": "assemble",
    "assemble_fork": "assemble",
    "read_fork_capture": "assemble",
    "read_fork_captures": "assemble",
    "ForkCaptureWriter": "capturefile",
    "Records": "capturefile",
    "is_fork_capture": "capturefile",
    "read_records": "capturefile",
    "ForkReceiver": "receiver",
    "ForkSession": "receiver",
    "ForkHandle": "receiver",
    "ForkPacket": "simulator",
    "ForkSimulationReport": "simulator",
    "fork_packets": "simulator",
    "simulate_fork": "simulator",
}

__all__ = list(_LAZY)


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'telnyx_audio.fork' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"telnyx_audio.fork.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
