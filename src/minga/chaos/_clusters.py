"""Real engines on the hosts of a :class:`Network`: a nats-server cluster with JetStream.

Each node listens on its host's address only (4222 for clients, 6222 for routes), keeps its
JetStream store under ``root/NODE``, and routes to the others; its log is ``root/NODE.log``.
"""

from __future__ import annotations

import json
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

from minga.chaos._netns import Network
from minga.errors import UsageError

__all__ = ["client_urls", "start_nats_cluster", "stream_leader"]

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
