"""``minga traces``, ``minga top`` and ``minga monitor render prometheus|grafana``.

``traces`` and ``top`` ask the running control plane's monitor (``/api/monitor``); the
renderers write configuration for Prometheus and Grafana.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console, Group
from rich.live import Live
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text
from rich.tree import Tree

from minga.controlplane import ControlPlaneClient, read_state
from minga.errors import UsageError
from minga.gateway import write_atomically
from minga.monitor import render_grafana, render_prometheus
from minga.security import Credentials, secure_home, write_private
from minga.spec import ControlSpec, home_dir, load_spec

SpecFile = Annotated[Path, typer.Option("--file", "-f", help="the system spec")]
DEFAULT_FILE = Path("minga.yaml")

console = Console(highlight=False)


def _client(file: Path) -> ControlPlaneClient:
    return ControlPlaneClient.for_home(home_dir(file))


def _ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:.1f} ms"


def _span_tree(node: dict[str, Any], tree: Tree) -> None:
    for child in node["children"]:
        style = "red" if child["status"] == "error" else "green"
        label = Text.assemble(
            (child["name"], "bold"),
            f"  {child['instance']}  +{_ms(child['offset'])}  ",
            (_ms(child["duration"]), style),
        )
        if child["attributes"].get("error"):
            label.append(f"  {child['attributes']['error']}", style="red")
        _span_tree(child, tree.add(label))


def traces(
    service: Annotated[str | None, typer.Option("--service", "-s", help="only traces that touch this service")] = None,
    trace: Annotated[str | None, typer.Option("--trace", "-t", help="show this trace as a tree")] = None,
    errors: Annotated[bool, typer.Option("--errors", help="only traces with a failed span")] = False,
    limit: Annotated[int, typer.Option(help="how many traces to list")] = 20,
    deps: Annotated[bool, typer.Option("--deps", help="print the service dependency map")] = False,
    file: SpecFile = DEFAULT_FILE,
) -> None:
    """List recent traces, show one as a tree with timings, or print the dependency map."""
    client = _client(file)
    if trace:
        doc = asyncio.run(client.monitor(f"traces/{trace}"))
        root = Tree(f"trace {doc['trace_id']}  {_ms(doc['duration'])}  {doc['spans']} spans")
        _span_tree({"children": doc["roots"]}, root)
        console.print(root)
        return
    if deps:
        edges = asyncio.run(client.monitor("dependencies"))["edges"]
        table = Table(title="service dependencies (from traces)", title_justify="left")
        for col in ("from", "to", "calls", "errors"):
            table.add_column(col, justify="right" if col in ("calls", "errors") else "left")
        for e in edges:
            table.add_row(e["from"], e["to"], str(e["calls"]), str(e["errors"]))
        console.print(table)
        return
    found = asyncio.run(client.monitor("traces", service=service, errors="1" if errors else None, limit=limit))
    print_traces(found["traces"], console)
    if not found["traces"]:
        console.print("no traces yet: call a service (minga call SERVICE.METHOD '{...}')")


# each column's narrowest: a trace id whole (--trace takes it), the others still readable
_TRACE_COLUMNS = (("trace", 32), ("started", 12), ("root", 8), ("services", 8), ("spans", 5), ("duration", 8), ("errors", 6))


def print_traces(found: list[dict[str, Any]], out: Console) -> None:
    """The trace summaries as a table whose ids are never cut: the other columns wrap first, and a
    terminal too narrow even then gets lines wider than itself rather than a shortened id."""
    table = Table(title="traces, newest first", title_justify="left")
    for col, least in _TRACE_COLUMNS:
        numeric = col in ("spans", "duration", "errors")
        table.add_column(
            col, justify="right" if numeric else "left", no_wrap=col == "trace", min_width=least, overflow="fold"
        )
    for t in found:
        table.add_row(
            t["trace_id"],
            datetime.fromtimestamp(t["start"]).strftime("%H:%M:%S.%f")[:-3],
            t["root"],
            ", ".join(t["services"]),
            str(t["spans"]),
            _ms(t["duration"]),
            f"[red]{t['errors']}[/]" if t["errors"] else "0",
        )
    # short of room, rich narrows every column, the unwrappable one too: give the table what it needs
    needed = Measurement.get(out, out.options.update_width(1 << 16), table).minimum
    if needed > out.width:
        table.width = needed
    out.print(table, crop=False)


def red_table(doc: dict[str, Any], alerts: list[dict[str, Any]]) -> Table:
    """Per-service RED figures as ``minga top`` shows them."""
    table = Table(title=f"minga top · last {doc['window']:g}s · {time.strftime('%H:%M:%S')}", title_justify="left")
    for col in ("service", "up", "req/s", "errors", "p50", "p95", "p99", "cpu", "rss", "in flight"):
        table.add_column(col, justify="left" if col == "service" else "right")
    firing = {a["labels"].get("service") for a in alerts}
    for row in doc["services"]:
        ratio = row.get("error_ratio") or 0.0
        name = row["service"] + (" [red]⚠[/]" if row["service"] in firing else "")
        rss = row.get("rss")
        table.add_row(
            name,
            f"{row.get('up') or 0:.0f}/{row.get('targets') or 0:.0f}",
            f"{row.get('rps') or 0:.1f}",
            f"[{'red' if ratio > 0.01 else 'green'}]{ratio * 100:.1f}%[/]",
            _ms(row.get("p50")),
            _ms(row.get("p95")),
            _ms(row.get("p99")),
            f"{row.get('cpu') or 0:.2f}",
            "-" if rss is None else f"{rss / 2**20:.0f} MiB",
            f"{row.get('inflight') or 0:.0f}",
        )
    return table


def top(
    window: Annotated[str, typer.Option(help="the window rates and quantiles cover: 30s, 1m, 5m")] = "1m",
    every: Annotated[float, typer.Option(help="seconds between refreshes")] = 2.0,
    once: Annotated[bool, typer.Option("--once", help="print one table and exit")] = False,
    file: SpecFile = DEFAULT_FILE,
) -> None:
    """Live per-service requests/s, errors and latency (RED), CPU and memory, like top."""
    client = _client(file)
    if every <= 0:
        raise UsageError("--every must be more than zero seconds")

    async def frame() -> Group:
        doc, alerts = await asyncio.gather(client.monitor("red", window=window), client.monitor("alerts"))
        parts: list[Any] = [red_table(doc, alerts["firing"])]
        for a in alerts["firing"]:
            parts.append(Text(f"alert firing: {a['rule']} {a['labels']} {a['summary'] or a['query']}", style="red"))
        return Group(*parts)

    if once:
        console.print(asyncio.run(frame()))
        return

    async def loop() -> None:
        with Live(await frame(), console=console, refresh_per_second=4, screen=False) as live:
            while True:
                await asyncio.sleep(every)
                live.update(await frame())

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(loop())


def render_prometheus_cmd(
    output: Annotated[Path, typer.Option("--output", "-o", help="where to write prometheus.yml")] = Path("prometheus.yml"),
    discovery: Annotated[
        str | None, typer.Option("--discovery", help="the registry's URL (default: the running control plane's)")
    ] = None,
    interval: Annotated[float, typer.Option(help="scrape interval, seconds")] = 5.0,
    file: SpecFile = DEFAULT_FILE,
) -> None:
    """Write a prometheus.yml that scrapes every replica through the registry's http_sd endpoint.

    The registry is the control plane's: at the port minga.yaml fixes (``control: {port: N}``),
    else the running one's, which the next ``minga up`` changes (said in a note). Prometheus reads
    the registry with the read-only token, written beside the state (0600).
    """
    home = home_dir(file)
    if discovery is None:
        discovery = _stable_control_url(file)
    # the system's credentials are made here when it never ran: `minga up` keeps the same ones, so
    # a file rendered before the first start stays valid
    secure_home(home)
    token_file = (home / "prometheus.token").resolve()
    write_private(token_file, Credentials.load_or_create(home).read)
    write_atomically(output, render_prometheus(discovery, scrape_interval=interval, token_file=token_file))
    console.print(f"wrote {output} (targets from {discovery.rstrip('/')}/v1/discovery/http_sd)")


def _stable_control_url(file: Path) -> str:
    """The control plane's URL for a file that outlives this run: the running server's, or the one
    minga.yaml fixes when none runs; a note when the running server's port is not the fixed one."""
    control = load_spec(file).control if file.exists() else ControlSpec()
    state = read_state(home_dir(file), required=control.port == 0)
    fixed = f"http://{control.host}:{control.port}" if control.port else None
    if state is None:
        assert fixed is not None  # read_state raised when nothing runs and nothing is fixed
        return fixed
    if state.url != fixed:
        console.print(
            f"note: the control plane listens on {state.url}, a port minga.yaml does not fix, so the next "
            "`minga up` may change it and the file goes stale: set `control: {port: N}` in minga.yaml",
            soft_wrap=True,
        )
    return state.url


def render_grafana_cmd(
    output: Annotated[Path, typer.Option("--output", "-o", help="where to write the dashboard JSON")] = Path(
        "minga-dashboard.json"
    ),
    title: Annotated[str, typer.Option(help="the dashboard's title")] = "minga",
) -> None:
    """Write a Grafana dashboard with the panels of minga's dashboard, for a Prometheus data source."""
    write_atomically(output, render_grafana(title))
    console.print(f"wrote {output}: import it in Grafana and pick the Prometheus data source")
