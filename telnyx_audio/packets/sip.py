"""SIP messages (RFC 3261): sans-I/O parsing of one message, and framing of a TCP byte stream.

:func:`parse_sip` turns one message's bytes into a :class:`SipMessage` or a :class:`BadSip`
(a reason, never an exception). :class:`SipStream` frames the messages of one direction of a
TCP connection by their ``Content-Length`` (RFC 3261 section 18.3), skipping CRLF keep-alives
(RFC 5626 section 3.5.1) and resynchronising on the next start line after garbage or a
message that never ends. :func:`looks_like_sip` is the cheap first test on a datagram.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

__all__ = ["SipMessage", "BadSip", "parse_sip", "looks_like_sip", "SipStream", "METHODS", "SIP_PREFIXES"]

#: Request methods (RFC 3261 and its extensions).
METHODS = ("INVITE", "ACK", "BYE", "CANCEL", "OPTIONS", "REGISTER", "PRACK", "SUBSCRIBE", "NOTIFY",
           "PUBLISH", "INFO", "REFER", "MESSAGE", "UPDATE")
#: The first four bytes of any SIP message (a request's method or ``SIP/``).
SIP_PREFIXES = tuple(sorted({m.encode()[:4].ljust(4, b" ") for m in METHODS} | {b"SIP/"}))

_COMPACT = {"i": "call-id", "f": "from", "t": "to", "m": "contact", "l": "content-length", "c": "content-type",
            "v": "via", "e": "content-encoding", "k": "supported", "s": "subject", "o": "event", "r": "refer-to",
            "b": "referred-by", "u": "allow-events", "x": "session-expires", "a": "accept-contact",
            "j": "reject-contact", "d": "request-disposition", "y": "identity"}
_REQUEST = re.compile(rb"^([A-Za-z]+) (\S+) SIP/2\.0$")
_STATUS = re.compile(rb"^SIP/2\.0 (\d{3})(?: (.*))?$")
_START = re.compile(rb"(?:^|\r?\n)((?:" + b"|".join(m.encode() for m in METHODS) + rb") \S+ SIP/2\.0\r?\n|SIP/2\.0 \d{3})")
_TAG = re.compile(r";\s*tag=([^;>\s,]+)", re.I)
_MAX_HEAD = 64 * 1024
_MAX_BODY = 1 << 20


@dataclass(frozen=True)
class SipMessage:
    """One SIP request or response.

    Attributes
    ----------
    method : str or None
        The request's method; None for a response.
    uri : str or None
        The Request-URI.
    status : int or None
        The response's status code; None for a request.
    reason : str
        The response's reason phrase ("" for a request).
    headers : tuple of (str, str)
        In order, names lower-case and in their long form (``i`` -> ``call-id``), folded
        lines joined.
    body : bytes
    truncated : bool
        The body is shorter than ``Content-Length`` said (a datagram cut short).
    """

    method: str | None
    uri: str | None
    status: int | None
    reason: str
    headers: tuple[tuple[str, str], ...]
    body: bytes = b""
    truncated: bool = False

    def header(self, name: str) -> str | None:
        """The first value of a header (any case, long or compact name), or None."""
        key = name.lower()
        key = _COMPACT.get(key, key)
        for k, v in self.headers:
            if k == key:
                return v
        return None

    @property
    def call_id(self) -> str | None:
        return self.header("call-id")

    @property
    def cseq(self) -> tuple[int, str] | None:
        """(number, method) of the CSeq header, or None if absent or malformed."""
        v = self.header("cseq")
        if not v:
            return None
        parts = v.split()
        if len(parts) != 2 or not parts[0].isdigit():
            return None
        return int(parts[0]), parts[1].upper()

    @property
    def from_tag(self) -> str | None:
        return _tag(self.header("from"))

    @property
    def to_tag(self) -> str | None:
        return _tag(self.header("to"))

    @property
    def content_type(self) -> str:
        return (self.header("content-type") or "").split(";")[0].strip().lower()

    @property
    def label(self) -> str:
        """``INVITE`` for a request, ``200 OK`` for a response (a ladder's arrow label)."""
        if self.method is not None:
            return self.method
        return f"{self.status} {self.reason}".strip()

    def sdp(self) -> bytes | None:
        """The SDP body (``application/sdp``, or the SDP part of a multipart body), or None."""
        ct = self.content_type
        if ct == "application/sdp":
            return self.body
        if ct.startswith("multipart/") and b"application/sdp" in self.body.lower():
            m = re.search(rb"(?is)content-type:\s*application/sdp.*?\r?\n\r?\n(.*?)(?:\r?\n--|$)", self.body)
            return m.group(1) if m else None
        return None


@dataclass(frozen=True)
class BadSip:
    """Bytes that are not a usable SIP message: why, and their start."""

    reason: str
    head: bytes = field(default=b"", repr=False)


def _tag(value: str | None) -> str | None:
    if not value:
        return None
    m = _TAG.search(value)
    return m.group(1) if m else None


def looks_like_sip(data: bytes) -> bool:
    """Whether a datagram starts like a SIP message (a method and a space, or ``SIP/2.0 ``).

    Examples
    --------
    >>> looks_like_sip(b"INVITE sip:bob@example.com SIP/2.0\\r\\n"), looks_like_sip(b"\\x80\\x00")
    (True, False)
    """
    if data[:8] == b"SIP/2.0 ":
        return True
    sp = data.find(b" ", 0, 10)
    return sp > 0 and data[:sp].decode("latin-1") in METHODS


def _parse_head(head: bytes) -> tuple[str | None, str | None, int | None, str, list[tuple[str, str]]] | BadSip:
    lines = head.replace(b"\r\n", b"\n").split(b"\n")
    start = lines[0].rstrip(b"\r")
    m = _REQUEST.match(start)
    if m:
        method, uri, status, reason = m.group(1).decode("latin-1").upper(), m.group(2).decode("utf-8", "replace"), None, ""
    else:
        m = _STATUS.match(start)
        if not m:
            return BadSip("not a SIP start line", start[:80])
        method, uri, status = None, None, int(m.group(1))
        reason = (m.group(2) or b"").decode("utf-8", "replace").strip()
    headers: list[tuple[str, str]] = []
    for raw in lines[1:]:
        if not raw:
            continue
        if raw[:1] in (b" ", b"\t") and headers:  # a folded line continues the header before
            k, v = headers[-1]
            headers[-1] = (k, v + " " + raw.strip().decode("utf-8", "replace"))
            continue
        name, colon, value = raw.partition(b":")
        if not colon:
            continue  # a line with no colon: ignored (lenient, as Wireshark is)
        key = name.strip().decode("latin-1").lower()
        headers.append((_COMPACT.get(key, key), value.strip().decode("utf-8", "replace")))
    return method, uri, status, reason, headers


def _content_length(headers: list[tuple[str, str]]) -> int | None:
    for k, v in headers:
        if k == "content-length":
            v = v.strip()
            return int(v) if v.isdigit() else -1
    return None


def parse_sip(data: bytes) -> SipMessage | BadSip:
    """Parse one SIP message (a UDP datagram's payload, or a message framed from TCP).

    Returns
    -------
    SipMessage or BadSip
        Never raises for bad data.

    Examples
    --------
    >>> m = parse_sip(b"SIP/2.0 200 OK\\r\\ni: abc@host\\r\\nCSeq: 1 INVITE\\r\\nl: 0\\r\\n\\r\\n")
    >>> m.status, m.call_id, m.cseq, m.label
    (200, 'abc@host', (1, 'INVITE'), '200 OK')
    >>> parse_sip(b"HELLO").reason
    'not a SIP start line'
    """
    data = bytes(data)
    end = data.find(b"\r\n\r\n")
    sep = 4
    if end < 0:
        end = data.find(b"\n\n")
        sep = 2
    if end < 0:  # no blank line: all headers, no body (lenient, as Wireshark is)
        end, sep = len(data), 0
    got = _parse_head(data[:end])
    if isinstance(got, BadSip):
        return got
    method, uri, status, reason, headers = got
    body = data[end + sep :]
    truncated = False
    n = _content_length(headers)
    if n is not None and n >= 0:
        if len(body) < n:
            truncated = True
        body = body[:n]
    return SipMessage(method, uri, status, reason, tuple(headers), body, truncated)


class SipStream:
    """Frame SIP messages from one direction of a TCP connection (RFC 3261 section 18.3).

    Feed the bytes in order (:meth:`feed`); each call returns the whole messages framed so
    far (:class:`SipMessage`) and the problems met (:class:`BadSip`). A message is its
    headers up to the blank line plus ``Content-Length`` bytes of body. Headers that run past
    64 KiB, or a body longer than 1 MiB, make a message that never ends: reported, and the
    stream resynchronises on the next start line.

    Examples
    --------
    >>> s = SipStream()
    >>> msg = b"BYE sip:a@b SIP/2.0\\r\\nCall-ID: x\\r\\nContent-Length: 2\\r\\n\\r\\nhi"
    >>> s.feed(msg[:10])
    []
    >>> [m.method for m in s.feed(msg[10:] + b"\\r\\n\\r\\n" + msg)]
    ['BYE', 'BYE']
    """

    def __init__(self) -> None:
        self.buffer = b""

    def feed(self, data: bytes) -> list[SipMessage | BadSip]:
        """Add bytes; return the messages (and problems) now complete."""
        self.buffer += data
        out: list[SipMessage | BadSip] = []
        while True:
            buf = self.buffer.lstrip(b"\r\n")  # keep-alives between messages
            if not buf:
                self.buffer = b""
                return out
            if not (buf[:8] == b"SIP/2.0 " or looks_like_sip(buf[:12])) and len(buf) >= 12:
                m = _START.search(buf, 1)
                skip = (m.start(1) if m else max(0, len(buf) - 12))
                out.append(BadSip("bytes between SIP messages that are not SIP: skipped", buf[:80]))
                self.buffer = buf[skip:]
                if not m:
                    return out
                continue
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                if len(buf) > _MAX_HEAD:
                    out.append(BadSip("SIP message that never ends (no end of headers in 64 KiB): skipped", buf[:80]))
                    self._resync(buf)
                    continue
                self.buffer = buf
                return out
            got = _parse_head(buf[:end])
            if isinstance(got, BadSip):
                out.append(got)
                self._resync(buf)
                continue
            n = _content_length(got[4])
            if n is None:
                n = 0  # mandatory on streams (RFC 3261 20.14); without it, no body
            if n < 0 or n > _MAX_BODY:
                out.append(BadSip("SIP message that never ends (Content-Length unusable): skipped", buf[:80]))
                self._resync(buf)
                continue
            total = end + 4 + n
            if len(buf) < total:
                self.buffer = buf
                return out
            method, uri, status, reason, headers = got
            out.append(SipMessage(method, uri, status, reason, tuple(headers), buf[end + 4 : total]))
            self.buffer = buf[total:]

    def _resync(self, buf: bytes) -> None:
        m = _START.search(buf, 1)
        self.buffer = buf[m.start(1):] if m else b""

    def close(self) -> list[BadSip]:
        """The problem of bytes left when the connection's capture ends (none if nothing is left)."""
        rest = self.buffer.strip(b"\r\n")
        self.buffer = b""
        return [BadSip("SIP message cut short when the capture ends", rest[:80])] if rest else []
