"""Outbound HTTP to URLs users give us (assets, caller webhooks): the address policy.

A host name is resolved first and every address it resolves to must be public: private,
loopback, link-local, multicast, reserved and unspecified ranges are refused (IPv4-mapped
IPv6 included) unless a configured network (CIDR) lists them. The request then goes to
the checked address itself (`pinned`), so a second lookup cannot swap in another
address (DNS rebinding), with the Host header and TLS SNI/certificate checks against the
original name. One implementation for every caller of user URLs.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class Unresolvable(Exception):
    """The URL's host name does not resolve."""


class ForbiddenAddress(Exception):
    """The URL's host resolves to (or is) an address the policy refuses."""

    def __init__(self, address: str) -> None:
        super().__init__(f"private or reserved address ({address})")
        self.address = address


def parse_networks(cidrs: Iterable[str]) -> tuple[Network, ...]:
    """CIDRs (configuration) as networks; raises ValueError on a malformed one."""
    return tuple(ipaddress.ip_network(cidr, strict=False) for cidr in cidrs)


def permitted(address: IPAddress, allowed: Iterable[Network] = ()) -> bool:
    """Whether an address may be reached: public, or inside one of the `allowed` networks."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if any(address in network for network in allowed):
        return True
    return address.is_global and not (
        address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
    )


def literal_address(host: str) -> IPAddress | None:
    """The address when `host` is an IP literal (brackets stripped), else None."""
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


async def resolve_permitted(url: str, allowed: Iterable[Network] = ()) -> IPAddress:
    """Resolve the URL's host; the first address if every address is permitted.

    Raises Unresolvable, or ForbiddenAddress naming the first refused address.
    """
    parts = urlsplit(url)
    host = parts.hostname or ""
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(
            host, parts.port or (443 if parts.scheme == "https" else 80), type=socket.SOCK_STREAM
        )
    except (socket.gaierror, UnicodeError) as exc:
        raise Unresolvable(host) from exc
    networks = tuple(allowed)
    addresses = [ipaddress.ip_address(info[4][0]) for info in infos]
    refused = [a for a in addresses if not permitted(a, networks)]
    if not addresses or refused:
        raise ForbiddenAddress(str(refused[0]) if refused else host)
    return addresses[0]


@dataclass(frozen=True, slots=True)
class Pinned:
    """A request to a URL, addressed to an already checked IP address."""

    url: str  # the URL with the checked address in place of the host name
    host_header: str  # Host: the original host (and port)
    sni_hostname: str  # TLS server name and certificate name: the original host

    @property
    def extensions(self) -> dict[str, str]:
        """httpx request extensions carrying the SNI name."""
        return {"sni_hostname": self.sni_hostname}


def pinned(url: str, address: IPAddress) -> Pinned:
    """`url` addressed to `address` (see Pinned)."""
    parts = urlsplit(url)
    literal = f"[{address}]" if isinstance(address, ipaddress.IPv6Address) else str(address)
    netloc = literal + (f":{parts.port}" if parts.port else "")
    return Pinned(
        url=urlunsplit((parts.scheme, netloc, parts.path or "/", parts.query, "")),
        host_header=parts.netloc.rsplit("@", 1)[-1],
        sni_hostname=parts.hostname or "",
    )
