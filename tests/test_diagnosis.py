"""diagnose() and `telnyx-audio diagnose` on calls built from real speech (data/make_diagnosis.py).

The calls are the held-out speech (data/speech/heldout: Allison Smith as the bot, CMU ARCTIC
awb as the caller) through real codecs, written as the captures Telnyx gives (WebSocket
JSONL from the stream simulator, an RTP fork through the fork simulator), so every finding
below comes through the real readers. Truth is what the builder put in: the echo's delay
and return loss, the lost packets, the silent track. E-model figures are checked against
hand calculations from ITU-T G.107's equations (see tests/test_emodel.py for the terms).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

import telnyx_audio as ta  # noqa: E402
from telnyx_audio.diagnosis import CODES, FINDING_COLUMNS, diagnose, diagnose_captures  # noqa: E402
from telnyx_audio.model.recording import Recording  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "data"))
import make_diagnosis  # noqa: E402

R_DEFAULT = 93.206  # G.107 with every default (tests/test_emodel.py works it out)


@pytest.fixture(scope="module")
def calls(tmp_path_factory):
    return make_diagnosis.write_examples(tmp_path_factory.mktemp("diagnosis"))


@pytest.fixture(scope="module")
def diagnoses(calls):
    return {name: diagnose(path) for name, path in calls.items()}


def codes(d, severity=("warning", "problem")):
    return {(f.code, f.track) for f in d.findings.itertuples() if f.severity in severity}


def test_a_clean_call_has_nothing_above_info(diagnoses):
    d = diagnoses["clean"]
    assert d.severity == "info", d.report()
    assert d.findings.empty
    for track in ("inbound", "outbound"):
        assert d.quality[track]["emodel"].r == pytest.approx(R_DEFAULT, abs=0.01)


@pytest.mark.parametrize("name, delay_ms, erl_db", [("echo_60ms", 60.0, 15.0), ("echo_250ms", 250.0, 15.0),
                                                     ("echo_500ms", 500.0, 10.0)])
def test_echo_is_found_with_its_delay_and_return_loss(diagnoses, name, delay_ms, erl_db):
    d = diagnoses[name]
    echo = d.findings[d.findings["code"] == "echo"]
    assert len(echo) == 1, d.report()
    row = echo.iloc[0]
    assert row["track"] == "inbound" and row["severity"] == "problem"
    # PCMU adds no delay of its own: the echo's delay is the path's main tap.
    assert row["evidence"]["delay_ms"] == pytest.approx(delay_ms, abs=2.0)
    assert row["evidence"]["erl_db"] == pytest.approx(erl_db, abs=3.0)
    assert row["evidence"]["echo_of"] == "outbound"


def test_the_talker_hearing_echo_lowers_the_rating_through_g107_talker_echo(diagnoses):
    # TELR = ERL + SLR + RLR (8 + 2), T = half the echo's round trip; the other terms at their defaults.
    d = diagnoses["echo_250ms"]
    q = d.quality["inbound"]["emodel"]
    erl = d.evidence.echo["inbound"].erl_db
    assert q.inputs["telr_db"].value == pytest.approx(erl + 10.0)
    assert q.inputs["telr_db"].provenance == "measured"
    assert q.inputs["one_way_delay_ms"].value == pytest.approx(125.0, abs=1.0)
    t, telr = q.inputs["one_way_delay_ms"].value, q.inputs["telr_db"].value
    # G.107 7.4 by hand: Idte from Roe, Re and TERV (STMR 15: no sidetone term), Idle and Idd at T.
    no, rlr, ro = -61.179, 2.0, 94.769
    terv = telr - 40 * np.log10((1 + t / 10) / (1 + t / 150)) + 6 * np.exp(-0.3 * t**2)
    roe, re = -1.5 * (no - rlr), 80 + 2.5 * (terv - 14)
    idte = ((roe - re) / 2 + np.sqrt((roe - re) ** 2 / 4 + 100) - 1) * (1 - np.exp(-t))
    rle = 10.5 * (110 + 7) * (2 * t + 1) ** -0.25
    idle = (ro - rle) / 2 + np.sqrt((ro - rle) ** 2 / 4 + 169)
    x = np.log10(t / 100) / np.log10(2)
    idd = 25 * ((1 + x**6) ** (1 / 6) - 3 * (1 + (x / 3) ** 6) ** (1 / 6) + 2)
    assert q.terms["id"] == pytest.approx(idte + idle + idd, abs=0.02)
    assert q.r == pytest.approx(ro - 1.414 - (idte + idle + idd), abs=0.05)
    assert q.mos < 2.0  # a 25 dB TELR at 125 ms is, by G.107, unusable for the talker


def test_echo_heard_as_an_interruption_is_marked_and_left_out_of_the_turns(diagnoses):
    d = diagnoses["echo_500ms"]
    barge = d.findings[d.findings["code"] == "echo_barge_in"]
    assert len(barge) >= 1
    raw, clean = d.evidence.analysis_raw, d.evidence.analysis
    by_inbound = lambda a: int((a.interruptions["interrupter"] == "inbound").sum())  # noqa: E731
    assert by_inbound(clean) < by_inbound(raw)
    assert clean.talk.loc["inbound", "talk_s"] < raw.talk.loc["inbound", "talk_s"]
    # The echo-free talk time is what is left once the echo-only frames are gone.
    only = d.evidence.echo["inbound"].echo_only
    mask = raw.speech["inbound"].mask
    m = min(only.size, mask.size)
    assert clean.talk.loc["inbound", "talk_s"] == pytest.approx((mask[:m] & ~only[:m]).sum() * 0.01)


def test_one_way_audio_names_the_silent_side(diagnoses):
    d = diagnoses["one_way"]
    assert ("one_way_audio", "inbound") in codes(d)
    row = d.findings[d.findings["code"] == "one_way_audio"].iloc[0]
    assert row["evidence"]["digital_silence"] is True
    assert "echo" not in d.codes


def test_a_lossy_fork_gives_measured_loss_and_burstiness_from_the_rtp_sequence(diagnoses, calls):
    d = diagnoses["lossy_fork"]
    assert ("packet_loss", "inbound") in codes(d)
    net = d.quality["inbound"]["network"]
    assert net.source == "rtp"
    # The builder dropped round(0.06 * 1500 / 3) bursts of 3 inbound packets (overlaps merge some).
    assert 70 <= net.n_lost <= 90 and net.n_expected == 1500
    assert net.loss_pct == pytest.approx(100 * net.n_lost / 1500)
    assert net.burst_ratio > 2.0  # bursts of three, not random loss
    # A fixed 50 ms buffer discards more of the jittery packets than a 200 ms one.
    assert net.buffers["fixed_50ms"]["late"] > net.buffers["fixed_200ms"]["late"]
    assert ("jitter", "inbound") in codes(d)
    q = d.quality["inbound"]["emodel"]
    assert q.inputs["packet_loss_pct"].provenance == "measured"
    assert q.inputs["packet_loss_pct"].value == pytest.approx(net.effective_loss_pct)
    # G.107 eq. 7-29 with G.711's Bpl 25.1: Ie,eff = 95 Ppl / (Ppl / BurstR + 25.1).
    ppl, burst = net.effective_loss_pct, net.effective_burst_ratio
    assert q.terms["ie_eff"] == pytest.approx(95 * ppl / (ppl / burst + 25.1), rel=1e-9)
    assert "outbound" not in {t for c, t in codes(d) if c == "packet_loss"}


def test_loss_from_a_streams_frame_counters_rates_as_g107_says(calls, tmp_path):
    # The clean call streamed with frames dropped: the E-model's loss is the counters' loss.
    audio, rate, codec = make_diagnosis.example_audio("clean")
    from telnyx_audio.simulators.stream import call_messages

    timed, counts = call_messages(audio, codec=codec, stream_id="s", call_control_id="v3:lossy", drop=0.03, seed=3)
    path = tmp_path / "lossy.jsonl"
    path.write_text("\n".join(text for _, text in timed) + "\n")
    d = diagnose(path, one_way_delay_ms=0.0)
    report = d.capture.report.tracks["inbound"]
    q = d.quality["inbound"]["emodel"]
    ppl = 100 * report.frames_missing / report.frames_expected
    assert ppl > 1.0
    assert q.inputs["packet_loss_pct"].value == pytest.approx(ppl)
    assert q.inputs["one_way_delay_ms"].provenance == "declared"
    burst = q.inputs["burst_ratio"].value
    assert q.r == pytest.approx(R_DEFAULT - 95 * ppl / (ppl / burst + 25.1), abs=0.01)
    assert ("packet_loss", "inbound") in codes(d)


def test_clipped_and_quiet_legs_are_found_on_their_side(diagnoses):
    assert ("clipping", "inbound") in codes(diagnoses["clipped"])
    assert ("low_level", "outbound") in codes(diagnoses["quiet"])
    assert not any(c == "clipping" for c, _ in codes(diagnoses["quiet"]))


def test_a_slow_bot_is_found_with_each_late_reply(diagnoses):
    d = diagnoses["slow_bot"]
    slow = d.findings[d.findings["code"] == "slow_response"]
    assert len(slow) >= 2 and set(slow["track"]) == {"outbound"}
    assert (slow["evidence"].map(lambda e: e["response_latency_s"]) > 2.0).all()
    assert ((slow["end_s"] - slow["start_s"]) > 2.0).all()


def test_no_echo_is_found_in_calls_without_one():
    for seed in range(4):
        c = make_diagnosis.make_call("heldout", codec=("PCMU", "G722")[seed % 2], seconds=30, seed=500 + seed,
                                     snr_db=15.0 + 5 * seed)
        d = diagnose(Recording(c.audio, c.rate, c.codec, ("inbound", "outbound")))
        assert "echo" not in d.codes, (seed, d.report())
    assert "echo" not in diagnose(ROOT / "data" / "example_call.jsonl").codes


def test_findings_have_the_documented_columns_codes_and_severities(diagnoses):
    for d in diagnoses.values():
        assert tuple(d.findings.columns) == FINDING_COLUMNS
        assert set(d.findings["code"]) <= set(CODES)
        assert set(d.findings["severity"]) <= {"info", "warning", "problem"}
        assert (d.findings["end_s"] >= d.findings["start_s"]).all()
        json.dumps(d.to_dict(), allow_nan=False)  # JSON-safe


def test_webhooks_put_telnyx_call_quality_stats_beside_the_emodel():
    d = diagnose(ROOT / "data" / "example_call.jsonl", webhooks=ROOT / "data" / "example_webhooks.jsonl")
    telnyx = d.quality["inbound"]["telnyx"]
    assert telnyx["mos"] == 4.41 and telnyx["packet_count"] == 400 and telnyx["loss_pct"] == pytest.approx(0.75)
    assert d.to_dict()["quality"]["inbound"]["telnyx"]["mos"] == 4.41
    assert "Telnyx reported MOS 4.41" in d.report()


def test_a_wideband_call_is_rated_on_the_wideband_scale():
    c = make_diagnosis.make_call("heldout", codec="G722", seconds=20, seed=9)
    d = diagnose(Recording(c.audio, c.rate, "G722", ("inbound", "outbound")))
    q = d.quality["inbound"]["emodel"]
    assert q.scale == "wideband"
    # G.107.1: Rmax 129, minus G.722's Ie,wb of 13 (G.113 App. IV), minus the delay terms at T = 0
    # on the wideband scale (1.29 times the narrowband Idle of 0.149).
    r = 129 - 1.29 * 0.149 - 13
    assert q.r == pytest.approx(r, abs=0.01)
    assert q.mos == pytest.approx(ta.analysis.emodel.mos_from_r(r / 1.29), abs=1e-3)


def test_silent_tracks_are_no_audio_and_bad_sources_are_refused():
    d = diagnose(Recording(np.zeros((2, 8000 * 5), np.int16), 8000, "PCMU", ("inbound", "outbound")))
    assert d.codes == ["no_audio"] and d.severity == "problem"
    with pytest.raises(TypeError, match="capture path, a Capture or a Recording"):
        diagnose(np.zeros((2, 10)))
    with pytest.raises(ValueError, match="one_way_delay_ms"):
        diagnose(Recording(np.zeros((2, 800), np.int16), 8000, "PCMU", ("inbound", "outbound")), one_way_delay_ms=-1)


def test_findings_are_drawn_on_plot_call_and_in_the_report_card(diagnoses):
    d = diagnoses["echo_250ms"]
    out = d.plot()
    assert len(out["findings"]) == 2 * len(d.findings)  # a band and a label each
    plt.close(out["figure"])
    card = d._repr_html_()
    assert "PROBLEM" in card and "<code>echo</code>" in card and "MOS" in card


def test_the_package_exports_diagnose_and_emodel():
    assert ta.diagnose is diagnose
    assert round(ta.emodel("PCMU", 2.0).r, 1) == 86.2


def cli(*args):
    return subprocess.run([sys.executable, "-m", "telnyx_audio", "diagnose", *map(str, args)], capture_output=True,
                          text=True, cwd=ROOT, timeout=300)


def test_the_cli_reports_each_call_and_exits_by_what_it_found(calls):
    out = cli(calls["clean"])
    assert out.returncode == 0, out.stderr
    assert "INFO (nothing found)" in out.stdout and "quality inbound: MOS 4.41" in out.stdout
    out = cli(calls["clean"], calls["one_way"])
    assert out.returncode == 1
    assert "[problem] one_way_audio inbound" in out.stdout
    assert "Traceback" not in out.stderr


def test_the_cli_prints_one_json_object_per_call(calls):
    out = cli(calls["echo_60ms"], calls["lossy_fork"], "--json", "--webhooks", ROOT / "data" / "example_webhooks.jsonl")
    assert out.returncode == 1, out.stderr
    objs = [json.loads(line) for line in out.stdout.splitlines()]
    assert [Path(o["source"]).name for o in objs] == ["echo_60ms.jsonl", "lossy_fork.rtpcap"]
    for o in objs:
        assert set(o) >= {"source", "findings", "quality"}
        for q in o["quality"].values():
            assert set(q) >= {"r", "mos", "scale", "inputs"}
            assert q["inputs"]["packet_loss_pct"]["provenance"] in ("measured", "reported", "declared", "assumed")
    echo = [f for f in objs[0]["findings"] if f["code"] == "echo"][0]
    assert set(echo["evidence"]) >= {"delay_ms", "erl_db"}


def test_the_cli_refuses_bad_arguments_with_status_2(tmp_path):
    out = cli(tmp_path / "missing.jsonl")
    assert out.returncode == 2 and "no such file" in out.stderr and "Traceback" not in out.stderr
    out = cli(ROOT / "data" / "example_call.jsonl", "--delay-ms", "-5")
    assert out.returncode == 2 and "--delay-ms" in out.stderr


def test_batch_gains_the_emodel_columns_and_a_row_per_finding(calls, tmp_path):
    names = ["clean", "one_way", "echo_250ms"]
    result = ta.batch([calls[n] for n in names], tmp_path / "out", jobs=1, wav=False, progress=False)
    assert result.errors.empty
    rows = result.calls.set_index(result.calls["path"].map(lambda p: Path(p).stem))
    for name in names:
        d = diagnose(calls[name])
        row = rows.loc[name]
        assert row["findings"] == ",".join(d.codes) and row["severity"] == d.severity
        assert row["emodel_inbound_mos"] == pytest.approx(d.quality["inbound"]["emodel"].mos, abs=1e-3)
        found = result.segments[(result.segments["path"] == str(calls[name])) & (result.segments["kind"] == "finding")]
        assert sorted(found["label"]) == sorted(f"{f.code} ({f.severity})" for f in d.findings.itertuples())
    # Echo is left out of the batch's talk time too.
    echo = diagnose(calls["echo_250ms"]).evidence
    assert rows.loc["echo_250ms", "inbound_talk_s"] == pytest.approx(echo.analysis.talk.loc["inbound", "talk_s"])
    assert rows.loc["clean", "n_problem_findings"] == 0 and rows.loc["one_way", "n_problem_findings"] >= 1
    table = result.findings
    assert list(table.columns) == ["path", "stream_id", "code", "severity", "track", "start_s", "end_s", "duration_s"]
    mine = table[table["path"] == str(calls["one_way"])]
    assert ("one_way_audio", "problem", "inbound") in set(zip(mine["code"], mine["severity"], mine["track"]))


def test_dtmf_events_without_tones_in_the_audio_are_a_mismatch(tmp_path):
    from telnyx_audio.simulators.stream import call_messages

    audio, rate, codec = make_diagnosis.example_audio("clean")
    timed, _ = call_messages(audio, codec=codec, stream_id="s", call_control_id="v3:dtmf", dtmf=[(5.0, "7"), (9.0, "1")])
    path = tmp_path / "dtmf.jsonl"
    path.write_text("\n".join(text for _, text in timed) + "\n")
    d = diagnose(path)
    row = d.findings[d.findings["code"] == "dtmf_mismatch"]
    assert len(row) == 1 and row.iloc[0]["evidence"]["events"] == "71" and row.iloc[0]["evidence"]["in_band"] == ""
    assert "dtmf_mismatch" not in diagnose(ROOT / "data" / "example_call.jsonl").codes  # its events match its tones


def test_a_law_audio_labelled_mu_law_is_a_codec_mismatch(tmp_path):
    from telnyx_audio import codecs

    audio, rate, codec = make_diagnosis.example_audio("clean")
    pcma = np.stack([codecs.decode(codecs.encode(track, "PCMA"), "PCMU") for track in audio])  # read with the wrong law
    d = diagnose(Recording(pcma, 8000, "PCMU", ("inbound", "outbound")))
    found = d.findings[d.findings["code"] == "codec_mismatch"]
    assert set(found["track"]) == {"inbound", "outbound"}
    assert set(found["evidence"].map(lambda e: e["likely_encoding"])) == {"PCMA"}
    assert "codec_mismatch" not in diagnose(Recording(audio, 8000, "PCMU", ("inbound", "outbound"))).codes


def test_a_noisy_line_is_found_on_its_side():
    c = make_diagnosis.make_call("heldout", codec="PCMU", seconds=30, seed=11, snr_db=6.0, near_level_dbfs=-24.0)
    d = diagnose(Recording(c.audio, c.rate, c.codec, ("inbound", "outbound")))
    assert ("noise", "inbound") in codes(d)
    assert ("noise", "outbound") not in codes(d)


@pytest.mark.parametrize("codec", ["G722", "PCMA"])
def test_echo_through_a_codec_with_double_talk_and_noise_is_measured(codec):
    # The truth's delay includes the codec's own (G.722: 22 samples at 16 kHz, measured by the builder).
    c = make_diagnosis.make_call("heldout", codec=codec, seconds=30, seed=77, delay_ms=333.0, erl_db=22.0, snr_db=15.0)
    e = ta.detect_echo(c.audio[0], c.audio[1], c.rate)
    assert e.found
    assert e.delay_ms == pytest.approx(c.delay_ms, abs=2.0)
    assert e.erl_db == pytest.approx(c.erl_db, abs=3.0)


def test_one_way_audio_from_mid_call_says_since_when():
    c = make_diagnosis.make_call("heldout", codec="PCMU", seconds=40, seed=21, snr_db=30)
    audio = c.audio.copy()
    audio[0, 15 * 8000 :] = 0  # the caller's audio stops reaching us at 15 s
    d = diagnose(Recording(audio, 8000, "PCMU", ("inbound", "outbound")))
    found = d.findings[(d.findings["code"] == "one_way_audio") & (d.findings["track"] == "inbound")]
    assert len(found) == 1, d.report()
    row = found.iloc[0]
    assert 13.0 <= row["start_s"] <= 15.5 and row["end_s"] == pytest.approx(40.0, abs=0.1)
    assert row["evidence"]["digital_silence"] is True


def test_a_packet_capture_is_judged_from_its_rtp_sequence_and_its_rtcp_round_trip():
    # reinvite.pcap carries an SR and an RR 30 ms apart (its DLSR subtracted): Wireshark's round trip.
    import telnyx_audio as ta

    vec = Path(__file__).parent / "vectors" / "pcap" / "reinvite.pcap"
    (cap,) = ta.read_captures(vec)
    rtt = [b["rtt_ms"] for r in cap.report.rtcp for b in r["blocks"] if b.get("rtt_ms") is not None]
    assert rtt and abs(float(np.median(rtt)) - 30.0) < 0.01
    d = ta.diagnose(cap)
    for track in ("inbound", "outbound"):
        q = d.quality[track]
        assert q["network"].source == "rtp"  # sequence numbers and arrival times, not frame counters
        delay = q["emodel"].inputs["one_way_delay_ms"]
        assert delay.provenance == "reported" and "RTCP round trip" in delay.source
        assert delay.value == pytest.approx(15.0 + q["network"].buffer_delay_ms, abs=0.01)
