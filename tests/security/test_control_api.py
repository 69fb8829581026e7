"""The control plane's HTTP API and dashboard as an attacker on the same machine tries them:
no token, a wrong one, the read-only one for a stop, a cross-site form, a rebound DNS name."""

from __future__ import annotations

import stat

import pytest
from security_harness import Plane

from minga.controlplane import ControlPlaneClient
from minga.errors import UsageError
from minga.security import Credentials, read_audit

pytestmark = [pytest.mark.slow]


async def test_no_token_is_refused_and_the_admin_token_reads(plane: Plane) -> None:
    for path in ("/api/status", "/api/logs", "/dashboard/api/overview", "/api/monitor/targets", "/v1/discovery/instances"):
        status, body = await plane.call("GET", path)
        assert status == 401, (path, body)
        assert body["error"].startswith("authentication required"), body
    record = read_audit(plane.home)[-1]
    assert (record.who, record.what, record.area) == ("anonymous", "GET /v1/discovery/instances", "http")
    assert record.source == "127.0.0.1" and record.why.startswith("authentication required") and record.at

    status, body = await plane.call("GET", "/api/status", headers=plane.auth(plane.creds.admin))
    assert status == 200 and [s["name"] for s in body["services"]] == ["web"]


async def test_a_wrong_token_is_refused(plane: Plane) -> None:
    wrong = plane.creds.admin[:-4] + "AAAA"
    status, body = await plane.call("GET", "/api/status", headers=plane.auth(wrong))
    assert status == 401 and body["error"].startswith("invalid token"), body
    assert read_audit(plane.home)[-1].why.startswith("invalid token")


async def test_the_read_only_token_reads_but_cannot_stop(plane: Plane) -> None:
    read = plane.auth(plane.creds.read)
    assert (await plane.call("GET", "/api/status", headers=read))[0] == 200
    assert (await plane.call("GET", "/dashboard/api/overview", headers=read))[0] == 200
    status, body = await plane.call("POST", "/api/stop", headers=read)
    assert status == 403
    assert body["error"] == "the read-only token cannot POST /api/stop: use the admin token"
    record = read_audit(plane.home)[-1]
    assert (record.who, record.what) == ("read", "POST /api/stop")
    status, body = await plane.call("GET", "/api/status", headers=read)  # still running
    assert status == 200 and body["healthy"]


async def test_a_cross_site_stop_is_refused(plane: Plane) -> None:
    # a form on http://evil.example posting to the API, the browser adding the dashboard's cookie
    cookie = {"Cookie": f"minga_token={plane.creds.admin}"}
    evil = {**cookie, "Origin": "http://evil.example", "Content-Type": "application/x-www-form-urlencoded"}
    status, body = await plane.call("POST", "/api/stop", headers=evil, data=b"x=1")
    assert status == 403
    assert body["error"].startswith("a request from the page 'http://evil.example' is refused"), body
    assert read_audit(plane.home)[-1].what == "POST /api/stop"
    # a browser that sends no Origin still says the request is cross-site
    status, body = await plane.call("POST", "/api/stop", headers={**cookie, "Sec-Fetch-Site": "cross-site"})
    assert status == 403 and body["error"].startswith("a cross-site request is refused"), body
    status, body = await plane.call("GET", "/api/status", headers=plane.auth(plane.creds.read))
    assert status == 200 and body["healthy"], "the system must still run"
    # the dashboard's own page may call the API
    same = {**cookie, "Origin": plane.url}
    assert (await plane.call("GET", "/dashboard/api/overview", headers=same))[0] == 200


async def test_a_rebound_dns_name_is_refused(plane: Plane) -> None:
    # evil.example resolved to 127.0.0.1: the browser sends its own name as Host
    admin = plane.auth(plane.creds.admin)
    status, body = await plane.call("GET", "/api/status", headers={**admin, "Host": "evil.example"})
    assert status == 403
    assert "the Host header 'evil.example' does not name this control plane" in body["error"], body
    assert read_audit(plane.home)[-1].why.startswith("the Host header 'evil.example'")
    port = plane.url.rsplit(":", 1)[1]
    assert (await plane.call("GET", "/api/status", headers={**admin, "Host": f"localhost:{port}"}))[0] == 200


async def test_the_dashboard_asks_once_and_keeps_a_strict_http_only_cookie(plane: Plane) -> None:
    status, _ = await plane.call("GET", "/dashboard/", headers={"Accept": "text/html"})
    assert status == 303, "a browser without the token is sent to the login form"
    status, page = await plane.call("GET", "/login?next=/dashboard/")
    assert status == 200 and 'name="token"' in page
    # a wrong token: the form again, with the reason, and an audit record
    status, page = await plane.call("POST", "/login", data={"token": "guess", "next": "/dashboard/"})
    assert status == 401 and "this token is not valid here" in page
    assert read_audit(plane.home)[-1].what == "POST /login"
    # a replica's credential does not open the dashboard
    replica = plane.creds.replica_token("web", "web-1")
    assert (await plane.call("POST", "/login", data={"token": replica}))[0] == 401

    async with plane.http.post(
        plane.url + "/login", data={"token": plane.creds.read, "next": "https://evil.example/"},
        headers={"Origin": plane.url}, allow_redirects=False,
    ) as resp:  # fmt: skip
        assert resp.status == 303
        assert resp.headers["Location"] == "/dashboard/", "never sent to another site after logging in"
        cookie = resp.headers["Set-Cookie"]
    assert cookie.startswith(f"minga_token={plane.creds.read};")
    attributes = {a.strip().split("=")[0].lower(): a for a in cookie.split(";")[1:]}
    assert "httponly" in attributes and attributes["samesite"].strip() == "SameSite=Strict"
    assert attributes["path"].strip() == "Path=/"
    status, body = await plane.call("GET", "/dashboard/api/overview", headers={"Cookie": f"minga_token={plane.creds.read}"})
    assert status == 200 and body["status"]["name"] == "guarded"


async def test_the_cli_uses_the_token_kept_in_the_home(plane: Plane) -> None:
    path = Credentials.file(plane.home)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    doc = await ControlPlaneClient.for_home(plane.home).status()  # nothing typed
    assert doc["healthy"]
    with pytest.raises(UsageError, match="authentication required"):
        await ControlPlaneClient(plane.url).status()
