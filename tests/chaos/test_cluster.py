"""Faults on a 3-node nats-server cluster whose nodes are hosts of their own (network
namespaces made by the test): the histories recorded through the faults are checked."""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

import pytest
from tests.support import eventually

from minga.chaos import (
    Network,
    Recorder,
    check_queue,
    check_registers,
    load_history,
    start_nats_cluster,
    stream_leader,
)
from minga.chaos._workloads import ACK_WAIT

pytestmark = pytest.mark.engine

NODES = ("n1", "n2", "n3")


async def test_a_partitioned_leader_loses_no_acknowledged_job_and_the_kv_stays_linearizable(
    tmp_path: Path,
) -> None:
    with Network([*NODES, "client"]) as net:
        urls = start_nats_cluster(net, NODES, tmp_path)
        origin = time.monotonic()
        history = tmp_path / "workload.jsonl"
        servers = [arg for url in urls for arg in ("--server", url)]
        argv = [sys.executable, "-m", "minga", "chaos", "workload", "-o", str(history), *servers]
        argv += ["--replicas", "3", "--seconds", "12", "--messages", "300", "--origin", str(origin)]
        workload = net.spawn("client", argv, log=tmp_path / "workload.log")
        nemesis = Recorder(tmp_path / "nemesis.jsonl", origin=origin)

        async def answered() -> bool:
            return history.exists() and '"type":"ok"' in history.read_text()

        await eventually("the workload's first answers", answered, 60)
        # cut off the node that leads the KV's stream: the others must elect a new leader
        leader = await asyncio.to_thread(stream_leader, net, "client", urls[1], "KV_history")
        assert leader in NODES
        nemesis.invoke("nemesis", "partition", leader)
        net.partition(leader)
        await asyncio.sleep(5)
        net.heal(leader)
        nemesis.complete("nemesis", "ok", "partition", leader)
        nemesis.close()
        assert await asyncio.to_thread(workload.wait, 120) == 0, (tmp_path / "workload.log").read_text()[
            -2000:
        ]
    events = load_history(history) + load_history(tmp_path / "nemesis.jsonl")
    registers = check_registers(events)
    assert registers.valid is True, "\n".join(k.describe() for k in registers.keys)
    work = check_queue(events, ack_wait=ACK_WAIT)
    assert work.valid, "\n".join(a.describe() for a in work.anomalies)
    # the jobs whose enqueue answered (the others timed out while the leader was away) all came back
    assert work.enqueued >= 100 and work.acknowledged == work.enqueued
    # the fault bit: some operations timed out while the leader was away
    assert any(e.type == "info" for e in events)


LISTEN = (
    "import socket, sys, time; s = socket.socket(); s.bind((sys.argv[1], 7000)); s.listen(); time.sleep(60)"
)
CONNECT = "import socket, sys; socket.create_connection((sys.argv[1], 7000), timeout=1)"


def test_hosts_are_namespaces_of_their_own_and_a_partition_is_silent(tmp_path: Path) -> None:
    with Network(["a", "b"]) as net:
        b = net.address("b")
        net.spawn("b", [sys.executable, "-c", LISTEN, b], log=tmp_path / "b.log")
        connect = [sys.executable, "-c", CONNECT, b]
        first = net.run("a", connect)
        for _ in range(50):  # the listener is up within a few seconds
            if first.returncode == 0:
                break
            time.sleep(0.1)
            first = net.run("a", connect)
        assert first.returncode == 0, first.stderr
        net.partition("b")
        cut = net.run("a", connect)
        assert cut.returncode != 0 and "timed out" in cut.stderr  # dropped, not refused
        net.heal("b")
        assert net.run("a", connect).returncode == 0
        listed = net.run("a", ["ip", "-o", "link"]).stdout
        assert "eth0" in listed and "br0" not in listed  # a host sees its own link, not the switch
        names = {host.netns for host in net.hosts.values()} | {net.switch}
    left = {p.name for p in Path("/run/netns").iterdir()} if Path("/run/netns").is_dir() else set()
    assert not names & left
