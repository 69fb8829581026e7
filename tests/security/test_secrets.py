"""No secret is shown: a broker password stays out of `up`, `status`, server.json, the dashboard's
API, the logs and `ps`; credentials are compared in constant time; webhook signatures verified."""

from __future__ import annotations

import hmac
import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

import pytest

import support
from minga.broker import AuthConfig
from minga.cli.bus import resolve_url
from minga.controlplane import ServerState
from minga.security import (
    Credentials,
    SignatureError,
    read_token,
    redact_url,
    sign,
    verify_github,
    verify_signed,
)

PASSWORD = "pw-7f3a9c-never-shown"


def minga(*args: str, home: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MINGA_HOME": str(home), "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "minga", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )


def _cmdlines() -> dict[int, str]:
    out = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                out[int(entry.name)] = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
    return out


@pytest.mark.slow
@pytest.mark.engine
def test_a_broker_password_is_never_shown(tmp_path: Path) -> None:
    with support.running(support.nats_server(tmp_path, "--user", "admin", "--pass", PASSWORD)) as nats:
        url = f"nats://admin:{PASSWORD}@127.0.0.1:{nats.port}"
        shown = f"nats://admin:***@127.0.0.1:{nats.port}"
        (tmp_path / "minga.yaml").write_text(
            f"""name: secretive
broker: {url}
services:
  web:
    command: ["sh", "-c", "exec {sys.executable} -m http.server $MINGA_HTTP_PORT --bind 127.0.0.1"]
    ports: [http]
    health: {{tcp: true, interval: 200ms, timeout: 200ms}}
    stop_grace: 2s
"""
        )
        home = tmp_path / "home"
        up = minga("up", "--detach", "--timeout", "60", home=home, cwd=tmp_path)
        try:
            assert up.returncode == 0, up.stdout + up.stderr
            assert shown in up.stdout, up.stdout
            status = minga("status", "--json", home=home, cwd=tmp_path)
            doc = json.loads(status.stdout)
            assert doc["broker"] == shown
            server = json.loads((home / "server.json").read_text())
            assert server["nats_url"] == shown
            token = read_token(home)
            request = urllib.request.Request(
                f"{server['url']}/dashboard/api/overview", headers={"Authorization": f"Bearer {token}"}
            )
            with urllib.request.urlopen(request, timeout=10) as resp:
                overview = resp.read().decode()
            assert shown in overview
            procs = _cmdlines()
            minga_pids = {server["pid"], *(i["pid"] for s in doc["services"] for i in s["instances"])}
            assert all(pid in procs for pid in minga_pids)
            seen = [up.stdout, up.stderr, status.stdout, status.stderr, overview, *(procs[p] for p in minga_pids)]
            logs = minga("logs", home=home, cwd=tmp_path)
            seen += [logs.stdout, logs.stderr]
            seen += [p.read_text(errors="replace") for p in home.rglob("*") if p.is_file() and p.suffix != ".json"]
            seen.append((home / "server.json").read_text())
            for text in seen:
                assert PASSWORD not in text
        finally:
            down = minga("down", home=home, cwd=tmp_path)
            assert down.returncode == 0, down.stderr


def test_urls_are_shown_without_their_secret() -> None:
    assert redact_url("nats://admin:pw@127.0.0.1:4222") == "nats://admin:***@127.0.0.1:4222"
    assert redact_url("nats://s3cret@127.0.0.1:4222") == "nats://***@127.0.0.1:4222"
    assert redact_url("tls://u:p@a:1,b:2") == "tls://u:***@a:1,b:2"
    assert redact_url("nats://127.0.0.1:4222") == "nats://127.0.0.1:4222"


def test_the_broker_cli_refuses_a_password_in_argv(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "minga", "broker", "--port", "0", "--user", "u", "--password", PASSWORD],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert "--password on the command line is visible in `ps`: set MINGA_BROKER_PASSWORD" in out.stderr


def test_every_credential_comparison_is_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[Any, Any]] = []
    real = hmac.compare_digest

    def spy(a: Any, b: Any) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    creds = Credentials.generate()
    assert creds.identify(creds.admin) is not None and creds.identify("nope") is None
    assert len(calls) >= 3
    calls.clear()
    auth = AuthConfig(user="admin", password=PASSWORD)
    assert auth.accepts({"user": "admin", "pass": PASSWORD}) and not auth.accepts({"user": "admin", "pass": "x"})
    assert len(calls) == 4
    calls.clear()
    assert AuthConfig(token="t0k").accepts({"auth_token": "t0k"}) and calls
    calls.clear()
    verify_github("s", b"{}", sign("s", b"{}"))
    assert calls


def test_github_signatures() -> None:
    body = b'{"ref": "refs/heads/main"}'
    header = sign("hook-secret", body)
    assert header == "sha256=" + hmac.new(b"hook-secret", body, "sha256").hexdigest()
    verify_github("hook-secret", body, header)
    for bad, why in (
        (None, "has no X-Hub-Signature-256 header"),
        ("sha1=abc", "must be sha256=<hex digest>"),
        (sign("other", body), "does not match the body"),
        (sign("hook-secret", body + b" "), "does not match the body"),
    ):
        with pytest.raises(SignatureError, match=why):
            verify_github("hook-secret", body, bad)
    with pytest.raises(SignatureError, match="no webhook secret is configured"):
        verify_github("", body, header)


def test_signed_deliveries_have_a_replay_window() -> None:
    body = b"{}"
    now = 1_800_000_000.0
    signature = sign("k", body, timestamp=int(now))
    verify_signed("k", body, signature, str(int(now)), now=now + 10)
    with pytest.raises(SignatureError, match="outside the 300s window"):
        verify_signed("k", body, signature, str(int(now)), now=now + 301)
    with pytest.raises(SignatureError, match="does not match"):  # the timestamp is signed too
        verify_signed("k", body, signature, str(int(now) + 5), now=now)
    with pytest.raises(SignatureError, match="must be Unix seconds"):
        verify_signed("k", body, signature, "yesterday", now=now)
    with pytest.raises(SignatureError, match="has no X-Minga-Timestamp header"):
        verify_signed("k", body, signature, None, now=now)


def test_minga_call_finds_the_password_in_the_spec_not_the_state_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"nats://admin:{PASSWORD}@127.0.0.1:4999"
    spec = tmp_path / "minga.yaml"
    spec.write_text(f"name: x\nbroker: {url}\n")
    home = tmp_path / "home"
    home.mkdir()
    ServerState("http://127.0.0.1:1", os.getpid(), str(home), str(spec), redact_url(url), 0.0).write(home)
    monkeypatch.setenv("MINGA_HOME", str(home))
    monkeypatch.delenv("MINGA_NATS_URL", raising=False)
    assert PASSWORD not in (home / "server.json").read_text()
    assert resolve_url(None, spec) == url
