"""The checks at trust boundaries, one by one: JSON depth, host names, addresses the control plane
will not connect to, credentials and their identities."""

from __future__ import annotations

import pytest

from minga.security import Credentials, Role, check_host, json_depth, load_json, refused_address


def test_json_is_strict_and_shallow() -> None:
    assert load_json(b'{"a": [1, {"b": 2}]}') == {"a": [1, {"b": 2}]}
    assert json_depth({"a": [1, {"b": 2}]}) == 3 and json_depth(5) == 0
    assert load_json("[" * 32 + "]" * 32) is not None
    for raw, why in (
        ("[" * 33 + "]" * 33, "nests deeper than 32 levels"),
        ("[" * 100_000 + "]" * 100_000, "nests deeper than 32 levels"),  # past the parser's recursion
        ("NaN", "NaN is not a JSON number"),
        ("-Infinity", "-Infinity is not a JSON number"),
        ("{", "invalid JSON"),
        (b"\xff", "not UTF-8"),
    ):
        with pytest.raises(ValueError, match=why):
            load_json(raw)


def test_hosts_are_addresses_or_names() -> None:
    assert check_host("fe80::1") == "fe80::1" and check_host("a-b.example.") == "a-b.example."
    for bad in ("a\rb", "a\x00", "a/b", "a:b", "é.example", "a" * 64 + ".example"):
        with pytest.raises(ValueError, match="an IP address or a host name"):
            check_host(bad)


def test_metadata_and_link_local_addresses_are_not_scraped() -> None:
    for host in ("169.254.169.254", "fe80::1", "fd00:ec2::254", "100.100.100.200", "0.0.0.0", "224.0.0.1"):
        assert refused_address(host) is not None, host
    for host in ("127.0.0.1", "10.1.2.3", "::1", "orders.internal"):
        assert refused_address(host) is None, host
    assert refused_address("169.254.169.254", ["169.254.0.0/16"]) is None


def test_a_replica_credential_names_one_instance_and_cannot_be_forged() -> None:
    creds = Credentials.generate()
    token = creds.replica_token("orders", "orders-1")
    who = creds.identify(token)
    assert who is not None and (who.role, who.service, who.instance) == (Role.REPLICA, "orders", "orders-1")
    forged = token.replace("orders-1", "orders-2")
    assert creds.identify(forged) is None
    assert Credentials.generate().identify(token) is None, "another home's key does not sign it"
    assert creds.identify(creds.read) is not None and creds.identify(creds.read).role is Role.READ  # type: ignore[union-attr]
    assert creds.identify("") is None and creds.identify(None) is None
