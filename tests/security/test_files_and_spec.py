"""minga's home is private, and a minga.yaml built to exhaust memory or recurse is one clear error."""

from __future__ import annotations

import asyncio
import os
import stat
import subprocess
import sys
from pathlib import Path

import nats
import pytest
from security_harness import Plane

from minga.errors import SpecError
from minga.security import private_umask, secure_home
from minga.spec import parse_spec

BOMB = "name: bomb\n" + "a0: &a0 [" + ", ".join(['"lol"'] * 9) + "]\n" + "".join(
    f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]\n" for i in range(1, 9)
)  # 9**9 strings once expanded, from a few hundred bytes


def _modes(home: Path) -> dict[str, int]:
    found = {str(home): stat.S_IMODE(home.stat().st_mode)}
    for root, dirs, files in os.walk(home):
        for name in dirs + files:
            path = Path(root) / name
            if not path.is_symlink():
                found[str(path)] = stat.S_IMODE(path.stat().st_mode)
    return found


@pytest.mark.slow
async def test_everything_in_the_home_is_private(plane: Plane) -> None:
    await plane.call("GET", "/api/status")  # a refusal, so the audit log exists too
    nc = await nats.connect(plane.state.nats_url)
    try:  # a stream with a message, so JetStream's files exist too
        js = nc.jetstream()
        await js.add_stream(name="ORDERS", subjects=["orders.>"])
        await js.publish("orders.1", b"tea")
    finally:
        await nc.close()
    modes = await asyncio.to_thread(_modes, plane.home)
    for name in ("credentials.json", "audit.log", "server.json", "logs/web-1.log", "registry.json"):
        assert str(plane.home / name) in modes, f"{name} was not written"
    assert any("/jetstream/" in p and not p.endswith("/jetstream") for p in modes), sorted(modes)
    dirs = await asyncio.to_thread(lambda: {p for p in modes if os.path.isdir(p)})
    for path, mode in modes.items():
        want = 0o700 if path in dirs else 0o600
        assert mode & 0o077 == 0 and mode & want == want, f"{path} is {oct(mode)}"
    assert modes[str(plane.home)] == 0o700


def test_secure_home_tightens_what_an_older_version_left_open(tmp_path: Path) -> None:
    home = tmp_path / "home"
    (home / "logs").mkdir(parents=True)
    (home / "logs" / "a.log").write_text("x")
    os.chmod(home / "logs" / "a.log", 0o644)
    os.chmod(home / "logs", 0o755)
    os.chmod(home, 0o755)
    secure_home(home)
    assert _modes(home) == {str(home): 0o700, str(home / "logs"): 0o700, str(home / "logs" / "a.log"): 0o600}
    with private_umask():
        (home / "new").write_text("y")
        (home / "newdir").mkdir()
    assert stat.S_IMODE((home / "new").stat().st_mode) == 0o600
    assert stat.S_IMODE((home / "newdir").stat().st_mode) == 0o700


def test_an_alias_bomb_is_refused_before_it_expands() -> None:
    assert len(BOMB) < 600
    with pytest.raises(SpecError) as err:
        parse_spec(BOMB, "minga.yaml")
    assert str(err.value).startswith("minga.yaml:")
    assert "expands to more than 20,000 values (aliases nested in aliases?)" in str(err.value)


@pytest.mark.parametrize(
    "text", ["name: x\nservices: &s\n  a: *s\n", "name: x\nservices:\n  a: &a\n    env: [*a]\n"]
)
def test_a_self_referencing_alias_is_a_clear_error(text: str) -> None:
    with pytest.raises(SpecError, match="found an alias that refers to a node containing it"):
        parse_spec(text, "minga.yaml")


def test_minga_check_says_it_in_one_line(tmp_path: Path) -> None:
    for i, text in enumerate((BOMB, "name: x\nservices: &s\n  a: *s\n")):
        spec = tmp_path / f"bad{i}.yaml"
        spec.write_text(text)
        out = subprocess.run(
            [sys.executable, "-m", "minga", "check", "-f", str(spec)], capture_output=True, text=True, timeout=60
        )
        assert out.returncode != 0 and "Traceback" not in out.stderr, out.stderr
        assert len(out.stderr.strip().splitlines()) == 1, out.stderr
        assert f"bad{i}.yaml:" in out.stderr
