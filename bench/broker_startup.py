"""How soon a freshly started broker accepts clients: ``minga broker`` against nats-server.

    python bench/broker_startup.py [--rounds 10] [--jetstream]

Each round starts nats-server and then ``minga broker`` (the ``minga`` command, run by this
interpreter) on free loopback ports, and times from the spawn to the first INFO line a TCP
client reads: what a client reconnecting after a restart waits for. With ``--jetstream`` both
run with JetStream on a fresh store directory. Prints every round, then the medians and the
minga / nats-server ratio. Target: ``minga broker`` accepts within 0.2 s (median).

minga is measured as an installed package runs: with its bytecode cached. The children run
without ``PYTHONDONTWRITEBYTECODE``, and a first round that is not counted writes the caches.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from minga.discovery.ports import free_port

TARGET_S = 0.2


def time_to_info(argv: list[str], port: int, limit: float = 20.0) -> float:
    """Seconds from spawning ``argv`` until a client connected to ``port`` reads INFO."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    started = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    try:
        while True:
            if proc.poll() is not None:
                raise SystemExit(f"{argv[0]} exited with {proc.returncode} before accepting clients")
            if time.perf_counter() - started > limit:
                raise SystemExit(f"{argv[0]} did not accept a client within {limit:g}s")
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1.0) as sock:
                    if sock.recv(4096).startswith(b"INFO "):
                        return time.perf_counter() - started
            except OSError:
                time.sleep(0.002)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--jetstream", action="store_true", help="start both with JetStream on a fresh store")
    args = parser.parse_args()
    binary = shutil.which("nats-server")
    if binary is None:
        raise SystemExit("nats-server is not installed (`make test` installs it)")
    anchor: list[float] = []
    minga: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        warm = [sys.executable, "-m", "minga", "broker", "--port", str(port), "--store", str(Path(tmp) / "warm")]
        time_to_info(warm, port)  # writes the bytecode caches
        for i in range(args.rounds):
            store = Path(tmp) / f"round{i}"
            port = free_port()
            argv = [binary, "-a", "127.0.0.1", "-p", str(port)]
            if args.jetstream:
                argv += ["-js", "-sd", str(store / "nats")]
            anchor.append(time_to_info(argv, port))
            port = free_port()
            argv = [sys.executable, "-m", "minga", "broker", "--port", str(port)]
            if args.jetstream:
                argv += ["--store", str(store / "minga")]
            minga.append(time_to_info(argv, port))
            print(f"round {i + 1}: nats-server {anchor[-1] * 1000:7.1f} ms   minga broker {minga[-1] * 1000:7.1f} ms")
    a, m = statistics.median(anchor), statistics.median(minga)
    print(f"over {args.rounds} rounds{' (JetStream)' if args.jetstream else ''}:       median       best")
    print(f"  nats-server   {a * 1000:10.1f} ms {min(anchor) * 1000:7.1f} ms")
    print(
        f"  minga broker  {m * 1000:10.1f} ms {min(minga) * 1000:7.1f} ms"
        f"   (median {m / a:.2f}x nats-server; target <= {TARGET_S * 1000:.0f} ms)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
