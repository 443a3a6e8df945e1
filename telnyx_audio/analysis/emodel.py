"""Call quality from the E-model: ITU-T G.107 (narrowband) and G.107.1 (wideband), and its network inputs.

The E-model turns what impairs a call (the codec, packet loss and its burstiness, delay,
echo, noise, loudness) into one transmission rating ``R`` and a MOS estimate. Two scales,
never mixed:

- **narrowband** (300-3400 Hz; PCMU, PCMA, L16 at 8 kHz): ITU-T G.107, ``R`` up to 100
  (93.2 with every default), MOS by G.107 Annex B;
- **wideband** (50-7000 Hz; G722, AMR-WB, OPUS and L16 at 16 kHz or more): ITU-T G.107.1,
  ``R`` up to 129 (``Rmax``), MOS by G.107 Annex B applied to ``R / 1.29`` (G.107.1 Annex A).

A wideband codec is never rated on the narrowband scale: its equipment impairment factors
(ITU-T G.113 Appendix IV) belong to the extended scale.

Every input comes back with its provenance: ``measured`` (from the capture: RTP
sequence numbers, arrival times, frame counters), ``reported`` (by RTCP or by Telnyx),
``declared`` (given by the user), ``assumed`` (a default, or a planning value from a table).

Network inputs: :func:`jitter_buffer` simulates fixed and adaptive de-jitter buffers on
packet arrival times and RTP timestamps (the packets a receiver would discard as late count
as lost, as VoIPmonitor reports for its fixed 50 ms, fixed 200 ms and adaptive 500 ms
buffers), :func:`loss_stats` gives the loss rate and G.107's burst ratio of a loss sequence.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np

from telnyx_audio.codecs.registry import normalize_encoding

__all__ = ["Input", "EModel", "emodel", "codec_impairment", "burst_ratio", "loss_stats", "JitterBuffer",
           "jitter_buffer", "PROVENANCES"]

#: The four provenances an E-model input can have.
PROVENANCES = ("measured", "reported", "declared", "assumed")

#: G.107.1: the wideband scale's maximum, and the factor between the scales (R_wb = 1.29 R_nb).
R_MAX_WB = 129.0
WB_FACTOR = 1.29

# ITU-T G.107 (06/2015) Table 3: default values (used for every parameter not given).
_DEFAULTS = {"slr": 8.0, "rlr": 2.0, "stmr": 15.0, "lstr": 18.0, "ds": 3.0, "dr": 3.0, "telr_db": 65.0,
             "wepl": 110.0, "qdu": 1.0, "nc": -70.0, "nfor": -64.0, "ps": 35.0, "pr": 35.0, "advantage": 0.0}

# AMR-WB (G.722.2) modes 0-8: bit rate (kbit/s) and the wideband equipment impairment factor
# Ie,wb of ITU-T G.113 Appendix IV (Table IV.1).
_AMRWB_KBPS = (6.6, 8.85, 12.65, 14.25, 15.85, 18.25, 19.85, 23.05, 23.85)
_AMRWB_IE_WB = (39.0, 25.0, 11.0, 10.0, 7.0, 5.0, 4.0, 1.0, 6.0)
_AMRWB_ASSUMED_MODE = 2  # 12.65 kbit/s, the usual VoLTE / HD-voice mode, when the mode is not known

# Packet-loss robustness factors Bpl. G.113 Appendix I gives G.711's (25.1 with the PLC of
# G.711 Appendix I, 4.3 without: G.107's default). For the wideband codecs this module
# states placeholders, marked as such in every result: a waveform codec with a PLC is given
# G.711's PLC value, one without it 4.3; AMR-WB and Opus (whose decoders conceal loss
# themselves) 20.
_BPL_G711_PLC = 25.1
_BPL_NO_PLC = 4.3
_BPL_CELP_PLACEHOLDER = 20.0
# Opus: ITU-T publishes no equipment impairment factor. Placeholder on the wideband scale:
# that of AMR-WB at 23.85 kbit/s's neighbour modes (a high-rate wideband speech codec).
_OPUS_IE_WB_PLACEHOLDER = 6.0


@dataclass(frozen=True)
class Input:
    """One E-model input: its value and where it came from.

    Attributes
    ----------
    value : float or str
    provenance : {"measured", "reported", "declared", "assumed"}
    source : str
        What it was taken from, in words (a table of a Recommendation, a measurement, a default).
    """

    value: Any
    provenance: str
    source: str = ""

    def to_dict(self) -> dict[str, Any]:
        """``{"value", "provenance", "source"}``, JSON-safe.

        Returns
        -------
        dict
            The input, JSON-safe.
        """
        value = self.value
        if isinstance(value, (float, np.floating)):
            value = float(value) if math.isfinite(value) else None
        elif isinstance(value, np.integer):
            value = int(value)
        return {"value": value, "provenance": self.provenance, "source": self.source}


@dataclass(frozen=True)
class EModel:
    """An E-model rating of one direction of a call.

    Attributes
    ----------
    r : float
        Transmission rating factor on ``scale`` (narrowband: up to 100; wideband: up to 129).
    mos : float
        MOS estimate (conversational quality), 1 to 4.5, G.107 Annex B (of ``r / 1.29`` on the
        wideband scale).
    scale : {"narrowband", "wideband"}
    codec : str
    inputs : dict of str to Input
        Every input with its provenance: ``codec``, ``packet_loss_pct``, ``burst_ratio``,
        ``one_way_delay_ms``, ``ie``, ``bpl``, ``plc``, ``mode`` (AMR-WB), ``telr_db``,
        ``advantage``.
    terms : dict of str to float
        The model's terms on ``scale``: ``ro``, ``is``, ``id``, ``ie_eff``, ``a``.
    """

    r: float
    mos: float
    scale: str
    codec: str
    inputs: dict[str, Input] = field(repr=False)
    terms: dict[str, float] = field(repr=False)

    @property
    def r_narrowband_equivalent(self) -> float:
        """``r`` on the narrowband scale (``r / 1.29`` for wideband), as MOS is computed from."""
        return self.r / WB_FACTOR if self.scale == "wideband" else self.r

    def to_dict(self) -> dict[str, Any]:
        """``{"r", "mos", "scale", "codec", "inputs": {name: {"value", "provenance", "source"}}}``.

        Returns
        -------
        dict
            The rating and its inputs, JSON-safe.

        Examples
        --------
        >>> d = emodel("PCMU").to_dict()
        >>> d["scale"], d["inputs"]["packet_loss_pct"]["provenance"]
        ('narrowband', 'assumed')
        """
        return {"r": round(float(self.r), 3), "mos": round(float(self.mos), 3), "scale": self.scale,
                "codec": self.codec, "inputs": {k: v.to_dict() for k, v in self.inputs.items()}}

    def __repr__(self) -> str:
        loss = self.inputs["packet_loss_pct"]
        return (f"<EModel {self.codec} {self.scale}: R {self.r:.1f}, MOS {self.mos:.2f} "
                f"(loss {loss.value:g} % {loss.provenance}, delay {self.inputs['one_way_delay_ms'].value:g} ms "
                f"{self.inputs['one_way_delay_ms'].provenance})>")


def mos_from_r(r: float) -> float:
    """MOS (conversational quality estimate) from a narrowband R, ITU-T G.107 Annex B, 1 to 4.5.

    Examples
    --------
    >>> round(mos_from_r(93.2), 2), mos_from_r(-5.0), mos_from_r(120.0)
    (4.41, 1.0, 4.5)
    """
    if r <= 0:
        return 1.0
    if r >= 100:
        return 4.5
    mos = 1 + 0.035 * r + r * (r - 60) * (100 - r) * 7e-6
    return float(min(4.5, max(1.0, mos)))


def codec_impairment(codec: str, *, plc: bool = True, mode: float | int | None = None,
                     sample_rate: int | None = None) -> dict[str, Any]:
    """The equipment impairment ``Ie`` and loss robustness ``Bpl`` of a codec, and its scale.

    Parameters
    ----------
    codec : str
        Telnyx's encoding name in any spelling (``PCMU``, ``PCMA``, ``L16``, ``G722``,
        ``AMR-WB``, ``OPUS``).
    plc : bool
        Whether the receiver conceals lost packets (G.711 Appendix I or the codec's own).
    mode : int or float, optional
        AMR-WB mode: 0-8, or its bit rate in kbit/s (6.6 ... 23.85). Unknown: 12.65 kbit/s,
        marked assumed.
    sample_rate : int, optional
        For L16 and OPUS, whose band depends on it: 8000 is narrowband, 16000 or more wideband.

    Returns
    -------
    dict
        ``ie``, ``bpl``, ``scale`` (``"narrowband"`` or ``"wideband"``), ``ie_source``,
        ``bpl_source``, ``placeholder`` (True when a value is not from ITU-T G.113), ``mode``
        (AMR-WB: kbit/s, else None), ``mode_assumed``.

    Raises
    ------
    ValueError
        For an AMR-WB mode that is not one of the nine.

    Examples
    --------
    >>> c = codec_impairment("PCMU")
    >>> c["ie"], c["bpl"], c["scale"]
    (0.0, 25.1, 'narrowband')
    >>> codec_impairment("amr-wb", mode=8)["ie"], codec_impairment("G722")["scale"]
    (6.0, 'wideband')
    """
    name = normalize_encoding(codec)
    out: dict[str, Any] = {"mode": None, "mode_assumed": False, "placeholder": False}
    if name in ("PCMU", "PCMA") or (name == "L16" and (sample_rate or 8000) < 16000):
        what = "G.711" if name != "L16" else "linear PCM (as G.711)"
        out.update(scale="narrowband", ie=0.0, ie_source=f"ITU-T G.113 Appendix I, {what}: Ie 0",
                   bpl=_BPL_G711_PLC if plc else _BPL_NO_PLC,
                   bpl_source=(f"ITU-T G.113 Appendix I, {what} with the PLC of G.711 Appendix I: Bpl 25.1" if plc
                               else f"ITU-T G.113 Appendix I / G.107 default, {what} without PLC: Bpl 4.3"))
        return out
    out["scale"] = "wideband"
    if name == "L16":
        out.update(ie=0.0, ie_source="linear PCM, no coding distortion: Ie,wb 0")
    elif name == "G722":
        out.update(ie=13.0, ie_source="ITU-T G.113 Appendix IV, G.722 at 64 kbit/s: Ie,wb 13")
    elif name == "AMR-WB":
        index = _amrwb_mode(mode)
        out.update(mode=_AMRWB_KBPS[index], mode_assumed=mode is None, ie=_AMRWB_IE_WB[index],
                   ie_source=f"ITU-T G.113 Appendix IV, G.722.2 (AMR-WB) at {_AMRWB_KBPS[index]:g} kbit/s: "
                             f"Ie,wb {_AMRWB_IE_WB[index]:g}")
    else:  # OPUS
        out.update(ie=_OPUS_IE_WB_PLACEHOLDER, placeholder=True,
                   ie_source=f"placeholder: ITU-T publishes no Ie for Opus; {_OPUS_IE_WB_PLACEHOLDER:g} assumed "
                             "(that of a high-rate wideband speech codec)")
    if name in ("L16", "G722"):
        out.update(bpl=_BPL_G711_PLC if plc else _BPL_NO_PLC, placeholder=True,
                   bpl_source=(f"placeholder: G.711's Bpl with PLC ({_BPL_G711_PLC:g}) applied to {name}" if plc else
                               f"placeholder: the Bpl of a waveform codec without PLC ({_BPL_NO_PLC:g})"))
    else:
        out.update(bpl=_BPL_CELP_PLACEHOLDER if plc else _BPL_NO_PLC, placeholder=True,
                   bpl_source=(f"placeholder: {_BPL_CELP_PLACEHOLDER:g} for a codec that conceals loss itself" if plc
                               else f"placeholder: {_BPL_NO_PLC:g} without concealment"))
    return out


def _amrwb_mode(mode: float | int | None) -> int:
    if mode is None:
        return _AMRWB_ASSUMED_MODE
    if isinstance(mode, bool):
        raise ValueError(f"AMR-WB mode must be 0-8 or a bit rate in kbit/s, got {mode!r}")
    value = float(mode)
    if value.is_integer() and 0 <= value <= 8:
        return int(value)
    for i, kbps in enumerate(_AMRWB_KBPS):
        if abs(value - kbps) < 0.01:
            return i
    raise ValueError(f"AMR-WB mode must be 0-8 or one of {', '.join(f'{k:g}' for k in _AMRWB_KBPS)} kbit/s, "
                     f"got {mode!r}")


def _g107(t_ms: float, telr_db: float, p: Mapping[str, float]) -> dict[str, float]:
    """Ro, Is and Id of ITU-T G.107 (06/2015) clause 7, for mean one-way delay ``t_ms``
    (absolute delay Ta = T, round trip Tr = 2T)."""
    slr, rlr, stmr, lstr, ds = p["slr"], p["rlr"], p["stmr"], p["lstr"], p["ds"]
    ta, tr, t = t_ms, 2 * t_ms, t_ms
    olr = slr + rlr
    # 7.2 Basic signal-to-noise ratio.
    nos = p["ps"] - slr - ds - 100 + 0.004 * (p["ps"] - olr - ds - 14) ** 2
    pre = p["pr"] + 10 * math.log10(1 + 10 ** ((10 - lstr) / 10))
    nor = rlr - 121 + pre + 0.008 * (pre - 35) ** 2
    nfo = p["nfor"] + rlr
    no = 10 * math.log10(sum(10 ** (v / 10) for v in (p["nc"], nos, nor, nfo)))
    ro = 15 - 1.5 * (slr + no)
    # 7.3 Simultaneous impairments: loudness (Iolr), sidetone (Ist), quantizing (Iq).
    xolr = olr + 0.2 * (64 + no - rlr)
    iolr = 20 * ((1 + (xolr / 8) ** 8) ** (1 / 8) - xolr / 8)
    stmro = -10 * math.log10(10 ** (-stmr / 10) + math.exp(-t / 4) * 10 ** (-telr_db / 10))
    ist = (12 * (1 + ((stmro - 13) / 6) ** 8) ** (1 / 8) - 28 * (1 + ((stmro + 1) / 19.4) ** 35) ** (1 / 35)
           - 13 * (1 + ((stmro - 3) / 33) ** 13) ** (1 / 13) + 29)
    q = 37 - 15 * math.log10(p["qdu"])
    g = 1.07 + 0.258 * q + 0.0602 * q**2
    y = (ro - 100) / 15 + 46 / 8.4 - g / 9
    z = 46 / 30 - g / 40
    iq = 15 * math.log10(1 + 10**y + 10**z)
    # 7.4 Delay impairments: talker echo (Idte), listener echo (Idle), absolute delay (Idd).
    terv = telr_db - 40 * math.log10((1 + t / 10) / (1 + t / 150)) + 6 * math.exp(-0.3 * t**2)
    if stmr < 9:
        terv += ist / 2
    roe = -1.5 * (no - rlr)
    re = 80 + 2.5 * (terv - 14)
    idte = ((roe - re) / 2 + math.sqrt((roe - re) ** 2 / 4 + 100) - 1) * (1 - math.exp(-t))
    if stmr > 20:  # G.107 7.4: very high sidetone masking
        idte = math.sqrt(idte**2 + ist**2)
    rle = 10.5 * (p["wepl"] + 7) * (tr + 1) ** -0.25
    idle = (ro - rle) / 2 + math.sqrt((ro - rle) ** 2 / 4 + 169)
    if ta <= 100:
        idd = 0.0
    else:
        x = math.log10(ta / 100) / math.log10(2)
        idd = 25 * ((1 + x**6) ** (1 / 6) - 3 * (1 + (x / 3) ** 6) ** (1 / 6) + 2)
    return {"ro": ro, "is": iolr + ist + iq, "id": idte + idle + idd, "no": no}


def emodel(codec: str, packet_loss_pct: float = 0.0, burst_ratio: float = 1.0, one_way_delay_ms: float = 0.0, *,
           plc: bool = True, mode: float | int | None = None, sample_rate: int | None = None,
           telr_db: float = 65.0, advantage: float = 0.0, ie: float | None = None, bpl: float | None = None,
           provenance: Mapping[str, str] | None = None, sources: Mapping[str, str] | None = None) -> EModel:
    """Rate one direction of a call with the E-model (ITU-T G.107 / G.107.1): R and MOS.

    ``R = Ro - Is - Id - Ie,eff + A``, where ``Ie,eff = Ie + (95 - Ie) Ppl / (Ppl / BurstR + Bpl)``
    (G.107 eq. 7-29; on the wideband scale ``129 - Ie,wb`` replaces ``95 - Ie``). ``Ro``,
    ``Is`` and ``Id`` use G.107's equations with its default loudness ratings, sidetone,
    noise and listener echo (Table 3); the one-way delay sets the mean one-way delay ``T``
    and the absolute delay ``Ta``, the round trip ``Tr`` is twice it. On the wideband
    scale (G.107.1), ``Ro - Is`` is 129 (``Rmax``) under those default conditions and the
    delay impairment is the narrowband one times 1.29.

    Parameters
    ----------
    codec : str
        Telnyx's encoding name, any spelling. Sets the scale: a wideband codec is always
        rated on the wideband scale.
    packet_loss_pct : float
        Packets lost or discarded by the jitter buffer, percent (``Ppl``, 0-100).
    burst_ratio : float
        G.107's ``BurstR``: 1 for random loss, above 1 when losses come in bursts (see
        :func:`burst_ratio`).
    one_way_delay_ms : float
        Mouth-to-ear delay, ms (network, jitter buffer, codec); above 100 ms it starts to
        cost (G.114). Half the RTCP round trip plus the jitter buffer, when measured.
    plc : bool
        Whether the receiver conceals lost packets: G.711's ``Bpl`` is 25.1 with it, 4.3
        without (G.113 Appendix I).
    mode : int or float, optional
        AMR-WB mode (0-8) or bit rate (kbit/s); 12.65 kbit/s is assumed when not given.
    sample_rate : int, optional
        L16's and OPUS's rate: L16 at 8 kHz is narrowband, at 16 kHz or more wideband.
    telr_db : float
        Talker echo loudness rating (dB): G.107's default 65 (good echo control). Lower it
        when the talker hears their echo (measured echo return loss plus ~10 dB for the
        default send and receive loudness ratings).
    advantage : float
        G.107's advantage factor A (0 for wired; up to 10 for mobile).
    ie, bpl : float, optional
        Override the codec's ``Ie`` and ``Bpl`` (marked declared).
    provenance : mapping of str to str, optional
        Provenance of the inputs given, by parameter name (``{"packet_loss_pct": "measured"}``).
        An input not named here is ``declared`` when it differs from its default, else
        ``assumed``.
    sources : mapping of str to str, optional
        What each input was taken from, in words, by parameter name.

    Returns
    -------
    EModel
        ``r``, ``mos``, ``scale``, every input with its provenance, and the model's terms.

    Raises
    ------
    ValueError
        For a loss outside 0-100 %, a burst ratio under 1, a negative delay, or a provenance
        that is not one of ``measured``, ``reported``, ``declared``, ``assumed``.

    Notes
    -----
    Codec values: G.711 ``Ie`` 0 and ``Bpl`` from ITU-T G.113 Appendix I; G.722 and AMR-WB
    ``Ie,wb`` from G.113 Appendix IV. ITU-T publishes no value for Opus: a placeholder
    ``Ie,wb`` of 6 is used and marked as such in ``inputs["ie"].source``; the wideband
    codecs' ``Bpl`` are placeholders too (see :func:`codec_impairment`).

    Examples
    --------
    Every default (G.711, no loss, no delay) gives G.107's reference R of 93.2; 2 % random
    loss with G.711's PLC costs 7 points:

    >>> round(emodel("PCMU").r, 1), round(emodel("PCMU", 2.0).r, 1)
    (93.2, 86.2)
    >>> q = emodel("G722", 1.0, provenance={"packet_loss_pct": "measured"})
    >>> q.scale, round(q.r, 1), round(q.mos, 2), q.inputs["packet_loss_pct"].provenance
    ('wideband', 111.4, 4.24, 'measured')
    """
    if not 0.0 <= float(packet_loss_pct) <= 100.0:
        raise ValueError(f"packet_loss_pct must be a percentage 0-100, got {packet_loss_pct!r}")
    if not float(burst_ratio) >= 1.0:
        raise ValueError(f"burst_ratio must be 1 (random loss) or more, got {burst_ratio!r}")
    if not float(one_way_delay_ms) >= 0.0:
        raise ValueError(f"one_way_delay_ms must be a delay in ms, 0 or more, got {one_way_delay_ms!r}")
    provenance = dict(provenance or {})
    for key, value in provenance.items():
        if value not in PROVENANCES:
            raise ValueError(f"provenance of {key!r} must be one of {', '.join(PROVENANCES)}, got {value!r}")
    sources = dict(sources or {})
    info = codec_impairment(codec, plc=plc, mode=mode, sample_rate=sample_rate)
    ie_value = info["ie"] if ie is None else float(ie)
    bpl_value = info["bpl"] if bpl is None else float(bpl)

    def given(name: str, value: Any, default: Any, source: str = "") -> Input:
        prov = provenance.get(name, "assumed" if value == default else "declared")
        default_source = "default" if prov == "assumed" else ""
        return Input(value, prov, sources.get(name, source or default_source))

    inputs = {
        "codec": given("codec", normalize_encoding(codec), None),
        "packet_loss_pct": given("packet_loss_pct", float(packet_loss_pct), 0.0),
        "burst_ratio": given("burst_ratio", float(burst_ratio), 1.0),
        "one_way_delay_ms": given("one_way_delay_ms", float(one_way_delay_ms), 0.0),
        "plc": given("plc", bool(plc), True),
        "ie": Input(ie_value, "declared" if ie is not None else "assumed",
                    "given" if ie is not None else info["ie_source"]),
        "bpl": Input(bpl_value, "declared" if bpl is not None else "assumed",
                     "given" if bpl is not None else info["bpl_source"]),
        "telr_db": given("telr_db", float(telr_db), 65.0, "ITU-T G.107 default" if telr_db == 65.0 else ""),
        "advantage": given("advantage", float(advantage), 0.0),
    }
    if info["mode"] is not None:
        inputs["mode"] = Input(info["mode"], "assumed" if info["mode_assumed"] else provenance.get("mode", "declared"),
                               "12.65 kbit/s assumed (mode not known)" if info["mode_assumed"] else sources.get("mode", ""))
    if sample_rate is not None:
        inputs["sample_rate"] = given("sample_rate", int(sample_rate), None)

    base = _g107(float(one_way_delay_ms), float(telr_db), _DEFAULTS)
    ppl = float(packet_loss_pct)
    if info["scale"] == "narrowband":
        ro, is_, id_ = base["ro"], base["is"], base["id"]
        ie_eff = ie_value + (95 - ie_value) * ppl / (ppl / float(burst_ratio) + bpl_value) if ppl else ie_value
        r = ro - is_ - id_ - ie_eff + float(advantage)
        mos = mos_from_r(r)
    else:
        ro, is_, id_ = R_MAX_WB, 0.0, WB_FACTOR * base["id"]
        ie_eff = (ie_value + (R_MAX_WB - ie_value) * ppl / (ppl / float(burst_ratio) + bpl_value)) if ppl else ie_value
        r = ro - is_ - id_ - ie_eff + float(advantage)
        mos = mos_from_r(r / WB_FACTOR)
    terms = {"ro": ro, "is": is_, "id": id_, "ie_eff": ie_eff, "a": float(advantage)}
    return EModel(float(r), float(mos), info["scale"], inputs["codec"].value, inputs, terms)


def burst_ratio(lost: np.ndarray) -> float:
    """G.107's burst ratio ``BurstR`` of a loss sequence (1 for random loss, more for bursts).

    With a two-state (Gilbert) Markov model of the loss, p the chance a packet is lost after
    one that arrived and q the chance one arrives after a loss, ``BurstR = 1 / (p + q)``
    (ITU-T G.107 clause 7.5, G.113 Appendix I): the mean length of the observed loss bursts
    over what random loss at the same rate would give. p and q are counted from the
    sequence's transitions.

    Parameters
    ----------
    lost : np.ndarray of bool, shape (n,)
        One value per expected packet, in sequence order: True where it was lost or discarded.

    Returns
    -------
    float
        1.0 when nothing (or everything) was lost.

    Examples
    --------
    >>> burst_ratio(np.tile([True] + [False] * 9, 20))   # lone losses, evenly spread
    1.0
    >>> round(burst_ratio(np.tile([True] * 4 + [False] * 36, 5)), 2)   # bursts of 4
    3.67
    """
    lost = np.asarray(lost, bool)
    n_lost = int(lost.sum())
    if n_lost == 0 or n_lost == lost.size:
        return 1.0
    found = ~lost[:-1]
    p = np.count_nonzero(found & lost[1:]) / max(int(found.sum()), 1)
    q = np.count_nonzero(lost[:-1] & ~lost[1:]) / max(int(lost[:-1].sum()), 1)
    if p + q <= 0:
        return 1.0
    # Never under 1 (G.107: BurstR >= 1; fewer bursts than random, e.g. evenly spaced losses, is random).
    return float(max(1.0, 1.0 / (p + q)))


def loss_stats(lost: np.ndarray) -> dict[str, float]:
    """Loss rate (%), burst ratio, and the count and longest run of losses in a loss sequence.

    Parameters
    ----------
    lost : ndarray of bool
        One entry per packet in sending order: True where it was lost.

    Returns
    -------
    dict
        ``loss_pct``, ``burst_ratio``, ``n_expected``, ``n_lost``, ``n_bursts``, ``longest_burst``.

    Examples
    --------
    >>> s = loss_stats(np.array([0, 0, 1, 1, 0, 0, 0, 0, 0, 1], bool))
    >>> s["loss_pct"], s["n_lost"], s["longest_burst"]
    (30.0, 3, 2)
    """
    lost = np.asarray(lost, bool)
    edges = np.diff(np.concatenate(([0], lost.astype(np.int8), [0])))
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    return {"loss_pct": 100.0 * float(lost.mean()) if lost.size else 0.0, "burst_ratio": burst_ratio(lost),
            "n_expected": int(lost.size), "n_lost": int(lost.sum()),
            "n_bursts": int(starts.size), "longest_burst": int((ends - starts).max()) if starts.size else 0}


@dataclass(frozen=True)
class JitterBuffer:
    """What a simulated de-jitter buffer would have done with a stream's packets.

    Attributes
    ----------
    kind : {"fixed", "adaptive"}
    depth_ms : float
        Fixed: the buffer's depth. Adaptive: its largest depth.
    lost : np.ndarray of bool, shape (n_expected,)
        Per expected packet (in sequence order): never arrived, or arrived too late to play.
    n_expected, n_network_lost, n_late : int
    loss_pct : float
        Effective loss, percent: network loss plus late discards, over the packets expected.
    burst_ratio : float
        G.107's ``BurstR`` of ``lost``.
    mean_delay_ms : float
        The buffer's mean delay (what it adds to the one-way delay).
    """

    kind: str
    depth_ms: float
    lost: np.ndarray = field(repr=False)
    n_expected: int
    n_network_lost: int
    n_late: int
    loss_pct: float
    burst_ratio: float
    mean_delay_ms: float


def jitter_buffer(arrival_s: Any, rtp_timestamp: Any, clock_rate: int, *, sequence: Any = None,
                  kind: str = "fixed", depth_ms: float = 50.0, window_s: float = 2.0,
                  margin_ms: float = 10.0, min_ms: float = 20.0) -> JitterBuffer:
    """Simulate a receiver's de-jitter buffer: which packets it would play, which it discards.

    A packet's transit is its arrival time minus its RTP timestamp (in seconds): a constant
    plus the network's delay variation. A packet is played if it arrives by its playout time
    and discarded (counted as lost) if it arrives later, as VoIPmonitor reports for fixed
    50 ms and 200 ms buffers and an adaptive one of up to 500 ms.

    - ``fixed``: playout at the first packet's transit plus ``depth_ms``, for every packet.
    - ``adaptive``: before each packet, the buffer's base is the smallest transit of the
      last ``window_s`` and its depth the largest excess over that base in the same window,
      plus ``margin_ms``, kept between ``min_ms`` and ``depth_ms``: it grows with the jitter
      it has seen and shrinks when the jitter calms down.

    Parameters
    ----------
    arrival_s : array_like of float, shape (n,)
        Arrival time of each received packet, seconds (any origin).
    rtp_timestamp : array_like of int, shape (n,)
        Its RTP timestamp, extended past wraparound (monotonic over the stream).
    clock_rate : int
        The RTP clock, Hz (8000 for G.711 and G.722, 16000 for AMR-WB, 48000 for Opus).
    sequence : array_like of int, shape (n,), optional
        Extended sequence numbers: gaps are network loss, repeats are dropped. Without them
        the packets are taken as all there was, in order.
    kind : {"fixed", "adaptive"}
    depth_ms : float
        Fixed: the depth. Adaptive: the largest depth.
    window_s, margin_ms, min_ms : float
        Adaptive only: how far back it looks, what it adds over the jitter seen, its least depth.

    Returns
    -------
    JitterBuffer

    Raises
    ------
    ValueError
        For arrays of different lengths, an unknown ``kind``, or a depth that is not positive.

    Examples
    --------
    Packets every 20 ms, one held up by 80 ms: a 50 ms fixed buffer drops it, a 200 ms one
    plays it.

    >>> arrival = np.arange(50) * 0.02
    >>> arrival[20] += 0.08
    >>> ts = np.arange(50) * 160
    >>> jitter_buffer(arrival, ts, 8000).n_late, jitter_buffer(arrival, ts, 8000, depth_ms=200).n_late
    (1, 0)
    """
    from scipy.ndimage import maximum_filter1d, minimum_filter1d

    arrival = np.asarray(arrival_s, float)
    ts = np.asarray(rtp_timestamp, np.float64)
    if arrival.shape != ts.shape or arrival.ndim != 1:
        raise ValueError(f"arrival_s and rtp_timestamp must be 1-D and of one length, got {arrival.shape} and {ts.shape}")
    if kind not in ("fixed", "adaptive"):
        raise ValueError(f"kind must be 'fixed' or 'adaptive', got {kind!r}")
    if not depth_ms > 0:
        raise ValueError(f"depth_ms must be a positive number of ms, got {depth_ms!r}")
    if not clock_rate > 0:
        raise ValueError(f"clock_rate must be a positive rate in Hz, got {clock_rate!r}")
    if sequence is None:
        seq = np.arange(arrival.size, dtype=np.int64)
    else:
        seq = np.asarray(sequence, np.int64)
        if seq.shape != arrival.shape:
            raise ValueError(f"sequence must have one number per packet, got {seq.shape} for {arrival.shape}")
    if arrival.size == 0:
        return JitterBuffer(kind, float(depth_ms), np.zeros(0, bool), 0, 0, 0, 0.0, 1.0, 0.0)
    # First copy of each sequence number, in arrival order.
    order = np.argsort(arrival, kind="stable")
    arrival, ts, seq = arrival[order], ts[order], seq[order]
    _, first = np.unique(seq, return_index=True)
    keep = np.zeros(seq.size, bool)
    keep[first] = True
    arrival, ts, seq = arrival[keep], ts[keep], seq[keep]
    transit = arrival - ts / float(clock_rate)
    if kind == "fixed":
        deadline = np.full(transit.size, transit[0] + depth_ms / 1000.0)
        delay = deadline - transit.min()
    else:
        # Causal windows: packet i sees packets i-w .. i-1 (arrival order approximates time order).
        period = np.median(np.diff(arrival)) if arrival.size > 1 else 0.02
        w = max(3, int(round(window_s / max(period, 1e-3)))) | 1  # odd: origin (w - 1) // 2 makes a trailing window
        padded = np.concatenate((np.full(w, transit[0]), transit))
        base = minimum_filter1d(padded, w, origin=(w - 1) // 2)[w - 1 : -1]  # min of the w before each packet
        excess = padded - minimum_filter1d(padded, w, origin=(w - 1) // 2)
        spread = maximum_filter1d(excess, w, origin=(w - 1) // 2)[w - 1 : -1]
        depth = np.clip(spread + margin_ms / 1000.0, min_ms / 1000.0, depth_ms / 1000.0)
        deadline = base + depth
        delay = deadline - base
    late = transit > deadline + 1e-9
    # Per expected packet, in sequence order, from the first to the last sequence number seen.
    n_expected = int(seq.max() - seq.min() + 1)
    lost = np.ones(n_expected, bool)
    lost[seq - seq.min()] = late
    n_network = n_expected - seq.size
    return JitterBuffer(kind, float(depth_ms), lost, n_expected, int(n_network), int(late.sum()),
                        100.0 * float(lost.mean()), burst_ratio(lost), 1000.0 * float(np.mean(delay)))
