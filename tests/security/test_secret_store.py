"""Secrets: kept AES-GCM encrypted in the home with the key apart, managed by `minga secret`,
injected into a replica's environment at start, and never shown by minga."""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from minga.controlplane import ControlPlane
from minga.errors import UsageError
from minga.security import SecretStore
from minga.spec import parse_spec
from support import minga

VALUE = "db-pw-5e1c0d-never-shown"




def test_values_are_encrypted_with_the_key_apart_and_rotate_under_a_new_key(tmp_path: Path) -> None:
    home = tmp_path / "home"
    store = SecretStore(home)
    store.set("db", VALUE.encode())
    store.set("api", b"\x00binary")
    assert store.get("db") == VALUE.encode() and store.get("api") == b"\x00binary"
    data, key = (home / "secrets.json").read_bytes(), (home / "secrets.key").read_bytes()
    assert VALUE.encode() not in data and VALUE.encode() not in key
    for path in (home / "secrets.json", home / "secrets.key"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(home.stat().st_mode) == 0o700
    assert [(i.name, i.size) for i in store.infos()] == [("api", 7), ("db", len(VALUE))]

    assert store.rotate() == 2
    assert (home / "secrets.key").read_bytes() != key and (home / "secrets.json").read_bytes() != data
    assert store.get("db") == VALUE.encode() and not (home / "secrets.key.next").exists()
    # the old key no longer opens the data
    (home / "secrets.key").write_bytes(key)
    with pytest.raises(UsageError, match="does not open"):
        store.get("db")


def test_a_value_moved_under_another_name_does_not_decrypt(tmp_path: Path) -> None:
    store = SecretStore(tmp_path)
    store.set("db", b"one")
    store.set("other", b"two")
    doc = json.loads((tmp_path / "secrets.json").read_text())
    doc["secrets"]["other"] = doc["secrets"]["db"]
    (tmp_path / "secrets.json").write_text(json.dumps(doc))
    with pytest.raises(UsageError, match="secret other does not decrypt"):
        store.get("other")


def test_mistakes_get_one_clear_line(tmp_path: Path) -> None:
    store = SecretStore(tmp_path)
    with pytest.raises(UsageError, match="no secret named db: set it with `minga secret set db`"):
        store.get("db")
    with pytest.raises(UsageError, match="bad secret name"):
        store.set("../x", b"v")
    with pytest.raises(UsageError, match="no secret named db"):
        store.remove("db")


def test_the_cli_sets_lists_rotates_and_removes_without_printing_values(tmp_path: Path) -> None:
    home = tmp_path / "home"
    (tmp_path / "value.txt").write_text(VALUE + "-file")
    outputs = [
        minga("secret", "set", "db", home=home, cwd=tmp_path, stdin=VALUE + "\n"),
        minga("secret", "set", "other", "--from-file", "value.txt", home=home, cwd=tmp_path),
        listed := minga("secret", "list", home=home, cwd=tmp_path),
        minga("secret", "rotate", home=home, cwd=tmp_path),
    ]
    for out in outputs:
        assert out.returncode == 0, out.stderr
        assert VALUE not in out.stdout + out.stderr
    assert listed.stdout.splitlines()[0].startswith(f"db\t{len(VALUE)} bytes\t")
    store = SecretStore(home)
    assert store.get("db") == VALUE.encode()  # the newline `echo` adds is not part of the value
    assert store.get("other") == (VALUE + "-file").encode()
    removed = minga("secret", "rm", "db", home=home, cwd=tmp_path)
    assert removed.returncode == 0 and [i.name for i in store.infos()] == ["other"]
    again = minga("secret", "rm", "db", home=home, cwd=tmp_path)
    assert again.returncode != 0
    assert "no secret named db: `minga secret list` shows those kept" in again.stderr
    assert "Traceback" not in again.stderr


SPEC = """\
name: secretive
broker: {{port: 0}}
services:
  web:
    command: ["sh", "-c", "printf %s \\"$DB_PASSWORD\\" | sha256sum > {seen} && exec {py} -m http.server $MINGA_HTTP_PORT --bind 127.0.0.1"]
    env: {{DB_PASSWORD: {{secret: db}}, PLAIN: shown}}
    ports: [http]
    health: {{tcp: true, interval: 200ms, timeout: 200ms}}
    stop_grace: 2s
"""


async def test_a_missing_secret_stops_the_start_with_one_clear_line(tmp_path: Path) -> None:
    spec = parse_spec(SPEC.format(seen=tmp_path / "seen", py=sys.executable), str(tmp_path / "minga.yaml"))
    cp = ControlPlane.from_spec(spec, tmp_path / "home")
    with pytest.raises(UsageError, match="no secret named db: set it with `minga secret set db`"):
        await cp.run()
    assert not (tmp_path / "seen").exists(), "no replica started"


@pytest.mark.slow
def test_a_replica_gets_its_secret_and_minga_never_shows_it(tmp_path: Path) -> None:
    seen = tmp_path / "seen"
    (tmp_path / "minga.yaml").write_text(SPEC.format(seen=seen, py=sys.executable))
    home = tmp_path / "home"
    assert minga("secret", "set", "db", home=home, cwd=tmp_path, stdin=VALUE).returncode == 0
    up = minga("up", "--detach", "--timeout", "60", home=home, cwd=tmp_path)
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        outputs = [up.stdout + up.stderr]
        for args in (("status",), ("status", "--json"), ("logs",), ("services",), ("secret", "list")):
            out = minga(*args, home=home, cwd=tmp_path)
            assert out.returncode == 0, (args, out.stderr)
            outputs.append(out.stdout + out.stderr)
    finally:
        down = minga("down", home=home, cwd=tmp_path)
        assert down.returncode == 0, down.stdout + down.stderr
    # the replica had it in its environment...
    assert seen.read_text().split()[0] == hashlib.sha256(VALUE.encode()).hexdigest()
    # ...and nothing minga printed or wrote holds it
    for text in outputs:
        assert VALUE not in text
    assert "secretive" in outputs[2]  # status --json did answer
    files = [p for p in home.rglob("*") if p.is_file()]
    assert any(p.name == "secrets.json" for p in files) and any(p.suffix == ".log" for p in files)
    for path in files:
        assert VALUE.encode() not in path.read_bytes(), path


@pytest.mark.slow
def test_the_docs_secrets_example_runs(tmp_path: Path) -> None:
    text = (Path(__file__).resolve().parents[2] / "docs" / "security.md").read_text(encoding="utf-8")
    found = re.search(r"## Secrets.*?```console\n(.*?)```", text, flags=re.S)
    assert found is not None
    lines, expected, heredoc = ["set -e"], [], False
    for line in found.group(1).splitlines():
        if heredoc:
            lines.append(line)
            heredoc = line != "YAML"
        elif line.startswith("$ "):
            command = line[2:].split("  #")[0].strip()
            lines.append(command)
            heredoc = "<<'YAML'" in command
        elif not line.startswith("db\t"):  # the list's date changes at each run
            expected.append(line)
    # `minga` as the reader has it: the environment's own command, whether or not it is activated
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    env = {**os.environ, "MINGA_HOME": str(tmp_path / ".minga"), "COLUMNS": "200", "PATH": path}
    run = subprocess.run(
        ["bash", "-c", "\n".join(lines)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 0, run.stdout + run.stderr
    for line in expected:
        assert line in run.stdout
    assert "db\t9 bytes\t" in run.stdout and "s3cret-pw" not in run.stdout + run.stderr
