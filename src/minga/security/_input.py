"""Input that crosses a trust boundary: JSON bodies of bounded depth, host names without tricks,
and the addresses the control plane agrees to connect to."""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Iterable
from typing import Any

__all__ = [
    "MAX_JSON_DEPTH",
    "check_host",
    "json_depth",
    "load_json",
    "refused_address",
]

MAX_JSON_DEPTH = 32
"""How deep a JSON document from a client may nest (objects and arrays)."""

# cloud instance metadata services outside the link-local range (AWS over IPv6, Alibaba)
_METADATA = frozenset({ipaddress.ip_address("fd00:ec2::254"), ipaddress.ip_address("100.100.100.200")})

_LABEL = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")


def json_depth(value: Any) -> int:
    """How deep ``value`` nests (a scalar: 0, ``[]``: 1, ``{"a": [1]}``: 2), found without recursion."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            depth += 1
            stack.extend((v, depth) for v in item.values())
        elif isinstance(item, list):
            depth += 1
            stack.extend((v, depth) for v in item)
        deepest = max(deepest, depth)
    return deepest


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def load_json(raw: str | bytes, *, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """Parse strict JSON (no NaN or Infinity) nesting at most ``max_depth`` deep.

    Raises ValueError with a message fit for the client: invalid JSON, a non-finite number, or
    nesting too deep.
    """
    try:
        value = json.loads(raw, parse_constant=_no_constant)
    except RecursionError:
        raise ValueError(f"the JSON nests deeper than {max_depth} levels") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"invalid JSON: {exc}") from None
    except UnicodeDecodeError:
        raise ValueError("invalid JSON: not UTF-8") from None
    if json_depth(value) > max_depth:
        raise ValueError(f"the JSON nests deeper than {max_depth} levels")
    return value


def check_host(host: str) -> str:
    """``host`` when it is an IP address or a DNS host name (letters, digits, hyphens, dots; no
    spaces or control characters, 253 characters at most); ValueError otherwise."""
    if not isinstance(host, str) or not host:
        raise ValueError("a host must be an IP address or a host name, found nothing")
    try:
        ipaddress.ip_address(host)
        return host
    except ValueError:
        pass
    name = host[:-1] if host.endswith(".") else host
    if len(name) > 253 or not all(_LABEL.match(label) for label in name.split(".")):
        raise ValueError(f"a host must be an IP address or a host name, found {host[:80]!r}")
    return host


def refused_address(host: str, allow: Iterable[str] = ()) -> str | None:
    """Why the control plane will not connect to ``host`` (a link-local, cloud metadata, multicast
    or unspecified address), or ``None`` when it may. ``allow`` lists networks (CIDR) let through
    anyway. Host names are not resolved here: they are let through."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return None
    for network in allow:
        if address in ipaddress.ip_network(network, strict=False):
            return None
    if address in _METADATA:
        return f"{host} is a cloud metadata address"
    if address.is_link_local:
        return f"{host} is a link-local address (cloud metadata lives there)"
    if address.is_multicast or address.is_unspecified or (address.is_reserved and not address.is_loopback):
        return f"{host} is not a unicast host address"
    return None
