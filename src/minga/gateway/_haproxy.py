"""haproxy.cfg rendered from the registry, and a graceful reload of a running haproxy.

:func:`render_haproxy` is pure: routes and endpoints in, configuration text out. The
:class:`Haproxy` runner starts the real binary in master-worker mode (``-W``) and reloads it
with SIGUSR2 after checking the new file (``haproxy -c``): old workers finish their
connections while new ones take the new ones.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import shutil
import signal
import subprocess
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from minga.errors import UsageError
from minga.gateway._sources import Endpoint, UpstreamSource
from minga.security import check_host
from minga.spec import GatewaySpec

__all__ = ["Haproxy", "follow_registry", "render_haproxy", "write_atomically"]

log = logging.getLogger("minga.gateway")

_SAFE = re.compile(r"[^A-Za-z0-9_.:-]")


def _name(text: str) -> str:
    return _SAFE.sub("_", text)


def _seconds(value: float) -> str:
    return f"{max(1, round(value * 1000))}ms"


def render_haproxy(
    spec: GatewaySpec,
    endpoints: Mapping[str, Sequence[Endpoint]],
    *,
    host: str | None = None,
    port: int | None = None,
    check_path: str | None = "/healthz",
    stats_socket: Path | None = None,
) -> str:
    """An haproxy.cfg that routes like the minga gateway ``spec`` to ``endpoints`` (service -> instances).

    Each route becomes an ACL on the path prefix (and Host when set) in one frontend listening
    on ``host:port`` (the spec's by default); each service a backend balanced by
    ``random(2)`` (power of two choices on the servers' current load, as the gateway does)
    with its instances as servers, health-checked with ``GET check_path`` when given. Retries and redispatch follow
    the spec's route retries; ``strip_prefix`` becomes ``replace-path``. A ``stats_socket``
    that exposes the listeners lets a reload hand them over to the new workers, so no
    connection is refused meanwhile. An endpoint whose host is not an IP address or a host
    name is left out (logged), so a registry record cannot add lines to the file.

    Raises :class:`~minga.errors.UsageError` when the port is 0 (haproxy binds a fixed port),
    and for a route with ``auth:``, which the file could not enforce.
    """
    for route in spec.routes:
        if route.auth is not None:
            raise UsageError(
                f"the route {route.path} has auth:, which a rendered haproxy.cfg cannot enforce: "
                "serve it with `minga gateway serve` (or remove auth: from it)"
            )
    host = host or spec.host
    port = spec.port if port is None else port
    if port == 0:
        # "any free port" means nothing to haproxy, which refuses the file (`invalid port '0'`)
        raise UsageError(
            "haproxy cannot listen on port 0 (the gateway's `any free port`): give it a port with "
            "`--listen 127.0.0.1:8080` (or a fixed `listen:` in the gateway: section)"
        )
    limits = spec.limits
    timeouts = spec.routes[0].timeouts if spec.routes else None
    lines = [
        "# Written by `minga gateway render haproxy` from the registry; edits are overwritten.",
        "global",
        "    maxconn 4096",
        "    log stderr format short daemon notice",
    ]
    if stats_socket is not None:
        lines.append(f"    stats socket {stats_socket} mode 600 level admin expose-fd listeners")
    lines += [
        "",
        "defaults",
        "    mode http",
        "    log global",
        "    option http-keep-alive",
        "    option redispatch",
        f"    retries {max((r.retries for r in spec.routes), default=2)}",
        f"    timeout connect {_seconds(timeouts.connect if timeouts else 2.0)}",
        f"    timeout server {_seconds(timeouts.response if timeouts else 30.0)}",
        f"    timeout client {_seconds(limits.idle_timeout)}",
        f"    timeout http-request {_seconds(limits.header_timeout)}",
        f"    timeout http-keep-alive {_seconds(limits.idle_timeout)}",
        "",
        "frontend minga",
        f"    bind {host}:{port}",
        f"    http-request deny deny_status 413 if {{ req.hdr_val(content-length) gt {limits.max_body} }}",
        "    http-request set-header X-Forwarded-Proto http",
        "    option forwardfor",
    ]
    # the route is chosen once, before any rewrite (ACLs are evaluated again at each use)
    order = sorted(range(len(spec.routes)), key=lambda i: -len(spec.routes[i].path.rstrip("/")))
    uses = []
    for i in order:
        route = spec.routes[i]
        prefix = route.path.rstrip("/")
        acl = f"route_{i}"
        if prefix:
            lines.append(f"    acl {acl} path {prefix}")
            lines.append(f"    acl {acl} path_beg {prefix}/")
        else:
            lines.append(f"    acl {acl} always_true")
        cond = acl
        if route.host:
            lines.append(f"    acl {acl}_host hdr(host),field(1,:) -i {route.host}")
            cond = f"{acl} {acl}_host"
        lines.append(f"    http-request set-var(txn.route) int({i}) if {cond} !{{ var(txn.route) -m found }}")
        chosen = f"{{ var(txn.route) -m int {i} }}"
        if route.strip_prefix and prefix:
            uses.append(f"    http-request replace-path ^{re.escape(prefix)}/?(.*)$ /\\1 if {chosen}")
        uses.append(f"    use_backend svc_{_name(route.service)} if {chosen}")
    lines += [u for u in uses if u.startswith("    http-request")]
    lines += [u for u in uses if u.startswith("    use_backend")]
    for service in sorted({r.service for r in spec.routes}):
        lines += ["", f"backend svc_{_name(service)}", "    balance random(2)"]
        if check_path:
            lines.append(f"    option httpchk GET {check_path}")
        for endpoint in sorted(endpoints.get(service, ()), key=lambda e: e.id):
            check = " check inter 1s fall 1 rise 1" if check_path else ""
            try:  # a record's host goes into the file: nothing but an address or a host name
                check_host(endpoint.host)
            except ValueError as exc:
                log.warning("haproxy: left out %s of %s: %s", _name(endpoint.id), service, exc)
                continue
            lines.append(f"    server {_name(endpoint.id)} {endpoint.host}:{endpoint.port}{check}")
    return "\n".join(lines) + "\n"


def write_atomically(path: Path, text: str) -> bool:
    """Write ``text`` to ``path`` unless it already holds it; True when the file changed."""
    try:
        if path.read_text(encoding="utf-8") == text:
            return False
    except FileNotFoundError:
        pass
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
    return True


class Haproxy:
    """A real haproxy in master-worker mode on ``config``; :meth:`reload` swaps workers gracefully."""

    def __init__(self, config: Path, binary: str | None = None, log: Path | None = None) -> None:
        found = binary or shutil.which("haproxy")
        if found is None:
            raise UsageError("haproxy is not installed: install the Debian package haproxy")
        self.binary = found
        self.config = config.resolve()
        self.socket = self.config.with_name(f"{self.config.stem}.sock")
        """The stats socket (with the listeners exposed) that :func:`follow_registry` configures."""
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None

    def check(self) -> None:
        """Raise UsageError when haproxy refuses the configuration file."""
        result = subprocess.run(  # its own session: a Ctrl-C meant for us must not fail the check
            [self.binary, "-c", "-q", "-f", str(self.config)],
            capture_output=True,
            check=False,
            start_new_session=True,
        )
        if result.returncode != 0:
            raise UsageError(
                f"haproxy rejects {self.config}: {result.stderr.decode(errors='replace').strip()}"
            )

    def start(self) -> None:
        self.check()
        argv = [self.binary, "-W", "-db", "-f", str(self.config)]
        if self.log is None:
            self.proc = subprocess.Popen(
                argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
            )
            return
        with open(self.log, "ab") as out:  # the child keeps its own copy of the descriptor
            self.proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)

    def reload(self) -> None:
        """Check the file, then ask the master for new workers (SIGUSR2); old ones drain."""
        self.check()
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGUSR2)

    async def stop(self, grace: float = 5.0) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.to_thread(proc.wait, grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            await asyncio.to_thread(proc.wait)


async def follow_registry(
    spec: GatewaySpec,
    source: UpstreamSource,
    path: Path,
    *,
    haproxy: Haproxy | None = None,
    host: str | None = None,
    port: int | None = None,
    on_render: Callable[[str], None] | None = None,
    check_path: str | None = "/healthz",
) -> None:
    """Render ``path`` now and after every change of ``source``; reload ``haproxy`` when the text changed.

    Runs until cancelled. ``on_render`` is called with each new text.
    """
    services = sorted({r.service for r in spec.routes})
    sock = haproxy.socket if haproxy is not None else None
    while True:
        text = render_haproxy(
            spec,
            {s: source.endpoints(s) for s in services},
            host=host,
            port=port,
            check_path=check_path,
            stats_socket=sock,
        )
        if write_atomically(path, text):
            if haproxy is not None and haproxy.proc is None:
                await asyncio.to_thread(haproxy.start)
            elif haproxy is not None:
                try:
                    await asyncio.to_thread(haproxy.reload)
                except UsageError as exc:
                    log.error("not reloaded, haproxy keeps its previous configuration: %s", exc)
            if on_render is not None:
                on_render(text)
        await source.changed()
