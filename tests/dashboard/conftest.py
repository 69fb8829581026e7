"""examples/shop under `minga up --detach` (one per module) and headless Chromium driven by Playwright.

The browser is Debian's /usr/bin/chromium: nothing is downloaded, and the page must work with
every request going to the control plane on 127.0.0.1.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import sync_playwright

from minga.controlplane import read_state
from minga.security import Role, read_token

sys.path.insert(0, str(Path(__file__).parent))  # dashboard_harness, shared with the test modules

from dashboard_harness import ALERT, CHROMIUM, CHROMIUM_ARGS, SHOP, WORDCOUNT, Page, Shop, minga


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shop]:
    """The shop, running, with some orders placed and one MapReduce job recorded in its home."""
    home = tmp_path_factory.mktemp("shop") / "home"
    spec = home.parent / "minga.yaml"
    spec.write_text(SHOP.read_text() + ALERT)
    up = minga("up", "--detach", "-f", str(spec), "--timeout", "90", home=home)
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        state = read_state(home)
        assert state is not None
        assert f"dashboard      {state.url}/dashboard/" in up.stdout, up.stdout  # minga up prints its URL
        status = json.loads(minga("status", "--json", home=home).stdout)
        assert status["dashboard"] == f"{state.url}/dashboard/"
        running = Shop(home, state.url, status["dashboard"], state.nats_url, status)
        assert len(running.orders(12, "ada")) >= 10
        corpus = home.parent / "corpus"
        corpus.mkdir()
        for i in range(3):
            (corpus / f"part{i}.txt").write_text("the shop sells tea and coffee\nminga counts words\n" * 300)
        job = minga("run", str(WORDCOUNT), str(corpus), "-o", str(home.parent / "counts"), "-q",
                    "--workers", "2", home=home)  # fmt: skip
        assert job.returncode == 0, job.stderr
        yield running
    finally:
        down = minga("down", home=home)
        assert down.returncode == 0, down.stderr


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def page(browser: Any, shop: Shop, tmp_path: Path) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1360, "height": 900})
    tab = Page(context.new_page(), shop.dashboard, tmp_path)
    # log in once, as a person does: the read-only token kept in the home, typed into the form
    token = read_token(shop.home, Role.READ)
    assert token is not None
    tab.page.goto(shop.dashboard)
    tab.page.fill("#token", token)
    tab.page.click("button[type=submit]")
    tab.page.wait_for_selector(".conn.live", timeout=15_000)
    tab.page.on("console", lambda m: tab.errors.append(m.text) if m.type == "error" else None)
    tab.page.on("pageerror", lambda e: tab.errors.append(str(e)))
    tab.page.on("request", lambda r: tab.requests.append(r.url))
    try:
        yield tab
    finally:
        context.close()
    assert not tab.errors, tab.errors
