"""The vectorized base64 decoder agrees with the standard library, with and without SIMD."""

import base64
import binascii

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from telnyx_audio._util import b64 as _base64

ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"


def reference(text: str) -> bytes | None:
    """RFC 4648 strictly: the standard library's strict mode, and whole quads only
    (CPython 3.11's strict mode still lets excess padding such as '0000=' through)."""
    if len(text) % 4:
        return None
    try:
        return binascii.a2b_base64(text.encode(), strict_mode=True)
    except (binascii.Error, ValueError):
        return None


@pytest.fixture(params=["simd", "tables"])
def decoder(request, monkeypatch):
    if request.param == "tables":
        monkeypatch.setattr(_base64, "_pybase64", None)
    elif _base64._pybase64 is None:
        pytest.skip("pybase64 not installed")
    return _base64.decode_many


nearly_base64 = st.text(alphabet=ALPHABET + "=$ \n-_", max_size=40)


@given(texts=st.lists(nearly_base64, min_size=1, max_size=30))
@settings(max_examples=200, deadline=None)
def test_any_texts_decode_exactly_as_the_strict_standard_decoder_says(texts):
    for use_simd in (True, False):
        saved = _base64._pybase64
        if not use_simd:
            _base64._pybase64 = None
        try:
            raw, offsets, bad = _base64.decode_many(texts)
        finally:
            _base64._pybase64 = saved
        expected = [reference(t) for t in texts]
        assert sorted(bad.tolist()) == [i for i, e in enumerate(expected) if e is None]
        assert raw.tobytes() == b"".join(e for e in expected if e is not None)
        assert np.diff(offsets).tolist() == [len(e) if e is not None else 0 for e in expected]


@given(payloads=st.lists(st.binary(min_size=0, max_size=400), min_size=1, max_size=50))
@settings(max_examples=100, deadline=None)
def test_valid_payloads_of_mixed_lengths_round_trip(payloads):
    raw, _, bad = _base64.decode_many([base64.b64encode(p).decode() for p in payloads])
    assert bad.size == 0 and raw.tobytes() == b"".join(payloads)


def test_equal_frames_decode_through_both_paths(decoder):
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 256, 160, dtype=np.uint8).tobytes() for _ in range(500)]
    raw, _, bad = decoder([base64.b64encode(f) for f in frames])
    assert bad.size == 0 and raw.tobytes() == b"".join(frames)


def test_one_bad_character_marks_only_its_row(decoder):
    rng = np.random.default_rng(1)
    frames = [base64.b64encode(rng.integers(0, 256, 160, dtype=np.uint8).tobytes()) for _ in range(64)]
    frames[17] = frames[17][:100] + b"*" + frames[17][101:]
    frames[40] = frames[40][:-4] + b"A=A="
    raw, _, bad = decoder(frames)
    assert bad.tolist() == [17, 40]
    good = [base64.b64decode(f) for i, f in enumerate(frames) if i not in (17, 40)]
    assert raw.tobytes() == b"".join(good)
