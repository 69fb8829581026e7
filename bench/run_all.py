"""Runs every benchmark in turn, each printing its own ratios against its anchor.

``python bench/run_all.py`` runs them at their default sizes; ``--quick`` runs each at a
size that finishes in about a minute (useful to check that every bench still works);
names limit the run: ``python bench/run_all.py bus gateway``.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

# name -> (arguments at default size, arguments for --quick)
BENCHES: dict[str, tuple[list[str], list[str]]] = {
    "bus": ([], ["--messages", "20000", "--requests", "500", "--rounds", "1"]),
    "broker_startup": ([], ["--rounds", "2"]),
    "jetstream": ([], ["--count", "2000", "--rounds", "1"]),
    "rpc": ([], ["--calls", "300", "--rounds", "1"]),
    "runtime": ([], ["--n", "300", "--rounds", "1", "--seconds", "1", "--kills", "1"]),
    "discovery": ([], ["--events", "50", "--trials", "2"]),
    "gateway": ([], ["--duration", "2", "--rounds", "1"]),
    "monitor": ([], ["--scrapes", "3", "--lines", "50000", "--searches", "2"]),
    "mapreduce": ([], ["--size-mb", "32", "--sort-mb", "16", "--mrjob-mb", "8"]),
    "scale": ([], ["--quick"]),
    "gpu_check": ([], ["--mb", "16", "--repeat", "1"]),
}


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("names", nargs="*", metavar="NAME", help="benches to run (default: all of them)")
    parser.add_argument("--quick", action="store_true", help="small sizes: check that each bench works")
    args = parser.parse_args()
    names = args.names or list(BENCHES)
    unknown = sorted(set(names) - set(BENCHES))
    if unknown:
        parser.error(f"no bench named {', '.join(unknown)}; choose from {', '.join(BENCHES)}")
    failed: list[str] = []
    for name in names:
        full, quick = BENCHES[name]
        argv = [sys.executable, str(HERE / f"{name}.py"), *(quick if args.quick else full)]
        print(f"\n=== bench/{name}.py {' '.join(argv[2:])}", flush=True)
        started = time.monotonic()
        if subprocess.run(argv, check=False).returncode != 0:
            failed.append(name)
        print(f"=== bench/{name}.py took {time.monotonic() - started:.0f}s", flush=True)
    if failed:
        print(f"\nfailed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
