from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import yaml
from typer.testing import CliRunner

from minga.cli import app
from minga.errors import SpecError, UsageError
from minga.spec import (
    HealthCheckSpec,
    ServiceSpec,
    Spec,
    home_dir,
    json_schema,
    load_spec,
    parse_cpu,
    parse_duration,
    parse_memory,
    parse_spec,
)

GOOD = """\
name: shop
services:
  orders:
    module: shop.orders:Orders
    replicas: 2
    ports: [http, metrics]
    env: {LOG_LEVEL: debug, WORKERS: 4, DEBUG: true}
    health:
      http: /healthz
      interval: 500ms
      timeout: 250ms
    restart: on-failure
    depends_on:
      inventory: {condition: healthy}
      payments:
    resources: {cpu: 500m, memory: 256Mi}
  inventory:
    module: shop.inventory:Inventory
    ports: {http: 0}
    health: {tcp: true, interval: 2s}
  payments:
    command: python -m shop.payments --fail-rate 0.05
    depends_on: [inventory]
    stop_grace: 1m30s
broker: embedded
discovery: {store: embedded, ttl: 3s}
gateway:
  listen: 127.0.0.1:8080
"""


def test_a_good_spec_loads_with_shorthands_normalised() -> None:
    spec = parse_spec(GOOD, "minga.yaml")
    orders = spec.services["orders"]
    assert orders.module == "shop.orders:Orders" and orders.command is None
    assert orders.ports == {"http": 0, "metrics": 0}
    assert orders.env == {"LOG_LEVEL": "debug", "WORKERS": "4", "DEBUG": "true"}
    assert orders.health == HealthCheckSpec(http="/healthz", interval=0.5, timeout=0.25)
    assert orders.restart == "on-failure"
    assert {k: v.condition for k, v in orders.depends_on.items()} == {
        "inventory": "healthy",
        "payments": "healthy",
    }
    assert orders.resources.cpu == 0.5 and orders.resources.memory == 256 * 1024**2
    payments = spec.services["payments"]
    assert payments.command == ["python", "-m", "shop.payments", "--fail-rate", "0.05"]
    assert payments.stop_grace == 90.0 and payments.restart == "always" and payments.replicas == 1
    inventory = spec.services["inventory"]
    assert inventory.health is not None and inventory.health.tcp and inventory.health.interval == 2.0
    assert spec.broker.embedded and spec.broker.port == 0  # any free port: two systems never collide
    assert spec.discovery.store == "embedded" and spec.discovery.ttl == 3.0
    assert spec.gateway is not None and (spec.gateway.host, spec.gateway.port) == ("127.0.0.1", 8080)
    assert spec.start_order().index("inventory") < spec.start_order().index("payments")
    assert spec.start_order().index("payments") < spec.start_order().index("orders")
    assert spec.location("services", "payments") == "minga.yaml:21:3"
    assert spec.location("services", "nope") is None


def test_engine_urls_select_the_external_engines() -> None:
    spec = parse_spec("broker: nats://10.0.0.5:4222\ndiscovery: http://127.0.0.1:2379\n")
    assert not spec.broker.embedded and spec.broker.url == "nats://10.0.0.5:4222"
    assert spec.discovery.store == "etcd" and spec.discovery.url == "http://127.0.0.1:2379"
    assert parse_spec("").services == {}


def _problems(text: str) -> list[str]:
    with pytest.raises(SpecError) as info:
        parse_spec(text, "minga.yaml")
    return [str(p) for p in info.value.problems]


def test_every_mistake_is_reported_at_its_place() -> None:
    text = """\
services:
  orders:
    module: shop.orders:Orders
    replicas: -1
    replica: 2
    restart: sometimes
    resources: {memory: 12Zi}
  inventory:
    command: []
broker: {port: 70000}
"""
    problems = _problems(text)
    assert problems == [
        "minga.yaml:4:15: services.orders.replicas: found -1, expected a number >= 0",
        "minga.yaml:5:5: services.orders: found unknown key 'replica', expected one of module, command, "
        "replicas, version, tags, env, secrets, workdir, ports, health, restart, depends_on, resources, stop_grace "
        "(did you mean 'replicas'?)",
        "minga.yaml:6:14: services.orders.restart: found 'sometimes', expected one of 'always', "
        "'on-failure' or 'never'",
        "minga.yaml:7:25: services.orders.resources.memory: found '12Zi', expected a memory size such as "
        "256Mi, 1Gi, 512MB or a number of bytes",
        "minga.yaml:9:14: services.inventory.command: found a list of 0 item(s), expected at least 1 item(s)",
        "minga.yaml:10:16: broker.port: found 70000, expected a number <= 65535",
    ]
    with pytest.raises(SpecError) as info:
        parse_spec(text, "minga.yaml")
    err = info.value
    assert isinstance(err, UsageError)
    assert (err.path, err.line, err.column) == ("minga.yaml", 4, 15)
    assert str(err).splitlines() == problems


def test_cross_service_mistakes_point_at_the_reference() -> None:
    problems = _problems(
        """\
services:
  a:
    module: x:A
    depends_on: [b, ghost]
  b:
    module: x:B
    replicas: 2
    ports: {http: 8080}
    depends_on: {a: {condition: started}}
  Bad_Name:
    module: x:C
    health: {http: /healthz}
"""
    )
    assert problems == [
        "minga.yaml:4:21: services.a.depends_on.ghost: found 'ghost', expected one of the services: "
        "a, b, Bad_Name",
        "minga.yaml:8:19: services.b.ports.http: found fixed port 8080 for 2 replicas, "
        "expected 0 (a free port per replica)",
        "minga.yaml:9:18: services.b.depends_on.a: found a dependency cycle a -> b -> a, expected none",
        "minga.yaml:10:3: services.Bad_Name: found service name 'Bad_Name', "
        "expected lowercase letters, digits, - and _",
        "minga.yaml:12:13: services.Bad_Name.health.port: found port name 'http', expected one of this "
        "service's ports: (none declared: add `ports: [http]`)",
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("services: [a, b]\n", "minga.yaml:1:11: services: found a list of 2 item(s), expected a mapping"),
        (
            "services:\n  a: {module: x:A, command: run}\n",
            "minga.yaml:2:6: services.a: found a mapping with keys module, command, expected exactly one of "
            '`module: "pkg.mod:Class"` or `command: [...]`',
        ),
        (
            "services:\n  a: {module: not-a-module}\n",
            "minga.yaml:2:15: services.a.module: found 'not-a-module', expected text matching "
            r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$",
        ),
        (
            "services:\n  a:\n    module: x:A\n    health: {http: /h, tcp: true}\n",
            "minga.yaml:4:13: services.a.health: found a mapping with keys http, tcp, expected exactly one of "
            "`http: /path` or `tcp: true`",
        ),
        (
            "services:\n  a:\n    module: x:A\n    health: {tcp: true, interval: soon}\n",
            "minga.yaml:4:35: services.a.health.interval: found 'soon', expected a duration such as 500ms, "
            "2s, 1m30s or a number of seconds",
        ),
        (
            "discovery: {store: etcd}\n",
            "minga.yaml:1:12: discovery: found a mapping with keys store, expected an etcd "
            "`url: http://host:2379` with `store: etcd`",
        ),
        (
            "services:\n  a: {module: x:A}\n  a: {module: x:B}\n",
            "minga.yaml:3:3: services: found the key 'a' twice, expected it once",
        ),
        (
            "services:\n  a: {module: x:A\n",
            "minga.yaml:3:1: found invalid YAML: expected ',' or '}', but got '<stream end>'",
        ),
        ("version: 2\n", "minga.yaml:1:10: version: found 2, expected one of 1"),
        (
            "servics: {}\n",
            "minga.yaml:1:1: (top level): found unknown key 'servics', expected one of version, name, services, broker, discovery, control, gateway, alerts, monitor (did you mean 'services'?)",
        ),
    ],
)
def test_bad_specs(text: str, expected: str) -> None:
    assert _problems(text) == [expected]


def test_models_built_in_code_are_checked_too() -> None:
    with pytest.raises(ValueError, match=r"services\.a\.depends_on\.b: found 'b'"):
        Spec(services={"a": ServiceSpec(module="x:A", depends_on={"b": {}})})  # type: ignore[dict-item]


def test_units() -> None:
    assert parse_duration("1h2m3s") == 3723.0 and parse_duration("250ms") == 0.25 and parse_duration(2) == 2.0
    assert parse_memory("1Gi") == 1024**3 and parse_memory("512MB") == 512_000_000 and parse_memory(10) == 10
    assert parse_cpu("250m") == 0.25 and parse_cpu(2) == 2.0
    for bad in ("", "1x", "s", "1s2", True):
        with pytest.raises(ValueError, match="duration"):
            parse_duration(bad)


def test_load_spec_reads_files_and_names_a_missing_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "minga.yaml"
    path.write_text(GOOD)
    assert set(load_spec(path).services) == {"orders", "inventory", "payments"}
    with pytest.raises(SpecError, match="found no spec file"):
        load_spec(tmp_path / "absent.yaml")
    monkeypatch.delenv("MINGA_HOME", raising=False)
    assert home_dir(path) == tmp_path / ".minga"
    monkeypatch.setenv("MINGA_HOME", str(tmp_path / "state"))
    assert home_dir(path) == tmp_path / "state"


def test_the_json_schema_accepts_what_the_loader_accepts() -> None:
    schema = json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    assert list(validator.iter_errors(yaml.safe_load(GOOD))) == []
    assert (
        list(validator.iter_errors({"discovery": "http://127.0.0.1:2379", "broker": "nats://h:4222"})) == []
    )
    assert not validator.is_valid({"services": {"a": {"module": "x:A", "replicas": -1}}})
    assert not validator.is_valid({"services": {"a": {"module": "x:A", "restrt": "always"}}})
    assert not validator.is_valid({"broker": "amqp://h"})


def test_minga_schema_and_check_commands(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["schema"])
    assert result.exit_code == 0
    assert json.loads(result.stdout)["title"] == "minga.yaml"
    good = tmp_path / "minga.yaml"
    good.write_text(GOOD)
    result = CliRunner().invoke(app, ["check", "-f", str(good)])
    assert result.exit_code == 0 and "3 service(s), 4 replica(s)" in result.stdout
    bad = tmp_path / "bad.yaml"
    bad.write_text("services:\n  a:\n    module: x:A\n    replicas: lots\n")
    out = subprocess.run(
        [sys.executable, "-m", "minga", "check", "-f", str(bad)], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 2
    assert out.stderr.strip() == f"error: {bad}:4:15: services.a.replicas: found 'lots', expected an integer"


def test_the_docs_example_is_valid() -> None:
    page = (Path(__file__).parents[2] / "docs" / "spec.md").read_text()
    example = page.split("```yaml\n", 1)[1].split("```", 1)[0]
    spec = parse_spec(example, "minga.yaml")
    assert spec.start_order() == ["inventory", "orders", "mailer"]
    orders = spec.services["orders"]
    assert orders.health is not None and orders.health.interval == 1.0
    assert orders.resources.memory == 268435456
    assert spec.location("services", "mailer") == "minga.yaml:21:3"
    assert sum(s.replicas for s in spec.services.values()) == 5
    assert (spec.control.host, spec.control.port) == ("127.0.0.1", 7070)


def test_the_docs_long_forms_are_valid() -> None:
    page = (Path(__file__).parents[2] / "docs" / "spec.md").read_text()
    blocks = [b.split("```", 1)[0] for b in page.split("```yaml\n")[3:]]
    etcd, control = (parse_spec(b, "minga.yaml") for b in blocks)
    assert (etcd.discovery.store, etcd.discovery.url, etcd.discovery.prefix) == ("etcd", "http://127.0.0.1:2379", "/stock/")
    assert etcd.discovery.ttl == 3.0
    assert (control.control.host, control.control.port) == ("127.0.0.1", 7070)


def test_the_control_plane_address() -> None:
    assert parse_spec("name: a\n").control.port == 0, "any free port unless fixed"
    assert parse_spec("control: {listen: 7070}\n").control.port == 7070
    assert parse_spec("control: {host: 127.0.0.1, port: 7071}\n").control.port == 7071
    with pytest.raises(SpecError, match=r"control\.port"):
        parse_spec("control: {port: 70000}\n", "minga.yaml")


def test_the_docs_mistakes_example_prints_what_the_docs_show() -> None:
    page = (Path(__file__).parents[2] / "docs" / "spec.md").read_text()
    bad = page.split("```yaml\n")[2].split("```", 1)[0]
    shown = page.split("```console\n")[2].split("```", 1)[0].splitlines()
    assert shown[0] == "$ minga check -f minga.yaml"
    assert ["error: " + _problems(bad)[0], *_problems(bad)[1:]] == shown[1:]
