"""``minga up / down / status / logs / services / server``: running a minga.yaml on this machine.

``minga up`` runs the control plane in the foreground until Ctrl-C; with ``--detach`` it
starts ``minga server`` in the background, waits until every replica is healthy and
returns. The other commands find the running server through the state file under
MINGA_HOME (``.minga/`` beside the spec unless set).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
import select
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.logging import RichHandler
from rich.markup import escape
from rich.table import Table

from minga.controlplane import ControlPlane, ControlPlaneClient, ServerState, pid_alive, read_state
from minga.deploy import LogLine, follow_logs, log_files, read_logs, reap_orphans, select_lines
from minga.errors import DeployError, MingaError, UsageError
from minga.monitor import LogRecord, parse_log_line
from minga.security import read_token, secure_home
from minga.spec import Spec, home_dir, load_spec, parse_duration

SpecFile = Annotated[Path, typer.Option("--file", "-f", help="the system spec")]
DEFAULT_FILE = Path("minga.yaml")
ControlPort = Annotated[
    int | None,
    typer.Option(
        "--control-port",
        min=0,
        max=65535,
        help="the control plane's port (default: minga.yaml's `control:`, else any free one)",
    ),
]

# wide enough for the status table when the output is a pipe or a file
console = Console(highlight=False, width=None if sys.stdout.isatty() else 160)

HEALTH_STYLE = {"passing": "green", "warning": "yellow", "critical": "red", "unknown": "dim"}


def _home(file: Path) -> Path:
    return home_dir(file)


def _load(file: Path) -> tuple[Spec, Path]:
    spec = load_spec(file)
    return spec, _home(file)


def _control_plane(spec: Spec, home: Path, control_port: int | None) -> ControlPlane:
    cp = ControlPlane.from_spec(spec, home)
    if control_port is not None:
        cp.port = control_port
    return cp


# -- rendering ------------------------------------------------------------------------------


def status_table(doc: dict[str, Any]) -> Table:
    """The status document as a table: one row per replica."""
    title = f"minga · {doc.get('name') or 'system'}"
    table = Table(title=title, title_justify="left", show_lines=False)
    for col in ("service", "instance", "pid", "health", "address", "restarts", "state"):
        table.add_column(col, justify="right" if col in ("pid", "restarts") else "left")
    for svc in doc["services"]:
        for i, inst in enumerate(svc["instances"]):
            health = inst["health"]
            state = "crash loop" if inst.get("crashloop") else inst.get("phase", "")
            if inst.get("last_error"):
                state += f" ({inst['last_error']})"
            table.add_row(
                svc["name"] if i == 0 else "",
                inst["id"],
                str(inst["pid"] or "-"),
                f"[{HEALTH_STYLE.get(health, 'white')}]{health}[/]",
                inst["address"] or "-",
                str(inst["restarts"]),
                escape(state),
            )
    return table


PART_STYLE = {"ok": "green", "behind": "yellow", "slow": "yellow", "restarting": "yellow"}


def parts_table(doc: dict[str, Any]) -> Table | None:
    """The control plane's parts (``doc["parts"]``): where each runs and its health; None without any."""
    parts = doc.get("parts") or []
    if not parts:
        return None
    table = Table(title="control plane", title_justify="left")
    for col in ("part", "runs in", "state", "detail"):
        table.add_column(col)
    for part in parts:
        style = PART_STYLE.get(part["state"], "red")
        table.add_row(part["name"], part["runs"], f"[{style}]{escape(part['state'])}[/]", escape(part["detail"]))
    return table


def _print_endpoints(doc: dict[str, Any]) -> None:
    console.print(f"control plane  {doc['control']}   broker  {doc['broker']}   home  {doc['home']}")
    if doc.get("gateway"):
        console.print(f"gateway        {doc['gateway']}")
    if doc.get("dashboard"):
        console.print(f"dashboard      {doc['dashboard']}")
    for alert in doc.get("alerts") or []:
        labels = ", ".join(f"{k}={v}" for k, v in sorted(alert["labels"].items()))
        what = escape(alert["summary"] or alert["query"])
        if alert["query"] and alert["value"] is not None:  # a rule of minga.yaml: its value against its threshold
            what += f" = {alert['value']:.4g} {alert['threshold']}"
        console.print(f"[red]alert firing[/]   {escape(alert['rule'])} ({alert['severity']}) {escape(labels)}: {what}")


def _last_lines(home: Path, service: str, n: int = 10) -> list[str]:
    lines = read_logs(log_files(home, service))[-n:]
    return [f"{line.instance} | {line.text}" for line in lines]


def log_to(handler: logging.Handler) -> None:
    """Send minga's own log records to ``handler``: the supervisor's from INFO, the rest from WARNING."""
    handler.setLevel(logging.INFO)
    root = logging.getLogger("minga")
    root.setLevel(logging.WARNING)
    root.addHandler(handler)
    logging.getLogger("minga.deploy").setLevel(logging.INFO)


# -- the server -----------------------------------------------------------------------------


async def _serve(cp: ControlPlane, ready_fd: int | None, on_ready: Any = None) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, cp.request_stop)

    def ready(state: ServerState) -> None:
        if ready_fd is not None:
            with os.fdopen(ready_fd, "w") as f:
                f.write(json.dumps({"url": state.url, "pid": state.pid}) + "\n")
        if on_ready is not None:
            on_ready(state)

    try:
        await cp.run(ready)
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


def server(
    file: SpecFile = DEFAULT_FILE,
    ready_fd: Annotated[
        int | None, typer.Option(help="write one JSON line with the API URL to this fd once listening")
    ] = None,
    control_port: ControlPort = None,
) -> None:
    """Run the control plane of a minga.yaml in the foreground (what `minga up --detach` starts)."""
    spec, home = _load(file)
    if read_state(home, required=False) is not None:
        raise UsageError(f"a minga server already runs for {home}: `minga down` first")
    stderr = logging.StreamHandler()
    stderr.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    log_to(stderr)
    asyncio.run(_serve(_control_plane(spec, home, control_port), ready_fd))


# -- up / down ------------------------------------------------------------------------------


def _fail_unhealthy(doc: dict[str, Any], home: Path) -> None:
    console.print(status_table(doc))
    failed = doc.get("failed") or []
    names = failed or doc.get("unhealthy") or [s["name"] for s in doc["services"] if not s["healthy"]]
    for name in names:
        console.print(f"[red]{name} is not healthy[/]; its last log lines:")
        for line in _last_lines(home, name):
            console.print(f"  {escape(line)}")
    name = names[0]
    why = ""
    if name in failed:
        svc = next(s for s in doc["services"] if s["name"] == name)
        inst = next(i for i in svc["instances"] if i["last_exit"] is not None and not i["ever_healthy"])
        why = f": {inst['id']} exited with {inst['last_exit']} before it was ever healthy"
        if inst.get("last_error"):
            why += f" ({inst['last_error']})"
    raise DeployError(
        f"service {name} is not healthy{why} (see `minga logs {name}`; `minga down` stops everything)"
    )


def _up_detached(file: Path, home: Path, timeout: float, control_port: int | None) -> None:
    secure_home(home)  # private before the first byte of server.log is written
    read_end, write_end = os.pipe()
    argv = [sys.executable, "-m", "minga", "server", "-f", str(file), "--ready-fd", str(write_end)]
    if control_port is not None:
        argv += ["--control-port", str(control_port)]
    with (home / "server.log").open("ab") as log:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            pass_fds=(write_end,),
            start_new_session=True,
        )
    os.close(write_end)
    with os.fdopen(read_end) as ready:
        line = ready.readline()  # EOF without a line: the server died before listening
    if not line:
        proc.wait(10)
        tail = (home / "server.log").read_text(errors="replace").strip().splitlines()[-15:]
        if proc.returncode == 2 and tail and tail[-1].startswith("error: "):
            raise UsageError(tail[-1].removeprefix("error: "))  # the user's mistake, in its one line
        raise DeployError("the minga server exited before it was ready:\n" + "\n".join(tail))
    url = json.loads(line)["url"]
    doc = asyncio.run(ControlPlaneClient(url, token=read_token(home)).wait_healthy(timeout, fail_fast=True))
    if "unhealthy" in doc:
        _fail_unhealthy(doc, home)
    console.print(status_table(doc))
    _print_endpoints(doc)
    console.print("running in the background: `minga status`, `minga logs --follow`, `minga down`")


async def _up_foreground(cp: ControlPlane, healthy_within: float) -> None:
    async def report() -> None:
        assert cp.supervisor is not None  # run() sets it before it reports ready
        try:
            async with asyncio.timeout(healthy_within):
                healthy = await cp.supervisor.wait_healthy(fail_fast=True)
        except TimeoutError:
            healthy = False
        doc = cp.status()
        console.print(status_table(doc))
        if not healthy:
            bad = [s["name"] for s in doc["services"] if not s["healthy"]]
            console.print(f"[yellow]not healthy: {', '.join(bad)}[/] (`minga logs`; it keeps restarting)")
        _print_endpoints(cp.status())
        console.print("[bold]Ctrl-C[/] stops everything")

    tasks: set[asyncio.Task[None]] = set()

    def on_ready(state: ServerState) -> None:
        tasks.add(asyncio.get_running_loop().create_task(report()))

    try:
        await _serve(cp, None, on_ready)
    finally:
        for t in tasks:
            t.cancel()
    console.print("stopped: no replica left")


def up(
    file: SpecFile = DEFAULT_FILE,
    detach: Annotated[bool, typer.Option("--detach", "-d", help="return once every service is healthy")] = False,
    timeout: Annotated[float, typer.Option(help="seconds to wait for every service to be healthy")] = 60.0,
    control_port: ControlPort = None,
) -> None:
    """Start the control plane, the broker, the registry and every service of a minga.yaml."""
    spec, home = _load(file)
    running = read_state(home, required=False)
    if running is not None:
        raise UsageError(f"a minga server already runs for {home} ({running.url}): `minga down` first")
    orphans = reap_orphans(home)
    if orphans:
        console.print(f"stopped replicas a previous server left running: {', '.join(orphans)}")
    if detach:
        _up_detached(file, home, timeout, control_port)
        return
    log_to(RichHandler(console=console, show_path=False, markup=False))
    asyncio.run(_up_foreground(_control_plane(spec, home, control_port), timeout))


def wait_pid_exit(pid: int, seconds: float) -> bool:
    """Wait until process ``pid`` is gone; False if it still runs after ``seconds``."""
    deadline = time.monotonic() + seconds
    pidfd_open = getattr(os, "pidfd_open", None)
    if pidfd_open is not None:
        try:
            fd = pidfd_open(pid)
        except ProcessLookupError:
            return True
        try:
            readable, _, _ = select.select([fd], [], [], seconds)  # readable once the process exits
        finally:
            os.close(fd)
        return bool(readable) or not pid_alive(pid)
    while pid_alive(pid):  # no pidfd on this OS: look again, bounded
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def down(
    file: SpecFile = DEFAULT_FILE,
    timeout: Annotated[float, typer.Option(help="seconds to wait for everything to stop")] = 60.0,
) -> None:
    """Stop every service and the control plane (grace period, then SIGKILL)."""
    home = _home(file)
    state = read_state(home, required=False)
    if state is None:
        orphans = reap_orphans(home)
        if orphans:
            console.print(f"the server was gone; stopped what it left running: {', '.join(orphans)}")
        else:
            console.print(f"nothing runs for {home}")
        return
    try:
        asyncio.run(ControlPlaneClient(state.url, token=read_token(home)).stop(timeout))
    except (DeployError, UsageError):  # unreachable, or the token is gone: the signal still works
        with contextlib.suppress(ProcessLookupError):
            os.kill(state.pid, signal.SIGTERM)
    if not wait_pid_exit(state.pid, timeout):
        with contextlib.suppress(ProcessLookupError):
            os.kill(state.pid, signal.SIGKILL)
        raise DeployError(f"the minga server (pid {state.pid}) did not stop within {timeout:g}s; killed it")
    console.print("stopped")


# -- status / services / logs ---------------------------------------------------------------


def status(
    file: SpecFile = DEFAULT_FILE,
    as_json: Annotated[bool, typer.Option("--json", help="print the status document as JSON")] = False,
) -> None:
    """Show every service and replica: pid, health, address, restarts."""
    doc = asyncio.run(ControlPlaneClient.for_home(_home(file)).status())
    if as_json:
        typer.echo(json.dumps(doc, indent=2))
        return
    console.print(status_table(doc))
    parts = parts_table(doc)
    if parts is not None:
        console.print(parts)
    _print_endpoints(doc)


def services(file: SpecFile = DEFAULT_FILE) -> None:
    """List the services in discovery: passing instances out of registered, and where they answer."""
    records = asyncio.run(ControlPlaneClient.for_home(_home(file)).instances())
    by_service: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        by_service.setdefault(record["service"], []).append(record)
    table = Table(title_justify="left")
    for col in ("service", "passing", "instances", "restarts"):
        table.add_column(col)
    for name, found in sorted(by_service.items()):
        passing = [r for r in found if r["health"] == "passing"]
        shown = ", ".join(
            f"{r['id']}@{r['host']}:{r['ports'].get('http', '-')}"
            + ("" if r["health"] == "passing" else f" ({r['health']})")
            for r in found
        )
        table.add_row(name, f"{len(passing)}/{len(found)}", shown, str(sum(r["restarts"] for r in found)))
    console.print(table)


def _since(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        at = datetime.fromisoformat(value)
    except ValueError:
        try:
            seconds = float(parse_duration(value))
        except (ValueError, TypeError):
            raise UsageError(
                f"--since {value!r}: expected a duration (30s, 10m, 1h) or an ISO time (2026-01-31T12:00)"
            ) from None
        return datetime.now(UTC) - timedelta(seconds=seconds)
    return at if at.tzinfo is not None else at.astimezone(UTC)


def line_filter(grep: str | None, level: str | None, trace: str | None) -> Callable[[LogLine], bool]:
    """What ``minga logs --grep/--level/--trace`` keeps; UsageError for a bad regex or level."""
    pattern = None
    if grep is not None:
        try:
            pattern = re.compile(grep)
        except re.error as exc:
            raise UsageError(f"--grep {grep!r} is not a regular expression: {exc}") from None
    least = None
    if level is not None:
        least = LogRecord.LEVELS.get(level.lower())
        if least is None:
            raise UsageError(f"--level {level!r}: expected one of {', '.join(LogRecord.LEVELS)}")
    trace_id = trace.lower() if trace else None

    def keep(line: LogLine) -> bool:
        if pattern is not None and pattern.search(line.text) is None:
            return False
        if least is None and trace_id is None:
            return True
        record = parse_log_line(line.instance, f"{line.at.isoformat()} {line.text}")
        if record is None:
            return False
        if least is not None and LogRecord.LEVELS.get(record.level, 20) < least:
            return False
        return trace_id is None or record.trace_id == trace_id

    return keep


_LEVEL_STYLE = {"debug": "dim", "info": "green", "warning": "yellow", "error": "red", "critical": "bold red"}


def _print_line(line: LogLine, width: int, as_json: bool) -> None:
    """One line as people read it: local time, replica, level, message and trace id (a minga
    replica's JSON record unpacked; any other output, ``print`` included, as written). With
    ``as_json``, the line as the API gives it: ``{"at", "instance", "text"}`` with the raw text."""
    if as_json:
        typer.echo(json.dumps({"at": line.at.isoformat(), "instance": line.instance, "text": line.text}))
        return
    when = line.at.astimezone().strftime("%H:%M:%S.%f")[:-3]
    record = parse_log_line(line.instance, f"{line.at.isoformat()} {line.text}") if line.text.startswith("{") else None
    head = f"[dim]{when}[/] [cyan]{line.instance:<{width}}[/]"
    if record is None or record.message == line.text:  # not a JSON record: as written
        console.print(f"{head} {'':<8} {escape(line.text)}", soft_wrap=True)
        return
    style = _LEVEL_STYLE.get(record.level, "white")
    text = f"{head} [{style}]{record.level.upper():<8}[/] {escape(record.message)}"
    if record.trace_id:
        text += f"  [dim]trace={record.trace_id}[/]"
    console.print(text, soft_wrap=True)
    error = (record.fields or {}).get("error")
    if error:
        for row in str(error).rstrip().splitlines():
            console.print(f"    {escape(row)}", soft_wrap=True)


def _check_service(service: str, file: Path, home: Path) -> None:
    """UsageError unless ``service`` names a service of the spec, one of its replicas, or has logs."""
    known = {f.stem for f in log_files(home)}
    known |= {f.stem.rsplit("-", 1)[0] for f in log_files(home)}
    try:
        spec = load_spec(file)
    except MingaError:
        spec = None  # no spec at hand: the logs under MINGA_HOME say what exists
    if spec is not None:
        for name, svc in spec.services.items():
            known |= {name, *(f"{name}-{i}" for i in range(1, svc.replicas + 1))}
    if service not in known:
        names = sorted(spec.services) if spec is not None else sorted(known)
        raise UsageError(f"no service or replica {service!r} (known: {', '.join(names) or 'none'})")


def logs(
    service: Annotated[str | None, typer.Argument(help="a service or one instance (orders-1); all if left out")] = None,
    follow: Annotated[bool, typer.Option("--follow", help="keep printing new lines")] = False,
    since: Annotated[str | None, typer.Option(help="only lines newer than this: 30s, 10m, or an ISO time")] = None,
    file: SpecFile = DEFAULT_FILE,
    grep: Annotated[str | None, typer.Option("--grep", "-g", help="only lines matching this regex")] = None,
    level: Annotated[
        str | None, typer.Option("--level", "-l", help="only lines at least this severe: debug, info, warning, error")
    ] = None,
    trace: Annotated[str | None, typer.Option("--trace", help="only lines of this trace id")] = None,
    tail: Annotated[
        int | None, typer.Option("--tail", "-n", min=0, help="only the last N lines (then new ones with --follow)")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="one JSON object per line, the raw text kept")] = False,
) -> None:
    """Print what the replicas wrote to stdout and stderr, merged in time order, one readable
    line each: time, replica, level, message, trace id.

    ``-f`` is the spec (``--file``) here as in every command; ``--follow`` keeps printing.
    """
    home = _home(file)
    if service is not None:
        _check_service(service, file, home)
    files = log_files(home, service)
    if not files and not follow:
        raise UsageError(f"no logs under {home / 'logs'}" + (f" for {service!r}" if service else ""))
    at = _since(since)
    keep = line_filter(grep, level, trace)
    width = max((len(f.stem) for f in files), default=10)
    if not follow:
        for line in select_lines(read_logs(files, at), keep, tail):
            _print_line(line, width, as_json)
        return

    async def follow_lines() -> None:
        async for line in follow_logs(home, service, at, keep=keep, tail=tail):
            _print_line(line, width, as_json)

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(follow_lines())
