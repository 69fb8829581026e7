"""Faults on 3-node clusters of the real engines, whose nodes are hosts of their own (network
namespaces made by the test): the histories recorded through each fault are checked."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

from minga.chaos import Network, run_scenario

pytestmark = pytest.mark.engine


def test_a_partitioned_nats_leader_loses_no_acknowledged_job_and_the_kv_stays_linearizable(
    tmp_path: Path,
) -> None:
    run = run_scenario("nats", "partition", tmp_path, seconds=12, hold=5)
    report = run.report
    assert report.linearizable is True
    assert report.queue_ok is True and report.lost == 0
    assert report.unknown > 0  # the fault bit: operations timed out while the leader was cut off
    assert report.recovery is not None  # and writes succeeded again
    enqueued = sum(1 for e in run.events if e.f == "enqueue" and e.type == "ok")
    assert enqueued >= 100  # those that answered; the others timed out while the leader was away


def test_a_paused_etcd_leader_loses_no_acknowledged_write(tmp_path: Path) -> None:
    run = run_scenario("etcd", "pause", tmp_path, seconds=10, hold=4)
    report = run.report
    assert report.linearizable is True, run.report
    assert report.queue_ok is None  # etcd runs the key-value workload only
    assert report.ok > 200 and report.recovery is not None


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
        net.inject("partition", "b")
        cut = net.run("a", connect)
        assert cut.returncode != 0 and "timed out" in cut.stderr  # dropped, not refused
        net.lift("partition", "b")
        assert net.run("a", connect).returncode == 0
        listed = net.run("a", ["ip", "-o", "link"]).stdout
        assert "eth0" in listed and "br0" not in listed  # a host sees its own link, not the switch
        names = {host.netns for host in net.hosts.values()} | {net.switch}
    left = {p.name for p in Path("/run/netns").iterdir()} if Path("/run/netns").is_dir() else set()
    assert not names & left
