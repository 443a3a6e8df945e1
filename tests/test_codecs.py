"""G.711 and L16: known answers, the audioop oracle, properties, errors."""

import base64
import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from telnyx_audio import codecs
from telnyx_audio.errors import TelnyxAudioError, UnsupportedEncodingError

audioop = pytest.importorskip("audioop")  # the oracle; gone in Python 3.13 (vectors remain)
VECTORS = json.loads((Path(__file__).parent / "vectors" / "g711.json").read_text())
ALL_CODES = bytes(range(256))
ALL_LINEAR = np.arange(-32768, 32768, dtype=np.int16)


def test_every_mu_law_code_decodes_to_the_committed_known_answer():
    assert codecs.decode(ALL_CODES, "PCMU").tolist() == VECTORS["ulaw_decode"]


def test_every_a_law_code_decodes_to_the_committed_known_answer():
    assert codecs.decode(ALL_CODES, "PCMA").tolist() == VECTORS["alaw_decode"]


@pytest.mark.parametrize("encoding, key", [("PCMU", "ulaw_encode"), ("PCMA", "alaw_encode")])
def test_linear_inputs_encode_to_the_committed_known_answers(encoding, key):
    pcm = np.array(VECTORS["linear"], dtype=np.int16)
    assert list(codecs.encode(pcm, encoding)) == VECTORS[key]


def test_mu_law_decoding_matches_audioop_for_all_256_codes():
    assert codecs.decode(ALL_CODES, "PCMU").tobytes() == audioop.ulaw2lin(ALL_CODES, 2)


def test_a_law_decoding_matches_audioop_for_all_256_codes():
    assert codecs.decode(ALL_CODES, "PCMA").tobytes() == audioop.alaw2lin(ALL_CODES, 2)


def test_mu_law_encoding_matches_audioop_for_all_65536_inputs():
    assert codecs.encode(ALL_LINEAR, "PCMU") == audioop.lin2ulaw(ALL_LINEAR.tobytes(), 2)


def test_a_law_encoding_matches_audioop_for_all_65536_inputs():
    assert codecs.encode(ALL_LINEAR, "PCMA") == audioop.lin2alaw(ALL_LINEAR.tobytes(), 2)


def test_silence_bytes_are_what_telnyx_sends():
    assert codecs.decode(b"\xff", "PCMU").tolist() == [0]
    assert codecs.encode(np.zeros(1, np.int16), "PCMA") == b"\xd5"


def test_l16_is_big_endian_on_the_wire():
    assert codecs.decode(b"\x01\x00\x80\x00", "L16").tolist() == [256, -32768]
    assert codecs.encode(np.array([256, -2], np.int16), "L16") == b"\x01\x00\xff\xfe"


@pytest.mark.parametrize("encoding", ["PCMU", "PCMA", "L16"])
@given(data=st.binary(max_size=400))
@settings(max_examples=60, deadline=None)
def test_decode_encode_decode_is_decode(encoding, data):
    if encoding == "L16":
        data = data[: len(data) // 2 * 2]
    once = codecs.decode(data, encoding)
    assert np.array_equal(codecs.decode(codecs.encode(once, encoding), encoding), once)


@pytest.mark.parametrize("encoding", ["PCMU", "PCMA", "L16"])
def test_decode_into_matches_decode_for_aligned_odd_and_offset_outputs(encoding):
    rng = np.random.default_rng(3)
    bps = codecs.bytes_per_sample(encoding)
    for n in (0, 1, 159, 160, 1001):
        raw = rng.integers(0, 256, n * bps, dtype=np.uint8)
        for offset in (0, 1):
            out = np.zeros(n + offset, np.int16)[offset:]
            codecs.decode_into(raw, encoding, out)
            assert np.array_equal(out, codecs.decode(raw, encoding))


def test_decode_into_refuses_an_output_of_the_wrong_size():
    with pytest.raises(ValueError, match="do not fill"):
        codecs.decode_into(np.zeros(4, np.uint8), "PCMU", np.zeros(3, np.int16))


@pytest.mark.parametrize("name", ["G722", "OPUS", "AMR-WB", "pcmu", "MP3", None])
def test_an_encoding_not_supported_yet_raises_a_typed_error_naming_it(name):
    with pytest.raises(UnsupportedEncodingError) as err:
        codecs.decode(b"\x00\x00", name)
    assert isinstance(err.value, ValueError) and isinstance(err.value, TelnyxAudioError)
    assert repr(name) in str(err.value) and "PCMU, PCMA, L16" in str(err.value)
    assert err.value.encoding == name


def test_l16_of_odd_length_is_a_clear_error():
    with pytest.raises(ValueError, match="even number of bytes, got 3"):
        codecs.decode(b"\x00\x01\x02", "L16")


def test_float_pcm_is_refused_with_a_hint():
    with pytest.raises(TypeError, match="must be int16, got float64"):
        codecs.encode(np.zeros(3), "PCMU")


def test_many_payloads_decode_in_one_call_in_order():
    frames = [bytes([0x80, 0xFF]), b"", bytes([0x00] * 5)]
    got = codecs.decode_payloads([base64.b64encode(f).decode() for f in frames], "PCMU")
    assert got.tobytes() == b"".join(audioop.ulaw2lin(f, 2) for f in frames)


def test_a_bad_payload_among_many_is_named_by_its_index():
    with pytest.raises(ValueError, match="payload 1 is not valid base64"):
        codecs.decode_payloads(["//8=", "!!!!"], "PCMU")
