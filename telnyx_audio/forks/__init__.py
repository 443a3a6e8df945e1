"""Forks: receive the RTP ``fork_start`` sends, and turn it into the same recordings.

- :mod:`~telnyx_audio.forks.receiver`: the asyncio UDP receiver and its port-pair allocator
  (with :mod:`._ports`, :mod:`._datagrams` and :mod:`._sessions`).
- :mod:`~telnyx_audio.forks.rtpcap`: the fork-capture file (every datagram as received).
- :mod:`~telnyx_audio.forks.read`: :func:`read_fork_captures`, the file through
  :mod:`telnyx_audio.rtp` (audio on one timeline, DTMF digits, RTP statistics) into a
  :class:`~telnyx_audio.model.Capture`.

Our fake Telnyx for forks (RTP to two UDP ports) is :mod:`telnyx_audio.simulators.fork`.

The wire format itself is parsed by :mod:`telnyx_audio.rtp` (sans-I/O). Names load on first
use, so the command line and ``is_fork_capture`` stay cheap.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "ForkCaptureWriter": "telnyx_audio.forks.rtpcap",
    "is_fork_capture": "telnyx_audio.forks.rtpcap",
    "read_records": "telnyx_audio.forks.rtpcap",
    "read_fork_capture": "telnyx_audio.forks.read",
    "read_fork_captures": "telnyx_audio.forks.read",
    "ForkReceiver": "telnyx_audio.forks.receiver",
    "ForkSession": "telnyx_audio.forks.receiver",
    "ForkHandle": "telnyx_audio.forks.receiver",
    "Records": "telnyx_audio.rtp.datagrams",
    "DtmfDigit": "telnyx_audio.rtp.assemble",
    "ForkCaptureReport": "telnyx_audio.rtp.assemble",
    "RtpStats": "telnyx_audio.rtp.assemble",
    "assemble_fork": "telnyx_audio.rtp.assemble",
}

__all__ = list(_LAZY)


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'telnyx_audio.forks' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
