"""SIP calls by Call-ID: the ladder, the offer and answer, who ended the call, where RTP goes.

Sans-I/O: :meth:`Dialogs.message` takes one parsed :class:`~telnyx_audio.packets.sip.SipMessage`
with where and when it was captured, and updates the call it belongs to (:class:`Dialog`):

- a call begins with an INVITE; its sender is the **originator** (the caller), the other
  party the **answerer**. Which party sent a later message is read from the From tag (a
  request from the originator carries the originator's From tag; a response comes from the
  party the request was sent to), and from addresses when tags are missing;
- every SDP (in an INVITE, a reliable or final response, an ACK, UPDATE or PRACK: RFC 3264
  offer/answer) names where its sender receives audio: the ``c=`` address and ``m=audio``
  port (and RTCP's port). Those endpoints are *bound* to the call and the party from the
  message's frame on, so a re-INVITE that moves a port or changes codec moves the binding;
- the final response to the first INVITE gives the call's status; BYE or CANCEL, and who
  sent it, says who hung up; a final failure ends the call.

RTP is tied to a call by its destination endpoint (the party that receives it), or its
source when the destination is not named (symmetric RTP). The track it belongs to follows:
``inbound`` is what the originator sent, ``outbound`` what it received.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from telnyx_audio.packets.sdp import MediaDescription, SessionDescription, parse_sdp
from telnyx_audio.packets.sip import SipMessage

__all__ = ["Endpoint", "LadderRow", "Offer", "Dialog", "Dialogs", "ORIGINATOR", "ANSWERER"]

ORIGINATOR, ANSWERER = "originator", "answerer"
_SDP_CARRIERS = {"INVITE", "ACK", "UPDATE", "PRACK"}

#: (hi, lo, port): an address as two 64-bit halves (see :mod:`telnyx_audio.packets.layers`) and a port.
Endpoint = tuple[int, int, int]


@dataclass(frozen=True)
class LadderRow:
    """One SIP message of a call's ladder."""

    time_ns: int
    frame: int
    source: str
    destination: str
    label: str
    cseq: str
    call_id: str
    transport: str
    sdp: bool = False

    def as_dict(self) -> dict[str, Any]:
        return dict(vars(self))


@dataclass(frozen=True)
class Offer:
    """One SDP of a call: who sent it, in which message, and its audio."""

    time_ns: int
    frame: int
    party: str
    message: str
    audio: MediaDescription | None
    address: str | None


@dataclass
class Dialog:
    """What the SIP messages of one Call-ID say (filled in as messages come)."""

    call_id: str
    first_ns: int
    originator: str = ""  # "ip:port" of the first INVITE's sender
    answerer: str = ""
    originator_tag: str | None = None
    from_: str = ""
    to: str = ""
    invite_cseq: int | None = None
    final_status: int | None = None
    final_reason: str = ""
    answered_ns: int | None = None
    ended_ns: int | None = None
    ended_by: str | None = None  # "BYE", "CANCEL" or the failure status line
    hung_up_by: str | None = None  # ORIGINATOR / ANSWERER
    last_ns: int = 0
    ladder: list[LadderRow] = field(default_factory=list)
    offers: list[Offer] = field(default_factory=list)
    sdp_problems: list[str] = field(default_factory=list)
    bound: set = field(default_factory=set)  # endpoints ever bound to this call

    @property
    def ended(self) -> bool:
        return self.ended_ns is not None

    def latest(self, party: str) -> Offer | None:
        """The last SDP with audio from ``party``."""
        for o in reversed(self.offers):
            if o.party == party and o.audio is not None:
                return o
        return None

    def payload_types(self, party: str) -> dict[int, str]:
        """``{pt: "ENC/CLOCK"}`` from ``party``'s SDPs (the numbers RTP sent *to* it uses),
        later SDPs over earlier ones."""
        out: dict[int, str] = {}
        for o in self.offers:
            if o.party == party and o.audio is not None:
                out.update(o.audio.payload_types())
        return out

    def fmtp(self, party: str) -> dict[int, dict[str, str]]:
        out: dict[int, dict[str, str]] = {}
        for o in self.offers:
            if o.party == party and o.audio is not None:
                out.update(o.audio.fmtp)
        return out

    def codec(self) -> str | None:
        """The negotiated codec: the first audio format of the answer (of the offer when no
        answer came), telephone-event and comfort noise passed over."""
        for party in (ANSWERER, ORIGINATOR):
            o = self.latest(party)
            if o is None or o.audio is None or not o.audio.port:
                continue
            names = o.audio.payload_types()
            for pt in o.audio.formats:
                name = names.get(pt)
                if name and name.split("/")[0].lower() not in ("telephone-event", "cn"):
                    return name
        return None

    def facts(self) -> dict[str, Any]:
        """The SIP facts a call's summary keeps (JSON-able)."""
        who = {ORIGINATOR: "caller", ANSWERER: "callee"}
        ptime = {p: (o.audio.ptime if o is not None and o.audio is not None else None)
                 for p, o in ((p, self.latest(p)) for p in (ORIGINATOR, ANSWERER))}
        return {
            "call_id": self.call_id,
            "from": self.from_,
            "to": self.to,
            "caller": self.originator,
            "callee": self.answerer,
            "codec": self.codec(),
            "payload_types": {"inbound": {str(k): v for k, v in self.payload_types(ANSWERER).items()},
                              "outbound": {str(k): v for k, v in self.payload_types(ORIGINATOR).items()}},
            "fmtp": {"inbound": {str(k): v for k, v in self.fmtp(ANSWERER).items()},
                     "outbound": {str(k): v for k, v in self.fmtp(ORIGINATOR).items()}},
            "ptime_ms": {"inbound": ptime[ANSWERER], "outbound": ptime[ORIGINATOR]},
            "final_status": self.final_status,
            "final_reason": self.final_reason,
            "ended_by": self.ended_by,
            "hung_up_by": who.get(self.hung_up_by or ""),
            "sip_messages": len(self.ladder),
            "offers": len(self.offers),
        }


@dataclass
class _Binding:
    """One change of what an endpoint means, from frame ``frame`` on."""

    frame: int
    call_id: str | None
    party: str


class Dialogs:
    """Calls by Call-ID, and the endpoints their SDPs bound (see the module docstring).

    ``bindings`` maps an endpoint to its history of :class:`_Binding` s (frame order);
    :meth:`lookup` says what an endpoint meant at a given frame.
    """

    def __init__(self) -> None:
        self.calls: dict[str, Dialog] = {}
        self.bindings: dict[Endpoint, list[_Binding]] = {}
        self.ignored = 0  # messages of no call (REGISTER, OPTIONS, responses to unknown calls...)
        self.problems: list[tuple[int, str]] = []

    def message(self, msg: SipMessage, *, time_ns: int, frame: int, src: Endpoint, dst: Endpoint, src_text: str,
                dst_text: str, transport: str) -> Dialog | None:
        """Take one SIP message; return the call it belongs to (None if none)."""
        call_id = msg.call_id
        if not call_id:
            self.problems.append((frame, "SIP message without a Call-ID: ignored"))
            return None
        d = self.calls.get(call_id)
        if d is None:
            if msg.method != "INVITE":
                self.ignored += 1
                return None
            d = self.calls[call_id] = Dialog(call_id, time_ns, originator=src_text, answerer=dst_text,
                                             originator_tag=msg.from_tag, from_=msg.header("from") or "",
                                             to=msg.header("to") or "")
            cseq = msg.cseq
            d.invite_cseq = cseq[0] if cseq else None
        d.last_ns = time_ns
        cseq = msg.cseq
        party = self._sender(d, msg, src_text)
        sdp = msg.sdp()
        d.ladder.append(LadderRow(time_ns, frame, src_text, dst_text, msg.label,
                                  f"{cseq[0]} {cseq[1]}" if cseq else "", call_id, transport, bool(sdp)))
        if sdp is not None and (msg.method in _SDP_CARRIERS or (msg.status is not None and 100 < msg.status < 300)):
            self._sdp(d, parse_sdp(sdp), party, msg, time_ns, frame, src)
        if msg.method is not None:
            if msg.method == "BYE" and d.ended_by is None:
                d.ended_by, d.hung_up_by, d.ended_ns = "BYE", party, time_ns
            elif msg.method == "CANCEL" and d.ended_by is None:
                d.ended_by, d.hung_up_by, d.ended_ns = "CANCEL", party, time_ns
            return d
        if cseq and cseq[1] == "INVITE" and msg.status is not None and msg.status >= 200:
            if cseq[0] == d.invite_cseq and d.final_status is None:
                d.final_status, d.final_reason = msg.status, msg.reason
                if msg.status < 300:
                    d.answered_ns = time_ns
                    if msg.to_tag and d.answerer == "":
                        d.answerer = src_text
                elif d.ended_by is None:
                    d.ended_by, d.ended_ns = f"{msg.status} {msg.reason}".strip(), time_ns
                    # 487 answers the caller's CANCEL; any other failure is the callee's refusal.
                    d.hung_up_by = ORIGINATOR if msg.status == 487 else ANSWERER
                elif d.ended_ns is None:
                    d.ended_ns = time_ns
        return d

    def _sender(self, d: Dialog, msg: SipMessage, src_text: str) -> str:
        """Which party sent ``msg``."""
        tag = msg.from_tag
        if tag and d.originator_tag:
            from_originator = tag == d.originator_tag
            request = msg.method is not None
            return ORIGINATOR if from_originator == request else ANSWERER
        return ORIGINATOR if src_text == d.originator else ANSWERER

    def _sdp(self, d: Dialog, sdp: SessionDescription, party: str, msg: SipMessage, time_ns: int, frame: int,
             src: Endpoint) -> None:
        from telnyx_audio.packets.layers import address_key

        audio = sdp.audio
        d.sdp_problems.extend(sdp.problems)
        if audio is None:
            d.sdp_problems.append(f"an SDP in {msg.label} (frame {frame}) has no audio")
        d.offers.append(Offer(time_ns, frame, party, msg.label, audio, audio.connection if audio else None))
        if audio is None or not audio.port or not audio.connection:
            return
        try:
            hi, lo = address_key(audio.connection)
        except ValueError:
            d.sdp_problems.append(f"an SDP in {msg.label} (frame {frame}) names no usable address:"
                                  f" {audio.connection!r}")
            return
        if hi == 0 and lo == 0xFFFF00000000:  # c=0.0.0.0: on hold (RFC 2543 style), no media
            return
        ports = {audio.port}
        if not audio.rtcp_mux:  # RTCP on its own port (RFC 3605), else port + 1 (RFC 3550 11)
            ports.add(audio.rtcp_port or audio.port + 1)
        for port in sorted(ports):
            ep = (hi, lo, port)
            hist = self.bindings.setdefault(ep, [])
            if hist and hist[-1].call_id == d.call_id and hist[-1].party == party:
                continue
            hist.append(_Binding(frame, d.call_id, party))
            d.bound.add(ep)

    def release(self, call_id: str, frame: int) -> None:
        """Unbind a finished call's endpoints from ``frame`` on, and forget the call."""
        d = self.calls.pop(call_id, None)
        if d is None:
            return
        for ep in d.bound:
            hist = self.bindings.get(ep)
            if not hist:
                continue
            if hist[-1].call_id == call_id:
                hist.append(_Binding(frame, None, ""))
            # History before the last change is no longer needed once read past.
            while len(hist) > 1 and hist[1].frame <= frame:
                del hist[0]
            if len(hist) == 1 and hist[0].call_id is None:
                del self.bindings[ep]
