"""Where outbound requests may go: the rules that keep webhooks and marketplace stock pushes
off internal addresses, checked when a URL is configured and again at every connection."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from yarl import URL

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
#: (host, port) -> the IP addresses the host resolves to, as text.
AddressResolver = Callable[[str, int], Sequence[str]]

# IPv6 prefixes that carry an IPv4 address a gateway would forward to: the address checked is
# the embedded one (64:ff9b::10.0.0.1 reaches 10.0.0.1 through a NAT64 gateway).
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


class TargetRefused(OSError):
    """A URL requests may not go to: not http(s), or a host on a non-public address.

    An :class:`OSError`, so that the senders' HTTP connector takes a refusal by its resolver
    as a failed lookup, and the attempt fails with this message.
    """


def _reached(ip: IPAddress) -> IPAddress:
    """The address a connection to ``ip`` really reaches: the IPv4 address an IPv6 one carries
    (IPv4-mapped, 6to4, NAT64), else ``ip`` itself."""
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return ip.ipv4_mapped
        if ip.sixtofour is not None:
            return ip.sixtofour
        if ip in _NAT64:
            return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return ip


def address_kind(ip: IPAddress) -> str | None:
    """What makes ``ip`` an internal target (``"loopback"``, ``"private"``, ...), or None when
    it is a public, globally routable unicast address."""
    checks = (
        ("loopback", ip.is_loopback),
        ("unspecified", ip.is_unspecified),
        ("link-local", ip.is_link_local),
        ("multicast", ip.is_multicast),
        ("private", ip.is_private),
        ("reserved", ip.is_reserved),
        # Shared address space (100.64.0.0/10) and other special-purpose blocks.
        ("non-global", not ip.is_global),
    )
    return next((kind for kind, applies in checks if applies), None)


def address_refusal(address: str, *, allow_private: bool = False) -> str | None:
    """Why a request may not go to ``address`` (an IP address as text), or None when it may."""
    # An IPv6 zone (fe80::1%eth0) names an interface, not an address: set aside.
    ip = _reached(ipaddress.ip_address(address.split("%", 1)[0]))
    kind = address_kind(ip)
    if kind is None or allow_private:
        return None
    return f"{ip} is a {kind} address"


def _ip_literal(host: str) -> str | None:
    try:
        return str(ipaddress.ip_address(host.split("%", 1)[0]))
    except ValueError:
        return None


def client_host(url: str) -> str | None:
    """The host of ``url`` as the HTTP client reads it: yarl, under aiohttp, folds full-width
    digits and ideographic full stops (``127。0。0。1``) into an IP address and then connects to it
    without asking any resolver, so that host, not the standard library's reading, is judged.
    ``ValueError`` when the client cannot read the URL."""
    return URL(url).host


def url_refusal(url: str, *, allow_private: bool = False) -> str | None:
    """Why ``url`` may not be a target by the URL alone (its scheme, its host, an IP
    address written in it), or None. A host *name* still has to be resolved and checked."""
    try:
        parts = urlsplit(url)
        host, _port = parts.hostname, parts.port
        connected = client_host(url)
    except ValueError:
        return "is not a valid URL"
    if parts.scheme not in ("http", "https") or not host or not connected:
        return "must be an absolute http:// or https:// URL"
    if _ip_literal(connected) is None and connected.replace(".", "").isdigit():
        # 2130706433, 127.1, 0177.0.0.1: no name, yet no address either. The system resolver
        # reads them as 127.0.0.1, and an HTTP client taking any all-digit host for an address
        # (as older aiohttp releases do) connects there without asking its guarded resolver.
        return f"{connected} is not an IP address in canonical form"
    # Both readings are judged: the client's decides where a request goes, and a URL the two
    # read differently must not pass on the strength of the harmless one.
    for literal in (_ip_literal(connected), _ip_literal(host)):
        if literal is not None:
            refusal = address_refusal(literal, allow_private=allow_private)
            if refusal is not None:
                return refusal
    return None


def resolve_addresses(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to (the system resolver, as the HTTP client uses)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return sorted({str(info[4][0]) for info in infos})


@dataclass(frozen=True)
class TargetGuard:
    """Decides whether a URL may be configured (a webhook subscription, a marketplace
    connection): http(s), and, unless private targets are allowed, every address its host
    resolves to public. The senders check again at each connection, since what a name resolves
    to can change after it was configured."""

    allow_private: bool = False
    resolve: AddressResolver = resolve_addresses

    def check(self, url: str) -> None:
        """Raises :class:`TargetRefused` saying why ``url`` may not be a target."""
        reason = url_refusal(url, allow_private=self.allow_private)
        if reason is not None:
            raise TargetRefused(reason)
        parts = urlsplit(url)
        # The name the client will hand its resolver (checked by the senders at each connection).
        host = client_host(url) or ""
        if self.allow_private or _ip_literal(host) is not None:
            return
        port = parts.port or (443 if parts.scheme == "https" else 80)
        try:
            addresses = list(self.resolve(host, port))
        except OSError as exc:
            raise TargetRefused(f"{host} does not resolve ({exc.strerror or exc})") from None
        if not addresses:
            raise TargetRefused(f"{host} does not resolve")
        for address in addresses:
            refusal = address_refusal(address)
            if refusal is not None:
                raise TargetRefused(f"{host} resolves to {refusal}")
