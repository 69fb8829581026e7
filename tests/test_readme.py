"""The README's "minga in your own project" works as written: its service file and minga.yaml,
copied into an empty directory, run under `minga up --detach`, answer over the bus and the gateway."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow]

README = Path(__file__).resolve().parents[1] / "README.md"


def section(title: str) -> str:
    text = README.read_text(encoding="utf-8")
    start = text.index(f"## {title}")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else None]


def blocks(text: str, lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", text, flags=re.S)


def minga(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "MINGA_HOME"}
    return subprocess.run(
        [sys.executable, "-m", "minga", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )


def test_the_readme_says_how_to_put_minga_on_path_after_make_demo() -> None:
    tour = blocks(section("A short tour"), "sh")[0]
    assert tour.splitlines()[0].startswith(". .venv/bin/activate")


def test_own_project_from_the_readme(tmp_path: Path) -> None:
    own = section("minga in your own project")
    (service,) = blocks(own, "python")
    (spec,) = blocks(own, "yaml")
    filename = service.splitlines()[0].removeprefix("# ").strip()
    (tmp_path / filename).write_text(service, encoding="utf-8")
    (tmp_path / "minga.yaml").write_text(spec, encoding="utf-8")
    up = minga("up", "--detach", "--timeout", "90", cwd=tmp_path)
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        call = re.search(r"`minga call (\S+) '([^']+)'`", own)
        assert call is not None
        answer = minga("call", call[1], call[2], cwd=tmp_path)
        assert answer.returncode == 0, answer.stderr
        assert json.loads(answer.stdout) == "hello, ada"
        gateway = json.loads(minga("status", "--json", cwd=tmp_path).stdout)["gateway"]
        path = re.search(r'curl "\$GW(/[^"]+)"', own)
        assert path is not None
        with urllib.request.urlopen(f"{gateway}{path[1]}", timeout=10) as resp:
            assert json.load(resp) == {"greeting": "hello, ada"}
    finally:
        down = minga("down", cwd=tmp_path)
    assert down.returncode == 0, down.stderr
