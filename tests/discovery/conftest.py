"""Fixtures for the discovery tests: a real etcd, a registry served over HTTP, and every store."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import pytest
from aiohttp import web

import support
from minga.discovery import EmbeddedStore, EtcdStore, HttpStore, Registry, Store, serve_registry


def etcd_server(data_dir: Path) -> support.ServerProcess:
    """A real single-node etcd on free loopback ports, with fast elections so short leases work."""
    binary = shutil.which("etcd")
    if binary is None:
        raise RuntimeError("etcd is not installed: `make test` installs it (Debian package etcd-server)")
    client, peer = support.free_port(), support.free_port()
    argv = [
        binary,
        "--name", "minga-test",
        "--data-dir", str(data_dir / "etcd"),
        "--listen-client-urls", f"http://127.0.0.1:{client}",
        "--advertise-client-urls", f"http://127.0.0.1:{client}",
        "--listen-peer-urls", f"http://127.0.0.1:{peer}",
        "--initial-advertise-peer-urls", f"http://127.0.0.1:{peer}",
        "--initial-cluster", f"minga-test=http://127.0.0.1:{peer}",
        "--heartbeat-interval", "50",
        "--election-timeout", "300",
        "--log-level", "warn",
    ]  # fmt: skip
    return support.ServerProcess(argv, client, log=data_dir / "etcd.log")


@pytest.fixture(scope="session")
def etcd_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    server = etcd_server(tmp_path_factory.mktemp("etcd"))
    with support.running(server, timeout=30):
        yield f"http://127.0.0.1:{server.port}"


async def serve(app: web.Application) -> tuple[web.AppRunner, str]:
    """Serve ``app`` on a free loopback port; returns the runner (to clean up) and the base URL."""
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    return runner, f"http://127.0.0.1:{port}"


ServeApp = Callable[[web.Application], Awaitable[str]]


@pytest.fixture
async def serve_app() -> AsyncIterator[ServeApp]:
    """``await serve_app(app)`` serves an aiohttp app on a free loopback port until the test ends; gives its URL."""
    runners: list[web.AppRunner] = []

    async def start(app: web.Application) -> str:
        runner, url = await serve(app)
        runners.append(runner)
        return url

    try:
        yield start
    finally:
        for runner in reversed(runners):
            await runner.cleanup()


@pytest.fixture
async def served_registry(tmp_path: Path) -> AsyncIterator[tuple[Registry, str]]:
    """A registry on an embedded store, its API mounted at /v1/discovery like the control plane does."""
    async with Registry(EmbeddedStore(tmp_path / "registry.json")) as registry, serve_registry(registry) as base:
        yield registry, base + "/v1/discovery"


@pytest.fixture(params=["embedded", "etcd", "http"])
async def store(
    request: pytest.FixtureRequest, tmp_path: Path, etcd_url: str, served_registry: tuple[Registry, str]
) -> AsyncIterator[Store]:
    """Each store in turn, opened, so one suite runs against all of them."""
    made: Store
    if request.param == "embedded":
        made = EmbeddedStore(tmp_path / "store.json")
    elif request.param == "etcd":
        made = EtcdStore(etcd_url, prefix=f"/test-{uuid.uuid4().hex}/")
    else:
        made = HttpStore(served_registry[1])
    await made.open()
    try:
        yield made
    finally:
        await made.close()
