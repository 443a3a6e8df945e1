"""Redaction afterwards (#20): ``telnyx_audio.redaction.redact`` and ``telnyx-audio redact``.

The calls are real speech with key presses at known times (tests/dtmf_calls.py); the oracle
is multimon-ng, a DTMF decoder written by others: it hears every digit in the unredacted
calls and none in the redacted ones (the WAVs written, and the audio decoded from the
redacted capture itself).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile

import dtmf_calls as dc
from telnyx_audio import read_captures
from telnyx_audio.errors import RedactionError
from telnyx_audio import redact

ROOT = Path(__file__).resolve().parents[1]
CODECS = ("PCMU", "PCMA", "L16", "G722", "OPUS")
STATELESS = ("PCMU", "PCMA", "L16")


def need_multimon():
    if not dc.have_multimon():
        pytest.skip("multimon-ng not installed: it is the independent DTMF detector (apt-get install multimon-ng)")


@pytest.fixture(scope="module")
def call():
    return dc.make_call("heldout")


def heard(recording) -> list[str]:
    return [dc.multimon(x, recording.sample_rate) for x in (recording.inbound, recording.outbound)]


def wav_digits(folder: Path) -> list[str]:
    out = []
    for name in ("inbound.wav", "outbound.wav"):
        x, sr = soundfile.read(folder / name, dtype="int16")
        out.append(dc.multimon(x, sr))
    return out


def muted_mask(entry: dict, n: int, rate: int) -> np.ndarray:
    mask = np.zeros((2, n), bool)
    for r in entry["muted_applied"]:
        t = ("inbound", "outbound").index(r["track"])
        mask[t, int(round(r["start_s"] * rate)) : int(round(r["end_s"] * rate))] = True
    return mask


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("encoding", CODECS)
def test_multimon_ng_hears_every_digit_before_redaction_and_none_after(call, tmp_path, encoding):
    need_multimon()
    src = dc.jsonl_capture(call, encoding, tmp_path / "call.jsonl")
    before = read_captures(src)[0].recording
    inbound, outbound = heard(before)
    assert set(call.digits) <= set(inbound) and len(inbound) >= len(call.digits)  # the oracle hears them all
    assert outbound  # the echo on the agent's leg is a leak too
    result = redact(src, out=tmp_path / "out")
    assert wav_digits(result.folder) == ["", ""]
    after = read_captures(result.capture)[0].recording
    assert heard(after) == ["", ""]
    assert after.duration_s == before.duration_s


@pytest.mark.parametrize("encoding", CODECS)
def test_audio_outside_the_muted_spans_is_bit_identical_and_the_length_unchanged(call, tmp_path, encoding):
    src = dc.jsonl_capture(call, encoding, tmp_path / "call.jsonl")
    before = read_captures(src)[0].recording
    result = redact(src, out=tmp_path / "out")
    entry = result.streams[0]
    a = np.stack([before.inbound, before.outbound])
    mask = muted_mask(entry, a.shape[1], before.sample_rate)
    assert 0 < mask.mean() < 0.6
    x = np.stack([soundfile.read(result.folder / f"{t}.wav", dtype="int16")[0] for t in ("inbound", "outbound")])
    assert x.shape == a.shape
    assert np.array_equal(x[~mask], a[~mask])
    silence = {"PCMA": 8}.get(encoding, 0)
    assert np.all(x[mask] == silence)
    if encoding in STATELESS:  # the capture itself decodes to the same, sample for sample
        after = read_captures(result.capture)[0].recording
        y = np.stack([after.inbound, after.outbound])
        assert np.array_equal(y[~mask], a[~mask]) and np.all(y[mask] == silence)


def test_only_payloads_and_digits_change_in_the_capture_and_keys_keep_their_time(call, tmp_path):
    src = dc.jsonl_capture(call, "G722", tmp_path / "call.jsonl")
    result = redact(src, out=tmp_path / "out")
    old = src.read_text().splitlines()
    new = result.capture.read_text().splitlines()
    assert len(old) == len(new)
    changed_media = 0
    for a, b in zip(old, new):
        if a == b:
            continue
        ma, mb = json.loads(a), json.loads(b)
        assert ma["received_us"] == mb["received_us"]
        ea, eb = ma["message"], mb["message"]
        if ea["event"] == "media":
            ea["media"].pop("payload"), eb["media"].pop("payload")
            changed_media += 1
        else:
            assert ea["event"] == "dtmf" and eb["dtmf"] == {"digit": "*", "redacted": True}
            ea.pop("dtmf"), eb.pop("dtmf")
        assert ea == eb
    assert changed_media > 100
    assert sum('"event":"dtmf"' in line for line in new) == len(call.presses)
    assert not any(f'"digit":"{d}"' in "".join(new) for d in "0123456789#ABCD")
    summary = json.loads((result.folder / "summary.json").read_text())
    assert summary["dtmf"] == "*" * len(call.presses)
    assert summary["redaction"]["keys"] == len(call.presses)
    assert result.streams[0]["keys"] == len(call.presses) and result.streams[0]["dtmf"] == "*" * len(call.presses)


def test_the_manifest_explains_every_span_and_fingerprints_input_and_outputs(call, tmp_path):
    src = dc.jsonl_capture(call, "PCMU", tmp_path / "call.jsonl")
    result = redact(src, out=tmp_path / "out", spans=["13-13.5:outbound"], pad_s=0.25)
    m = json.loads(result.manifest.read_text())
    assert m["input"]["sha256"] == sha(src) and m["input"]["bytes"] == src.stat().st_size
    assert m["request"] == {"dtmf": True, "pad_s": 0.25, "spans": [
        {"tracks": ["outbound"], "start_s": 13.0, "end_s": 13.5, "reason": "span"}]}
    assert m["detector"]["name"] == "telnyx_audio.analysis.detect_dtmf" and m["detector"]["settings"]
    outputs = {o["path"]: o["sha256"] for o in m["outputs"]}
    assert set(outputs) == {p.name for p in result.folder.iterdir()} - {"redaction.json"}
    assert all(sha(result.folder / p) == h for p, h in outputs.items())
    spans = m["streams"][0]["spans"]
    tones = [s for s in spans if s["reason"] == "dtmf"]
    assert all(s["tracks"] == ["inbound", "outbound"] and s["evidence"]["digit"] == "*" for s in tones)
    for p in call.presses:  # each press lies inside a tone span, with its guard band
        assert any(s["start_s"] <= p.start_s - 0.2 and p.end_s + 0.2 <= s["end_s"] for s in tones), p
    assert {"tracks": ["outbound"], "start_s": 13.0, "end_s": 13.5, "reason": "span"} in spans
    assert "evidence" not in json.dumps(m["request"])


@pytest.mark.parametrize("encoding", ("PCMU", "OPUS"))
def test_redacting_a_redacted_capture_changes_nothing(call, tmp_path, encoding):
    src = dc.jsonl_capture(call, encoding, tmp_path / "call.jsonl")
    once = redact(src, out=tmp_path / "once")
    twice = redact(once.capture, out=tmp_path / "twice")
    assert twice.capture.read_bytes() == once.capture.read_bytes()
    if encoding in STATELESS:  # (a stateful decoder leaving a replaced run starts from silence, not the tone)
        for name in ("inbound.wav", "outbound.wav", "stereo.wav"):
            assert sha(twice.folder / name) == sha(once.folder / name)
    assert twice.streams[0]["dtmf_events_masked"] == 0 and twice.streams[0]["keys"] == len(call.presses)


def test_a_users_span_mutes_that_track_and_stretch_only(call, tmp_path):
    src = dc.jsonl_capture(call, "PCMU", tmp_path / "call.jsonl")
    before = read_captures(src)[0].recording
    result = redact(src, out=tmp_path / "out", dtmf=False, spans=["1-2.5:outbound"])
    after = read_captures(result.capture)[0].recording
    assert np.array_equal(after.inbound, before.inbound)
    assert np.all(after.outbound[8000:20000] == 0) and np.any(before.outbound[8000:20000] != 0)
    assert np.array_equal(after.outbound[:8000], before.outbound[:8000])
    assert np.array_equal(after.outbound[20000:], before.outbound[20000:])
    assert result.streams[0]["tones_found"] == 0


@pytest.mark.parametrize("encoding", ("PCMU", "G722", "OPUS"))
def test_a_fork_capture_is_redacted_with_its_rfc_4733_events_masked(call, tmp_path, encoding):
    need_multimon()
    src = dc.fork_capture(call, encoding, tmp_path / "call.rtpcap", events=((7.5, "3"), (7.8, "8")))
    before = read_captures(src)[0]
    assert [e.digit for e in before.events if type(e).__name__ == "Dtmf"] == ["3", "8"]
    assert set(call.digits) <= set(heard(before.recording)[0])
    result = redact(src, out=tmp_path / "out")
    assert result.kind == "fork" and result.capture.name == "call.rtpcap"
    after = read_captures(result.capture)[0]
    keys = [e for e in after.events if type(e).__name__ == "Dtmf"]
    assert [e.digit for e in keys] == ["*", "*"]
    assert [e.occurred_at for e in keys] == [e.occurred_at for e in before.events if type(e).__name__ == "Dtmf"]
    assert heard(after.recording) == ["", ""] and wav_digits(result.folder) == ["", ""]
    assert after.recording.duration_s == before.recording.duration_s
    m = json.loads(result.manifest.read_text())
    assert m["input"]["kind"] == "fork" and m["streams"][0]["keys"] == 2


def test_a_wav_is_redacted_sample_for_sample(call, tmp_path):
    need_multimon()
    src = tmp_path / "call.wav"
    soundfile.write(src, call.audio.T, call.rate, subtype="PCM_16")
    result = redact(src, out=tmp_path / "out")
    x, sr = soundfile.read(result.capture, dtype="int16")
    assert sr == call.rate and x.shape == call.audio.T.shape
    assert dc.multimon(x[:, 0], sr) == "" and dc.multimon(x[:, 1], sr) == ""
    mask = muted_mask(result.streams[0], x.shape[0], sr)
    assert np.array_equal(x.T[~mask], call.audio[~mask]) and np.all(x.T[mask] == 0)


@pytest.mark.parametrize("span, words", [
    ("20-21", "span '20-21' starts at 20 s, after the end of"),
    ("13-15:inbound", "span '13-15:inbound' ends at 15 s, after the end of .*14 s long"),
    ("-1-2", "negative time"),
    ((-1, 2), "negative time"),
    ("5-3", "ends before it starts"),
    ("1-2:left", "unknown track 'left'"),
    ("one-two", "not START-END"),
])
def test_a_span_outside_the_call_reversed_negative_or_on_an_unknown_track_is_refused(call, tmp_path, span, words):
    src = dc.jsonl_capture(call, "PCMU", tmp_path / "call.jsonl")
    with pytest.raises(ValueError, match=words):
        redact(src, out=tmp_path / "out", spans=[span])
    assert not (tmp_path / "out").exists() and sorted(p.name for p in tmp_path.iterdir()) == ["call.jsonl"]


def test_a_capture_that_cannot_be_decoded_fails_closed_and_nothing_is_written(call, tmp_path):
    src = dc.jsonl_capture(call, "PCMA", tmp_path / "call.jsonl")
    src.write_text(src.read_text().replace('"encoding":"PCMA"', '"encoding":"SPEEX"'))
    with pytest.raises(RedactionError, match="cannot decode the audio.*nothing was written"):
        redact(src, out=tmp_path / "out")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["call.jsonl"]


def cli(*args):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-c", "import sys; from telnyx_audio.cli import main; sys.exit(main())",
                           *map(str, args)], capture_output=True,
                          text=True, timeout=300, env=env, cwd=ROOT)


def test_the_redact_command_writes_each_capture_and_reports_a_bad_one_without_a_traceback(call, tmp_path):
    need_multimon()
    a = dc.jsonl_capture(call, "PCMU", tmp_path / "a.jsonl")
    bad = tmp_path / "b.jsonl"
    bad.write_text(a.read_text().replace('"encoding":"PCMU"', '"encoding":"SPEEX"'))
    out = cli("redact", a, bad, "--out", tmp_path / "out", "--dtmf", "--span", "13-13.5:outbound", "--pad", "0.3")
    assert out.returncode == 1, out.stderr
    assert "Traceback" not in out.stderr and "b.jsonl: error:" in out.stderr and "SPEEX" in out.stderr
    assert f"{len(call.presses)} keys masked" in out.stdout
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a"]
    assert wav_digits(tmp_path / "out" / "a") == ["", ""]
    m = json.loads((tmp_path / "out" / "a" / "redaction.json").read_text())
    assert m["request"]["pad_s"] == 0.3 and m["request"]["spans"][0]["tracks"] == ["outbound"]


def test_the_redact_command_refuses_a_bad_span_before_reading_anything(tmp_path):
    out = cli("redact", tmp_path / "none.jsonl", "--out", tmp_path / "out", "--span", "9-3")
    assert out.returncode == 2 and "ends before it starts" in out.stderr and "Traceback" not in out.stderr
    assert not (tmp_path / "out").exists()


def test_a_batch_over_redacted_captures_shows_masked_keys_and_no_tone(call, tmp_path):
    from telnyx_audio import batch

    src = dc.jsonl_capture(call, "PCMU", tmp_path / "call.jsonl")
    result = redact(src, out=tmp_path / "out")
    clear = batch(str(src), jobs=1, progress=False, wav=False).calls.iloc[0]
    masked = batch(str(result.capture), jobs=1, progress=False, wav=False).calls.iloc[0]
    assert clear["dtmf_events"] == call.digits and clear["dtmf_inband"]  # the control: digits in clear
    assert masked["dtmf_events"] == "*" * len(call.presses) and masked["dtmf_inband"] == ""


def test_an_undecodable_payload_where_a_tone_must_be_muted_fails_closed(call, tmp_path):
    import base64

    src = dc.jsonl_capture(call, "OPUS", tmp_path / "call.jsonl")
    lines = src.read_text().splitlines()
    for i, line in enumerate(lines):  # the caller's frame at 3.0 s, inside the first press's guard band
        obj = json.loads(line)
        m = obj["message"]
        if m["event"] == "media" and m["media"]["chunk"] == "150" and m["media"]["track"] == "inbound":
            m["media"]["payload"] = base64.b64encode(b"\xff").decode()  # no OPUS packet: its length is unknown
            lines[i] = json.dumps(obj)
    src.write_text("\n".join(lines) + "\n")
    with pytest.raises(RedactionError, match="not an OPUS packet.*nothing was written"):
        redact(src, out=tmp_path / "out")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["call.jsonl"]
