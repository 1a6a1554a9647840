"""Trusted reverse proxies: sites that authenticate staff at a proxy (Shibboleth SP, mod_auth_openidc)
send the staff id in X-LDE-Staff. The header is honoured only from the configured addresses; from
anywhere else it is ignored (a forged header gives no identity). Pure."""

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


def is_trusted(peer: str | None, networks: tuple[Network, ...]) -> bool:
    """Whether the TCP peer (never a forwarded-for header, which a client can write) is a trusted proxy."""
    if not peer or not networks:
        return False
    try:
        address = ipaddress.ip_address(peer.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return any(address in network for network in networks)
