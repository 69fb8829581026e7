"""Service discovery: instance records, leases, health, watches, load-balancing pickers, stores.

In the control plane::

    from minga.discovery import API_PREFIX, discovery_app, registry_from_spec

    # the store minga.yaml names (embedded at home/registry.json, or etcd), its ttl, and a check
    # for every service with `health:`; the same as
    # Registry(EmbeddedStore(home / "registry.json"), checks={...}, default_ttl=spec.discovery.ttl)
    async with registry_from_spec(spec, home) as registry:
        app.add_subapp(API_PREFIX, discovery_app(registry))   # "/v1/discovery": JSON API + /http_sd
        ...
        # the supervisor, the moment a child process exits:
        await registry.mark_critical(instance_id, "exited with signal 9")

Without a control plane, ``async with serve_registry(registry) as url:`` serves the same API on
its own (a free loopback port unless told), for replicas to reach at ``url``.

In a replica (or the gateway)::

    from minga.discovery import DiscoveryClient, Instance, new_instance_id

    # the control plane's URL (its root, or .../v1/discovery), or a store such as EtcdStore(url)
    async with DiscoveryClient(os.environ["MINGA_DISCOVERY_URL"]) as client:
        await client.register(Instance(id=os.environ["MINGA_INSTANCE"], service="orders",
                                       ports={"http": http_port, "metrics": metrics_port}), ttl=5)
        with client.picker("inventory", "p2c").request() as inst:     # round_robin | random | p2c
            ...  # talk to inst.address
        await client.deregister(instance_id)                          # graceful stop

A service replica run by ``python -m minga.service`` registers itself through
``replica_registrar(MINGA_DISCOVERY_URL, env)``, a factory for its runner's registrar.

Semantics:

- :class:`Instance`: id, service, version, host, ports, tags, metadata, started_at (Unix s),
  health (:class:`Health`: passing / warning / critical), output (why), restarts.
- Leases: a registration with ``ttl`` seconds disappears (watchers see ``delete``) unless
  renewed within ttl; :class:`DiscoveryClient` renews every ttl/3.
- Health: active checks (HTTP GET 2xx/429 from the expected instance, or TCP connect;
  :func:`check_once`, :func:`probe`, :class:`Identity`) run by the
  :class:`Registry` on each checked service's interval; :meth:`Registry.mark_critical` takes an
  instance out of every picker at once and keeps it critical until it registers again.
- Watches: :meth:`Store.watch` gives a snapshot, then every change, pushed (never polled).
- Pickers read the :class:`InstanceCache` at each pick and choose among passing instances
  (warning ones only when none passes); :class:`~minga.errors.NoInstanceError` when none.
- Stores (the :class:`Store` protocol): :class:`EmbeddedStore` (in memory, persisted as JSON,
  reloaded with fresh leases), :class:`EtcdStore` (etcd v3 leases + watch through its JSON
  gateway), :class:`HttpStore` (a control plane's API).
"""

from minga.discovery._checks import Identity, check_once, probe
from minga.discovery._client import DiscoveryClient
from minga.discovery._etcd import EtcdStore
from minga.discovery._fromspec import registry_from_spec, store_from_spec
from minga.discovery._http import discovery_app, serve_registry
from minga.discovery._httpstore import API_PREFIX, HttpStore
from minga.discovery._model import Health, Instance, WatchEvent, new_instance_id
from minga.discovery._pickers import (
    InstanceCache,
    Picker,
    PowerOfTwoChoices,
    RandomPicker,
    RoundRobin,
    Strategy,
    make_picker,
)
from minga.discovery._registry import Registry
from minga.discovery._replica import ReplicaInfo, ReplicaRegistrar, replica_registrar
from minga.discovery._store import EmbeddedStore, Snapshot, Store, Watch

__all__ = [
    "API_PREFIX",
    "DiscoveryClient",
    "EmbeddedStore",
    "EtcdStore",
    "Health",
    "HttpStore",
    "Identity",
    "Instance",
    "InstanceCache",
    "Picker",
    "PowerOfTwoChoices",
    "RandomPicker",
    "Registry",
    "ReplicaInfo",
    "ReplicaRegistrar",
    "RoundRobin",
    "Snapshot",
    "Store",
    "Strategy",
    "Watch",
    "WatchEvent",
    "check_once",
    "discovery_app",
    "make_picker",
    "new_instance_id",
    "probe",
    "registry_from_spec",
    "replica_registrar",
    "serve_registry",
    "store_from_spec",
]
