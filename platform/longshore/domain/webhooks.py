"""Where a webhook may be delivered: never to the platform's own networks unless an operator allows them.

A job's webhook is a URL its submitter chose, POSTed from inside the installation: without a rule it
would reach loopback services (a worker pod's Docker engine), private networks, and cloud metadata.
Addresses that are loopback, private, link-local, multicast, reserved or unspecified are refused unless
they are in LONGSHORE_WEBHOOK_ALLOW_NETWORKS (e.g. `10.1.0.0/16` for an in-house receiver)."""

from __future__ import annotations

import ipaddress
from typing import Iterable

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(text: str) -> tuple[Network, ...]:
    """`10.0.0.0/8, 127.0.0.1/32` → networks; ValueError naming a bad one."""
    return tuple(ipaddress.ip_network(part.strip(), strict=False) for part in text.split(",") if part.strip())


def refused_address(address: str, allowed: Iterable[Network]) -> bool:
    """True when a webhook must not be delivered to `address` (an IP)."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    if any(ip in network for network in allowed):
        return False
    return not ip.is_global or ip.is_multicast or ip.is_reserved or ip.is_unspecified
