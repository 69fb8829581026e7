"""Each page of the dashboard in headless Chromium against the running shop: what it shows, that it
follows changes live, and that every request stays on the control plane. Screenshots land in tmp_path."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from dashboard_harness import Page, Shop

pytestmark = [pytest.mark.slow]

SERVICES = ["inventory", "payments", "notifications", "orders"]
SLOW_JOB = Path(__file__).parent / "slow_job.py"


def test_overview_shows_every_service_with_its_replicas(page: Page, shop: Shop) -> None:
    tab = page.open("#/")
    tab.wait_for_selector("#services tbody tr")
    rows = tab.locator("#services tbody tr.service-row")
    assert [rows.nth(i).get_attribute("data-service") for i in range(rows.count())] == SERVICES
    for i in range(rows.count()):
        assert rows.nth(i).locator("td.replicas").inner_text() == "2/2"
        assert "passing" in rows.nth(i).inner_text()
    assert tab.locator(".card", has_text="Replicas").locator(".value").inner_text().replace(" ", "") == "8/8"
    assert tab.locator("#system-name").inner_text() == "shop"
    assert tab.locator("#nav-services a").all_inner_texts() == SERVICES
    parts = tab.locator("#parts tbody tr")
    names = [parts.nth(i).get_attribute("data-part") for i in range(parts.count())]
    assert names == ["broker", "registry", "gateway", "monitor queries", "monitor storage"]
    assert "process" in tab.locator('#parts tr[data-part="monitor queries"]').inner_text()
    page.shot("overview")
    own = urlsplit(shop.dashboard).netloc
    assert page.requests and all(urlsplit(u).netloc == own for u in page.requests), page.requests


def test_overview_follows_a_restart_without_reloading(page: Page, shop: Shop) -> None:
    tab = page.open("#/")
    tab.wait_for_selector("#services tbody tr")
    tab.evaluate("window.__sameDocument = true")
    before = int(tab.locator(".card", has_text="Restarts").locator(".value").inner_text())
    victim = next(s for s in shop.status["services"] if s["name"] == "payments")["instances"][1]
    os.kill(victim["pid"], signal.SIGKILL)
    # the supervisor restarts it; the page hears of it over the event stream
    tab.wait_for_function(
        "n => Number(document.querySelector('.card:nth-child(4) .value').textContent) > n", arg=before, timeout=30_000
    )
    row = tab.locator('#services tr[data-service="payments"]')
    tab.wait_for_function(
        "() => document.querySelector('#services tr[data-service=payments] td.replicas').textContent === '2/2'"
        " && document.querySelector('#services tr[data-service=payments]').textContent.includes('passing')",
        timeout=30_000,
    )
    assert row.locator("td.restarts").inner_text() == str(before + 1)
    assert tab.evaluate("window.__sameDocument") is True  # no reload happened
    page.shot("overview-after-restart")


def test_service_page_shows_replicas_charts_and_logs(page: Page, shop: Shop) -> None:
    # a rate needs calls between two scrapes (every 5 s): the setup's orders may all predate the first
    shop.orders(6, "cy")
    tab = page.open("#/service/orders")
    tab.wait_for_selector("#instances")
    assert tab.locator("#title").inner_text() == "orders"
    ids = tab.locator("#instances tbody tr td:first-child").all_inner_texts()
    assert ids == ["orders-1", "orders-2"]
    # each replica's last health check, as Consul's UI shows it
    assert tab.locator("#instances tbody td.check").all_inner_texts() == ["GET /healthz: 200"] * 2
    # CPU and memory are sampled every 2 s: wait for a line with two points or more
    tab.wait_for_selector('.chart[data-metric="rss"] polyline', state="attached", timeout=15_000)
    memory = tab.locator(".card", has_text="Memory").locator(".value").inner_text()
    assert re.fullmatch(r"[\d.]+ (MiB|GiB)", memory), memory
    assert tab.locator('.chart[data-metric="cpu"] svg').count() == 1
    assert tab.locator('.chart[data-metric="rss"] .deploy-marker').count() >= 1  # the replicas' starts
    # requests/s, errors and latency come from the monitor's scrapes of the replicas' /metrics
    tab.wait_for_selector('.chart[data-metric="rps"] polyline', state="attached", timeout=30_000)
    tab.wait_for_selector('.chart[data-metric="latency"] polyline', state="attached", timeout=30_000)
    p99 = tab.locator(".card", has_text="p50 / p95 / p99").locator(".value").inner_text()
    assert re.search(r"\d+(\.\d+)? (µs|ms|s)", p99), p99
    assert "orders started" in tab.locator(".loglines").inner_text()
    page.shot("service-orders")


def test_overview_shows_traffic_and_the_firing_alert(page: Page, shop: Shop) -> None:
    shop.orders(6, "dee")  # an increase needs two scrapes around the calls: the setup's may predate both
    tab = page.open("#/")
    # the monitor scrapes every 5 s and evaluates rules every 5 s: the alert fires within a few rounds
    tab.wait_for_selector("#alerts tr:has-text('OrdersPlaced') .pill.firing", timeout=40_000)
    alert = tab.locator("#alerts tr", has_text="OrdersPlaced").inner_text()
    assert "the shop is taking orders" in alert and "orders" in alert
    assert tab.locator(".card", has_text="Alerts firing").locator(".value").inner_text() == "1"
    shop.orders(5, "bob")
    tab.wait_for_function(
        "() => { const c = document.querySelector('#services tr[data-service=orders] td.rps');"
        " return c && c.textContent !== '—' && Number(c.textContent) > 0; }",
        timeout=30_000,
    )
    page.shot("overview-alert")


def test_log_search_finds_a_line_and_live_tail_shows_new_ones(page: Page, shop: Shop) -> None:
    tab = page.open("#/logs")
    tab.fill("input[name=q]", "notified ada3")
    tab.select_option("select[name=service]", "notifications")
    tab.click("#log-search button[type=submit]")
    tab.wait_for_selector("#log-results mark")
    found = tab.locator("#log-results tbody tr").all_inner_texts()
    assert found and all("notified ada3" in line for line in found), found
    assert all("notifications-" in line for line in found)
    page.shot("logs-search")

    tab.fill("input[name=q]", "grace")
    tab.click("#log-search button[type=submit]")
    tab.wait_for_selector("#log-results .empty")
    tab.click("#tail-toggle")
    tab.wait_for_selector("#tail-toggle.on")
    time.sleep(0.5)  # the tail starts from now: give its stream a moment to open before the orders
    shop.orders(3, "grace")
    tab.wait_for_selector("#log-results tr.fresh", timeout=20_000)
    tab.wait_for_function(
        "() => document.querySelectorAll('#log-results tbody tr').length >= 3", timeout=20_000
    )
    fresh = tab.locator("#log-results tbody tr").all_inner_texts()
    assert all("grace" in line for line in fresh), fresh
    page.shot("logs-live-tail")


def test_jobs_page_follows_a_running_job_to_its_end(page: Page, shop: Shop, tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for i in range(8):
        (corpus / f"part{i}.txt").write_text("one\ntwo\n")
    tab = page.open("#/jobs")
    tab.wait_for_selector("#jobs tbody tr")
    env = {**os.environ, "MINGA_HOME": str(shop.home)}
    job = subprocess.Popen(
        [sys.executable, "-m", "minga", "run", str(SLOW_JOB), str(corpus), "-o", str(tmp_path / "out"), "-q",
         "--workers", "1"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        tab.wait_for_selector("#jobs tbody tr:first-child .pill.running", timeout=30_000)
        tab.wait_for_function(
            "() => /map [1-9]\\d*\\/8/.test(document.querySelector('#jobs tbody tr:first-child').textContent)",
            timeout=30_000,
        )
        page.shot("jobs-running")
        assert job.wait(60) == 0, job.stderr.read() if job.stderr else ""
    finally:
        if job.poll() is None:
            job.kill()
        job.wait(10)
        if job.stderr:
            job.stderr.close()
    tab.wait_for_selector("#jobs tbody tr:first-child .pill.succeeded", timeout=15_000)
    first = tab.locator("#jobs tbody tr").first.inner_text()
    assert "Slow" in first and "slow_job.py" in first, first
    page.shot("jobs-finished")


def test_jobs_page_shows_the_recorded_run(page: Page, shop: Shop) -> None:
    tab = page.open("#/jobs")
    tab.wait_for_selector("#jobs tbody tr")
    row = tab.locator("#jobs tbody tr", has_text="WordCount").first
    text = row.inner_text()
    assert "WordCount" in text and "local" in text and "succeeded" in text
    page.shot("jobs")
    row.click()
    tab.wait_for_selector("#counters")
    counters = tab.locator("#counters").inner_text()
    assert re.search(r"map input records\s+1,800", counters), counters
    assert tab.locator("#phases tr").count() >= 2
    page.shot("job-detail")


def test_traces_page_shows_the_dependency_map_and_a_trace_tree(page: Page, shop: Shop) -> None:
    tab = page.open("#/traces")
    # spans reach the monitor a moment after the calls: the page fills in as they arrive
    tab.wait_for_selector("#traces tbody tr.trace-row", timeout=30_000)
    tab.wait_for_selector('#depmap .node[data-service="payments"]', timeout=30_000)
    nodes = {n.get_attribute("data-service") for n in tab.locator("#depmap .node").all()}
    assert {"orders", "inventory", "payments"} <= nodes, nodes
    assert tab.locator("#depmap .edge").count() >= 2
    page.shot("traces")
    row = tab.locator("#traces tbody tr.trace-row", has_text="place").first
    row.click()
    tab.wait_for_selector("#waterfall tr.span-row")
    spans = tab.locator("#waterfall tr.span-row").all_inner_texts()
    text = "\n".join(spans)
    assert len(spans) >= 3 and "orders" in text and "inventory" in text and "payments" in text, spans
    assert tab.locator("#waterfall .span").count() == len(spans)
    page.shot("trace")
