"""Which address a request comes from, for rate limits and login throttling. Behind a proxy
the peer is the proxy: the client is then read from X-Forwarded-For, but only the part that
the configured trusted proxies appended (walking the list from the right, the first address
that is not a trusted proxy). A header from anyone else is ignored, so a client cannot pick
the address it is counted under."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from functools import lru_cache

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(entries: Iterable[str]) -> tuple[Network, ...]:
    """`10.0.0.1`, `10.0.0.0/8`, `::1`: a host or a network each (ValueError otherwise)."""
    return tuple(ipaddress.ip_network(entry.strip(), strict=False) for entry in entries if entry.strip())


class ClientAddresses:
    def __init__(self, trusted_proxies: Iterable[str] = ()) -> None:
        self.trusted = parse_networks(trusted_proxies)
        self._is_trusted = lru_cache(maxsize=4096)(self._trusted)

    def _trusted(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in network for network in self.trusted)

    def of(self, peer: str | None, forwarded_for: str | None) -> str | None:
        """The client's address, given the peer's and the X-Forwarded-For header (if any)."""
        if peer is None or not self.trusted or not self._is_trusted(peer) or not forwarded_for:
            return peer
        hops = [hop.strip() for hop in forwarded_for.split(",")][-32:]
        for hop in reversed(hops):
            if not hop:
                break
            if not self._is_trusted(hop):
                return hop if _is_address(hop) else peer
        return peer  # every hop a trusted proxy: the nearest one is as far as we can tell


def _is_address(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True
