"""The embedded broker's port: any free one by default; a taken one is a line that says what to write."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from minga.controlplane import ControlPlane
from minga.errors import UsageError
from minga.spec import parse_spec


def test_the_embedded_broker_defaults_to_any_free_port() -> None:
    spec = parse_spec("name: a\nservices: {}\n")
    assert spec.broker.port == 0


async def test_a_taken_broker_port_names_the_spec_setting(tmp_path: Path) -> None:
    spec_file = tmp_path / "minga.yaml"
    spec_file.write_text("broker: {port: 1}\n", encoding="utf-8")
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        cp = ControlPlane([], home=tmp_path / "home", broker_port=port, spec_path=spec_file)
        with pytest.raises(UsageError) as caught:
            await cp.run()
    message = str(caught.value)
    assert message == (
        f"127.0.0.1:{port} is already in use; choose another `port:` under `broker:` in {spec_file} (0: any free port)"
    )
    assert "--port" not in message
