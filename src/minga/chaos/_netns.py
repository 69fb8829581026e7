"""Hosts on one machine: network namespaces joined by a switch of their own, and faults on them.

:class:`Network` makes one namespace per host, each with its own address on a bridge that
lives in a further namespace (the switch), so nothing is added to the machine's own network:
the root namespace gains no interface, no route and no firewall rule. Processes started on a
host (:meth:`Network.spawn`) see only that host's interfaces. Faults act inside one host's
namespace: :meth:`partition` drops every packet on its link (silently, as a cut cable or a
firewall does, not with an error), :meth:`heal` lifts it, :meth:`kill` and :meth:`pause` act on
the processes started there.

Making namespaces needs root (CAP_SYS_ADMIN and CAP_NET_ADMIN); :func:`available` says whether
this process can. Namespaces are named ``mg<pid>-<n>-<host>``; :meth:`Network.sweep` removes
those of processes that died without closing their network.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import re
import signal
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from minga.errors import UsageError

__all__ = ["FAULTS", "Host", "Network", "available"]

_SUBNET = "10.77.0"
_counter = itertools.count(1)
_NAME = re.compile(r"^mg(\d+)-\d+-")


def _ip(*args: str) -> None:
    done = subprocess.run(["ip", *args], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise UsageError(f"ip {' '.join(args)}: {done.stderr.strip() or done.returncode}")


def available() -> str | None:
    """None when this process can make network namespaces, else the reason it cannot."""
    if os.geteuid() != 0:
        return "network namespaces need root"
    try:
        done = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=False)
    except FileNotFoundError:
        return "the ip command (iproute2) is not installed: apt-get install iproute2"
    if done.returncode != 0:
        return f"ip netns does not work here: {done.stderr.strip()}"
    return None


@dataclass
class Host:
    """One host: its name, its namespace, its address, and the processes started on it."""

    name: str
    netns: str
    address: str
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)
    commands: list[tuple[tuple[str, ...], Path]] = field(
        default_factory=list
    )  # what spawn started, for restart


class Network:
    """Hosts as network namespaces on one subnet (10.77.0.0/24), made on entry, removed on exit.

    >>> with Network(["n1", "n2", "client"]) as net:          # doctest: +SKIP
    ...     net.spawn("n1", ["nats-server", "-a", net.address("n1")])
    ...     net.partition("n1")
    """

    def __init__(self, hosts: Sequence[str]) -> None:
        if not hosts or len(set(hosts)) != len(hosts) or len(hosts) > 200:
            raise UsageError("a network needs 1 to 200 hosts of distinct names")
        for name in hosts:
            if not re.fullmatch(r"[a-z][a-z0-9]{0,7}", name):
                raise UsageError(
                    f"host name {name!r}: use 1 to 8 lowercase letters and digits, a letter first"
                )
        self.prefix = f"mg{os.getpid()}-{next(_counter)}"
        self.switch = f"{self.prefix}-sw"
        self.hosts = {
            name: Host(name, f"{self.prefix}-{name}", f"{_SUBNET}.{i}") for i, name in enumerate(hosts, 1)
        }
        self._made: list[str] = []
        self._cut: set[str] = set()

    # -- lifecycle ------------------------------------------------------------------------

    def __enter__(self) -> Network:
        self.create()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def create(self) -> None:
        reason = available()
        if reason is not None:
            raise UsageError(f"cannot make hosts: {reason}")
        try:
            self._add(self.switch)
            _ip("-n", self.switch, "link", "add", "br0", "type", "bridge")
            _ip("-n", self.switch, "link", "set", "br0", "up")
            for i, host in enumerate(self.hosts.values(), 1):
                self._add(host.netns)
                _ip(
                    "-n",
                    self.switch,
                    "link",
                    "add",
                    f"v{i}",
                    "type",
                    "veth",
                    "peer",
                    "name",
                    "eth0",
                    "netns",
                    host.netns,
                )
                _ip("-n", self.switch, "link", "set", f"v{i}", "master", "br0", "up")
                _ip("-n", host.netns, "addr", "add", f"{host.address}/24", "dev", "eth0")
                _ip("-n", host.netns, "link", "set", "eth0", "up")
        except BaseException:
            self.close()
            raise

    def _add(self, netns: str) -> None:
        _ip("netns", "add", netns)
        self._made.append(netns)
        _ip("-n", netns, "link", "set", "lo", "up")

    def close(self) -> None:
        """Stop every process started on the hosts and remove the namespaces."""
        for host in self.hosts.values():
            for process in host.processes:
                _signal(process, signal.SIGKILL)
            for process in host.processes:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    process.wait(timeout=10)
            host.processes.clear()
        for netns in reversed(self._made):
            with contextlib.suppress(UsageError):
                _ip("netns", "del", netns)
        self._made.clear()

    @staticmethod
    def sweep() -> list[str]:
        """Remove the namespaces left by processes that died without closing their network."""
        removed = []
        runs = Path("/run/netns")
        for path in sorted(runs.iterdir()) if runs.is_dir() else []:
            match = _NAME.match(path.name)
            if match is None or Path(f"/proc/{match.group(1)}").exists():
                continue
            with contextlib.suppress(UsageError):
                _ip("netns", "del", path.name)
                removed.append(path.name)
        return removed

    # -- hosts and processes ------------------------------------------------------------------

    def host(self, name: str) -> Host:
        try:
            return self.hosts[name]
        except KeyError:
            raise UsageError(f"no host {name!r}: the hosts are {', '.join(self.hosts)}") from None

    def address(self, name: str) -> str:
        return self.host(name).address

    def spawn(self, name: str, argv: Sequence[str], *, log: Path) -> subprocess.Popen[bytes]:
        """Start ``argv`` on host ``name``, in a process group of its own, its output to ``log``."""
        host = self.host(name)
        host.commands.append((tuple(argv), log))
        return self._start(host, argv, log)

    def _start(self, host: Host, argv: Sequence[str], log: Path) -> subprocess.Popen[bytes]:
        with log.open("ab") as out:
            process = subprocess.Popen(
                ["ip", "netns", "exec", host.netns, *argv],
                start_new_session=True,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        host.processes.append(process)
        return process

    def run(
        self, name: str, argv: Sequence[str], *, timeout: float = 30.0
    ) -> subprocess.CompletedProcess[str]:
        """Run ``argv`` on host ``name`` to its end and return what it printed."""
        return subprocess.run(
            ["ip", "netns", "exec", self.host(name).netns, *argv],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    # -- faults ---------------------------------------------------------------------------

    def partition(self, name: str) -> None:
        """Drop every packet into and out of host ``name``'s link, silently, until :meth:`heal`."""
        host = self.host(name)
        if name in self._cut:
            return
        for chain, flag in (("INPUT", "-i"), ("OUTPUT", "-o")):
            done = self.run(name, ["iptables", "-I", chain, flag, "eth0", "-j", "DROP"])
            if done.returncode != 0:
                raise UsageError(f"cannot partition {host.name}: {done.stderr.strip()}")
        self._cut.add(name)

    def heal(self, name: str) -> None:
        """Lift the partition of host ``name``."""
        if name not in self._cut:
            return
        for chain, flag in (("INPUT", "-i"), ("OUTPUT", "-o")):
            self.run(name, ["iptables", "-D", chain, flag, "eth0", "-j", "DROP"])
        self._cut.discard(name)

    def kill(self, name: str) -> None:
        """SIGKILL every process started on host ``name``."""
        for process in self.host(name).processes:
            _signal(process, signal.SIGKILL)

    def pause(self, name: str) -> None:
        """SIGSTOP every process started on host ``name`` (it neither answers nor times out)."""
        for process in self.host(name).processes:
            _signal(process, signal.SIGSTOP)

    def resume(self, name: str) -> None:
        """SIGCONT what :meth:`pause` stopped."""
        for process in self.host(name).processes:
            _signal(process, signal.SIGCONT)

    def inject(self, fault: str, name: str) -> None:
        """Begin ``fault`` (one of :data:`FAULTS`) on host ``name``."""
        {"partition": self.partition, "kill": self.kill, "pause": self.pause}[_fault(fault)](name)

    def lift(self, fault: str, name: str) -> None:
        """End ``fault`` on host ``name``: heal, restart what was killed, resume what was paused."""
        {"partition": self.heal, "kill": self.restart, "pause": self.resume}[_fault(fault)](name)

    def restart(self, name: str) -> None:
        """Start again, after :meth:`kill`, every command spawned on host ``name``."""
        host = self.host(name)
        for process in host.processes:
            _signal(process, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=10)
        host.processes.clear()
        for argv, log in host.commands:
            self._start(host, argv, log)


FAULTS = ("partition", "kill", "pause")


def _fault(fault: str) -> str:
    if fault not in FAULTS:
        raise UsageError(f"no fault {fault!r}: choose {', '.join(FAULTS)}")
    return fault


def _signal(process: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
