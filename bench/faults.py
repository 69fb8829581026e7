"""The fault report: each fault against a 3-node nats-server cluster and a 3-member etcd cluster.

    python bench/faults.py [--engines nats,etcd] [--faults partition,kill,pause] [--seconds 14] [--hold 5]

Each run makes four hosts (network namespaces behind a switch of their own; needs root),
starts the engine's cluster on three, and runs `minga chaos workload` from the fourth: on
nats, four KV clients (reads, writes, deletes every 20 ms on a bucket with 3 replicas) and a
work queue of 300 jobs with 3 replicas; on etcd, the same KV clients over its v3 gateway.
Once the workload answers, the fault hits the leader (of the KV's stream for nats, of the
cluster for etcd) for --hold seconds and is lifted (healed, restarted, resumed). The table
gives what the clients saw: operations answered, of unknown outcome (timed out) and failed;
the seconds from the fault's start until a write invoked after it succeeded; acknowledged jobs
lost; and the verdicts of the linearizability and work-queue checkers.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from minga.chaos import ENGINES, run_scenario
from minga.chaos._netns import FAULTS
from minga.chaos._report import HEADER


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engines", default=",".join(ENGINES))
    parser.add_argument("--faults", default=",".join(FAULTS))
    parser.add_argument("--seconds", type=float, default=14)
    parser.add_argument("--hold", type=float, default=5)
    args = parser.parse_args()
    rows = []
    for engine in args.engines.split(","):
        for fault in args.faults.split(","):
            with tempfile.TemporaryDirectory(prefix="minga-faults-") as tmp:
                run = run_scenario(engine, fault, Path(tmp), seconds=args.seconds, hold=args.hold)
            row = [engine, f"{fault} {run.target} (leader)", *run.report.row()]
            rows.append(row)
            print(" | ".join(row), flush=True)
    print()
    print("| engine | fault | " + " | ".join(HEADER) + " |")
    print("|" + "---|" * (len(HEADER) + 2))
    for row in rows:
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
