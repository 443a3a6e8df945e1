"""The E-model against hand calculations from ITU-T G.107's equations, and its network inputs.

Every expected number below was worked out by hand from G.107 (06/2015) clause 7 and
Table 3's defaults (SLR 8, RLR 2, STMR 15, LSTR 18, Ds = Dr = 3, TELR 65, WEPL 110, qdu 1,
Nc -70, Nfor -64, Ps = Pr = 35, A 0):

    OLR = 10; Nos = 35-8-3-100 + 0.004*(35-10-3-14)^2 = -75.744
    Pre = 35 + 10 log10(1 + 10^-0.8) = 35.639; Nor = 2-121+35.639+0.008*0.639^2 = -83.358
    Nfo = -64+2 = -62; No = 10 log10(10^-7 + 10^-7.5744 + 10^-8.3358 + 10^-6.2) = -61.179
    Ro = 15 - 1.5*(8 - 61.179) = 94.769
    Is = Iolr + Ist + Iq = 1.414;  Id (T = 0) = Idle = 0.149;  R = 94.769 - 1.414 - 0.149 = 93.206
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from telnyx_audio.analysis.emodel import (
    burst_ratio,
    codec_impairment,
    emodel,
    jitter_buffer,
    loss_stats,
    mos_from_r,
)

R_DEFAULT = 93.206  # G.107's reference: every default


def test_every_default_gives_the_g107_reference_rating_of_93_2():
    q = emodel("PCMU")
    assert q.r == pytest.approx(R_DEFAULT, abs=0.01)
    assert q.terms["ro"] == pytest.approx(94.769, abs=0.005)
    assert q.terms["is"] == pytest.approx(1.414, abs=0.005)
    assert q.terms["id"] == pytest.approx(0.149, abs=0.005)
    assert q.mos == pytest.approx(1 + 0.035 * 93.206 + 93.206 * (93.206 - 60) * (100 - 93.206) * 7e-6, abs=1e-3)


def test_g711_with_plc_and_two_percent_random_loss_rates_86_2():
    # Ie,eff = 0 + 95 * 2 / (2 / 1 + 25.1) = 7.011
    q = emodel("PCMA", 2.0)
    assert q.terms["ie_eff"] == pytest.approx(95 * 2 / 27.1, abs=1e-9)
    assert q.r == pytest.approx(R_DEFAULT - 7.011, abs=0.01)
    assert round(q.r, 1) == 86.2


def test_g711_without_plc_loses_far_more_to_the_same_loss():
    # Bpl 4.3: Ie,eff = 95 * 2 / 6.3 = 30.159
    q = emodel("PCMU", 2.0, plc=False)
    assert q.r == pytest.approx(R_DEFAULT - 30.159, abs=0.01)
    assert q.inputs["bpl"].value == 4.3


def test_bursty_loss_costs_more_than_random_loss_at_the_same_rate():
    # BurstR 2: Ie,eff = 95 * 2 / (2 / 2 + 25.1) = 7.280
    q = emodel("PCMU", 2.0, 2.0)
    assert q.r == pytest.approx(R_DEFAULT - 7.280, abs=0.01)
    assert q.r < emodel("PCMU", 2.0).r


def test_a_200_ms_one_way_delay_costs_what_g107s_delay_equations_give():
    # T = Ta = 200 ms, Tr = 400 ms:
    # TERV = 65 - 40 log10(21 / 2.3333) = 26.832; Roe = -1.5 (-61.179 - 2) = 94.769
    # Re = 80 + 2.5 (26.832 - 14) = 112.08; Idte = (-8.656 + sqrt(8.656^2 + 100) - 1) = 3.570
    # Rle = 10.5 * 117 * 401^-0.25 = 274.52; Idle = -89.875 + sqrt(89.875^2 + 169) = 0.935
    # X = log2(200/100) = 1; Idd = 25 (2^(1/6) - 3 (1 + 1/729)^(1/6) + 2) = 3.044
    idd = 25 * (2 ** (1 / 6) - 3 * (1 + 1 / 729) ** (1 / 6) + 2)
    assert idd == pytest.approx(3.044, abs=1e-3)
    q = emodel("PCMU", one_way_delay_ms=200)
    assert q.terms["id"] == pytest.approx(3.570 + 0.935 + 3.044, abs=0.01)
    assert q.r == pytest.approx(94.769 - 1.414 - (3.570 + 0.935 + 3.044), abs=0.02)


def test_delay_under_100_ms_costs_little():
    assert R_DEFAULT - 2 < emodel("PCMU", one_way_delay_ms=50).r < R_DEFAULT
    assert emodel("PCMU", one_way_delay_ms=400).r < emodel("PCMU", one_way_delay_ms=200).r - 10


def test_mos_follows_annex_b_and_is_clamped_to_1_and_4_5():
    for r in (10.0, 50.0, 80.0, 93.2):
        assert mos_from_r(r) == pytest.approx(1 + 0.035 * r + r * (r - 60) * (100 - r) * 7e-6)
    assert mos_from_r(-3) == 1.0 and mos_from_r(100.0) == 4.5 and mos_from_r(140) == 4.5
    assert emodel("PCMU", 60.0, plc=False).mos >= 1.0


def test_g722_is_rated_on_the_wideband_scale_with_its_g113_impairment():
    q = emodel("G722")
    assert q.scale == "wideband"
    assert q.inputs["ie"].value == 13.0 and "G.113" in q.inputs["ie"].source
    # Ro - Is = 129 (Rmax), Id = 1.29 * 0.149, Ie,wb 13
    assert q.r == pytest.approx(129 - 1.29 * 0.149 - 13, abs=0.01)
    assert q.mos == pytest.approx(mos_from_r(q.r / 1.29))
    # Loss on the wideband scale: Ie,eff,wb = 13 + (129 - 13) * 1 / (1 + Bpl)
    bpl = q.inputs["bpl"].value
    assert emodel("G722", 1.0).r == pytest.approx(q.r - 116 / (1 + bpl), abs=1e-6)


def test_a_wideband_codec_is_never_put_on_the_narrowband_scale():
    for codec in ("G722", "AMR-WB", "OPUS", "g.722", "amrwb"):
        assert emodel(codec).scale == "wideband"
    assert emodel("L16", sample_rate=16000).scale == "wideband"
    assert emodel("L16", sample_rate=8000).scale == "narrowband"
    assert emodel("PCMU").scale == "narrowband"


def test_amr_wb_impairment_follows_its_mode():
    assert [codec_impairment("AMR-WB", mode=m)["ie"] for m in range(9)] == [39, 25, 11, 10, 7, 5, 4, 1, 6]
    assert codec_impairment("AMR-WB", mode=23.85)["ie"] == 6
    assumed = emodel("AMR-WB")
    assert assumed.inputs["mode"].value == 12.65 and assumed.inputs["mode"].provenance == "assumed"
    assert emodel("AMR-WB", mode=0).r < emodel("AMR-WB", mode=7).r
    with pytest.raises(ValueError, match="AMR-WB mode"):
        codec_impairment("AMR-WB", mode=13.0)


def test_opus_says_its_impairment_is_a_placeholder():
    q = emodel("OPUS")
    assert "placeholder" in q.inputs["ie"].source and "no Ie for Opus" in q.inputs["ie"].source
    assert q.inputs["ie"].provenance == "assumed"


def test_every_input_carries_its_provenance():
    q = emodel("PCMU", 1.5, 1.3, 120, provenance={"packet_loss_pct": "measured", "burst_ratio": "measured",
                                                 "one_way_delay_ms": "reported"})
    d = q.to_dict()
    assert d["inputs"]["packet_loss_pct"]["provenance"] == "measured"
    assert d["inputs"]["one_way_delay_ms"]["provenance"] == "reported"
    assert d["inputs"]["telr_db"]["provenance"] == "assumed"
    assert emodel("PCMU", 3.0).inputs["packet_loss_pct"].provenance == "declared"
    assert set(d) >= {"r", "mos", "scale", "inputs"}
    for item in d["inputs"].values():
        assert item["provenance"] in ("measured", "reported", "declared", "assumed")


@pytest.mark.parametrize("kwargs, match", [({"packet_loss_pct": 120}, "0-100"), ({"burst_ratio": 0.5}, "burst_ratio"),
                                           ({"one_way_delay_ms": -1}, "one_way_delay_ms"),
                                           ({"provenance": {"packet_loss_pct": "guessed"}}, "provenance")])
def test_impossible_inputs_are_refused_by_name(kwargs, match):
    with pytest.raises(ValueError, match=match):
        emodel("PCMU", **kwargs)


def test_an_unknown_codec_is_refused():
    with pytest.raises(ValueError, match="G729"):
        emodel("G729")


def test_burst_ratio_is_one_for_random_loss_and_the_mean_burst_over_random_for_bursts():
    rng = np.random.default_rng(1)
    random_loss = rng.random(200_000) < 0.05
    assert burst_ratio(random_loss) == pytest.approx(1.0, abs=0.03)
    # Gilbert model with p = 0.01, q = 0.2: BurstR = 1 / (p + q) = 4.76
    state, lost = False, np.zeros(200_000, bool)
    draws = rng.random(lost.size)
    for i in range(lost.size):  # a test's reference Markov chain, not library code
        state = draws[i] < (0.8 if state else 0.01)
        lost[i] = state
    assert burst_ratio(lost) == pytest.approx(1 / 0.21, rel=0.05)
    assert burst_ratio(np.zeros(10, bool)) == 1.0


def test_loss_stats_count_bursts():
    s = loss_stats(np.array([1, 1, 1, 0, 0, 1, 0, 0, 0, 0], bool))
    assert s["n_lost"] == 4 and s["n_bursts"] == 2 and s["longest_burst"] == 3 and s["loss_pct"] == 40.0


def _stream(n=3000, jitter_ms=5.0, seed=0):
    rng = np.random.default_rng(seed)
    ts = np.arange(n) * 160
    arrival = 10.0 + ts / 8000 + rng.exponential(jitter_ms / 1000, n)
    return arrival, ts


def test_a_deep_fixed_buffer_keeps_what_a_shallow_one_drops():
    arrival, ts = _stream(jitter_ms=15)
    shallow = jitter_buffer(arrival, ts, 8000, depth_ms=50)
    deep = jitter_buffer(arrival, ts, 8000, depth_ms=200)
    assert shallow.n_late > 10 * max(deep.n_late, 1) or (shallow.n_late > 20 and deep.n_late == 0)
    assert deep.mean_delay_ms > shallow.mean_delay_ms


def test_an_adaptive_buffer_grows_into_a_jitter_burst_and_keeps_most_of_it():
    arrival, ts = _stream()
    arrival[1000:1500] += np.random.default_rng(2).uniform(0, 0.12, 500)  # ten seconds of bad jitter
    fixed = jitter_buffer(arrival, ts, 8000, depth_ms=50)
    adaptive = jitter_buffer(arrival, ts, 8000, kind="adaptive", depth_ms=500)
    assert fixed.n_late > 150
    assert adaptive.n_late < fixed.n_late / 3
    assert adaptive.lost[:900].sum() <= 3  # calm before: nothing dropped


def test_network_loss_and_duplicates_come_from_the_sequence_numbers():
    arrival, ts = _stream(n=100, jitter_ms=1)
    seq = np.arange(100) + 65000
    keep = np.ones(100, bool)
    keep[[10, 11, 12, 50]] = False
    a, t, s = arrival[keep], ts[keep], seq[keep]
    a, t, s = np.append(a, a[5] + 0.001), np.append(t, t[5]), np.append(s, s[5])  # a duplicate
    jb = jitter_buffer(a, t, 8000, sequence=s, depth_ms=200)
    assert jb.n_expected == 100 and jb.n_network_lost == 4 and jb.n_late == 0
    assert jb.loss_pct == pytest.approx(4.0)
    assert np.flatnonzero(jb.lost).tolist() == [10, 11, 12, 50]
    assert jb.burst_ratio > 1.5  # a burst of three


def test_jitter_buffer_refuses_mismatched_arrays():
    with pytest.raises(ValueError, match="one length"):
        jitter_buffer(np.zeros(3), np.zeros(4), 8000)
    with pytest.raises(ValueError, match="kind"):
        jitter_buffer(np.zeros(3), np.zeros(3), 8000, kind="magic")


def test_measured_buffer_loss_feeds_the_emodel():
    arrival, ts = _stream(jitter_ms=15)
    jb = jitter_buffer(arrival, ts, 8000, depth_ms=50)
    q = emodel("PCMU", jb.loss_pct, jb.burst_ratio, provenance={"packet_loss_pct": "measured", "burst_ratio": "measured"})
    assert q.r < emodel("PCMU").r
    assert math.isfinite(q.mos)
