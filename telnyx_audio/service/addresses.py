"""Who may connect: ``allow`` CIDRs, Telnyx's published ranges, and trusted reverse proxies.

An :class:`AddressPolicy` answers two questions for a server:

- is this address allowed? (``allow``: CIDRs or single addresses, and the word
  ``"telnyx"`` for Telnyx's published webhook and WebSocket ranges, kept with their source
  and date in ``telnyx_ranges.json`` beside this module; no ``allow`` allows everyone);
- who is the client behind this connection? Behind a reverse proxy that terminates TLS the
  TCP peer is the proxy: when the peer is one of ``trusted_proxies``, the client is taken
  from ``X-Forwarded-For``, read from the right and skipping the trusted proxies, so a
  client cannot forge its address by sending the header itself.

IPv4-mapped IPv6 addresses (``::ffff:192.0.2.7``) are checked as the IPv4 address.
"""

from __future__ import annotations

import ipaddress
import json
from functools import lru_cache
from pathlib import Path
from typing import Iterable, Sequence

__all__ = ["AddressPolicy", "TELNYX", "telnyx_ranges", "telnyx_ranges_source", "parse_networks"]

#: The ``allow`` entry that stands for Telnyx's published ranges.
TELNYX = "telnyx"
_RANGES = Path(__file__).with_name("telnyx_ranges.json")
_CACHE = 65536  # addresses remembered per policy (a spoofed-source flood cannot grow it further)

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@lru_cache(maxsize=1)
def telnyx_ranges_source() -> dict:
    """The data file of Telnyx's ranges: ``ranges``, ``source``, ``retrieved``, ``not_included``."""
    return json.loads(_RANGES.read_text())


def telnyx_ranges() -> list[str]:
    """Telnyx's published webhook (and WebSocket stream) source ranges, as CIDR strings.

    Returns
    -------
    list of str
        The ranges, such as ``"192.76.120.128/29"``.

    Examples
    --------
    >>> "192.76.120.128/29" in telnyx_ranges()
    True
    """
    return [r["cidr"] for r in telnyx_ranges_source()["ranges"]]


def parse_networks(entries: Iterable[str] | str | None, *, what: str = "allow") -> list[Network]:
    """CIDRs (``"10.0.0.0/8"``), single addresses and ``"telnyx"`` -> networks.

    Raises
    ------
    ValueError
        Naming the entry that is neither.

    Examples
    --------
    >>> [str(n) for n in parse_networks(["10.0.0.0/8", "192.0.2.7", "::1"])]
    ['10.0.0.0/8', '192.0.2.7/32', '::1/128']
    >>> parse_networks(["10.0.0.300/8"])
    Traceback (most recent call last):
    ...
    ValueError: allow: '10.0.0.300/8' is not a CIDR, an IP address or 'telnyx'
    """
    if isinstance(entries, str):
        entries = [entries]
    networks: list[Network] = []
    for entry in entries or ():
        text = str(entry).strip()
        if text.lower() == TELNYX:
            networks.extend(ipaddress.ip_network(c) for c in telnyx_ranges())
            continue
        try:
            networks.append(ipaddress.ip_network(text, strict=False))
        except ValueError:
            raise ValueError(f"{what}: {text!r} is not a CIDR, an IP address or {TELNYX!r}") from None
    return networks


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        ip = ipaddress.ip_address(text.strip().split("%", 1)[0].strip("[]"))
    except ValueError:
        return None
    if ip.version == 6 and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


class AddressPolicy:
    """The ``allow`` list and the trusted proxies of one server.

    Parameters
    ----------
    allow : iterable of str, optional
        CIDRs, addresses or ``"telnyx"``; None or empty allows every address.
    trusted_proxies : iterable of str, optional
        CIDRs of reverse proxies whose ``X-Forwarded-For`` is believed.

    Examples
    --------
    >>> policy = AddressPolicy(["telnyx", "10.0.0.0/8"], trusted_proxies=["127.0.0.1"])
    >>> policy.allowed("192.76.120.130"), policy.allowed("10.1.2.3"), policy.allowed("198.51.100.1")
    (True, True, False)
    >>> policy.client("127.0.0.1", ["198.51.100.1, 192.76.120.130"])
    '192.76.120.130'
    >>> policy.client("203.0.113.9", ["192.76.120.130"])  # not a trusted proxy: its header is ignored
    '203.0.113.9'
    """

    def __init__(self, allow: Iterable[str] | str | None = None, *,
                 trusted_proxies: Iterable[str] | str | None = None) -> None:
        entries = [allow] if isinstance(allow, str) else list(allow or ())
        self.allow_entries = [str(e).strip() for e in entries]
        self.allow = parse_networks(self.allow_entries) if self.allow_entries else None
        self.trusted_proxies = parse_networks(trusted_proxies, what="trusted_proxy")
        self._allowed: dict[str, bool] = {}
        self._proxy: dict[str, bool] = {}

    @property
    def restricted(self) -> bool:
        """Whether an ``allow`` list is in force."""
        return self.allow is not None

    @property
    def uses_telnyx_ranges(self) -> bool:
        """Whether ``"telnyx"`` is among the ``allow`` entries."""
        return any(e.lower() == TELNYX for e in self.allow_entries)

    def _member(self, address: str, networks: Sequence[Network] | None, cache: dict[str, bool]) -> bool:
        hit = cache.get(address)
        if hit is None:
            ip = _ip(address)
            hit = ip is not None and any(ip in net for net in networks or ())
            if len(cache) < _CACHE:
                cache[address] = hit
        return hit

    def allowed(self, address: str) -> bool:
        """Whether ``address`` may connect (always, with no ``allow`` list).

        Parameters
        ----------
        address : str
            An IPv4 or IPv6 address.

        Returns
        -------
        bool
            True when it may.
        """
        if self.allow is None:
            return True
        return self._member(address, self.allow, self._allowed)

    def is_proxy(self, address: str) -> bool:
        """Whether ``address`` is a trusted reverse proxy.

        Parameters
        ----------
        address : str
            An IPv4 or IPv6 address.

        Returns
        -------
        bool
            True when it is one of ``trusted_proxies``.
        """
        return bool(self.trusted_proxies) and self._member(address, self.trusted_proxies, self._proxy)

    def client(self, peer: str, forwarded_for: Sequence[str] | str | None) -> str:
        """The client's address: ``peer``, or when ``peer`` is a trusted proxy, the right-most
        address of ``X-Forwarded-For`` (all its headers, in order) that is not a trusted proxy.

        A header holding anything but addresses is not believed (the proxy's own address is
        returned, and refused unless allowed).

        Parameters
        ----------
        peer : str
            The address the connection came from.
        forwarded_for : str, sequence of str or None
            The ``X-Forwarded-For`` header(s) of the request, in order.

        Returns
        -------
        str
            The client's address.
        """
        if not forwarded_for or not self.is_proxy(peer):
            return peer
        if isinstance(forwarded_for, str):
            forwarded_for = [forwarded_for]
        hops = [h.strip() for value in forwarded_for for h in value.split(",")]
        client = peer
        for hop in reversed(hops):
            ip = _ip(hop)
            if ip is None:
                return peer
            client = str(ip)
            if not self.is_proxy(client):
                return client
        return client

    def describe(self) -> str:
        """The ``allow`` entries as given (``telnyx`` named, not expanded), for a log line.

        Returns
        -------
        str
            The entries, comma-separated.
        """
        return ", ".join(self.allow_entries) if self.allow_entries else "every address"


#: Logged by the fork receiver when ``allow`` holds ``"telnyx"``.
RTP_WARNING = ("allow 'telnyx' holds Telnyx's webhook and WebSocket ranges; the media (RTP) subnets forks come"
               " from are published at sip.telnyx.com and are not in it: add them with allow CIDR, or forked"
               " audio from other media servers is dropped")
