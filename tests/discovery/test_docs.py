from __future__ import annotations

import asyncio
import base64
import os
import subprocess
import sys
import uuid
from pathlib import Path

import aiohttp
import pytest
import yaml


def test_the_runnable_example_runs_as_documented() -> None:
    page = (Path(__file__).parents[2] / "docs" / "discovery.md").read_text()
    example = page.split("```python\n", 1)[1].split("```", 1)[0]
    out = subprocess.run([sys.executable, "-c", example], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == [
        "['127.0.0.1:8100', '127.0.0.1:8101', '127.0.0.1:8100', '127.0.0.1:8101']",
        "['inventory-1', 'inventory-1']",
    ]


SHOP = Path(__file__).parents[2] / "examples" / "shop"


@pytest.mark.engine
@pytest.mark.slow
async def test_the_etcd_long_form_runs_as_documented(etcd_url: str, tmp_path: Path) -> None:
    """The `store: etcd` example of docs/discovery.md under `minga up`, on a real etcd: each replica
    is one key under `<prefix>instances/`, gone after `minga down`."""
    page = (Path(__file__).parents[2] / "docs" / "discovery.md").read_text()
    block = "# stock.yaml" + page.split("```yaml\n# stock.yaml", 1)[1].split("```", 1)[0]
    doc = yaml.safe_load(block)
    assert doc["discovery"] == {"store": "etcd", "url": "http://127.0.0.1:2379", "prefix": "/stock/", "ttl": "3s"}
    prefix = f"/stock-{uuid.uuid4().hex[:8]}/"  # the test etcd is shared by the session
    doc["discovery"].update(url=etcd_url, prefix=prefix)
    doc["services"]["inventory"]["workdir"] = str(SHOP)  # the page saves the file in examples/shop
    spec = tmp_path / "stock.yaml"
    spec.write_text(yaml.safe_dump(doc), encoding="utf-8")
    home = tmp_path / "home"

    def minga(*args: str) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "MINGA_HOME": str(home)}
        cmd = [sys.executable, "-m", "minga", *args, "-f", str(spec)]
        return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)

    async def keys() -> list[str]:
        start = f"{prefix}instances/"
        end = start[:-1] + chr(ord(start[-1]) + 1)
        body = {"key": _b64(start), "range_end": _b64(end), "keys_only": True}
        async with aiohttp.ClientSession() as http, http.post(f"{etcd_url}/v3/kv/range", json=body) as resp:
            found = (await resp.json()).get("kvs", [])
        return sorted(base64.b64decode(kv["key"]).decode() for kv in found)

    up = await asyncio.to_thread(minga, "up", "--detach", "--timeout", "90")
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        assert await keys() == [f"{prefix}instances/inventory-1", f"{prefix}instances/inventory-2"]
    finally:
        down = await asyncio.to_thread(minga, "down")
    assert down.returncode == 0, down.stderr
    assert await keys() == []


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()
