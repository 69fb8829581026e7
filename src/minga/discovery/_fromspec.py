"""The registry a minga.yaml asks for: its store (``discovery:``) and its checks (each service's ``health:``)."""

from __future__ import annotations

import os
from pathlib import Path

from minga.discovery._etcd import EtcdStore
from minga.discovery._registry import Registry
from minga.discovery._store import EmbeddedStore, Store
from minga.spec import DiscoverySpec, Spec

REGISTRY_FILE = "registry.json"


def store_from_spec(discovery: DiscoverySpec, home: str | os.PathLike[str]) -> Store:
    """``discovery: embedded`` -> :class:`EmbeddedStore` persisted at ``home/registry.json``;
    an etcd URL -> :class:`EtcdStore` under ``discovery.prefix``."""
    if discovery.store == "etcd":
        assert discovery.url is not None  # the spec's own validation requires it
        return EtcdStore(discovery.url, prefix=discovery.prefix)
    return EmbeddedStore(Path(home) / REGISTRY_FILE)


def registry_from_spec(spec: Spec, home: str | os.PathLike[str]) -> Registry:
    """The control plane's :class:`Registry` for ``spec``: its store, the default lease ttl, and
    an active check for every service that declares ``health:``."""
    checks = {name: svc.health for name, svc in spec.services.items() if svc.health is not None}
    return Registry(store_from_spec(spec.discovery, home), checks=checks, default_ttl=spec.discovery.ttl)
