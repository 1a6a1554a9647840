"""Trusted reverse proxies: sites that authenticate staff at a proxy (Shibboleth SP, mod_auth_openidc)
send the staff id in X-LDE-Staff. The header is honoured only from the configured addresses; from
anywhere else it is ignored (a forged header gives no identity). The same addresses are the only ones
whose X-Forwarded-For is believed when LDE asks which client a request came from (`client_address`:
the rate limits count per client, not per proxy, which every member of staff would share). Pure."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

#: The header naming the member of staff a request is made for: honoured from trusted proxies only
#: (the command line sends it with the local operator token, see ops.runtime.client).
STAFF_HEADER = "X-LDE-Staff"

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class BadProxySetting(ValueError):
    """LDE_TRUSTED_PROXIES holds something that is not an address or CIDR."""


def parse_networks(entries: Iterable[str]) -> tuple[Network, ...]:
    """Addresses or CIDRs (`10.0.0.5`, `10.0.0.0/24`, `::1`). Raises BadProxySetting naming the entry."""
    out = []
    for entry in entries:
        try:
            out.append(ipaddress.ip_network(entry.strip(), strict=False))
        except ValueError:
            raise BadProxySetting(
                f"LDE_TRUSTED_PROXIES: {entry!r} is not an IP address or CIDR (e.g. 10.0.0.5/32)"
            ) from None
    return tuple(out)


#: The header a reverse proxy names the client in (each proxy appends the address it was reached from).
FORWARDED_FOR = "X-Forwarded-For"


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        address = ipaddress.ip_address(text.strip().split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def client_address(peer: str | None, forwarded_for: str | None, networks: tuple[Network, ...]) -> str:
    """The client a request came from: the TCP peer, unless the peer is a trusted proxy; then the
    right-most X-Forwarded-For hop that is not a trusted proxy (hops to its left were written by the
    client and prove nothing). A malformed hop stops the walk at the last proxy that wrote a good one."""
    fallback = peer or "unknown"
    if not forwarded_for or not is_trusted(peer, networks):
        return fallback
    nearest = fallback
    for hop in reversed(forwarded_for.split(",")[-32:]):
        address = _address(hop)
        if address is None:
            return nearest
        if not any(address in network for network in networks):
            return str(address)
        nearest = str(address)
    return nearest


def is_trusted(peer: str | None, networks: tuple[Network, ...]) -> bool:
    """Whether the TCP peer (never a forwarded-for header, which a client can write) is a trusted proxy."""
    if not peer or not networks:
        return False
    address = _address(peer)
    return address is not None and any(address in network for network in networks)
