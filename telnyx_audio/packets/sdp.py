"""SDP session descriptions (RFC 8866) as SIP offers and answers carry them (RFC 3264).

:func:`parse_sdp` reads what ties RTP to a call and says how to decode it: the connection
address (``c=``, session or media level), each ``m=`` line's port and payload types, and
per media ``a=rtpmap``, ``a=fmtp`` (AMR-WB's ``octet-align`` and ``mode-set`` among them,
RFC 4867 section 8.1), ``a=ptime``, ``a=rtcp`` (RFC 3605), ``a=rtcp-mux`` and the direction
attributes (``sendrecv``, ``sendonly``, ``recvonly``, ``inactive``; a session-level one is
the default for every medium). Never raises: lines it cannot read are listed in
:attr:`SessionDescription.problems`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["MediaDescription", "SessionDescription", "parse_sdp", "parse_fmtp"]

_DIRECTIONS = ("sendrecv", "sendonly", "recvonly", "inactive")


def parse_fmtp(params: str) -> dict[str, str]:
    """``a=fmtp`` parameters as a dict (names lower-case; a bare value is kept under ``""``).

    Examples
    --------
    >>> parse_fmtp("octet-align=1; mode-set=0,1,2")
    {'octet-align': '1', 'mode-set': '0,1,2'}
    >>> parse_fmtp("0-15")
    {'': '0-15'}
    """
    out: dict[str, str] = {}
    for part in params.split(";"):
        part = part.strip()
        if not part:
            continue
        k, eq, v = part.partition("=")
        if eq:
            out[k.strip().lower()] = v.strip()
        else:
            out[""] = part
    return out


@dataclass(frozen=True)
class MediaDescription:
    """One ``m=`` section.

    Attributes
    ----------
    media : str
        ``audio``, ``video``, ``image``...
    port : int
        0 when the stream is rejected or disabled.
    proto : str
        ``RTP/AVP``, ``RTP/SAVP``...
    formats : tuple of int
        Payload types in preference order (non-numeric formats dropped).
    connection : str or None
        The address RTP is to be sent to (media-level ``c=``, else the session's).
    rtpmap : dict of int to str
        ``{96: "AMR-WB/16000"}``.
    fmtp : dict of int to dict
        ``{96: {"octet-align": "1", "mode-set": "2"}}``.
    ptime, maxptime : int or None
        Milliseconds of audio per packet.
    direction : str
        ``sendrecv`` (the default), ``sendonly``, ``recvonly`` or ``inactive``.
    rtcp_port : int or None
        ``a=rtcp`` when given (else RTCP uses port + 1).
    rtcp_mux : bool
    """

    media: str
    port: int
    proto: str
    formats: tuple[int, ...]
    connection: str | None
    rtpmap: dict[int, str] = field(default_factory=dict)
    fmtp: dict[int, dict[str, str]] = field(default_factory=dict)
    ptime: int | None = None
    maxptime: int | None = None
    direction: str = "sendrecv"
    rtcp_port: int | None = None
    rtcp_mux: bool = False

    def payload_types(self) -> dict[int, str]:
        """``{pt: "ENCODING/CLOCK"}`` for the formats this medium offers (rtpmap, or the static
        name of RFC 3551 for types without one).

        Examples
        --------
        >>> MediaDescription("audio", 4000, "RTP/AVP", (0, 101), "10.0.0.1",
        ...                  rtpmap={101: "telephone-event/8000"}).payload_types()
        {0: 'PCMU/8000', 101: 'telephone-event/8000'}
        """
        out = {}
        for pt in self.formats:
            if pt in self.rtpmap:
                out[pt] = self.rtpmap[pt]
            elif pt in _STATIC:
                out[pt] = _STATIC[pt]
        return out


_STATIC = {0: "PCMU/8000", 3: "GSM/8000", 4: "G723/8000", 8: "PCMA/8000", 9: "G722/8000", 10: "L16/44100/2",
           11: "L16/44100", 13: "CN/8000", 18: "G729/8000"}


@dataclass(frozen=True)
class SessionDescription:
    """A parsed SDP body: session-level facts and its media sections.

    ``problems`` lists lines that could not be read (never fatal).
    """

    origin: str | None
    connection: str | None
    media: tuple[MediaDescription, ...]
    direction: str = "sendrecv"
    problems: tuple[str, ...] = ()

    @property
    def audio(self) -> MediaDescription | None:
        """The first ``m=audio`` section (accepted or not), or None when the SDP has no audio."""
        for m in self.media:
            if m.media == "audio":
                return m
        return None


def _connection(value: str) -> str | None:
    parts = value.split()
    if len(parts) < 3 or parts[0] != "IN" or parts[1] not in ("IP4", "IP6"):
        return None
    return parts[2].split("/")[0]


def parse_sdp(data: bytes | str) -> SessionDescription:
    """Parse an SDP body.

    Examples
    --------
    >>> sdp = ("v=0\\r\\no=- 1 1 IN IP4 10.0.0.1\\r\\ns=-\\r\\nc=IN IP4 10.0.0.1\\r\\nt=0 0\\r\\n"
    ...        "m=audio 40000 RTP/AVP 96 101\\r\\na=rtpmap:96 AMR-WB/16000\\r\\n"
    ...        "a=fmtp:96 octet-align=1;mode-set=2\\r\\na=rtpmap:101 telephone-event/16000\\r\\n"
    ...        "a=ptime:20\\r\\na=sendrecv\\r\\n")
    >>> a = parse_sdp(sdp).audio
    >>> a.connection, a.port, a.formats, a.fmtp[96]["octet-align"], a.ptime, a.direction
    ('10.0.0.1', 40000, (96, 101), '1', 20, 'sendrecv')
    """
    text = data.decode("utf-8", "replace") if isinstance(data, (bytes, bytearray)) else str(data)
    origin = session_c = None
    session_dir = "sendrecv"
    problems: list[str] = []
    sections: list[dict] = []
    cur: dict | None = None
    for raw in text.replace("\r\n", "\n").split("\n"):
        line = raw.strip()
        if not line:
            continue
        if len(line) < 2 or line[1] != "=":
            problems.append(f"not an SDP line: {line[:60]!r}")
            continue
        kind, value = line[0], line[2:].strip()
        if kind == "m":
            parts = value.split()
            try:
                port = int(parts[1].split("/")[0])
                formats = tuple(int(f) for f in parts[3:] if f.isdigit())
                cur = dict(media=parts[0].lower(), port=port, proto=parts[2], formats=formats, connection=None,
                           rtpmap={}, fmtp={}, ptime=None, maxptime=None, direction=None, rtcp_port=None,
                           rtcp_mux=False)
                sections.append(cur)
            except (IndexError, ValueError):
                problems.append(f"m= line not understood: {value[:60]!r}")
                cur = {"media": "?"}  # attributes until the next m= belong to nothing
            continue
        if kind == "o" and cur is None:
            origin = value
        elif kind == "c":
            addr = _connection(value)
            if addr is None:
                problems.append(f"c= line not understood: {value[:60]!r}")
            elif cur is None:
                session_c = addr
            elif "port" in cur:
                cur["connection"] = addr
        elif kind == "a":
            name, _, arg = value.partition(":")
            name = name.strip().lower()
            if name in _DIRECTIONS:
                if cur is None:
                    session_dir = name
                elif "port" in cur:
                    cur["direction"] = name
                continue
            if cur is None or "port" not in cur:
                continue
            try:
                if name == "rtpmap":
                    pt, _, enc = arg.strip().partition(" ")
                    cur["rtpmap"][int(pt)] = enc.strip()
                elif name == "fmtp":
                    pt, _, params = arg.strip().partition(" ")
                    cur["fmtp"][int(pt)] = parse_fmtp(params)
                elif name in ("ptime", "maxptime"):
                    cur[name] = int(float(arg.strip()))
                elif name == "rtcp":
                    cur["rtcp_port"] = int(arg.split()[0])
                elif name == "rtcp-mux":
                    cur["rtcp_mux"] = True
            except (ValueError, IndexError):
                problems.append(f"a={name} not understood: {arg[:60]!r}")
    media = []
    for s in sections:
        if "port" not in s:
            continue
        s["connection"] = s["connection"] or session_c
        s["direction"] = s["direction"] or session_dir
        media.append(MediaDescription(**s))
    return SessionDescription(origin, session_c, tuple(media), session_dir, tuple(problems))
