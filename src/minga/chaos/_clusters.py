"""Real engines on the hosts of a :class:`Network`: a nats-server cluster with JetStream, and
an etcd cluster.

Each node listens on its host's address only (nats: 4222 for clients, 6222 for routes; etcd:
2379 and 2380), keeps its store under ``root`` and logs to ``root/NODE.log``.
"""

from __future__ import annotations

import json
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

from minga.chaos._netns import Network
from minga.errors import UsageError

__all__ = ["client_urls", "etcd_leader", "start_etcd_cluster", "start_nats_cluster", "stream_leader"]

CLIENT_PORT = 4222
ROUTE_PORT = 6222


def start_nats_cluster(net: Network, nodes: Sequence[str], root: Path, *, name: str = "minga") -> list[str]:
    """Start nats-server on each of ``nodes``, clustered with JetStream; return the client URLs."""
    binary = shutil.which("nats-server")
    if binary is None:
        raise UsageError("nats-server is not installed: apt-get install nats-server")
    for node in nodes:
        me = net.address(node)
        routes = ", ".join(f"nats://{net.address(other)}:{ROUTE_PORT}" for other in nodes if other != node)
        conf = root / f"{node}.conf"
        conf.write_text(
            f"server_name: {json.dumps(node)}\n"
            f'listen: "{me}:{CLIENT_PORT}"\n'
            f"jetstream {{ store_dir: {json.dumps(str(root / node))} }}\n"
            f'cluster {{ name: {json.dumps(name)}, listen: "{me}:{ROUTE_PORT}", routes: [{routes}] }}\n'
        )
        conf.chmod(0o600)
        net.spawn(node, [binary, "-c", str(conf)], log=root / f"{node}.log")
    return client_urls(net, nodes)


def client_urls(net: Network, nodes: Sequence[str]) -> list[str]:
    return [f"nats://{net.address(node)}:{CLIENT_PORT}" for node in nodes]


_LEADER = """
import asyncio, json, sys
import nats

async def main():
    nc = await nats.connect(sys.argv[1], connect_timeout=2)
    reply = await nc.request("$JS.API.STREAM.INFO." + sys.argv[2], b"", timeout=2)
    print(json.loads(reply.data).get("cluster", {}).get("leader", ""))
    await nc.close()

asyncio.run(main())
"""


def stream_leader(net: Network, client: str, url: str, stream: str) -> str | None:
    """The node that leads ``stream``, asked from host ``client`` through ``url``; None if unknown."""
    done = net.run(client, [sys.executable, "-c", _LEADER, url, stream], timeout=20)
    leader = done.stdout.strip()
    return leader or None


ETCD_CLIENT_PORT = 2379
ETCD_PEER_PORT = 2380


def start_etcd_cluster(net: Network, nodes: Sequence[str], root: Path, *, token: str = "minga") -> list[str]:
    """Start an etcd member on each of ``nodes`` as one cluster; return the client URLs."""
    binary = shutil.which("etcd")
    if binary is None:
        raise UsageError("etcd is not installed: apt-get install etcd-server")
    peers = ",".join(f"{node}=http://{net.address(node)}:{ETCD_PEER_PORT}" for node in nodes)
    for node in nodes:
        me = net.address(node)
        data = root / f"{node}.etcd"
        argv = [
            binary,
            "--name", node,
            "--data-dir", str(data),
            "--listen-client-urls", f"http://{me}:{ETCD_CLIENT_PORT}",
            "--advertise-client-urls", f"http://{me}:{ETCD_CLIENT_PORT}",
            "--listen-peer-urls", f"http://{me}:{ETCD_PEER_PORT}",
            "--initial-advertise-peer-urls", f"http://{me}:{ETCD_PEER_PORT}",
            "--initial-cluster", peers,
            "--initial-cluster-token", token,
            "--initial-cluster-state", "new",
        ]  # fmt: skip
        net.spawn(node, argv, log=root / f"{node}.log")
    return [f"http://{net.address(node)}:{ETCD_CLIENT_PORT}" for node in nodes]


_ETCD_LEADER = """
import json, sys, urllib.request

for i, url in enumerate(sys.argv[1:]):
    try:
        req = urllib.request.Request(url + "/v3/maintenance/status", data=b"{}", method="POST")
        status = json.load(urllib.request.urlopen(req, timeout=2))
    except OSError:
        continue
    if status.get("leader") == status.get("header", {}).get("member_id"):
        print(i)
        break
"""


def etcd_leader(net: Network, client: str, urls: Sequence[str], nodes: Sequence[str]) -> str | None:
    """The node whose etcd member leads, asked from host ``client``; None if none answers so."""
    done = net.run(client, [sys.executable, "-c", _ETCD_LEADER, *urls], timeout=20)
    index = done.stdout.strip()
    return nodes[int(index)] if index.isdigit() else None
