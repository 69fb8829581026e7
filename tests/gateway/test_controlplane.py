"""`minga up` starts the gateway that minga.yaml declares; its URL is in `minga status --json`."""

from __future__ import annotations

import hashlib
import json
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

import support
from support import minga

pytestmark = [pytest.mark.slow, pytest.mark.engine]

REPLICA = Path(__file__).with_name("replica.py")




def test_up_starts_the_gateway_routing_to_the_registry(tmp_path: Path) -> None:
    with support.running(support.nats_server(tmp_path)) as nats:
        run_the_system(tmp_path, f"nats://127.0.0.1:{nats.port}")


def run_the_system(tmp_path: Path, nats_url: str) -> None:
    home = tmp_path / "home"
    spec = tmp_path / "minga.yaml"
    spec.write_text(
        f"""\
name: gw
broker: {nats_url}
services:
  orders:
    command: ["sh", "-c", "exec {sys.executable} {REPLICA} $MINGA_HTTP_PORT orders"]
    replicas: 2
    ports: [http]
    health: {{http: /healthz, interval: 200ms, timeout: 200ms}}
    stop_grace: 2s
gateway:
  listen: 127.0.0.1:0
  routes:
    - {{path: /api/orders, service: orders, strip_prefix: true, expose: [/healthz]}}
    - {{path: /keyed, service: orders, strip_prefix: true, auth: {{api_keys_file: api-keys}}}}
""",
        encoding="utf-8",
    )
    # the key file is read beside minga.yaml; it holds the key's digest, never the key
    (tmp_path / "api-keys").write_text(f"ci {hashlib.sha256(b'the-ci-key').hexdigest()}\n", encoding="utf-8")
    up = minga("up", "--detach", "-f", str(spec), "--timeout", "40", home=home, cwd=tmp_path, timeout=90)
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        status = minga("status", "--json", home=home, cwd=tmp_path)
        doc = json.loads(status.stdout)
        gateway = doc["gateway"]
        assert gateway and gateway.startswith("http://127.0.0.1:")
        with urllib.request.urlopen(f"{gateway}/api/orders/healthz", timeout=10) as r:
            assert r.status == 200 and r.read() == b"ok"
        seen = set()
        for _ in range(20):
            with urllib.request.urlopen(f"{gateway}/api/orders/echo?x=1", data=b"hi", timeout=10) as r:
                assert r.read() == b"hi" and r.headers["X-Seen-Path"] == "/echo?x=1"
                seen.add(r.headers["X-Replica"])
        assert seen == {"orders"}
        with urllib.request.urlopen(f"{gateway}/metrics", timeout=10) as r:
            assert b'minga_gateway_requests_total{route="/api/orders",code="200"} 21' in r.read()
        keyed = urllib.request.Request(f"{gateway}/keyed/echo", data=b"hi", headers={"X-API-Key": "the-ci-key"})
        with urllib.request.urlopen(keyed, timeout=10) as r:
            assert r.read() == b"hi" and r.headers["X-Seen-Subject"] == "apikey:ci"
        wrong = urllib.request.Request(f"{gateway}/keyed/echo", data=b"hi", headers={"X-API-Key": "guess"})
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(wrong, timeout=10)
        assert refused.value.code == 401
        refused.value.close()  # the error holds the response, and its socket
        audit = minga("audit", "--json", home=home, cwd=tmp_path)
        records = [json.loads(line) for line in audit.stdout.splitlines()]
        assert [(r["area"], r["what"], r["why"]) for r in records if r["area"] == "gateway"] == [
            ("gateway", "POST /keyed/echo", "the API key is not known")
        ]
    finally:
        down = minga("down", home=home, cwd=tmp_path, timeout=60)
        assert down.returncode == 0, down.stdout + down.stderr
