"""Audio codecs for Telnyx media payloads, with one registry of every encoding Telnyx streams.

- :mod:`~telnyx_audio.codecs.registry`: :data:`REGISTRY` (per encoding: rates, frame size,
  silence, decoder) and :func:`normalize_encoding`, the one place names are normalised.
  Imports nothing heavy.
- :mod:`~telnyx_audio.codecs.g711`: G.711 (PCMU, PCMA) and L16 with numpy lookup tables,
  whole buffers at once.
- :mod:`~telnyx_audio.codecs.wideband`: stateful G.722, OPUS and AMR-WB decoders (FFmpeg's
  through PyAV; libopus for OPUS), loaded only when used; :mod:`~telnyx_audio.codecs.amrwb`
  unpacks RFC 4867 payloads; :mod:`~telnyx_audio.codecs.stream` decodes a stream's frames
  in order, concealing gaps.
- :mod:`~telnyx_audio.codecs.outbound`: :func:`encode_payloads` (every codec, for talking
  back and the simulator) and :func:`encode_mp3` (Telnyx's ``mp3`` mode).

The G.711/L16 names (:func:`decode`, :func:`encode`, ...) load numpy on first use, so
``from telnyx_audio.codecs import normalize_encoding`` stays cheap.

>>> from telnyx_audio import codecs
>>> codecs.normalize_encoding("audio/x-alaw")
'PCMA'
>>> codecs.decode(b"\\xff", "PCMU").tolist()
[0]
"""

from __future__ import annotations

import importlib
from typing import Any

from telnyx_audio.codecs.registry import KNOWN_ENCODINGS, REGISTRY, CodecInfo, codec_info, normalize_encoding

_LAZY = {
    "SUPPORTED_ENCODINGS": "g711",
    "bytes_per_sample": "g711",
    "decode": "g711",
    "decode_payloads": "g711",
    "decode_into": "g711",
    "encode": "g711",
    "ulaw_to_linear": "g711",
    "linear_to_ulaw": "g711",
    "alaw_to_linear": "g711",
    "linear_to_alaw": "g711",
    "encode_payloads": "outbound",
    "encode_mp3": "outbound",
    "BIDIRECTIONAL_RATES": "outbound",
    "CodecUnavailableError": "wideband",
}

__all__ = ["REGISTRY", "CodecInfo", "KNOWN_ENCODINGS", "normalize_encoding", "codec_info", *_LAZY]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'telnyx_audio.codecs' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"telnyx_audio.codecs.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
