"""The client's address: the socket peer, or a forwarded address vouched for by a trusted proxy."""
from __future__ import annotations

import ipaddress
from typing import Optional, Sequence

from .config import Network

IPV6_THROTTLE_PREFIX = 64


def _ip(text: str) -> Optional[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    try:
        ip = ipaddress.ip_address(text.strip().strip("[]"))
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def _trusted(ip: ipaddress.IPv4Address | ipaddress.IPv6Address, trusted: Sequence[Network]) -> bool:
    return any(ip.version == net.version and ip in net for net in trusted)


def client_address(peer: str, forwarded_for: Optional[str], trusted: Sequence[Network]) -> str:
    """Walk X-Forwarded-For from the right, past trusted proxies only; never believe the rest."""
    current = _ip(peer)
    if current is None:
        return peer
    hops = [h for h in (forwarded_for or "").split(",") if h.strip()]
    while hops and _trusted(current, trusted):
        nxt = _ip(hops.pop())
        if nxt is None:
            break
        current = nxt
    return str(current)


def throttle_key(address: str) -> str:
    """The key per-address throttles count under: an IPv6 client's /64 (one subscriber's usual
    allocation, so rotating addresses inside it gains nothing), an IPv4 address as it is."""
    ip = _ip(address)
    if ip is None:
        return address
    if ip.version == 4:
        return str(ip)
    return str(ipaddress.IPv6Network((int(ip), IPV6_THROTTLE_PREFIX), strict=False))
